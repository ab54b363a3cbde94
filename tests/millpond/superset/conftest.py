"""Fixtures for the Superset tests: a small but plausible serving DuckDB file, and one real
Superset serving it for the whole session (``superset``, ``api``).

The schema follows the gold-table contract exactly; the numbers are derived from
a handful of generated orders and events so the aggregates are consistent with
each other (revenue excludes cancelled orders, orders counts every status).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from millpond.settings import Settings
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


def build_serving_file(path: Path) -> Decimal:
    """Create (or replace) the serving file at ``path``; return the total revenue."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        con.execute(_DDL)
        con.execute(_FILL.format(first=FIRST_DAY.isoformat(), days=DAYS))
        row = con.execute("SELECT sum(revenue) FROM gold.agg_daily_revenue").fetchone()
    assert row is not None
    return Decimal(row[0])


def daily_revenue(path: Path) -> dict[str, Decimal]:
    """Revenue per ISO day, read back from the serving file (read-only)."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT strftime(order_date, '%Y-%m-%d'), revenue FROM gold.agg_daily_revenue").fetchall()
    return {day: Decimal(rev) for day, rev in rows}


class GoldServing:
    """Helpers exposed to tests through the ``gold_serving`` fixture."""

    build = staticmethod(build_serving_file)
    daily_revenue = staticmethod(daily_revenue)


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
