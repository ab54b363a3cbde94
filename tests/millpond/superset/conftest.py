"""Fixtures for the Superset tests: a small but plausible serving DuckDB file, and one real
Superset serving it for the whole session (``superset``, ``api``).

The schema follows the gold-table contract exactly; the numbers are derived from
a handful of generated orders and events so the aggregates are consistent with
each other (revenue excludes cancelled orders, orders counts every status).
``quality.check_results`` holds three check runs, written by the quality stage's own
``quality.save`` and copied as publish copies it, so its columns are the real ones.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from millpond.settings import Settings
from millpond.stages import quality
from millpond.stages.quality import CRITICAL, WARNING, CheckRecord
from millpond.superset import server
from tests.support.ports import free_port
from tests.support.superset import PROJECT_DIR, Instance, api_session

FIRST_DAY = date(2025, 3, 1)
DAYS = 7

_DDL = """
CREATE SCHEMA IF NOT EXISTS gold;
CREATE OR REPLACE TABLE gold.fct_orders (
    order_id VARCHAR, customer_id VARCHAR, order_date DATE, ordered_at TIMESTAMPTZ,
    status VARCHAR, item_count BIGINT, order_total DECIMAL(18,2), currency VARCHAR,
    is_cancelled BOOLEAN, updated_at TIMESTAMPTZ
);
CREATE OR REPLACE TABLE gold.agg_daily_revenue (
    order_date DATE, orders BIGINT, cancelled_orders BIGINT, revenue DECIMAL(18,2),
    avg_order_value DECIMAL(18,2)
);
CREATE OR REPLACE TABLE gold.agg_daily_orders_by_status (
    order_date DATE, status VARCHAR, orders BIGINT
);
CREATE OR REPLACE TABLE gold.agg_daily_events (
    event_date DATE, event_type VARCHAR, events BIGINT, sessions BIGINT
);
CREATE OR REPLACE TABLE gold.dim_customers (
    customer_id VARCHAR, signup_date DATE, city VARCHAR, country VARCHAR,
    first_order_date DATE, lifetime_orders BIGINT
);
"""

# Deterministic pseudo-random data, generated in SQL so the file is built by DuckDB alone.
_FILL = """
SET TimeZone = 'UTC';
INSERT INTO gold.dim_customers
SELECT 'cus_' || lpad(i::VARCHAR, 4, '0'), DATE '{first}' - INTERVAL (30 + i) DAY,
       ['Leeds', 'Lyon', 'Porto', 'Graz'][1 + i % 4], ['GB', 'FR', 'PT', 'AT'][1 + i % 4],
       NULL, 0
FROM range(40) t(i);

INSERT INTO gold.fct_orders
SELECT 'ord_' || lpad(n::VARCHAR, 5, '0') AS order_id,
       'cus_' || lpad((n * 7 % 40)::VARCHAR, 4, '0') AS customer_id,
       (DATE '{first}' + INTERVAL (d) DAY)::DATE AS order_date,
       (DATE '{first}' + INTERVAL (d) DAY + INTERVAL (n * 37 % 1440) MINUTE)::TIMESTAMPTZ,
       ['created', 'paid', 'shipped', 'delivered', 'cancelled'][1 + (n * 3 + d) % 5] AS status,
       1 + n % 3 AS item_count,
       (10 + (n * 13 % 90) + (n % 100) / 100.0)::DECIMAL(18,2) AS order_total,
       'EUR',
       (n * 3 + d) % 5 = 4 AS is_cancelled,
       (DATE '{first}' + INTERVAL (d + 1) DAY)::TIMESTAMPTZ
FROM (
    SELECT d, d * 100 + k AS n FROM range({days}) a(d), range(0, 40) b(k) WHERE k < 8 + (d * 5) % 9
);

INSERT INTO gold.agg_daily_revenue
SELECT order_date, count(*), count(*) FILTER (WHERE is_cancelled),
       coalesce(sum(order_total) FILTER (WHERE NOT is_cancelled), 0)::DECIMAL(18,2),
       coalesce(avg(order_total) FILTER (WHERE NOT is_cancelled), 0)::DECIMAL(18,2)
FROM gold.fct_orders GROUP BY order_date;

INSERT INTO gold.agg_daily_orders_by_status
SELECT order_date, status, count(*) FROM gold.fct_orders GROUP BY ALL;

