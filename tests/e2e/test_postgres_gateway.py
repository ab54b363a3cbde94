"""The second engine: dlt lands into PostgreSQL 15 and the same models run on SQLMesh's ``postgres`` gateway.

One generated shop (MongoDB + Kafka) is ingested twice, by two pipelines of their own: one into
the DuckDB warehouse file (``MILLPOND_WAREHOUSE_ENGINE=duckdb``), one into a database of the
tests' real PostgreSQL 15 cluster (``postgres``). On each engine SQLMesh plans prod (the full
backfill, with the audits), the audits run again on their own, then the generator adds a day,
both pipelines ingest it, and SQLMesh runs the new intervals. After each step every gold table
is the same on both engines, figure for figure (numbers that are not whole are compared in cents).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pymongo
import pytest
from psycopg import sql
from pydantic import SecretStr

from millpond.generator import GeneratorConfig, generate
from millpond.services import KafkaBroker, MongoReplicaSet, PostgresCluster
from millpond.settings import Settings
from millpond.stages.ingest import run_ingest
from millpond.stages.landed import missing_landed_tables
from millpond.stages.sqlmesh_console import StageConsole, installed
from millpond.stages.transform import sqlmesh_context
from tests.support.pipelines import isolated_settings

pytestmark = pytest.mark.slow
START = date(2026, 3, 1)
FIRST_DAY_END = date(2026, 3, 2)  # the first step: 2026-03-01 and 2026-03-02
SHOP = GeneratorConfig(customers=25, products=8, orders_per_day=12, sessions_per_day=4, days=2, delete_rate=0.05)
CENTS = Decimal("0.01")

Rows = list[tuple[Any, ...]]


def _value(value: Any) -> Any:
    """One cell as both engines can agree on it: non-whole numbers in cents, times in UTC."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float | Decimal):
        number = Decimal(str(value))
        return number.quantize(CENTS, rounding=ROUND_HALF_UP) if number != number.to_integral_value() else int(number)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).isoformat()
    if isinstance(value, (list, tuple)):
        return tuple(_value(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _value(v)) for k, v in value.items()))
    return value


def _sorted(rows: Rows) -> Rows:
    normal = [tuple(_value(v) for v in row) for row in rows]
    return sorted(normal, key=lambda row: tuple((v is None, str(v)) for v in row))


def duckdb_gold(cfg: Settings) -> dict[str, tuple[list[str], Rows]]:
    """Gold table -> (columns, rows) of the DuckDB warehouse."""
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'gold' order by 1").fetchall()]  # fmt: skip
        out = {}
        for table in tables:
            cursor = con.execute(f'select * from gold."{table}"')
            out[table] = ([d[0] for d in cursor.description], _sorted(cursor.fetchall()))
    return out


def postgres_gold(uri: str) -> dict[str, tuple[list[str], Rows]]:
    """Gold table -> (columns, rows) of the PostgreSQL warehouse."""
    with psycopg.connect(uri) as conn:
        conn.execute("set timezone to 'UTC'")
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'gold' order by 1").fetchall()]  # fmt: skip
        out = {}
        for table in tables:
            cursor = conn.execute(sql.SQL("select * from gold.{}").format(sql.Identifier(table)))
            assert cursor.description is not None
            out[table] = ([d.name for d in cursor.description], _sorted(cursor.fetchall()))
    return out


def blocking_audit_failures(ctx: Any, end: date) -> list[str]:
    """Every blocking audit of every model, run again on its own over [START, end]: the ones that found rows.

    Non-blocking audits (warnings by design, e.g. events of orders that do not exist) may find rows.
    """
    failed = []
    for snapshot in ctx.snapshots.values():
        for result in ctx.snapshot_evaluator.audit(snapshot=snapshot, start=START, end=end, snapshots=ctx.snapshots):
            if result.count and result.blocking and not result.skipped:
                failed.append(f"{result.audit.name} on {snapshot.name}: {result.count} rows")
    return failed


def build(cfg: Settings, execution_time: date, *, first: bool) -> None:
    """The first step plans prod (full backfill, audits included) and audits again; later steps run."""
    assert missing_landed_tables(cfg) == []
    with installed(StageConsole()) as console:
        _build(cfg, console, execution_time, first=first)


