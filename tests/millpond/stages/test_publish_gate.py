"""Publish copies gold only when ``check`` approved exactly the gold version it is about to copy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from millpond.errors import StageFailed
from millpond.settings import Settings
from millpond.stages import gold_version
from millpond.stages.publish import run_publish


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    cfg = Settings(data_dir=tmp_path / "data")
    cfg.warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(cfg.warehouse)) as con:
        con.execute("create schema gold; create schema millpond_meta")
        con.execute("create table gold.agg as select range as day, range * 2 as n from range(3)")
        con.execute("create table millpond_meta.quality_history as select 'r1' as run_id, 'pass' as outcome")
    return cfg


def _approve_current(cfg: Settings) -> str:
    with duckdb.connect(str(cfg.warehouse)) as con:
        version = gold_version.fingerprint(gold_version.duckdb_fetch(con))
        gold_version.approve(con, version, "r1", datetime.now(UTC))
    return version


def test_an_unapproved_version_is_refused_and_serving_is_not_touched(settings: Settings):
    with pytest.raises(StageFailed, match=r"gold version [0-9a-f]{64} has no passing check record"):
        run_publish(settings, "p1")
    assert not settings.serving.exists()


def test_the_approved_version_is_published_with_the_quality_history(settings: Settings):
    version = _approve_current(settings)
    [result] = run_publish(settings, "p1")
    assert result.gold_version == version
    assert result.tables == {"gold.agg": 3, "quality.check_results": 1}
    with duckdb.connect(str(settings.serving), read_only=True) as con:
        assert con.execute("select distinct run_id, gold_version from meta.publication").fetchall() == [("p1", version)]
        assert con.execute("select * from quality.check_results").fetchall() == [("r1", "pass")]


def test_a_change_after_the_approval_is_refused(settings: Settings):
    _approve_current(settings)
    run_publish(settings, "p1")
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("update gold.agg set n = 5 where day = 0")
    with pytest.raises(StageFailed, match="has no passing check record"):
        run_publish(settings, "p2")
    with duckdb.connect(str(settings.serving), read_only=True) as con:
        assert con.execute("select distinct run_id from meta.publication").fetchall() == [("p1",)]
        assert con.execute("select n from gold.agg where day = 0").fetchall() == [(0,)]
