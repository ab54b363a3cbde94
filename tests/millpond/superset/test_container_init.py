"""The Superset image's init path (docker/superset/init.sh) with its metadata in PostgreSQL.

Lays the configuration out as ``docker/superset.Dockerfile`` does (the repository config as
``millpond_superset_base``, the container overlay as ``superset_config``), points
``MILLPOND_SUPERSET_METADATA_URI`` at a real PostgreSQL 15 database and runs ``init.sh`` twice
with the Superset venv's Python, as ``superset-init`` in compose and the init container in
Kubernetes do.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from millpond.services import PostgresCluster
from millpond.superset.bundle import SERVING_OPTIONS
from tests.support.superset import PROJECT_DIR

pytestmark = pytest.mark.superset
VENV_BIN = PROJECT_DIR / ".venv-superset" / "bin"


def _image_layout(root: Path) -> Path:
    """/app/pythonpath of the image: the two config modules under the names the image gives them."""
    pythonpath = root / "pythonpath"
    pythonpath.mkdir()
    shutil.copy(PROJECT_DIR / "semantic" / "superset" / "superset_config.py", pythonpath / "millpond_superset_base.py")
    shutil.copy(PROJECT_DIR / "docker" / "superset" / "superset_config.py", pythonpath / "superset_config.py")
    return pythonpath


def test_init_sh_bootstraps_superset_into_postgres_idempotently(tmp_path: Path, postgres: PostgresCluster) -> None:
    if not (VENV_BIN / "superset").exists():
        pytest.fail("Superset venv missing: run `make setup-superset`")
    database = f"superset_{uuid.uuid4().hex[:8]}"
    metadata = postgres.create_database(database)
    pythonpath = _image_layout(tmp_path)
    home = tmp_path / "home"
    serving = tmp_path / "data" / "serving" / "serving.duckdb"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env |= {
        "PATH": f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": str(pythonpath),
        "SUPERSET_CONFIG_PATH": str(pythonpath / "superset_config.py"),
        "MILLPOND_DATA_DIR": str(home),
        "MILLPOND_SUPERSET_SECRET_KEY": secrets.token_urlsafe(32),
        "MILLPOND_SUPERSET_ADMIN_USER": "ops",
        "MILLPOND_SUPERSET_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "MILLPOND_SUPERSET_METADATA_URI": f"postgresql+psycopg2://{postgres.superuser}@127.0.0.1:{postgres.port}/{database}",
        "MILLPOND_SERVING_PATH": str(serving),
        "MILLPOND_SUPERSET_BUNDLE_DIR": str(PROJECT_DIR / "semantic" / "superset" / "bundle"),
        "MILLPOND_SUPERSET_ADMIN_SCRIPT": str(PROJECT_DIR / "semantic" / "superset" / "millpond_admin.py"),
    }
    for attempt in range(2):  # a restarted init container must succeed again and change nothing
        result = subprocess.run(
            ["bash", str(PROJECT_DIR / "docker" / "superset" / "init.sh")],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert result.returncode == 0, f"attempt {attempt}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        assert '"event":"done"' in result.stdout

    with psycopg.connect(metadata) as conn:
        users = conn.execute("SELECT username FROM ab_user").fetchall()
        dashboards = conn.execute("SELECT slug, published FROM dashboards ORDER BY slug").fetchall()
        databases = conn.execute("SELECT database_name, sqlalchemy_uri, allow_dml FROM dbs").fetchall()
        charts = conn.execute("SELECT count(*) FROM slices").fetchone()
    assert users == [("ops",)]
    assert dashboards == [("millpond-data-quality", True), ("millpond-shop-overview", True)]
    assert databases == [("serving", f"duckdb:///{serving}?{SERVING_OPTIONS}", False)]
    assert charts == (7,)
    assert not list(home.rglob("*.db"))  # nothing fell back to the SQLite default
