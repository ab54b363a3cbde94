"""The README's first command on a really fresh machine: no uv anywhere, a HOME of its own.

`make` must bootstrap its tools without depending on where an installer puts a script (pyenv
shims, ~/.local/bin, /usr/local/bin): it creates `.venv-tools` and calls uv by that path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ("Makefile", "mk", "pyproject.toml", "uv.lock", "README.md")


def _base_python() -> Path:
    """The interpreter this venv was made from (it has pip and venv, and no uv on our PATH)."""
    for name in (f"python{sys.version_info.major}.{sys.version_info.minor}", "python3"):
        candidate = Path(sys.base_prefix) / "bin" / name
        if candidate.exists():
            return candidate
    pytest.skip("no base interpreter next to this venv")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_setup_python_bootstraps_uv_with_no_uv_on_path_or_in_home(tmp_path: Path) -> None:
    project, home, bin_dir = tmp_path / "project", tmp_path / "home", tmp_path / "bin"
    for directory in (project, home, bin_dir):
        directory.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, project / name)
    (bin_dir / "python3").symlink_to(_base_python())
    env = {"HOME": str(home), "PATH": f"{bin_dir}:/usr/bin:/bin", "LANG": "C.UTF-8"}
    assert shutil.which("uv", path=env["PATH"]) is None, "the test needs a PATH without uv"

    # --dry-run: resolve and check the lock without building the whole environment
    result = subprocess.run(
        ["make", "--no-print-directory", "setup-python", "UV_SYNC_FLAGS=--dry-run"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    uv = project / ".venv-tools" / "bin" / "uv"
    assert uv.exists()
    assert "uv " in subprocess.run([uv, "--version"], capture_output=True, text=True, check=True).stdout
    assert not (home / ".local" / "bin" / "uv").exists()


def test_ci_runs_only_the_readme_test_command() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    commands = [line for line in lines if not line.startswith(("set ", "cd "))]
    assert commands == ["make test"]
    assert "make test" in (ROOT / "README.md").read_text()
    assert os.access(ROOT / ".ci" / "run", os.R_OK)
