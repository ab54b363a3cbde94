"""Delivery artifacts: consistency checks and proof that the offline validators can fail.

`make lint-infra` shows the committed artifacts pass; these tests show the same validators reject
broken variants (so a green lint means something) and that `.env.example` documents every variable
docker-compose.yml reads.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.infra.artifacts import DUMMY_SECRETS, OVERLAYS, ROOT, compose_config, pod_spec, rendered_docs, run, tool


def compose_variables() -> set[str]:
    lines = (ROOT / "docker-compose.yml").read_text().splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    # `$${X}` is escaped: expanded inside the container, not by compose.
    return set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))


def env_example_variables() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("=", 1)[0])
    return names


def test_env_example_documents_every_compose_variable() -> None:
    assert compose_variables() == env_example_variables()


def test_env_example_holds_no_secret_values() -> None:
    for line in (ROOT / ".env.example").read_text().splitlines():
        name, _, value = line.partition("=")
        if name in DUMMY_SECRETS:
            assert value == "", f"{name} must be empty in .env.example"


def test_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = run(
        [tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(empty), "config", "--quiet"]
    )
    assert result.returncode != 0
    assert "MILLPOND_POSTGRES_PASSWORD" in result.stderr


def test_compose_publishes_ports_on_loopback_only(tmp_path: Path) -> None:
    config = compose_config(tmp_path / "ok.env", profiles=("streaming",))
    published = [p for svc in config["services"].values() for p in svc.get("ports", [])]
    assert published, "expected published ports"
    assert all(p["host_ip"] == "127.0.0.1" for p in published)
    for name, svc in config["services"].items():
        if "healthcheck" not in svc and svc.get("restart") != "no":
            pytest.fail(f"long-running service {name} has no healthcheck")


def test_hadolint_rejects_unpinned_root_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python\n")
    result = run([tool("hadolint"), str(bad)])
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


def test_kubernetes_validate_strict_rejects_unknown_field() -> None:
    docs = rendered_docs("dev")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    result = run(
        [tool("kubernetes-validate"), "--strict", "-k", "1.30.0", "--quiet", "-"], input=yaml.safe_dump(deployment)
    )
    assert result.returncode != 0
    assert "imagePullPolicyy" in result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_locked_down(overlay: str) -> None:
    for doc in rendered_docs(overlay):
        if doc["kind"] not in {"Deployment", "CronJob"}:
            continue
        pod = pod_spec(doc)
        assert doc["metadata"]["namespace"] == f"millpond-{overlay}"
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod.get("initContainers", []) + pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert {"requests", "limits"} <= set(container["resources"])


def test_trivy_flags_a_root_dockerfile(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text('FROM python:3.11.14-slim-bookworm\nRUN apt-get update\nCMD ["python"]\n')
    result = run(
        [
            tool("trivy"),
            "config",
            "--quiet",
            "--cache-dir",
            str(ROOT / ".cache" / "trivy"),
            "--skip-check-update",
            "--severity",
            "HIGH,CRITICAL",
            "--exit-code",
            "1",
            str(tmp_path),
        ]
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "root" in result.stdout.lower()
