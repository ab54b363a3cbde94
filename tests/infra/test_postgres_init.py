"""docker/postgres/10-databases.sh (compose's PostgreSQL init hook) run against a real PostgreSQL 15.

The script is what the official image runs once on an empty data directory; here it runs with
the same environment against the test cluster, then a publish with the compose settings shows
that ``cube_reader`` reads the serving database and nothing else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import psycopg
import pytest

from millpond.services import PostgresCluster
from millpond.serving import PostgresServingTarget

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "postgres" / "10-databases.sh"


def _run_init(postgres: PostgresCluster, password: str | None) -> subprocess.CompletedProcess[str]:
    if shutil.which("psql") is None:
        pytest.fail("psql missing: run `make setup-postgres`")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env |= {"POSTGRES_USER": postgres.superuser, "PGHOST": "127.0.0.1", "PGPORT": str(postgres.port)}
    if password is not None:
        env["MILLPOND_CUBE_DB_PASSWORD"] = password
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_init_refuses_to_run_without_the_reader_password(postgres: PostgresCluster) -> None:
    result = _run_init(postgres, None)
    assert result.returncode != 0
    assert "MILLPOND_CUBE_DB_PASSWORD" in result.stderr


def test_init_creates_the_databases_and_a_reader_that_only_reads_serving(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    for attempt in range(2):  # the hook must be idempotent
        result = _run_init(postgres, "s3cret'with\"quotes")
        assert result.returncode == 0, f"attempt {attempt}: {result.stderr}"
    with psycopg.connect(postgres.uri) as conn:
        databases = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
        reader = conn.execute(
            "SELECT rolcanlogin, rolpassword IS NOT NULL FROM pg_authid WHERE rolname = 'cube_reader'"
        )
        assert reader.fetchone() == (True, True)
    assert {"sqlmesh_state", "superset", "serving"} <= databases

    for database in ("sqlmesh_state", "superset"):
        with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
            psycopg.connect(postgres.database_uri(database, "cube_reader"), connect_timeout=5).close()

    warehouse = tmp_path / "millpond.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA gold")
        con.execute("CREATE TABLE gold.agg_daily_revenue AS SELECT DATE '2026-03-01' AS order_date, 7 AS orders")
    serving_uri = postgres.database_uri("serving")
    PostgresServingTarget(serving_uri, reader_role="cube_reader").publish(warehouse, ["gold.agg_daily_revenue"], "r1")

    with psycopg.connect(postgres.database_uri("serving", "cube_reader"), autocommit=True) as conn:
        assert conn.execute("SELECT orders FROM gold.agg_daily_revenue").fetchone() == (7,)
        for statement in ("CREATE TABLE public.t (x int)", "CREATE SCHEMA mine", "TRUNCATE gold.agg_daily_revenue"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
