"""The transform stage's restatement window, read from landed tables (in-process DuckDB, no SQLMesh)."""

from datetime import date
from pathlib import Path

import duckdb
import pytest

from millpond.errors import StageFailed
from millpond.settings import Settings
from millpond.stages.ingest import ensure_landed_tables
from millpond.stages.transform import _save_watermark, pending_window, run_transform


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def test_transform_needs_the_landed_tables_and_creates_none(tmp_path: Path):
    cfg = _settings(tmp_path)
    with pytest.raises(StageFailed, match=r"landed tables missing: bronze\.mongo_customers.*run `millpond ingest`"):
        run_transform(cfg)
    assert not cfg.warehouse.exists()


def test_pending_window_is_the_earliest_business_date_since_the_watermark(tmp_path: Path):
    cfg = _settings(tmp_path)
    assert pending_window(cfg) == (None, None)  # no warehouse yet
    ensure_landed_tables(cfg)
    with duckdb.connect(str(cfg.warehouse)) as con:
        con.execute("create table bronze._dlt_loads (load_id varchar, status bigint)")
        con.execute("insert into bronze._dlt_loads values ('100.5', 0), ('200.5', 0)")
        con.execute(
            "insert into bronze.mongo_orders (_id, created_at, _dlt_load_id, _dlt_id) values "
            "('o1', timestamptz '2026-03-05 10:00:00+00', '100.5', 'a'), "
            "('o2', timestamptz '2026-03-09 23:30:00+00', '200.5', 'b')"
        )
        con.execute(
            "insert into bronze.kafka_clickstream (event_id, event_ts, _dlt_load_id, _dlt_id) values "
            "('e1', timestamptz '2026-03-07 00:10:00+00', '200.5', 'c')"
        )
    assert pending_window(cfg) == (date(2026, 3, 5), "200.5")
    _save_watermark(cfg, "100.5", date(2026, 3, 5))
    assert pending_window(cfg) == (date(2026, 3, 7), "200.5")  # o1 is behind the watermark
    _save_watermark(cfg, "200.5", date(2026, 3, 7))
    assert pending_window(cfg) == (None, "200.5")


def test_a_changed_customer_restates_today_only(tmp_path: Path):
    cfg = _settings(tmp_path)
    ensure_landed_tables(cfg)
    with duckdb.connect(str(cfg.warehouse)) as con:
        con.execute("create table bronze._dlt_loads (load_id varchar, status bigint)")
        con.execute("insert into bronze._dlt_loads values ('99.5', 0), ('100.5', 0)")
        con.execute("insert into bronze.mongo_customers (_id, _dlt_load_id, _dlt_id) values ('c1', '100.5', 'a')")
    assert pending_window(cfg, today=date(2026, 3, 20)) == (date(2026, 3, 20), "100.5")
