"""The generator against the real services: backpressure, bounded memory, poison and deletes, re-runs."""

import json
import tracemalloc
from collections import Counter
from dataclasses import replace
from datetime import date
from decimal import Decimal, InvalidOperation

import pymongo
import pytest
from bson.decimal128 import Decimal128
from click.testing import CliRunner

from ingest.vocabulary import EVENT_TYPES
from millpond.cli import cli
from millpond.errors import MillpondError
from millpond.generator import GeneratorConfig, generate
from millpond.generator.model import Message
from millpond.generator.poison import KAFKA_POISON_KINDS, MONGO_POISON_KINDS
from millpond.generator.run import STATE
from millpond.generator.writers import KafkaWriter, ensure_topics
from tests.support.kafka import topic_values
from tests.support.pipelines import pipeline_env
from tests.support.ports import free_port

pytestmark = pytest.mark.services

CLEAN = GeneratorConfig(
    customers=30, products=10, orders_per_day=10, sessions_per_day=5, days=3, duplicate_rate=0, malformed_rate=0
)
DAY = date(2026, 3, 3)
OVERSIZED = 20_000

KEY = {"clickstream": "session_id", "payments": "order_id", "shipments": "order_id"}


def _all_values(cfg) -> dict[str, list[bytes]]:
    return {stream: topic_values(cfg.kafka_bootstrap, topic) for stream, topic in cfg.topics.as_dict().items()}


def _kafka_kind(stream: str, raw: bytes) -> str | None:
    """The poison kind of one record, judged from its bytes alone (None for a good record)."""
    try:
        event = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "invalid_utf8"
    except json.JSONDecodeError:
        return "invalid_json"
    if len(raw) >= OVERSIZED:
        return "oversized"
    if event["event_type"] not in EVENT_TYPES[stream]:
        return "unknown_event_type"
    if event.get("schema_version", 1) not in (1, 2):
        return "unknown_schema_version"
    if KEY[stream] not in event:
        return "missing_field"
    if not isinstance(event[KEY[stream]], str):
        return "wrong_type"
    if stream == "payments":
        try:
            Decimal(event["amount"])
        except InvalidOperation:
            return "wrong_type"
    if event["event_ts"] > "2090":
        return "future_time"
    if event["event_ts"] < "2020":
        return "ancient_time"
    return None


def _mongo_kind(doc: dict) -> str | None:
    if "customer_id" not in doc:
        return "missing_field"
    if "updated_at" not in doc:
        return "missing_updated_at"
    if isinstance(doc["updated_at"], str):
        return "non_date_updated_at"
    if any(isinstance(it["quantity"], str) for it in doc["line_items"]):
        return "wrong_type"
    if any(it["unit_price"].to_decimal() < 0 for it in doc["line_items"] if isinstance(it["unit_price"], Decimal128)):
        return "negative_amount"
    return None


def test_producer_waits_for_a_full_local_queue_and_delivers_every_message_once(make_settings):
    cfg = make_settings("queue")
    ensure_topics(cfg.kafka_bootstrap, [cfg.topics.clickstream])
    tiny = {"queue.buffering.max.messages": 5, "linger.ms": 1}
    writer = KafkaWriter(cfg.kafka_bootstrap, {"clickstream": cfg.topics.clickstream}, tiny)
    for i in range(1000):
        writer.send(Message("clickstream", f"k{i % 7}", f"m{i}".encode()))
    writer.flush()
    assert writer.queue_full > 0  # the queue really was full, more than once
    values = topic_values(cfg.kafka_bootstrap, cfg.topics.clickstream)
    assert sorted(values) == sorted(f"m{i}".encode() for i in range(1000))


def test_generate_with_a_tiny_producer_queue_loses_and_doubles_nothing(make_settings):
    cfg = make_settings("tinyq")
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        tiny = {"queue.buffering.max.messages": 3, "linger.ms": 1}
        result = generate(
            CLEAN, DAY, client[cfg.mongo_db], cfg.kafka_bootstrap, cfg.topics.as_dict(), producer_config=tiny
        )
    assert result.producer_queue_full > 0
    ids = [json.loads(v)["event_id"] for values in _all_values(cfg).values() for v in values]
    assert len(ids) == result.messages == len(result.events)
    assert set(ids) == set(result.events)


