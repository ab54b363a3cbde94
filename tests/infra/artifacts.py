"""The delivery artifacts as the genuine tools see them: compose's resolved config, rendered overlays.

Helpers for tests/infra only; the validators live in .venv-infra (`make setup-infra`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VBIN = ROOT / ".venv-infra" / "bin"
OVERLAYS = ("dev", "staging", "prod")
DUMMY_SECRETS = {
    "MILLPOND_POSTGRES_PASSWORD": "x",
    "MILLPOND_SUPERSET_SECRET_KEY": "x" * 16,
    "MILLPOND_SUPERSET_ADMIN_PASSWORD": "x",
    "MILLPOND_CUBE_API_SECRET": "x",
    "MILLPOND_CUBE_DB_PASSWORD": "x",
    "MILLPOND_PII_SALT": "x",
}


def tool(name: str) -> str:
    path = VBIN / name
    if not path.exists():
        pytest.skip(f"{path} missing: run `make setup-infra`")
    return str(path)


def kubectl() -> str:
    found = shutil.which("kubectl")
    return found if found else tool("kubectl")


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, **kwargs)  # type: ignore[call-overload]


def kustomize(overlay_dir: Path) -> subprocess.CompletedProcess[str]:
    """``kubectl kustomize DIR`` with default settings (the load restrictor on), as Argo CD and Flux run it."""
    return run([kubectl(), "kustomize", str(overlay_dir)])


def rendered_docs(overlay: str) -> list[dict[str, Any]]:
    result = kustomize(ROOT / "k8s" / "overlays" / overlay)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def compose_config(env_file: Path, profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    """docker-compose.yml resolved by compose itself (anchors, merges, variables)."""
    env_file.write_text("".join(f"{k}={v}\n" for k, v in DUMMY_SECRETS.items()))
    args = [tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file)]
    for profile in profiles:
        args += ["--profile", profile]
    result = run([*args, "config", "--format", "json"])
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod template of a Deployment or CronJob."""
    spec: dict[str, Any]
    if doc["kind"] == "CronJob":
        spec = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    else:
        spec = doc["spec"]["template"]["spec"]
    return spec


def workloads(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] in {"Deployment", "CronJob"}}


def container_env(container: dict[str, Any], docs: list[dict[str, Any]]) -> dict[str, str]:
    """The literal environment a container gets from its ConfigMaps and ``env`` (Secrets left out)."""
    config_maps = {doc["metadata"]["name"]: doc.get("data", {}) for doc in docs if doc["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= config_maps[source["configMapRef"]["name"]]
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
    return env