INSERT INTO gold.agg_daily_events
SELECT (DATE '{first}' + INTERVAL (d) DAY)::DATE, t.event_type,
       t.base * (3 + d % 4), greatest(1, t.base * (3 + d % 4) // 4)
FROM range({days}) a(d),
     (VALUES ('page_view', 120), ('add_to_cart', 30), ('checkout_started', 14),
             ('order_placed', 11), ('payment_authorized', 10), ('payment_captured', 9),
             ('payment_failed', 1), ('shipment_created', 8), ('shipment_delivered', 6)
     ) t(event_type, base);

UPDATE gold.dim_customers c SET first_order_date = o.first_order, lifetime_orders = o.n
FROM (SELECT customer_id, min(order_date) AS first_order, count(*) AS n
      FROM gold.fct_orders GROUP BY 1) o
WHERE c.customer_id = o.customer_id;
"""


# Three runs of five checks: run 2 has a critical failure and a warning, run 3 a warning.
QUALITY_RUNS = [datetime(2025, 3, 8, 6, 0, tzinfo=UTC) + timedelta(days=n, minutes=7 * n) for n in range(3)]
_QUALITY_OUTCOMES = {  # (table, check, type, severity): [(outcome, measured value) per run]
    ("gold.fct_orders", "row count", "row_count", CRITICAL): [("pass", 180), ("pass", 195), ("pass", 214)],
    ("gold.agg_daily_revenue", "row count", "row_count", CRITICAL): [("pass", 7), ("pass", 8), ("pass", 9)],
    ("gold.fct_orders", "is_cancelled agrees with status", "failed_rows", CRITICAL): [
        ("pass", 0),
        ("fail", 3),
        ("pass", 0),
    ],
    ("gold.agg_daily_revenue", "newest order_date is less than 48 hours old (SLA)", "freshness", WARNING): [
        ("pass", 20),
        ("warn", 50),
        ("warn", 74),
    ],
    ("gold.fct_orders", "missing", "missing", CRITICAL): [("pass", 0), ("pass", 0), ("pass", 0)],
}


def _fill_quality(con: duckdb.DuckDBPyConnection) -> None:
    for n, checked_at in enumerate(QUALITY_RUNS):
        records = [
            CheckRecord(
                contract=table.split(".")[1],
                dataset=table,
                check_name=check,
                check_type=check_type,
                severity=severity,
                outcome=runs[n][0],
                measured_value=runs[n][1],
                threshold="must be 0",
                column_name="order_id" if check_type == "missing" else None,
            )
            for (table, check, check_type, severity), runs in _QUALITY_OUTCOMES.items()
        ]
        quality.save(con, records, f"{checked_at:%Y%m%dT%H%M%SZ}-run{n}", checked_at, f"version-{n}")
    schema = quality.PUBLISHED_AS.split(".")[0]
    con.execute(f"CREATE SCHEMA {schema}")
    con.execute(f"CREATE TABLE {quality.PUBLISHED_AS} AS SELECT * FROM {quality.QUALITY_HISTORY}")  # as publish
    con.execute(f"DROP SCHEMA {quality.QUALITY_HISTORY.split('.')[0]} CASCADE")


def build_serving_file(path: Path) -> Decimal:
    """Create (or replace) the serving file at ``path``; return the total revenue."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute(_DDL)
        con.execute(_FILL.format(first=FIRST_DAY.isoformat(), days=DAYS))
        _fill_quality(con)
        row = con.execute("SELECT sum(revenue) FROM gold.agg_daily_revenue").fetchone()
    assert row is not None
    return Decimal(row[0])


def check_results(path: Path) -> list[dict[str, Any]]:
    """Every row of ``quality.check_results``, read back from the serving file (read-only)."""
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute(f"SELECT * FROM {quality.PUBLISHED_AS} ORDER BY checked_at, dataset, check_name")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def daily_revenue(path: Path) -> dict[str, Decimal]:
    """Revenue per ISO day, read back from the serving file (read-only)."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT strftime(order_date, '%Y-%m-%d'), revenue FROM gold.agg_daily_revenue").fetchall()
    return {day: Decimal(rev) for day, rev in rows}


class GoldServing:
    """Helpers exposed to tests through the ``gold_serving`` fixture."""

    build = staticmethod(build_serving_file)
    daily_revenue = staticmethod(daily_revenue)
    check_results = staticmethod(check_results)


@pytest.fixture(scope="session")
def gold_serving() -> type[GoldServing]:
    """Build/read serving files with the gold-table contract (``.build(path)``)."""
    return GoldServing


@pytest.fixture(scope="session")
def superset(tmp_path_factory: pytest.TempPathFactory, gold_serving: Any) -> Iterator[Instance]:
    """One real Superset for the session: bootstrapped in a temporary data dir, on a free port."""
    if not (PROJECT_DIR / ".venv-superset" / "bin" / "superset").exists():
        pytest.fail("Superset venv missing: run `make setup-superset`")
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("superset") / "data",
        superset_port=free_port(),
        superset_admin_user="analyst",
        superset_admin_password=secrets.token_urlsafe(16),
        superset_secret_key=secrets.token_urlsafe(32),
    )
    total = gold_serving.build(settings.serving)
    timings: dict[str, float] = {}
    started = time.monotonic()
    server.bootstrap(settings)
    timings["bootstrap_fresh_s"] = time.monotonic() - started
    started = time.monotonic()
    url = server.start(settings)
    timings["start_s"] = time.monotonic() - started
    try:
        yield Instance(url, settings, total, timings)
    finally:
        server.stop(settings)
        print(f"\nsuperset timings: { {k: round(v, 1) for k, v in timings.items()} }")


@pytest.fixture(scope="session")
def api(superset: Instance) -> requests.Session:
    """The admin's API session (bearer token, session cookie and CSRF token)."""
    return api_session(superset)
