"""The transform stage: what new landed rows touched (read through SQLMesh's engine adapter on a
DuckDB file), and real SQLMesh builds on hand-written bronze rows in a temporary warehouse."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlmesh.core.engine_adapter import create_engine_adapter

from millpond.errors import StageFailed
from millpond.settings import Settings
from millpond.stages.landed import ensure_landed_tables
from millpond.stages.restatement import newest_load_id, touched_dates
from millpond.stages.transform import run_transform
from millpond.stages.transform_record import read_watermark, save_watermark
from tests.support.bronze_rows import Bronze

START = date(2026, 1, 1)
TODAY = date(2026, 3, 20)


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@contextmanager
def _adapter(cfg: Settings) -> Iterator[Any]:
    """SQLMesh's DuckDB engine adapter on the warehouse file, as the stage reads it."""
    adapter = create_engine_adapter(lambda: duckdb.connect(str(cfg.warehouse)), "duckdb")
    try:
        yield adapter
    finally:
        adapter.close()


def _touched(cfg: Settings, today: date = TODAY) -> dict[str, set[date]]:
    with _adapter(cfg) as adapter:
        return touched_dates(adapter, read_watermark(adapter), today, START)


def _mark(cfg: Settings, load_id: str) -> None:
    with _adapter(cfg) as adapter:
        save_watermark(adapter, load_id, None)


def test_transform_needs_the_landed_tables_and_creates_none(tmp_path: Path):
    cfg = _settings(tmp_path)
    with pytest.raises(StageFailed, match=r"landed tables missing: bronze\.mongo_customers.*run `millpond ingest`"):
        run_transform(cfg)
    assert not cfg.warehouse.exists()


def test_touched_dates_are_the_distinct_business_dates_since_the_watermark(tmp_path: Path):
    cfg = _settings(tmp_path)
    ensure_landed_tables(cfg)
    with duckdb.connect(str(cfg.warehouse)) as con:
        con.execute("create table bronze._dlt_loads (load_id varchar, status bigint)")
        con.execute("insert into bronze._dlt_loads values ('100.5', 0), ('200.5', 0)")
        con.execute(
            "insert into bronze.mongo_orders (_id, created_at, _dlt_load_id, _dlt_id) values "
            "('o1', timestamptz '2026-03-05 10:00:00+00', '100.5', 'a'), "
            "('o2', timestamptz '2026-03-09 23:30:00+00', '200.5', 'b'), "
            "('o3', timestamptz '2026-03-19 23:30:00+00', '200.5', 'c'), "
            # before the project start and in the future: never touch anything
            "('o4', timestamptz '2025-06-01 10:00:00+00', '200.5', 'd'), "
            "('o5', timestamptz '2026-04-01 10:00:00+00', '200.5', 'e')"
        )
        con.execute(
            "insert into bronze.kafka_clickstream (event_id, event_ts, _dlt_load_id, _dlt_id) values "
            "('e1', timestamptz '2026-03-07 00:10:00+00', '200.5', 'c')"
        )
    with _adapter(cfg) as adapter:
        assert newest_load_id(adapter) == "200.5"
    # distinct dates, per table: not a window from the earliest to today
    assert _touched(cfg) == {
        "mongo_orders": {date(2026, 3, 5), date(2026, 3, 9), date(2026, 3, 19)},
        "kafka_clickstream": {date(2026, 3, 7)},
    }
    _mark(cfg, "100.5")
    assert _touched(cfg) == {  # o1 is behind the watermark
        "mongo_orders": {date(2026, 3, 9), date(2026, 3, 19)},
        "kafka_clickstream": {date(2026, 3, 7)},
    }
    _mark(cfg, "200.5")
    assert _touched(cfg) == {}


def test_a_changed_customer_touches_today_only(tmp_path: Path):
    cfg = _settings(tmp_path)
    ensure_landed_tables(cfg)
    with duckdb.connect(str(cfg.warehouse)) as con:
        con.execute("create table bronze._dlt_loads (load_id varchar, status bigint)")
        con.execute("insert into bronze._dlt_loads values ('99.5', 0), ('100.5', 0)")
        con.execute("insert into bronze.mongo_customers (_id, _dlt_load_id, _dlt_id) values ('c1', '100.5', 'a')")
    assert _touched(cfg) == {"mongo_customers": {TODAY}}


