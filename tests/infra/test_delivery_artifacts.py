"""Delivery artifacts: consistency checks and proof that the offline validators can fail.

`make lint-infra` shows the committed artifacts pass; these tests show the same validators reject
broken variants (so a green lint means something) and that `.env.example` documents every variable
docker-compose.yml reads.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VBIN = ROOT / ".venv-infra" / "bin"
DUMMY_SECRETS = {
    "MILLPOND_POSTGRES_PASSWORD": "x",
    "MILLPOND_SUPERSET_SECRET_KEY": "x" * 16,
    "MILLPOND_SUPERSET_ADMIN_PASSWORD": "x",
    "MILLPOND_CUBE_API_SECRET": "x",
    "MILLPOND_CUBE_DB_PASSWORD": "x",
}


def tool(name: str) -> str:
    path = VBIN / name
    if not path.exists():
        pytest.skip(f"{path} missing: run `make setup-infra`")
    return str(path)


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, **kwargs)  # type: ignore[call-overload]


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
    env = tmp_path / "ok.env"
    env.write_text("".join(f"{k}={v}\n" for k, v in DUMMY_SECRETS.items()))
    result = run(
        [
            tool("docker-compose"),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--env-file",
            str(env),
            "config",
            "--format",
            "json",
        ]
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
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


def rendered(overlay: str) -> str:
    kubectl = shutil.which("kubectl") or str(VBIN / "kubectl")
    result = run(
        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(ROOT / "k8s" / "overlays" / overlay)]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_kubernetes_validate_strict_rejects_unknown_field() -> None:
    docs = list(yaml.safe_load_all(rendered("dev")))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    result = run(
        [tool("kubernetes-validate"), "--strict", "-k", "1.30.0", "--quiet", "-"], input=yaml.safe_dump(deployment)
    )
    assert result.returncode != 0
    assert "imagePullPolicyy" in result.stdout


@pytest.mark.parametrize("overlay", ["dev", "staging", "prod"])
def test_every_pod_is_locked_down(overlay: str) -> None:
    for doc in yaml.safe_load_all(rendered(overlay)):
        kind = doc["kind"]
        if kind not in {"Deployment", "CronJob"}:
            continue
        pod = (
            doc["spec"]["template"]["spec"]
            if kind == "Deployment"
            else doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        )
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
