"""Every overlay renders with plain ``kubectl kustomize``, as Argo CD and Flux build it.

Kustomize's default load restrictor lets a kustomization read files in or below its own directory
only. The overlays are rendered from a copy of ``k8s/`` alone, so a file anywhere else in the
repository (the Cube model under ``semantic/``, say) cannot be reached even through a path the
restrictor would allow; the last test shows the check rejects a base that reads such a file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.infra.artifacts import OVERLAYS, ROOT, kustomize

CUBE_MODEL = Path("semantic/cube/model/cubes/daily_revenue.yml")


def k8s_tree_alone(tmp_path: Path) -> Path:
    """A directory holding a copy of ``k8s/`` and nothing else of the repository."""
    shutil.copytree(ROOT / "k8s", tmp_path / "k8s")
    return tmp_path / "k8s"


def render_failures(k8s_dir: Path) -> dict[str, str]:
    failures = {}
    for overlay in OVERLAYS:
        result = kustomize(k8s_dir / "overlays" / overlay)
        if result.returncode != 0 or "kind:" not in result.stdout:
            failures[overlay] = result.stderr.strip()
    return failures


def test_every_overlay_renders_with_default_settings_from_the_k8s_tree_alone(tmp_path: Path) -> None:
    assert render_failures(k8s_tree_alone(tmp_path)) == {}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_in_place_with_default_settings(overlay: str) -> None:
    result = kustomize(ROOT / "k8s" / "overlays" / overlay)
    assert result.returncode == 0, result.stderr
    assert "--load-restrictor" not in (ROOT / "scripts" / "lint_infra.sh").read_text()
    assert "--load-restrictor" not in (ROOT / "Jenkinsfile").read_text()


def test_a_base_reading_the_cube_model_from_semantic_is_rejected(tmp_path: Path) -> None:
    """The base as it was: a configMapGenerator over ../../semantic/cube. The file exists, yet it must fail."""
    k8s_dir = k8s_tree_alone(tmp_path)
    (tmp_path / CUBE_MODEL).parent.mkdir(parents=True)
    shutil.copy(ROOT / CUBE_MODEL, tmp_path / CUBE_MODEL)
    base = k8s_dir / "base" / "kustomization.yaml"
    kustomization = yaml.safe_load(base.read_text())
    kustomization["configMapGenerator"].append(
        {"name": "millpond-cube-model", "files": [f"{CUBE_MODEL.name}=../../{CUBE_MODEL}"]}
    )
    base.write_text(yaml.safe_dump(kustomization, sort_keys=False))

    failures = render_failures(k8s_dir)

    assert set(failures) == set(OVERLAYS)
    assert all("is not in or below" in error for error in failures.values()), failures


def test_the_cube_model_reaches_the_cluster_in_the_cube_image() -> None:
    dockerfile = (ROOT / "docker" / "cube.Dockerfile").read_text()
    assert "COPY semantic/cube/model/cubes/ /cube/conf/model/cubes/" in dockerfile
    assert "!semantic/cube/model/" in (ROOT / ".dockerignore").read_text().splitlines()
    base = yaml.safe_load((ROOT / "k8s" / "base" / "kustomization.yaml").read_text())
    assert "millpond-cube" in {image["name"] for image in base["images"]}
    for overlay in OVERLAYS:
        kustomization = yaml.safe_load((ROOT / "k8s" / "overlays" / overlay / "kustomization.yaml").read_text())
        assert "millpond-cube" in {image["name"] for image in kustomization["images"]}
