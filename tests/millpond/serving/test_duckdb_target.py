from pathlib import Path

import duckdb
import pytest

from millpond.errors import StageFailed
from millpond.serving import DuckDBServingTarget


def _warehouse(path: Path, revenue: int) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists gold")
        con.execute(
            "create or replace table gold.agg_daily_revenue as select date '2026-03-01' as order_date, ? as revenue",
            [revenue],
        )
        con.execute("create or replace view gold.v_revenue as select * from gold.agg_daily_revenue")
    return path


def test_publish_copies_relations_and_writes_manifest(tmp_path: Path):
    wh = _warehouse(tmp_path / "millpond.duckdb", 10)
    target = DuckDBServingTarget(tmp_path / "serving" / "serving.duckdb")
    result = target.publish(wh, ["gold.agg_daily_revenue", "gold.v_revenue"], run_id="r1")
    assert result.tables == {"gold.agg_daily_revenue": 1, "gold.v_revenue": 1}
    assert target.published_tables() == result.tables
    with duckdb.connect(str(target.path), read_only=True) as con:
        assert con.execute("select revenue from gold.v_revenue").fetchone() == (10,)
        assert con.execute("select distinct run_id from meta.publication").fetchall() == [("r1",)]
    assert [p.name for p in target.path.parent.iterdir()] == ["serving.duckdb"]  # no temp files left


def test_readers_keep_their_snapshot_while_a_new_version_is_swapped_in(tmp_path: Path):
    wh = _warehouse(tmp_path / "millpond.duckdb", 10)
    target = DuckDBServingTarget(tmp_path / "serving.duckdb")
    target.publish(wh, ["gold.agg_daily_revenue"], run_id="r1")
    reader = duckdb.connect(str(target.path), read_only=True)  # a dashboard holding the file open
    _warehouse(wh, 20)
    target.publish(wh, ["gold.agg_daily_revenue"], run_id="r2")
    assert reader.execute("select revenue from gold.agg_daily_revenue").fetchone() == (10,)
    reader.close()
    with duckdb.connect(str(target.path), read_only=True) as fresh:
        assert fresh.execute("select revenue from gold.agg_daily_revenue").fetchone() == (20,)


def test_failed_publish_leaves_last_good_data(tmp_path: Path):
    wh = _warehouse(tmp_path / "millpond.duckdb", 10)
    target = DuckDBServingTarget(tmp_path / "serving.duckdb")
    target.publish(wh, ["gold.agg_daily_revenue"], run_id="good")
    with pytest.raises(StageFailed, match="previous serving data stays in place"):
        target.publish(wh, ["gold.agg_daily_revenue", "gold.missing_table"], run_id="bad")
    assert target.published_tables() == {"gold.agg_daily_revenue": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["millpond.duckdb", "serving.duckdb"]
