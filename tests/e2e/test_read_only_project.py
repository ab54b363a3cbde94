"""``millpond run`` with the project directory read-only, as the containers' read-only root filesystem has it.

The project (every file git knows or would add) is copied to a temp dir, and ``millpond run``
runs from that copy inside a private mount namespace where the copy is bind-mounted onto itself
read-only. Root ignores file modes, not a read-only mount, so any write into the project fails
there. Every path a stage writes must be under the data dir or ``TMPDIR``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from millpond.generator import GeneratorConfig, generate_shop
from millpond.settings import Settings
from tests.support.pipelines import pipeline_env

pytestmark = pytest.mark.slow
SMALL = GeneratorConfig(customers=20, products=6, orders_per_day=8, sessions_per_day=3, days=2)
# $0 is the project dir, "$@" the command: make $0 read-only, prove it is, then run the command
READ_ONLY = (
    'set -e; mount --bind "$0" "$0"; mount -o remount,ro,bind "$0"; '
    'if touch "$0/.write-probe" 2>/dev/null; then echo "the project dir is writable" >&2; exit 97; fi; '
    'exec "$@"'
)


def copy_project(source: Path, target: Path) -> None:
    """The files of the working tree that git tracks or would add (no venvs, caches, data)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        path = source / name
        if path.is_file():  # a tracked file deleted in the working tree is not part of it
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / name)


def tree_digest(root: Path) -> str:
    """Every path under ``root`` with its content: a new, removed or changed file changes it."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _mount_namespaces_work() -> bool:
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(shutil.which("unshare") is None or not _mount_namespaces_work(), reason="needs unshare --mount")
def test_run_succeeds_with_the_project_dir_read_only(make_settings, machine_settings: Settings, tmp_path: Path):
    cfg: Settings = make_settings("readonly")
    project = tmp_path / "project"
    copy_project(machine_settings.project_dir, project)
    before = tree_digest(project)
    generate_shop(cfg, SMALL, date(2026, 3, 2))
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = pipeline_env(cfg) | {
        "MILLPOND_PROJECT_DIR": str(project),
        "MILLPOND_START_DATE": "2026-03-01",
        "PYTHONPATH": str(project),  # the code runs from the read-only copy too
        "TMPDIR": str(temp),
    }
    where = subprocess.run(
        [sys.executable, "-c", "import ingest, millpond; print(millpond.__file__, ingest.__file__)"],
        cwd=project, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert all(Path(module).is_relative_to(project) for module in where), where

    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", READ_ONLY, str(project),
         sys.executable, "-m", "millpond", "run"],
        cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads(proc.stdout)["stages"] == ["ingest", "transform", "check", "publish"]
    assert tree_digest(project) == before, "a stage wrote into the project dir"

    with duckdb.connect(str(cfg.serving), read_only=True) as con:
        days = con.execute("select count(*), sum(orders) from gold.agg_daily_revenue").fetchone()
    assert days is not None and days[0] >= 2 and days[1] > 0
    assert (cfg.cache_dir / "sqlmesh").is_dir()  # SQLMesh's cache went to the data dir
    assert (cfg.dlt_dir / "pipelines").is_dir()