def _gold_orders(con: duckdb.DuckDBPyConnection, orders: dict[str, date]) -> None:
    """A stand-in for the built gold.fct_orders: the order ids and their business dates."""
    con.execute("create schema gold")
    con.execute("create table gold.fct_orders (order_id varchar, order_date date)")
    con.executemany("insert into gold.fct_orders values (?, ?)", list(orders.items()))


def test_a_tombstone_touches_the_day_its_order_was_built_into(tmp_path: Path):
    cfg = _settings(tmp_path)
    ensure_landed_tables(cfg)
    with duckdb.connect(str(cfg.warehouse)) as con:
        con.execute("create table bronze._dlt_loads (load_id varchar, status bigint)")
        con.execute("insert into bronze._dlt_loads values ('100.5', 0), ('200.5', 0)")
        _gold_orders(con, {"o1": date(2026, 3, 5), "o2": date(2026, 3, 8)})
        # o2's delete without a pre-image: the key and the delete, no created_at
        con.execute(
            "insert into bronze.mongo_orders (_id, _op, _deleted_at, _source_ts, _dlt_load_id, _dlt_id) values "
            "('o2', 'delete', timestamptz '2026-03-20 10:00:00+00', timestamptz '2026-03-20 10:00:00+00', '200.5', 't')"
        )
    _mark(cfg, "100.5")
    assert _touched(cfg) == {"mongo_orders": {date(2026, 3, 8)}}
    with duckdb.connect(str(cfg.warehouse)) as con:  # with the pre-image, its own created_at counts too
        con.execute("update bronze.mongo_orders set created_at = timestamptz '2026-03-04 23:00:00+00'")
    assert _touched(cfg) == {"mongo_orders": {date(2026, 3, 4), date(2026, 3, 8)}}


def test_a_quarantined_version_touches_the_day_of_its_entity(tmp_path: Path):
    cfg = _settings(tmp_path)
    ensure_landed_tables(cfg)
    with duckdb.connect(str(cfg.warehouse)) as con:
        con.execute("create table bronze._dlt_loads (load_id varchar, status bigint)")
        con.execute("insert into bronze._dlt_loads values ('100.5', 0), ('200.5', 0)")
        _gold_orders(con, {"o1": date(2026, 3, 5), "o2": date(2026, 3, 8)})
        con.execute(
            "insert into bronze.dead_letter (dead_letter_id, source, origin, record_key, first_seen_at, "
            "_dlt_load_id, _dlt_id) values "
            "('mongodb:orders:o2@v2', 'mongodb', 'orders', 'o2', timestamptz '2026-03-20 10:00:00+00', '200.5', 'a'), "
            # a Kafka dead letter is no version of an order, whatever its key
            "('kafka:shop.payments:0:7', 'kafka', 'shop.payments', 'o1', timestamptz '2026-03-20 10:00:00+00', "
            "'200.5', 'b')"
        )
    _mark(cfg, "100.5")
    assert _touched(cfg) == {"mongo_orders": {date(2026, 3, 8)}, "dead_letter": {TODAY}}
    with duckdb.connect(str(cfg.warehouse)) as con:  # a customer's: customers have no business time, so today
        con.execute(
            "insert into bronze.dead_letter (dead_letter_id, source, origin, record_key, _dlt_load_id, _dlt_id) "
            "values ('mongodb:customers:c1@v2', 'mongodb', 'customers', 'c1', '300.5', 'c')"
        )
        con.execute("insert into bronze._dlt_loads values ('300.5', 0)")
    _mark(cfg, "200.5")
    assert _touched(cfg) == {"mongo_customers": {TODAY}, "dead_letter": {TODAY}}


def _built(cfg: Settings, day: date) -> dict[str, list[tuple[object, ...]]]:
    """What gold (and the order children in silver) hold for ``day``."""
    queries = {
        "orders": "select order_id, order_total, has_quarantined_version from gold.fct_orders order by 1",
        "revenue": "select orders, revenue from gold.agg_daily_revenue where order_date = $day",
        "by_status": "select status, orders from gold.agg_daily_orders_by_status where order_date = $day",
        "lines": "select distinct order_id from silver.stg_order_line_items order by 1",
        "history": "select distinct order_id from silver.stg_order_status_history order by 1",
    }
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        return {
            name: con.execute(sql, {"day": day} if "$day" in sql else None).fetchall() for name, sql in queries.items()
        }


