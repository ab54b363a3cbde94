"""Incremental cost follows the change: what a run rebuilds is read back from SQLMesh's own interval records.

N days are built, then one more day lands together with a late clickstream event and a status
change of an old order (and an order dated before the project start). The run must rebuild the
new day, the late event's day for the models downstream of ``bronze.kafka_clickstream`` only,
and the old order's day for the models downstream of ``bronze.mongo_orders`` only. The
assertions are written in terms of that lineage, read from SQLMesh's DAG, so they hold as
models are added. The first attempt is killed right after it invalidated the intervals: the
next run has no new rows to look at, and still rebuilds exactly them (the pending work is
SQLMesh's record of missing intervals, not something the stage keeps in memory).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from millpond.settings import Settings
from millpond.stages.restatement import short_name
from millpond.stages.transform import run_transform, sqlmesh_context
from tests.support.bronze_rows import Bronze, at, history

DAYS = 8
CLICKSTREAM = '"millpond"."bronze"."kafka_clickstream"'
ORDERS = '"millpond"."bronze"."mongo_orders"'


def rebuilt_since(cfg: Settings, since_ms: int) -> dict[str, set[date]]:
    """Model -> the days SQLMesh recorded as built (prod, not removed) after ``since_ms``."""
    with duckdb.connect(str(cfg.state), read_only=True) as con:
        rows = con.execute(
            "select name, start_ts, end_ts from sqlmesh._intervals "
            "where created_ts >= ? and not is_removed and not is_dev and not is_compacted",
            [since_ms],
        ).fetchall()
    out: dict[str, set[date]] = defaultdict(set)
    for name, start_ts, end_ts in rows:
        day = datetime.fromtimestamp(start_ts / 1000, UTC).date()
        while datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000 < end_ts:
            out[short_name(name)].add(day)
            day += timedelta(days=1)
    return dict(out)


def lineage(cfg: Settings) -> tuple[dict[str, Any], set[str], set[str]]:
    """The project's models by short name, and those downstream of the clickstream and of the orders."""
    ctx = sqlmesh_context(cfg)
    try:
        models = {short_name(fqn): model for fqn, model in ctx.models.items() if not model.kind.is_external}
        clicks = {short_name(fqn) for fqn in ctx.dag.downstream(CLICKSTREAM)}
        orders = {short_name(fqn) for fqn in ctx.dag.downstream(ORDERS)}
    finally:
        ctx.close()
    return models, clicks, orders


def expected_days(model: Any, name: str, today: date, late: date, old: date, clicks: set[str], orders: set[str]):
    """What SQLMesh must rebuild of one model: today's interval (due by cron), plus for a model partitioned
    by time the touched days of its lineage (and the days its lookback re-reads); nothing of a view."""
    kind = model.kind
    if kind.is_view or kind.is_seed:
        return None  # views hold no data: whatever SQLMesh records for them is not a rebuild
    days = {today}
    if kind.is_incremental_by_time_range or kind.is_incremental_by_unique_key:
        days |= {late} if name in clicks else set()
        days |= {old} if name in orders else set()
    if model.lookback:
        days |= {day - timedelta(days=back) for day in days for back in range(1, model.lookback + 1)}
    return days


def test_a_run_rebuilds_only_the_days_and_lineage_new_rows_touch(tmp_path: Path):
    today = datetime.now(UTC).date()
    first = today - timedelta(days=DAYS)
    late, old = first + timedelta(days=5), first + timedelta(days=1)  # further apart than any lookback
    cfg = Settings(data_dir=tmp_path, start_date=first - timedelta(days=1))
    bronze = history(cfg, first, DAYS)
    bronze.close()
    run_transform(cfg, today=today - timedelta(days=1))  # N days built, through yesterday

    bronze = Bronze(cfg)
    bronze.load("200.5")
    bronze.shop_day(today, "new")  # one more day
    bronze.event(  # a late clickstream event, for a day already built
        "clickstream",
        "e-late",
        "page_view",
        at(late, 12),
        session_id="s-late",
        customer_id="c1",
        product_id="p1",
        page_url="/p/p1",
    )
    placed = at(old, 10)  # an old order is cancelled today
    bronze.order(
        "o-d1",
        placed,
        [("p1", "SKU-1", 2, "10.00")],
        [("created", placed), ("paid", placed), ("cancelled", at(today, 8))],
    )
    before_start = at(cfg.start_date - timedelta(days=200))  # dated before the project start
    bronze.order("o-ancient", before_start, [("p1", "SKU-1", 1, "10.00")], [("created", before_start)])
    bronze.close()

    # the first attempt dies right after it invalidated the touched intervals and saved its watermark
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLPOND_")} | {
        "MILLPOND_DATA_DIR": str(cfg.data_dir),
        "MILLPOND_PROJECT_DIR": str(cfg.project_dir),
        "MILLPOND_START_DATE": cfg.start_date.isoformat(),
        "MILLPOND_CRASH_AFTER": "transform.invalidate",
        "MILLPOND_LOG_FORMAT": "json",
    }
    killed = subprocess.run([sys.executable, "-m", "millpond", "transform"], env=env, capture_output=True, timeout=600)
    assert killed.returncode == 137, killed.stderr[-3000:]
    assert b"transform.restate.start" in killed.stderr

    since = int(datetime.now(UTC).timestamp() * 1000)
    report = run_transform(cfg, today=today)
    assert report.touched == {}  # nothing new since the watermark: the work left is SQLMesh's missing intervals
    rebuilt = rebuilt_since(cfg, since)

    models, clicks, orders = lineage(cfg)
    assert clicks - orders and orders - clicks, "the project has models of one lineage only"
    for name, model in models.items():
        expected = expected_days(model, name, today, late, old, clicks, orders)
        if expected is None:
            assert rebuilt.get(name, set()) <= {today}, name
        else:
            assert rebuilt.get(name, set()) == expected, name
    # said in terms of lineage: the late event rebuilt nothing of the orders, the old order nothing of the clicks
    by_time = {name for name, model in models.items() if model.kind.is_incremental_by_time_range}
    for name in (clicks - orders) & by_time:
        assert late in rebuilt[name] and old not in rebuilt[name], name
    for name in (orders - clicks) & by_time:
        assert old in rebuilt[name] and late not in rebuilt[name], name
    assert all(models[name].lookback < (late - old).days for name in by_time), "pick days further apart"
    assert not any(day < cfg.start_date for days in rebuilt.values() for day in days)

    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        assert con.execute(
            "select cancelled_orders from gold.agg_daily_revenue where order_date = ?", [old]
        ).fetchall() == [(1,)]
        assert con.execute(
            "select events from gold.agg_daily_events where event_date = ? and event_type = 'page_view'", [late]
        ).fetchall() == [(2,)]
