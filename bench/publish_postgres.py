"""Publish into PostgreSQL: the one-transaction schema swap vs a plain in-place refresh.

Same synthetic gold tables as ``bench.publish``. Both sides move rows with the same
``copy_rows`` (DuckDB writes CSV, PostgreSQL ``COPY ... FROM STDIN``), so the ratio is the
price of the atomic swap: a fresh staging schema with ``CREATE TABLE`` per relation, the renames, dropping the
previous schema, the grants and the manifest. A third measurement, COPY fed one Python row
at a time (``psycopg``'s ``write_row``), shows what the CSV hand-off saves.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import duckdb
import psycopg
from psycopg import sql

from bench.harness import Comparison, compare, time_once
from bench.publish import checked_publish, gold_warehouse
from millpond.services import PostgresCluster
from millpond.serving import PostgresServingTarget
from millpond.serving.postgres_target import copy_rows


def baseline_refresh(warehouse: Path, uri: str, relations: list[str]) -> None:
    """TRUNCATE the live tables and COPY the new rows in, one transaction, no staging schema or swap."""
    with duckdb.connect(str(warehouse), read_only=True) as source, psycopg.connect(uri) as conn:
        source.execute("SET TimeZone = 'UTC'")
        with conn.transaction():
            for relation in relations:
                conn.execute(f"TRUNCATE {relation}")
                copy_rows(source, conn, relation, sql.Identifier(*relation.split(".", 1)))


def python_rows_refresh(warehouse: Path, uri: str, relations: list[str]) -> None:
    """The same refresh, but COPY fed one Python tuple at a time (the obvious psycopg code)."""
    with duckdb.connect(str(warehouse), read_only=True) as source, psycopg.connect(uri) as conn:
        source.execute("SET TimeZone = 'UTC'")
        with conn.transaction():
            for relation in relations:
                conn.execute(f"TRUNCATE {relation}")
                cursor = source.execute(f"SELECT * FROM {relation}")
                with conn.cursor() as cur, cur.copy(f"COPY {relation} FROM STDIN") as copy:
                    while batch := cursor.fetchmany(10_000):
                        for row in batch:
                            copy.write_row(row)


def run(cluster: PostgresCluster, root: Path, orders: int, repeat: int, label: str, warmup: int = 1) -> Comparison:
    """Publish the gold tables of a warehouse with ``orders`` orders into PostgreSQL, both ways."""
    warehouse, tables = gold_warehouse(root / f"publish-postgres-{label}", orders)
    relations = sorted(tables)
    target = PostgresServingTarget(cluster.create_database(f"bench_swap_{label}"), timeout_s=60)
    candidate = checked_publish(target, warehouse, tables)
    baseline_uri = cluster.create_database(f"bench_inplace_{label}")
    PostgresServingTarget(baseline_uri).publish(warehouse, relations, "create-tables")  # same tables, same types

    def baseline() -> None:
        baseline_refresh(warehouse, baseline_uri, relations)
        with psycopg.connect(baseline_uri) as conn:
            got = {r: conn.execute(f"SELECT count(*) FROM {r}").fetchone()[0] for r in relations}  # type: ignore[index]
        if got != tables:
            raise AssertionError(f"refreshed {got}, expected {tables}")

    result = Comparison(
        name=f"publish_postgres_{label}",
        title=f"Publish to PostgreSQL ({label}: {orders:,} orders)",
        candidate="PostgresServingTarget.publish: staging schema, COPY (CSV), swap, drop, grants, manifest in one tx",
        baseline="TRUNCATE + COPY (CSV) into the live tables in one transaction (no swap)",
        rows=sum(tables.values()),
        notes="rows = all gold rows copied; the database already holds the previous version",
    )
    compare(result, candidate, baseline, repeat, warmup)
    rows_s = statistics.median(
        time_once(lambda: python_rows_refresh(warehouse, baseline_uri, relations)) for _ in range(repeat)
    )
    result.extra = {
        "python_rows_median_s": round(rows_s, 4),
        "ratio_vs_python_rows": round(result.candidate_median / rows_s, 3),
    }
    return result
