"""Publish: the write-audit-publish swap into the serving file vs plain in-place ``CREATE TABLE AS``.

The gold tables are synthesised with the contract's columns and types (``docs/data-contracts``)
at a chosen size, so the benchmark needs no SQLMesh run: publishing only copies rows, it does
not care how they were computed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

import duckdb

from bench.harness import BASE, Comparison, compare, time_once
from ingest.vocabulary import EVENT_TYPES, ORDER_STATUSES
from millpond.serving import DuckDBServingTarget, ServingTarget


def _sql_list(values: list[str] | tuple[str, ...]) -> str:
    return "[" + ",".join(f"'{value}'" for value in values) + "]"


STATUSES = _sql_list(ORDER_STATUSES)
CANCELLED = ORDER_STATUSES.index("cancelled")  # 0-based: ``hash % n = CANCELLED`` marks a cancelled order
EVENT_TYPE_LIST = _sql_list([event for events in EVENT_TYPES.values() for event in events])


def build_gold(path: Path, orders: int, customers: int, days: int) -> dict[str, int]:
    """A warehouse file whose ``gold`` schema holds the five contract tables; returns row counts."""
    sql = f"""
    SET TimeZone = 'UTC';
    CREATE SCHEMA gold;
    CREATE TABLE gold.fct_orders AS
    SELECT 'ord_' || lpad(i::VARCHAR, 9, '0') AS order_id,
           'cus_' || lpad((hash(i) % {customers})::VARCHAR, 7, '0') AS customer_id,
           (DATE '2026-03-03' - (i % {days})::INTEGER) AS order_date,
           (TIMESTAMPTZ '2026-03-03 00:00:00+00' - to_seconds(i % ({days} * 86400))) AS ordered_at,
           {STATUSES}[1 + (hash(i * 7) % {len(ORDER_STATUSES)})::INTEGER] AS status,
           (1 + hash(i * 3) % 5)::BIGINT AS item_count,
           ((hash(i * 11) % 50000) / 100)::DECIMAL(18, 2) AS order_total,
           'EUR' AS currency,
           hash(i * 7) % {len(ORDER_STATUSES)} = {CANCELLED} AS is_cancelled,
           (TIMESTAMPTZ '2026-03-03 12:00:00+00' - to_seconds(i % 86400)) AS updated_at
    FROM range({orders}) t(i);
    CREATE TABLE gold.dim_customers AS
    SELECT 'cus_' || lpad(i::VARCHAR, 7, '0') AS customer_id,
           (DATE '2025-06-01' + (i % 270)::INTEGER) AS signup_date,
           'City ' || (i % 97)::VARCHAR AS city, 'NL' AS country,
           (DATE '2026-03-03' - (i % {days})::INTEGER) AS first_order_date,
           (i % 9)::BIGINT AS lifetime_orders
    FROM range({customers}) t(i);
    CREATE TABLE gold.agg_daily_revenue AS
    SELECT order_date, count(*)::BIGINT AS orders, count(*) FILTER (is_cancelled)::BIGINT AS cancelled_orders,
           sum(order_total) FILTER (NOT is_cancelled)::DECIMAL(18, 2) AS revenue,
           avg(order_total) FILTER (NOT is_cancelled)::DECIMAL(18, 2) AS avg_order_value
    FROM gold.fct_orders GROUP BY ALL;
    CREATE TABLE gold.agg_daily_orders_by_status AS
    SELECT order_date, status, count(*)::BIGINT AS orders FROM gold.fct_orders GROUP BY ALL;
    CREATE TABLE gold.agg_daily_events AS
    SELECT (DATE '2026-03-03' - d::INTEGER) AS event_date, unnest({EVENT_TYPE_LIST}) AS event_type,
           (100 + d)::BIGINT AS events, (40 + d)::BIGINT AS sessions
    FROM range({days}) t(d);
    CHECKPOINT;
    """
    with duckdb.connect(str(path)) as con:
        con.execute(sql)
        counts = {}
        for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'gold'").fetchall():
            row = con.execute(f"SELECT count(*) FROM gold.{name}").fetchone()
            counts[f"gold.{name}"] = int(row[0]) if row else 0
        return dict(sorted(counts.items()))


def baseline_publish(warehouse: Path, serving: Path, relations: list[str]) -> None:
    """Overwrite the tables inside the live serving file: no temp file, manifest, fsync or rename."""
    catalog = warehouse.stem
    with duckdb.connect(str(serving)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"ATTACH '{warehouse}' AS \"{catalog}\" (READ_ONLY)")
        for relation in relations:
            schema, table = relation.split(".", 1)
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            con.execute(
                f'CREATE OR REPLACE TABLE "{schema}"."{table}" AS SELECT * FROM "{catalog}"."{schema}"."{table}"'
            )
        con.execute(f'DETACH "{catalog}"')


def gold_warehouse(work: Path, orders: int) -> tuple[Path, dict[str, int]]:
    """``work/warehouse/millpond.duckdb`` with ``orders`` orders (customers and days in BASE proportion)."""
    customers = max(1, orders * BASE.customers // (BASE.orders_per_day * BASE.days))
    warehouse = work / "warehouse" / "millpond.duckdb"  # stem = the catalog SQLMesh views use
    warehouse.parent.mkdir(parents=True)
    return warehouse, build_gold(warehouse, orders, customers, BASE.days)


def checked_publish(target: ServingTarget, warehouse: Path, tables: dict[str, int]) -> Callable[[], None]:
    """A publish of every table by ``target`` that fails unless it copied exactly ``tables``."""
    run_no = iter(range(1_000_000))

    def publish() -> None:
        published = target.publish(warehouse, sorted(tables), run_id=f"bench-{next(run_no)}")
        if published.tables != tables:
            raise AssertionError(f"published {published.tables}, expected {tables}")

    return publish


def run(root: Path, orders: int, repeat: int, label: str, warmup: int = 1) -> Comparison:
    """Publish the gold tables of a warehouse with ``orders`` orders into the serving file, both ways."""
    work = root / f"publish-{label}"
    warehouse, tables = gold_warehouse(work, orders)
    relations = sorted(tables)
    candidate = checked_publish(DuckDBServingTarget(work / "serving" / "serving.duckdb"), warehouse, tables)
    baseline_file = work / "baseline" / "serving.duckdb"
    baseline_file.parent.mkdir()

    result = Comparison(
        name=f"publish_{label}",
        title=f"Publish ({label}: {orders:,} orders)",
        candidate="DuckDBServingTarget.publish: new file, copy, manifest, fsync, atomic rename",
        baseline="CREATE OR REPLACE TABLE … AS SELECT inside the live serving file (no atomic swap)",
        rows=sum(tables.values()),
        notes="rows = all gold rows copied; the serving file already holds the previous version",
    )
    compare(result, candidate, lambda: baseline_publish(warehouse, baseline_file, relations), repeat, warmup)

    def fresh_file() -> None:  # a brand-new file each time, but no manifest, fsync or rename
        fresh = baseline_file.with_name("fresh.duckdb")
        fresh.unlink(missing_ok=True)
        baseline_publish(warehouse, fresh, relations)

    fresh_s = statistics.median(time_once(fresh_file) for _ in range(repeat))
    result.extra = {
        "baseline_fresh_file_median_s": round(fresh_s, 4),
        "ratio_vs_fresh_file_baseline": round(result.candidate_median / fresh_s, 3),
    }
    return result
