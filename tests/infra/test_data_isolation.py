"""Deployments isolate the data: what each container may write, and what Superset may see.

Checked on compose's resolved config and on every rendered overlay:

* Superset mounts only the serving data, read-only, never the warehouse (the landed layer holds
  PII and dead-letter payloads, and SQL Lab can read any file the Superset process can);
* every path a stage writes, as ``Settings`` derives it from the container's environment, lies on a
  writable volume or /tmp, and the code stays on the read-only root filesystem;
* the scheduled pipeline is one ``millpond run`` process that waits for the pipeline lock, and that
  wait ends before Kubernetes would kill the Job.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from millpond.settings import Settings
from tests.infra.artifacts import OVERLAYS, compose_config, container_env, pod_spec, rendered_docs, workloads

PROJECT_DIR = PurePosixPath("/app")
RUNNER_SERVICES = {"pipeline", "ingest-follow"}
SUPERSET_SERVICES = {"superset", "superset-init"}


def under(path: PurePosixPath | Path, roots: set[PurePosixPath]) -> bool:
    path = PurePosixPath(path)
    return any(path == root or root in path.parents for root in roots)


def stage_writes(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, *, publishes: bool) -> dict[str, Path]:
    """Every path a stage writes, as Settings derives it from this container's environment."""
    for name in [name for name in os.environ if name.startswith("MILLPOND_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MILLPOND_PII_SALT", "test-salt")  # else Settings would generate one under /data
    settings = Settings()
    writes = {
        "data dir (pipeline lock, heartbeats)": settings.data_dir,
        "warehouse": settings.warehouse.parent,
        "dlt pipelines": settings.dlt_dir,
        "caches": settings.cache_dir,
        "SQLMesh cache": Path(settings.sqlmesh_env()["MILLPOND_SQLMESH_CACHE_DIR"]),
        "TMPDIR": Path(env["TMPDIR"]),
    }
    if publishes:
        writes["serving file"] = settings.serving.parent
    return writes


def assert_explicit_paths(env: dict[str, str]) -> None:
    assert env.get("MILLPOND_DATA_DIR"), "MILLPOND_DATA_DIR must be set"
    assert env.get("TMPDIR") == "/tmp"
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"


# -- docker compose ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return compose_config(tmp_path_factory.mktemp("compose") / "ok.env", profiles=("streaming",))


def compose_mounts(service: dict[str, Any]) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = service.get("volumes", [])
    return mounts


def test_compose_superset_mounts_the_serving_volume_read_only_and_never_the_warehouse(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in SUPERSET_SERVICES:
        sources = {mount.get("source") for mount in compose_mounts(services[name])}
        assert "warehouse" not in sources, name
    serving = [mount for mount in compose_mounts(services["superset"]) if mount.get("source") == "serving"]
    assert len(serving) == 1 and serving[0].get("read_only") is True, serving
    serving_path = PurePosixPath(services["superset"]["environment"]["MILLPOND_SERVING_PATH"])
    assert under(serving_path, {PurePosixPath(serving[0]["target"])})


def test_compose_only_the_runner_mounts_the_warehouse(compose: dict[str, Any]) -> None:
    mounting = {
        name
        for name, service in compose["services"].items()
        if any(mount.get("source") == "warehouse" for mount in compose_mounts(service))
    }
    assert mounting == RUNNER_SERVICES


@pytest.mark.parametrize("name", sorted(RUNNER_SERVICES))
def test_compose_runner_writes_only_to_its_volumes_and_tmp(
    compose: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = compose["services"][name]
    env = {key: str(value) for key, value in service["environment"].items()}
    assert_explicit_paths(env)
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    writable = {PurePosixPath("/tmp")} | {
        PurePosixPath(mount["target"])
        for mount in compose_mounts(service)
        if mount["type"] == "volume" and not mount.get("read_only")
    }
    assert not any(under(root, {PROJECT_DIR}) or root == PurePosixPath("/") for root in writable), writable
    for what, path in stage_writes(env, monkeypatch, publishes=name == "pipeline").items():
        assert under(path, writable), f"{name}: {what} {path} is on no writable mount of {sorted(map(str, writable))}"


def test_compose_pipeline_is_one_millpond_run_that_waits_for_the_lock(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["pipeline"]["command"] == ["run"]
    assert float(services["pipeline"]["environment"]["MILLPOND_LOCK_TIMEOUT_S"]) > 0
    commands = {name: service.get("command") for name, service in services.items() if name in RUNNER_SERVICES}
    assert commands == {"pipeline": ["run"], "ingest-follow": ["ingest", "--follow"]}


def test_compose_cube_runs_the_image_with_the_model_baked_in(compose: dict[str, Any]) -> None:
    cube = compose["services"]["cube"]
    assert cube["build"]["dockerfile"] == "docker/cube.Dockerfile"
    assert compose_mounts(cube) == []


# -- Kubernetes --------------------------------------------------------------------------
def claims(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Volume name -> its persistentVolumeClaim source."""
    return {
        volume["name"]: volume["persistentVolumeClaim"]
        for volume in pod["volumes"]
        if "persistentVolumeClaim" in volume
    }


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = pod.get("initContainers", []) + pod["containers"]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_two_read_write_many_volumes(overlay: str) -> None:
    pvcs = {
        doc["metadata"]["name"]: doc["spec"] for doc in rendered_docs(overlay) if doc["kind"] == "PersistentVolumeClaim"
    }
    assert set(pvcs) == {"millpond-warehouse", "millpond-serving"}
    for spec in pvcs.values():
        assert spec["accessModes"] == ["ReadWriteMany"]
        assert spec["storageClassName"] == "efs-sc"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_only_pipeline_pods_mount_the_warehouse(overlay: str) -> None:
    mounting = {
        name
        for name, doc in workloads(rendered_docs(overlay)).items()
        if any(claim["claimName"] == "millpond-warehouse" for claim in claims(pod_spec(doc)).values())
    }
    assert mounting == {"millpond-run", "millpond-ingest-follow"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_superset_mounts_the_serving_volume_read_only(overlay: str) -> None:
    docs = rendered_docs(overlay)
    pod = pod_spec(workloads(docs)["millpond-superset"])
    volumes = claims(pod)
    assert [claim["claimName"] for claim in volumes.values()] == ["millpond-serving"]
    assert all(claim.get("readOnly") is True for claim in volumes.values())
    for container in containers(pod):
        serving_mounts = [mount for mount in container["volumeMounts"] if mount["name"] in volumes]
        assert all(mount.get("readOnly") is True for mount in serving_mounts), container["name"]
        if container["name"] == "superset":
            assert len(serving_mounts) == 1
            serving_path = PurePosixPath(container_env(container, docs)["MILLPOND_SERVING_PATH"])
            assert under(serving_path, {PurePosixPath(serving_mounts[0]["mountPath"])})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_pipeline_containers_write_only_to_their_volumes_and_tmp(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = rendered_docs(overlay)
    for name in ("millpond-run", "millpond-ingest-follow"):
        pod = pod_spec(workloads(docs)[name])
        empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
        writable_volumes = empty_dirs | {volume for volume, claim in claims(pod).items() if not claim.get("readOnly")}
        for container in containers(pod):
            # The millpond-pipeline Secret (created out-of-band) holds the PostgreSQL URIs.
            env = container_env(container, docs) | {"MILLPOND_SERVING_POSTGRES_URI": "postgresql://secret/serving"}
            assert_explicit_paths(env)
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            mounts = {PurePosixPath(mount["mountPath"]): mount for mount in container["volumeMounts"]}
            assert mounts[PurePosixPath("/tmp")]["name"] in empty_dirs
            writable = {
                path
                for path, mount in mounts.items()
                if mount["name"] in writable_volumes and not mount.get("readOnly")
            }
            assert not any(under(root, {PROJECT_DIR}) for root in writable), writable
            for what, path in stage_writes(env, monkeypatch, publishes=name == "millpond-run").items():
                assert under(path, writable), f"{name}/{container['name']}: {what} {path} is on no writable mount"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_schedule_is_one_millpond_run_per_cycle(overlay: str) -> None:
    docs = rendered_docs(overlay)
    cronjobs = [doc for doc in docs if doc["kind"] == "CronJob"]
    assert [doc["metadata"]["name"] for doc in cronjobs] == ["millpond-run"]
    cronjob = cronjobs[0]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = pod_spec(cronjob)
    assert "initContainers" not in pod
    [container] = pod["containers"]
    assert container["args"] == ["run"]
    lock_timeout = float(container_env(container, docs)["MILLPOND_LOCK_TIMEOUT_S"])
    deadline = cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    assert 0 < lock_timeout < deadline


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_k8s_no_pod_runs_a_single_batch_stage(overlay: str) -> None:
    for name, doc in workloads(rendered_docs(overlay)).items():
        for container in containers(pod_spec(doc)):
            args = container.get("args", [])
            assert args[:1] not in (["ingest"], ["transform"], ["check"], ["publish"]) or args == [
                "ingest",
                "--follow",
            ], (
                name,
                args,
            )