def test_an_unreachable_broker_fails_with_one_clear_error_naming_it():
    address = f"127.0.0.1:{free_port()}"
    writer = KafkaWriter(address, {"clickstream": "nowhere"}, {"socket.timeout.ms": 1000}, timeout_s=2)
    writer.send(Message("clickstream", "k", b"v"))
    with pytest.raises(MillpondError, match=address):
        writer.flush()


def _traced_peak(cfg, config: GeneratorConfig) -> int:
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        tracemalloc.start()
        try:
            generate(config, DAY, client[cfg.mongo_db], cfg.kafka_bootstrap, cfg.topics.as_dict(),
                     batch_size=100, keep_events=False)  # fmt: skip
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def test_memory_is_bounded_by_the_batch_not_by_the_volume(make_settings):
    base = GeneratorConfig(customers=40, products=10, orders_per_day=40, sessions_per_day=20, days=2)
    _traced_peak(make_settings("warm"), replace(base, days=1, orders_per_day=5))  # one-time caches (Faker, clients)
    small = _traced_peak(make_settings("mem2"), base)
    large = _traced_peak(make_settings("mem8"), replace(base, days=8))  # four times the events and orders
    assert large < small * 1.25, (small, large)


def test_each_poison_kind_is_written_as_often_as_the_summary_says(make_settings):
    cfg = make_settings("poison")
    config = replace(CLEAN, kafka_poison_rate=0.3, mongo_poison_rate=0.8, oversized_bytes=OVERSIZED)
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        db = client[cfg.mongo_db]
        result = generate(config, DAY, db, cfg.kafka_bootstrap, cfg.topics.as_dict())
        orders = list(db.orders.find())
    summary = result.summary()["poison"]
    seen = Counter(_kafka_kind(s, v) for s, values in _all_values(cfg).items() for v in values)
    assert seen.pop(None) == len(result.events) == result.messages - sum(seen.values())
    assert seen == {f"{k}": summary[f"kafka.{k}"] for k in KAFKA_POISON_KINDS}
    assert all(summary[f"kafka.{k}"] > 0 for k in KAFKA_POISON_KINDS)
    in_mongo = Counter(_mongo_kind(doc) for doc in orders)
    assert in_mongo.pop(None) > 0
    assert {k: in_mongo[k] for k in MONGO_POISON_KINDS} == {k: summary[f"mongodb.{k}"] for k in MONGO_POISON_KINDS}
    assert set(in_mongo) <= set(MONGO_POISON_KINDS)
    assert all(summary[f"mongodb.{k}"] > 0 for k in MONGO_POISON_KINDS)


def test_the_next_version_of_a_poisoned_order_is_clean(make_settings):
    cfg = make_settings("repair")
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        db = client[cfg.mongo_db]
        generate(replace(CLEAN, mongo_poison_rate=1.0), DAY, db, cfg.kafka_bootstrap, cfg.topics.as_dict())
        assert all(_mongo_kind(d) for d in db.orders.find())
        before = {d["_id"]: d["status"] for d in db.orders.find()}
        generate(CLEAN, date(2026, 3, 4), db, cfg.kafka_bootstrap, cfg.topics.as_dict())
        moved = [d for d in db.orders.find({"_id": {"$in": list(before)}}) if d["status"] != before[d["_id"]]]
    assert moved and not any(_mongo_kind(d) for d in moved)


