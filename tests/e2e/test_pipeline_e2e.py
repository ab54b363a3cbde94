"""End to end on real MongoDB and Kafka: generate → millpond run → serving data equals the truth."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pymongo
import pytest
from pydantic import SecretStr

from millpond.errors import StageFailed
from millpond.generator import GeneratorConfig, generate
from millpond.serving import PostgresServingTarget
from millpond.settings import Settings
from millpond.stages.check import run_checks
from millpond.stages.publish import run_publish
from millpond.stages.run import run_all
from tests.support.pipelines import isolated_settings, pipeline_env

pytestmark = pytest.mark.slow
CONFIG = GeneratorConfig(customers=60, products=15, orders_per_day=25, sessions_per_day=10, days=5, late_rate=0.3)
TODAY = datetime.now(UTC).date()


def mongo_truth(cfg: Settings) -> tuple[dict, dict, dict]:
    """Revenue and orders per day, orders per status — straight from the MongoDB documents."""
    revenue: dict = defaultdict(Decimal)
    orders: Counter = Counter()
    statuses: Counter = Counter()
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        for order in client[cfg.mongo_db].orders.find():
            day = order["created_at"].astimezone(UTC).date()
            orders[day] += 1
            statuses[order["status"]] += 1
            revenue[day] += Decimal(0)
            if order["status"] != "cancelled":
                revenue[day] += sum(i["unit_price"].to_decimal() * i["quantity"] for i in order["line_items"])
    return dict(revenue), dict(orders), dict(statuses)


def event_truth(events: dict[str, dict]) -> dict:
    counts: Counter = Counter()
    for event in events.values():
        day = datetime.fromisoformat(event["event_ts"].replace("Z", "+00:00")).date()
        counts[(day, event["event_type"])] += 1
    return dict(counts)


def serving(cfg: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(cfg.serving), read_only=True) as con:
        return con.execute(sql).fetchall()


def serving_digest(cfg: Settings) -> str:
    rows = []
    for (relation,) in serving(cfg, "select relation from meta.publication where relation like 'gold.%' order by 1"):
        rows.append(serving(cfg, f"select * from {relation} order by all"))
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def assert_gold_matches_truth(cfg: Settings, events: dict[str, dict]) -> None:
    revenue, orders, statuses = mongo_truth(cfg)
    gold_daily = {
        d: (n, r) for d, n, r in serving(cfg, "select order_date, orders, revenue from gold.agg_daily_revenue")
    }
    assert gold_daily == {d: (orders[d], revenue[d]) for d in orders}
    gold_status = dict(serving(cfg, "select status, sum(orders)::int from gold.agg_daily_orders_by_status group by 1"))
    assert gold_status == statuses
    gold_events = {
        (d, t): n for d, t, n in serving(cfg, "select event_date, event_type, events from gold.agg_daily_events")
    }
    assert gold_events == event_truth(events)
    (dups,) = serving(cfg, "select count(*) - count(distinct order_id) from gold.fct_orders")[0]
    assert dups == 0


@pytest.fixture(scope="module")
def shop(tmp_path_factory, mongo, kafka):
    cfg = isolated_settings(tmp_path_factory.mktemp("e2e") / "data", mongo, kafka, "e2e")
    client = pymongo.MongoClient(cfg.mongo_uri, tz_aware=True)
    events: dict[str, dict] = {}

    def step(day):
        result = generate(CONFIG, day, client[cfg.mongo_db], cfg.kafka_bootstrap, cfg.topics.as_dict())
        events.update(result.events)
        return result

    yield cfg, step, events
    client.close()


def test_run_publishes_gold_equal_to_the_sources_then_an_increment_updates_it(shop):
    cfg, step, events = shop
    first = step(TODAY - timedelta(days=1))
    assert first.malformed > 0 and first.duplicates > 0  # faults are really injected
    report = run_all(cfg)
    assert list(report.stages) == ["ingest", "transform", "check", "publish"]
    assert_gold_matches_truth(cfg, events)

    second = step(TODAY)  # today: a partial day is built too
    late = [e for e in second.events.values() if e["event_ts"] < TODAY.isoformat()]
    assert late, "the increment carries late events for days already built"
    run_all(cfg)
    assert_gold_matches_truth(cfg, events)


def test_rerun_without_new_data_changes_nothing(shop):
    cfg, _step, _events = shop
    before = serving_digest(cfg)
    run_all(cfg)
    assert serving_digest(cfg) == before


def test_publish_to_postgres_serves_the_same_gold_as_the_serving_file(shop, postgres):
    cfg, _step, _events = shop
    uri = postgres.create_database(f"serving_e2e_{uuid.uuid4().hex[:8]}")
    results = run_publish(cfg.model_copy(update={"serving_postgres_uri": SecretStr(uri)}), "to-postgres")
    assert [r.target for r in results] == [str(cfg.serving), PostgresServingTarget(uri).name]
    gold_models = {
        path.stem for path in (cfg.project_dir / "models" / "gold").iterdir() if path.suffix in {".sql", ".py"}
    }
    assert results[0].tables == results[1].tables
    assert {r.split(".")[-1] for r in results[0].tables if r.startswith("gold.")} == gold_models
    with psycopg.connect(uri) as conn:
        for relation in results[0].tables:
            in_file = _comparable_rows(serving(cfg, f"select * from {relation}"))
            in_postgres = _comparable_rows(conn.execute(f"select * from {relation}").fetchall())
            assert in_postgres == in_file, relation


def _comparable_rows(rows: list[tuple]) -> list[tuple]:
    """Rows in one order, TIMESTAMPTZ as UTC instants (DuckDB returns the session zone, PostgreSQL UTC)."""
    utc = [tuple(v.astimezone(UTC) if isinstance(v, datetime) and v.tzinfo else v for v in row) for row in rows]
    return sorted(utc, key=repr)


def test_failed_contract_stops_before_publish(shop, tmp_path: Path):
    cfg, _step, _events = shop
    project = tmp_path / "project"
    shutil.copytree(cfg.project_dir / "checks", project / "checks")
    contract = project / "checks" / "contracts" / "agg_daily_revenue.yml"
    contract.write_text(contract.read_text().replace("must_be_greater_than: 0", "must_be_greater_than: 1000000"))
    broken = cfg.model_copy(update={"project_dir": project})
    with pytest.raises(StageFailed, match="agg_daily_revenue: 1 failed"):
        run_checks(broken)


def test_cli_run_fails_clearly_when_a_source_is_down(shop):
    cfg, _step, _events = shop
    before = serving_digest(cfg)
    env = pipeline_env(cfg) | {"MILLPOND_KAFKA_BOOTSTRAP": "127.0.0.1:9", "MILLPOND_IO_TIMEOUT_S": "3"}
    proc = subprocess.run(
        [sys.executable, "-m", "millpond", "run"], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1
    assert "error: [ingest] ingestion failed" in proc.stderr
    assert serving_digest(cfg) == before  # last good serving data stays


def _cancel_some_orders(cfg: Settings, how_many: int) -> list[str]:
    """An operational change: orders cancelled now, for order dates that gold already holds."""
    now = datetime.now(UTC)
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        orders = client[cfg.mongo_db].orders
        ids = [o["_id"] for o in orders.find({"status": "paid"}).sort("_id").limit(how_many)]
        orders.update_many(
            {"_id": {"$in": ids}},
            {
                "$set": {"status": "cancelled", "updated_at": now},
                "$push": {"status_history": {"status": "cancelled", "at": now}},
            },
        )
    return ids


def test_transform_killed_midway_then_rerun_converges(shop):
    from millpond.stages.ingest import run_ingest

    cfg, _step, events = shop
    assert _cancel_some_orders(cfg, 3)
    run_ingest(cfg)
    env = pipeline_env(cfg)
    # a real SIGKILL while SQLMesh restates the touched days
    proc = subprocess.Popen(
        [sys.executable, "-m", "millpond", "transform"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if b"transform.restate.start" in line:
            proc.kill()
            break
    assert proc.wait(timeout=120) == -9, b"".join(seen)[-3000:].decode()
    # and an injected crash after the restatement, before the watermark is saved
    crashed = subprocess.run(
        [sys.executable, "-m", "millpond", "transform"],
        env=env | {"MILLPOND_CRASH_AFTER": "transform.restate"},
        capture_output=True,
        timeout=600,
    )
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    run_all(cfg)
    assert_gold_matches_truth(cfg, events)


def test_publish_killed_before_the_swap_keeps_the_last_good_data(shop):
    cfg, _step, events = shop
    before = serving_digest(cfg)
    run_ids = serving(cfg, "select distinct run_id from meta.publication")
    proc = subprocess.run(
        [sys.executable, "-m", "millpond", "publish"],
        env=pipeline_env(cfg) | {"MILLPOND_CRASH_AFTER": "publish.copy"},
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 137, proc.stderr[-2000:]
    assert serving_digest(cfg) == before
    assert serving(cfg, "select distinct run_id from meta.publication") == run_ids
    assert [p.name for p in cfg.serving.parent.glob(".*.tmp*")], "the killed publish left its temp file"
    run_publish(cfg, "after-crash")
    assert not list(cfg.serving.parent.glob(".*.tmp*"))
    assert serving(cfg, "select distinct run_id from meta.publication") == [("after-crash",)]
    assert_gold_matches_truth(cfg, events)


def test_a_second_stage_is_refused_while_one_runs(shop):
    from millpond.locking import pipeline_lock

    cfg, _step, _events = shop
    with pipeline_lock(cfg.data_dir, "test"):
        proc = subprocess.run(
            [sys.executable, "-m", "millpond", "publish"],
            env=pipeline_env(cfg),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 1
    assert "another Millpond stage is running" in proc.stderr
