"""Retention end to end on the real pipeline: old landed events go, gold history stays, a new day is right.

A shop of several days is run and its daily gold aggregates kept; retention then drops the oldest
days' landed events (and an old dead letter), a late event for an aged-out day is produced, and the
next day is generated and run: the aged-out days' aggregates are exactly as they were (the late
event is dropped, not restated from alone), the new day equals the truth from the generator, and
retention run again deletes nothing more.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import duckdb
import pymongo
import pytest
from confluent_kafka import Producer

from millpond.generator import GeneratorConfig, generate
from millpond.settings import Settings
from millpond.stages.retention import RUNS, run_retention
from millpond.stages.run import run_all
from tests.support.pipelines import isolated_settings

pytestmark = pytest.mark.slow
DAYS = 6
KEEP_DAYS = 3
CONFIG = GeneratorConfig(customers=25, products=8, orders_per_day=12, sessions_per_day=8, days=DAYS, late_rate=0.0)
TODAY = datetime.now(UTC).date()
CUTOFF = TODAY - timedelta(days=KEEP_DAYS)
# the gold aggregates built from landed events (the order aggregates come from MongoDB, which
# retention leaves alone, and legitimately change as the increment moves old orders on)
AGGREGATES = {"gold.agg_daily_events": "event_date", "gold.agg_daily_funnel": "funnel_date"}


def gold(cfg: Settings, before: object) -> dict[str, list[tuple]]:
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        return {
            table: con.execute(f"select * from {table} where {column} < ? order by all", [before]).fetchall()
            for table, column in AGGREGATES.items()
        }


def query(cfg: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def shop(tmp_path_factory, mongo, kafka):
    base = isolated_settings(tmp_path_factory.mktemp("retention") / "data", mongo, kafka, "retention")
    cfg = base.model_copy(update={"retention_events_days": KEEP_DAYS, "retention_dead_letter_days": 5})
    client = pymongo.MongoClient(cfg.mongo_uri, tz_aware=True)
    events: dict[str, dict] = {}

    def step(day):
        result = generate(CONFIG, day, client[cfg.mongo_db], cfg.kafka_bootstrap, cfg.topics.as_dict())
        events.update(result.events)

    step(TODAY - timedelta(days=1))
    run_all(cfg)
    yield cfg, step, events
    client.close()


def test_retention_drops_old_events_and_gold_history_stays(shop):
    cfg, step, events = shop
    old = gold(cfg, CUTOFF)
    assert old["gold.agg_daily_events"], "the shop must have days before the cutoff"
    (aged,) = query(cfg, "select count(*) from bronze.kafka_clickstream where event_ts < ?", [CUTOFF])[0]
    assert aged
    late = query(cfg, "select payload from bronze.kafka_clickstream where event_ts < ? limit 1", [CUTOFF])[0][0]
    with duckdb.connect(str(cfg.warehouse)) as con:  # a dead letter first seen long ago
        con.execute("update bronze.dead_letter set first_seen_at = now() - interval 30 day where rowid = 0")

    dry = run_retention(cfg, dry_run=True)
    assert dry.deleted["bronze.kafka_clickstream"] == aged
    assert query(cfg, "select count(*) from bronze.kafka_clickstream where event_ts < ?", [CUTOFF]) == [(aged,)]
    applied = run_retention(cfg)
    assert applied.deleted["bronze.kafka_clickstream"] == aged
    assert applied.deleted["bronze.dead_letter"] == 1
    assert query(cfg, "select count(*) from bronze.kafka_clickstream where event_ts < ?", [CUTOFF]) == [(0,)]

    # a late event for an aged-out day arrives, and the next day is generated and run
    payload = json.loads(late) | {"event_id": "late-after-retention"}
    producer = Producer({"bootstrap.servers": cfg.kafka_bootstrap})
    producer.produce(cfg.topics.clickstream, key=b"late", value=json.dumps(payload).encode())
    producer.flush(10)
    step(TODAY)
    run_all(cfg)

    assert gold(cfg, CUTOFF) == old  # the aged-out days are exactly as they were
    assert query(cfg, "select count(*) from bronze.kafka_clickstream where event_id = 'late-after-retention'") == [(0,)]
    truth: Counter = Counter()
    for event in events.values():
        day = datetime.fromisoformat(event["event_ts"].replace("Z", "+00:00")).date()
        if day >= CUTOFF:
            truth[(day, event["event_type"])] += 1
    built = query(
        cfg, "select event_date, event_type, events from gold.agg_daily_events where event_date >= ?", [CUTOFF]
    )
    assert {(d, t): n for d, t, n in built} == dict(truth)  # the retained days and the new one are right

    again = run_retention(cfg)
    assert set(again.deleted.values()) == {0}
    assert query(cfg, f"select count(distinct run_id) from {RUNS} where not dry_run") == [(2,)]