def test_deleted_orders_are_really_deleted_and_seen_by_a_change_stream(make_settings):
    cfg = make_settings("deletes")
    config = replace(CLEAN, delete_rate=0.2)
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        db = client[cfg.mongo_db]
        start = client.admin.command("hello")["operationTime"]
        first = generate(config, DAY, db, cfg.kafka_bootstrap, cfg.topics.as_dict())
        placed = first.events_by_type["order_placed"]
        assert 0 < first.deleted_orders < placed
        assert db.orders.count_documents({}) == placed - first.deleted_orders
        second = generate(config, date(2026, 3, 4), db, cfg.kafka_bootstrap, cfg.topics.as_dict())
        assert second.deleted_orders > 0
        total = placed + second.events_by_type["order_placed"]
        assert db.orders.count_documents({}) == total - first.deleted_orders - second.deleted_orders
        with db.orders.watch(start_at_operation_time=start) as stream:
            deletes = 0
            while (change := stream.try_next()) is not None:
                deletes += change["operationType"] == "delete"
    assert deletes == first.deleted_orders + second.deleted_orders


def test_batch_size_changes_how_not_what(make_settings):
    a, b = make_settings("batch_a"), make_settings("batch_b")
    config = replace(CLEAN, delete_rate=0.1, mongo_poison_rate=0.2)
    with pymongo.MongoClient(a.mongo_uri, tz_aware=True) as client:
        results = []
        for cfg, batch in ((a, 7), (b, 5000)):
            for day in (DAY, date(2026, 3, 4)):
                results.append(generate(config, day, client[cfg.mongo_db], cfg.kafka_bootstrap, cfg.topics.as_dict(),
                                        batch_size=batch).events)  # fmt: skip
        assert results[:2] == results[2:]
        for name in ("orders", "customers", "products"):
            assert list(client[a.mongo_db][name].find().sort("_id")) == list(
                client[b.mongo_db][name].find().sort("_id")
            )


def test_a_step_run_again_after_a_crash_writes_the_same_shop(make_settings):
    """A crash before the state write: the re-run leaves MongoDB as the first attempt did, with the same event ids."""
    cfg = make_settings("rerun")
    config = replace(CLEAN, delete_rate=0.1)
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        db = client[cfg.mongo_db]
        generate(config, DAY, db, cfg.kafka_bootstrap, cfg.topics.as_dict())
        state = db[STATE].find_one({"_id": "state"})
        attempt = generate(config, date(2026, 3, 4), db, cfg.kafka_bootstrap, cfg.topics.as_dict())
        after = {name: list(db[name].find().sort("_id")) for name in ("orders", "customers", "products")}
        db[STATE].replace_one({"_id": "state"}, state)  # as if the attempt died just before its last write
        rerun = generate(config, date(2026, 3, 4), db, cfg.kafka_bootstrap, cfg.topics.as_dict())
        assert {name: list(db[name].find().sort("_id")) for name in after} == after
    assert rerun.events and rerun.events.items() <= attempt.events.items()
    assert rerun.events_by_type["order_placed"] == attempt.events_by_type["order_placed"]


def test_generate_command_scales_and_injects_the_faults_it_is_asked_for(make_settings):
    env = pipeline_env(make_settings("cli"))
    knobs = ["--customers", "10", "--products", "4", "--orders-per-day", "4", "--sessions-per-day", "2", "--days", "2"]
    faults = ["--kafka-poison-rate", "0.5", "--kafka-poison-kinds", "invalid_json,future_time",
              "--mongo-poison-rate", "0.5", "--mongo-poison-kinds", "negative_amount", "--delete-rate", "0.3"]  # fmt: skip
    result = CliRunner().invoke(cli, ["generate", *knobs, "--scale", "2", "--batch-size", "3", *faults,
                                      "--end-date", "2026-03-02"], env=env, catch_exceptions=False)  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["customers"] == 20 and summary["products"] == 8
    poisoned = {k for k, n in summary["poison"].items() if n}
    assert poisoned == {"kafka.invalid_json", "kafka.future_time", "mongodb.negative_amount"}
    assert summary["deleted_orders"] > 0

    bad = CliRunner().invoke(cli, ["generate", "--kafka-poison-kinds", "gibberish"], env=env)
    assert bad.exit_code == 2 and "unknown kinds ['gibberish']" in bad.output