def _build(cfg: Settings, console: StageConsole, execution_time: date, *, first: bool) -> None:
    ctx = sqlmesh_context(cfg)
    try:
        assert ctx.config.default_gateway == cfg.warehouse_engine
        if first:
            ctx.plan("prod", auto_apply=True, no_prompts=True, execution_time=execution_time)
            failed = blocking_audit_failures(ctx, execution_time)
            assert not failed, f"blocking audits failed: {failed}"
        else:
            assert ctx.run("prod", execution_time=execution_time).is_success, "the incremental run failed"
    except Exception as exc:
        failures = " | ".join(failure.line() for failure in console.failures)
        raise AssertionError(f"{cfg.warehouse_engine}: {exc}: {failures}") from exc
    finally:
        ctx.close()


@pytest.fixture
def engines(
    tmp_path: Path, mongo: MongoReplicaSet, kafka: KafkaBroker, postgres: PostgresCluster
) -> Iterator[tuple[Settings, Settings, str]]:
    """The DuckDB pipeline, the PostgreSQL pipeline (same sources) and the PostgreSQL warehouse's URI."""
    duck = isolated_settings(tmp_path / "duckdb", mongo, kafka, "engines").model_copy(update={"start_date": START})
    database = f"millpond_{uuid.uuid4().hex[:8]}"  # not "millpond": no model may name its catalog
    uri = postgres.create_database(database)
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(sql.SQL("alter database {} set timezone to 'UTC'").format(sql.Identifier(database)))
    pg = Settings(
        **duck.model_dump()
        | {
            "data_dir": tmp_path / "postgres",
            "warehouse_path": None,  # derived from the data dir again: the PostgreSQL pipeline has no DuckDB file
            "state_path": None,
            "warehouse_engine": "postgres",
            "warehouse_pg_host": "127.0.0.1",
            "warehouse_pg_port": postgres.port,
            "warehouse_pg_database": database,
            "warehouse_pg_user": postgres.superuser,
            "warehouse_pg_password": SecretStr("unused-with-trust-auth"),
        }
    )
    yield duck, pg, uri
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database)))


def assert_same_gold(duck: Settings, uri: str) -> None:
    on_duckdb, on_postgres = duckdb_gold(duck), postgres_gold(uri)
    assert sorted(on_postgres) == sorted(on_duckdb)
    assert len(on_duckdb) >= 5  # every gold model of the project
    for table, (columns, rows) in on_duckdb.items():
        pg_columns, pg_rows = on_postgres[table]
        assert pg_columns == columns, table
        assert pg_rows == rows, f"gold.{table} differs between DuckDB and PostgreSQL"
    assert on_duckdb["agg_daily_revenue"][1], "gold.agg_daily_revenue is empty: nothing was compared"


def test_postgres_gateway_builds_gold_equal_to_duckdb(engines: tuple[Settings, Settings, str]) -> None:
    duck, pg, uri = engines
    with pymongo.MongoClient(duck.mongo_uri, tz_aware=True) as client:
        generate(SHOP, FIRST_DAY_END, client[duck.mongo_db], duck.kafka_bootstrap, duck.topics.as_dict())
        for cfg in (duck, pg):
            report = run_ingest(cfg)
            assert report.rows.get("mongo_orders"), report.rows
        assert not pg.warehouse.exists()  # the PostgreSQL pipeline wrote no DuckDB file
        with psycopg.connect(uri) as conn:
            landed = conn.execute("select count(*) from bronze.mongo_orders").fetchone()
        assert landed is not None and landed[0] > 0
        for cfg in (duck, pg):
            build(cfg, date(2026, 3, 3), first=True)
        assert_same_gold(duck, uri)

        # the next day: new orders, status changes of open ones, late events; the same models run again
        generate(SHOP, date(2026, 3, 3), client[duck.mongo_db], duck.kafka_bootstrap, duck.topics.as_dict())
    for cfg in (duck, pg):
        run_ingest(cfg)
        build(cfg, date(2026, 3, 4), first=False)
    assert_same_gold(duck, uri)
    with psycopg.connect(uri) as conn:
        days = conn.execute("select count(distinct order_date) from gold.agg_daily_revenue").fetchone()
    assert days is not None and days[0] == 3  # the increment's day is built on PostgreSQL too
