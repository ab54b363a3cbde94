"""The Cube model in ``semantic/cube`` served by a real Cube over the published PostgreSQL gold.

Session: build a warehouse with the five contract tables, publish it with
:class:`PostgresServingTarget` (granting a read-only role), start Cube 0.33.65 with that
role and production settings (JWT required), then compare Cube's answers with the warehouse.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import jwt
import psycopg
import pytest
import requests

from bench.publish import build_gold
from millpond.services import CubeDatabase, CubeServer, PostgresCluster
from millpond.serving import PostgresServingTarget
from millpond.settings import Settings
from tests.support.ports import free_port

READER = "cube_reader_test"


@dataclass
class Cube:
    url: str
    secret: str
    warehouse: Path

    def token(self, secret: str | None = None) -> str:
        return jwt.encode({"sub": "tests", "exp": int(time.time()) + 600}, secret or self.secret, algorithm="HS256")

    def load(self, query: dict[str, Any], token: str | None = None) -> requests.Response:
        headers = {"Authorization": token if token is not None else self.token()}
        for _ in range(60):  # Cube answers "Continue wait" while a query is still running
            resp = requests.post(f"{self.url}/cubejs-api/v1/load", json={"query": query}, headers=headers, timeout=30)
            if resp.status_code != 200 or resp.json().get("error") != "Continue wait":
                return resp
            time.sleep(0.5)
        raise AssertionError(f"Cube kept answering 'Continue wait' for {query}")


@pytest.fixture(scope="module")
def cube(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresCluster, machine_settings: Settings
) -> Iterator[Cube]:
    root = tmp_path_factory.mktemp("cube")
    warehouse = root / "warehouse" / "millpond.duckdb"
    warehouse.parent.mkdir()
    tables = build_gold(warehouse, orders=700, customers=80, days=7)
    database = f"cube_{uuid.uuid4().hex[:8]}"
    serving_uri = postgres.create_database(database)
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        if conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [READER]).fetchone() == (0,):
            conn.execute(f"CREATE ROLE {READER} LOGIN")
    PostgresServingTarget(serving_uri, reader_role=READER).publish(warehouse, sorted(tables), "cube-test")
    secret = secrets.token_urlsafe(32)
    database_login = CubeDatabase("127.0.0.1", postgres.port, database, READER)
    server = CubeServer(root, free_port(), database_login, secret, machine_settings.project_dir)
    server.start()
    try:
        yield Cube(server.uri, secret, warehouse)
    finally:
        server.stop()


def _warehouse(cube: Cube, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(cube.warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_meta_lists_the_daily_revenue_cube(cube: Cube) -> None:
    resp = requests.get(f"{cube.url}/cubejs-api/v1/meta", headers={"Authorization": cube.token()}, timeout=30)
    assert resp.status_code == 200, resp.text[:500]
    (daily,) = [c for c in resp.json()["cubes"] if c["name"] == "daily_revenue"]
    assert {m["name"] for m in daily["measures"]} == {
        "daily_revenue.orders",
        "daily_revenue.cancelled_orders",
        "daily_revenue.revenue",
        "daily_revenue.avg_order_value",
    }
    assert [d["name"] for d in daily["dimensions"]] == ["daily_revenue.order_date"]


def test_revenue_per_day_equals_the_warehouse(cube: Cube) -> None:
    resp = cube.load(
        {
            "measures": ["daily_revenue.revenue", "daily_revenue.orders"],
            "timeDimensions": [{"dimension": "daily_revenue.order_date", "granularity": "day"}],
            "order": {"daily_revenue.order_date": "asc"},
        }
    )
    assert resp.status_code == 200, resp.text[:500]
    got = [
        (
            row["daily_revenue.order_date.day"][:10],
            Decimal(row["daily_revenue.revenue"]),
            int(row["daily_revenue.orders"]),
        )
        for row in resp.json()["data"]
    ]
    expected = [
        (str(day), revenue, orders)
        for day, revenue, orders in _warehouse(
            cube, "SELECT order_date, revenue, orders FROM gold.agg_daily_revenue ORDER BY order_date"
        )
    ]
    assert got == expected and len(got) == 7


def test_average_order_value_excludes_cancelled_orders(cube: Cube) -> None:
    resp = cube.load({"measures": ["daily_revenue.avg_order_value", "daily_revenue.revenue"]})
    assert resp.status_code == 200, resp.text[:500]
    (row,) = resp.json()["data"]
    ((revenue, orders, cancelled),) = _warehouse(
        cube, "SELECT sum(revenue), sum(orders), sum(cancelled_orders) FROM gold.agg_daily_revenue"
    )
    assert Decimal(row["daily_revenue.revenue"]) == revenue
    assert Decimal(row["daily_revenue.avg_order_value"]).quantize(Decimal("0.01")) == (
        revenue / (orders - cancelled)
    ).quantize(Decimal("0.01"))


def test_a_date_range_filters_days(cube: Cube) -> None:
    ((first, last),) = _warehouse(cube, "SELECT min(order_date), max(order_date) FROM gold.agg_daily_revenue")
    resp = cube.load(
        {
            "measures": ["daily_revenue.orders"],
            "timeDimensions": [{"dimension": "daily_revenue.order_date", "dateRange": [str(first), str(first)]}],
        }
    )
    assert resp.status_code == 200, resp.text[:500]
    ((orders,),) = _warehouse(cube, f"SELECT orders FROM gold.agg_daily_revenue WHERE order_date = DATE '{first}'")
    assert int(resp.json()["data"][0]["daily_revenue.orders"]) == orders
    assert first < last


def test_the_api_refuses_missing_or_forged_tokens(cube: Cube) -> None:
    query = {"measures": ["daily_revenue.orders"]}
    assert cube.load(query, token="").status_code == 403
    assert cube.load(query, token=cube.token(secret="not-the-secret-" + "x" * 20)).status_code == 403
