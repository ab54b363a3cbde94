"""SQLMesh state in PostgreSQL, configured the way docker-compose.yml and k8s/ configure it.

Containers keep ``config.yaml`` and override its DuckDB state connection with SQLMesh's
``SQLMESH__GATEWAYS__DUCKDB__STATE_CONNECTION__*`` variables. This runs ``millpond ingest``
and ``millpond transform`` as subprocesses with exactly those variables against a real
PostgreSQL 15 cluster and checks that the state went there and nowhere else.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import date

import duckdb
import psycopg
import pymongo
import pytest

from millpond.generator import GeneratorConfig, generate
from millpond.services import PostgresCluster
from tests.support.pipelines import pipeline_env

pytestmark = pytest.mark.slow
SMALL = GeneratorConfig(customers=20, products=6, orders_per_day=8, sessions_per_day=3, days=2)


def _millpond(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "millpond", *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_transform_keeps_its_state_in_postgres(make_settings, postgres: PostgresCluster) -> None:
    cfg = make_settings("pgstate")
    database = f"sqlmesh_state_{uuid.uuid4().hex[:8]}"
    state_uri = postgres.create_database(database)
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        generate(SMALL, date(2026, 3, 2), client[cfg.mongo_db], cfg.kafka_bootstrap, cfg.topics.as_dict())
    prefix = "SQLMESH__GATEWAYS__DUCKDB__STATE_CONNECTION__"
    env = pipeline_env(cfg) | {
        "MILLPOND_START_DATE": "2026-03-01",
        f"{prefix}TYPE": "postgres",
        f"{prefix}HOST": "127.0.0.1",
        f"{prefix}PORT": str(postgres.port),
        f"{prefix}DATABASE": database,
        f"{prefix}USER": postgres.superuser,
        f"{prefix}PASSWORD": "unused-with-trust-auth",
    }
    _millpond(env, "ingest")
    _millpond(env, "transform")
    _millpond(env, "transform")  # a second run against the same state: nothing new, still succeeds

    with psycopg.connect(state_uri) as conn:
        environments = [r[0] for r in conn.execute("SELECT name FROM sqlmesh._environments").fetchall()]
        snapshots = conn.execute("SELECT count(*) FROM sqlmesh._snapshots").fetchone()
    assert environments == ["prod"]
    assert snapshots is not None and snapshots[0] >= 15  # every model of the project
    assert not cfg.state.exists()  # no DuckDB state file beside the warehouse
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        days = con.execute("SELECT count(*), sum(orders) FROM gold.agg_daily_revenue").fetchone()
    assert days is not None and days[0] >= 2 and days[1] > 0