def test_a_deleted_order_leaves_gold_and_a_quarantined_version_is_flagged(tmp_path: Path):
    """Build, delete an order at the source (its tombstone lands), build again: gold no longer has it."""
    now = datetime.now(UTC)
    day = now.date() - timedelta(days=2)
    placed = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10)
    cfg = Settings(data_dir=tmp_path, start_date=day - timedelta(days=1))
    bronze = Bronze(cfg)
    bronze.load("100.5")
    bronze.customer("c1", placed)
    bronze.product("p1", "SKU-1", "10.00", placed)
    bronze.order("o1", placed, [("p1", "SKU-1", 2, "10.00")], [("paid", placed)])
    bronze.order(
        "o2", placed + timedelta(hours=1), [("p1", "SKU-1", 1, "5.00")], [("paid", placed + timedelta(hours=1))]
    )
    bronze.close()

    run_transform(cfg)
    before = _built(cfg, day)
    assert before["orders"] == [("o1", Decimal("20.00"), False), ("o2", Decimal("5.00"), False)]
    assert before["revenue"] == [(2, Decimal("25.00"))]
    assert before["by_status"] == [("paid", 2)]
    assert before["lines"] == before["history"] == [("o1",), ("o2",)]

    bronze = Bronze(cfg)
    bronze.load("200.5")
    bronze.delete("o1", now)
    # a newer version of o2 broke the contract: it is quarantined and the landed version stays
    bronze.con.execute(
        "insert into bronze.dead_letter (dead_letter_id, source, origin, record_key, raw_value, error_class, "
        "reason, first_seen_at, received_at, _dlt_load_id, _dlt_id) values ('mongodb:orders:o2@v2', 'mongodb', "
        "'orders', 'o2', '{}', 'mongodb.contract', 'missing required field status', ?, ?, '200.5', 'dl1')",
        [now, now],
    )
    bronze.close()

    report = run_transform(cfg)
    assert report.restated_from == day
    assert report.touched == {"mongo_orders": [day.isoformat()], "dead_letter": [now.date().isoformat()]}
    after = _built(cfg, day)
    assert after["orders"] == [("o2", Decimal("5.00"), True)]
    assert after["revenue"] == [(1, Decimal("5.00"))]
    assert after["by_status"] == [("paid", 1)]
    assert after["lines"] == after["history"] == [("o2",)]


def test_a_failed_plan_releases_the_warehouse(tmp_path: Path):
    """A blocking audit fails the plan; the process can open the warehouse read-only straight after."""
    now = datetime.now(UTC)
    day = now.date() - timedelta(days=1)
    placed = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=10)
    cfg = Settings(data_dir=tmp_path, start_date=day - timedelta(days=1))
    bronze = Bronze(cfg)
    bronze.load("100.5")
    bronze.order("o1", placed, [("p1", "SKU-1", 2, "10.00")], [("paid", placed)])
    bronze.con.execute("update bronze.mongo_orders set status = 'teleported'")  # outside the vocabulary
    bronze.close()

    with pytest.raises(StageFailed, match="SQLMesh failed") as failed:
        run_transform(cfg)
    # the error line names the model, the interval, the audit, the failing rows and their keys
    interval = f"[{cfg.start_date.isoformat()}, {(now.date() + timedelta(days=1)).isoformat()})"
    assert f"silver.stg_orders {interval}: audit accepted_values failed on 1 rows (sample keys: o1)" in str(
        failed.value
    )
    assert "docs/runbooks/audit-failed.md" in str(failed.value)
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:  # raises while a context holds it
        assert con.execute("select count(*) from bronze.mongo_orders").fetchone() == (1,)
        # the run's record says the same, with the query that shows the failing rows
        recorded = con.execute(
            "select interval_start, interval_end, failing_rows, sample_keys, audit_query "
            "from millpond_meta.transform_failures where model = 'silver.stg_orders' and audit = 'accepted_values'"
        ).fetchall()
        assert [row[:4] for row in recorded] == [(cfg.start_date, now.date() + timedelta(days=1), 1, "o1")]
        con.execute("use millpond")  # the audit query names the physical table by catalog, as the runbook says
        assert [row[0] for row in con.execute(recorded[0][4]).fetchall()] == ["o1"]
