"""Faults with the real servers, through the ingest stage and `millpond` subprocesses.

* mongod restarted and the broker paused (SIGSTOP/SIGCONT) during a run, on servers of this
  module (the session broker keeps its in-memory log): an outage shorter than
  ``MILLPOND_IO_TIMEOUT_S`` is ridden out and the run succeeds; a longer one fails the run with
  one clear line naming the address and the setting. The next run catches up exactly.
* Poison of every Kafka and MongoDB kind mixed into good traffic, through `millpond run`: the
  good rows reach gold, every bad record is in ``bronze.dead_letter`` with its class and reason,
  the counts match the generator's per kind, the run publishes and reports them (exit 3 with
  ``--fail-on-dead-letters``).
* One order deleted, one updated and one inserted (pymongo, directly) between two `millpond run`s,
  in CDC mode (on the poisoned shop, after its run) and in cursor mode (deletes through the id
  reconciliation, changes after the lag): gold equals MongoDB, less the poisoned orders, after the
  second run.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pymongo
import pytest

from millpond.generator import GenerationResult, GeneratorConfig, generate
from millpond.services import KafkaBroker, MongoReplicaSet
from millpond.settings import Settings
from millpond.stages import ingest as ingest_stage
from millpond.stages.ingest import run_ingest
from millpond.stages.run import run_all
from tests.support import faults
from tests.support.landed import kafka_counts, mongo_counts
from tests.support.pipelines import isolated_settings, pipeline_env
from tests.support.ports import free_port

pytestmark = pytest.mark.slow
SMALL = GeneratorConfig(customers=30, products=10, orders_per_day=15, sessions_per_day=5, days=3)
FIRST_DAY = date(2026, 3, 3)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, machine_settings: Settings) -> Iterator[tuple[Any, Any]]:
    """A mongod and a broker of this module only, so restarting and pausing them disturbs no other test."""
    root = Path(tmp_path_factory.mktemp("fault-servers"))
    mongo = MongoReplicaSet(root, free_port(), machine_settings.mongod_bin)
    kafka = KafkaBroker(root, free_port(), machine_settings.tansu_bin)
    mongo.start()
    kafka.start()
    yield mongo, kafka
    kafka.stop()
    mongo.stop()


class Shop:
    """An isolated pipeline on the module's servers and what the generator has produced so far."""

    def __init__(self, cfg: Settings, mongo: MongoReplicaSet, kafka: KafkaBroker) -> None:
        self.cfg, self.mongo, self.kafka = cfg, mongo, kafka
        self.produced = 0
        self.day = FIRST_DAY

    def generate(self) -> None:
        with pymongo.MongoClient(self.cfg.mongo_uri, tz_aware=True) as client:
            result = generate(
                SMALL, self.day, client[self.cfg.mongo_db], self.cfg.kafka_bootstrap, self.cfg.topics.as_dict()
            )
        self.produced += result.messages
        self.day = date.fromordinal(self.day.toordinal() + 1)

    def assert_exact(self) -> None:
        assert kafka_counts(self.cfg) == (self.produced, 0)  # every message read once
        counts = mongo_counts(self.cfg)
        assert all(truth == landed and dups == 0 for truth, landed, dups in counts.values()), counts


@pytest.fixture
def shop(tmp_path: Path, servers: tuple[MongoReplicaSet, KafkaBroker]) -> Shop:
    mongo, kafka = servers
    cfg = isolated_settings(tmp_path / "data", mongo, kafka, "fault").model_copy(update={"io_timeout_s": 4.0})
    shop = Shop(cfg, mongo, kafka)
    shop.generate()
    return shop


def _one_clear_line(proc: faults.Finished, *needles: str) -> str:
    """The failure's last stderr line, the only ``error:`` line: it names every needle; no traceback, no raw
    librdkafka line."""
    lines = proc.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert proc.returncode == 1 and errors == lines[-1:], proc.stderr[-3000:]
    assert all(needle in errors[0] for needle in needles), errors[0]
    assert "Traceback" not in proc.stderr and not [line for line in lines if line.startswith("%")]
    return errors[0]


def test_mongod_restarted_mid_read_is_ridden_out_and_the_next_run_is_exact(shop: Shop, monkeypatch, caplog):
    cfg = shop.cfg.model_copy(update={"mongo_batch_size": 10})
    pages: list[Any] = []
    configured = ingest_stage.configured_mongo_source

    def with_restart(settings: Settings, collections: Any = None) -> Any:
        """The stage's MongoDB source; mongod restarts after its second page of orders, server cursors open."""
        source = configured(settings, collections)

        def step(item: Any) -> Any:
            pages.append(item)
            if len(pages) == 2:
                faults.restart(shop.mongo)
            return item

        source.resources["mongo_orders"].add_map(step)
        return source

    monkeypatch.setattr(ingest_stage, "configured_mongo_source", with_restart)
    run_ingest(cfg)
    assert len(pages) > 2, "the restart came mid-read"
    assert "mongodb.read.retry" in caplog.text
    monkeypatch.undo()
    shop.assert_exact()
    shop.generate()
    run_ingest(cfg)
    shop.assert_exact()


def test_mongod_down_longer_than_the_timeout_fails_with_one_clear_line_then_the_next_run_is_exact(shop: Shop):
    env = pipeline_env(shop.cfg)
    try:
        proc = faults.millpond(env, "ingest", marker="ingest.extract.start", action=shop.mongo.stop)
        assert proc.acted_at is not None
    finally:
        shop.mongo.start()
    address = f"127.0.0.1:{shop.mongo.port}"
    line = _one_clear_line(proc, "[ingest]", f"MongoDB at {address} is unreachable", "MILLPOND_MONGO_URI")
    assert proc.seconds - proc.acted_at < 4 * shop.cfg.io_timeout_s, line  # a bounded wait, not a hang
    run_ingest(shop.cfg)
    shop.assert_exact()


def test_broker_paused_shorter_than_the_timeout_is_ridden_out(shop: Shop):
    cfg = shop.cfg.model_copy(update={"io_timeout_s": 8.0})
    faults.pause_for(shop.kafka, 3.0)()  # the run starts against a broker that does not answer
    started = time.monotonic()
    report = run_ingest(cfg)
    assert time.monotonic() - started > 3.0, "the run waited for the broker"
    assert sum(n for table, n in report.rows.items() if table.startswith("kafka_")) > 0
    shop.assert_exact()


def test_broker_paused_longer_than_the_timeout_fails_with_one_clear_line_then_the_next_run_is_exact(shop: Shop):
    with faults.paused_later(shop.kafka) as pause:
        proc = faults.millpond(pipeline_env(shop.cfg), "ingest", marker="ingest.extract.start", action=pause)
    assert proc.acted_at is not None
    line = _one_clear_line(
        proc, "[ingest]", f"Kafka broker unreachable at {shop.kafka.uri}", "MILLPOND_KAFKA_BOOTSTRAP"
    )
    assert proc.seconds - proc.acted_at < 4 * shop.cfg.io_timeout_s, line
    run_ingest(shop.cfg)
    shop.assert_exact()


# -- poison, end to end ---------------------------------------------------------------------------
TODAY = datetime.now(UTC).date()
POISONED = GeneratorConfig(
    customers=40, products=12, orders_per_day=20, sessions_per_day=8, days=3,
    malformed_rate=0.0, kafka_poison_rate=0.08, mongo_poison_rate=0.25, oversized_bytes=1_100_000,
)  # fmt: skip
# A poisoned order, judged from the document alone (the generator's MongoDB kinds).
BAD_ORDER = {
    "$or": [
        {"customer_id": {"$exists": False}},
        {"updated_at": {"$not": {"$type": "date"}}},
        {"line_items.quantity": {"$type": "string"}},
        {"line_items.unit_price": {"$lt": 0}},
    ]
}


def kafka_kind(error_class: str, reason: str) -> str:
    """The generator's poison kind of a Kafka dead letter, from its error class and reason."""
    if error_class == "json.invalid":
        return "invalid_utf8" if "UTF-8" in reason else "invalid_json"
    if error_class == "contract.implausible_time":
        return "future_time" if "after now" in reason else "ancient_time"
    return {
        "contract.missing_field": "missing_field",
        "contract.type": "wrong_type",
        "contract.unknown_schema_version": "unknown_schema_version",
        "contract.value": "unknown_event_type",
        "size.oversized": "oversized",
    }[error_class]


def mongo_kind(reason: str) -> str:
    """The generator's poison kind of a MongoDB dead letter, from its reason."""
    for needle, kind in (
        ("'customer_id'", "missing_field"),
        ("missing required field 'updated_at'", "missing_updated_at"),
        ("field 'updated_at' has type", "non_date_updated_at"),
        ("invalid quantity", "wrong_type"),
        ("negative unit_price", "negative_amount"),
    ):
        if needle in reason:
            return kind
    raise AssertionError(f"no poison kind for {reason!r}")


def order_truth(
    cfg: Settings, exclude: dict[str, Any] | None = None
) -> tuple[set[str], dict[date, tuple[int, Decimal]]]:
    """The orders gold must hold (MongoDB's, less those matching ``exclude``) and their revenue per day."""
    ids: set[str] = set()
    daily: dict[date, list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    query = {"$nor": [exclude]} if exclude else {}
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        for order in client[cfg.mongo_db].orders.find(query):
            ids.add(order["_id"])
            day = order["created_at"].astimezone(UTC).date()
            daily[day][0] += 1
            if order["status"] != "cancelled":
                daily[day][1] += sum(i["unit_price"].to_decimal() * i["quantity"] for i in order["line_items"])
    return ids, {d: (n, r) for d, (n, r) in daily.items()}


def serving(cfg: Settings, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(cfg.serving), read_only=True) as con:
        return con.execute(sql).fetchall()


def assert_gold_orders(cfg: Settings, ids: set[str], daily: dict[date, tuple[int, Decimal]]) -> None:
    assert {r[0] for r in serving(cfg, "select order_id from gold.fct_orders")} == ids
    gold = {d: (n, r) for d, n, r in serving(cfg, "select order_date, orders, revenue from gold.agg_daily_revenue")}
    assert gold == daily


@dataclass
class Poisoned:
    """A shop with poison of every kind, after one `millpond run --fail-on-dead-letters` (CDC mode, the default)."""

    cfg: Settings
    env: dict[str, str]  # the environment of its `millpond` runs
    result: GenerationResult
    proc: faults.Finished
    published: list[tuple[Any, ...]]  # meta.publication's run ids right after that run
    letters: list[tuple[Any, ...]]  # bronze.dead_letter (source, origin, error_class, reason, record_key)


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory: pytest.TempPathFactory, mongo: MongoReplicaSet, kafka: KafkaBroker) -> Poisoned:
    """Built once for the poison test and for the CDC change test, which goes on from it. The poison test's
    checks hold before and after those changes (the run's output and dead letters are kept here; gold is
    compared with MongoDB as it is), so the two tests may run in either order."""
    cfg = isolated_settings(tmp_path_factory.mktemp("poison") / "data", mongo, kafka, "poison")
    env = pipeline_env(cfg) | {"MILLPOND_MONGO_MODE": cfg.mongo_mode}
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        result = generate(POISONED, TODAY - timedelta(days=1), client[cfg.mongo_db], cfg.kafka_bootstrap,
                          cfg.topics.as_dict())  # fmt: skip
    proc = faults.millpond(env, "run", "--fail-on-dead-letters", timeout_s=600)
    assert proc.returncode == 3, proc.stderr[-3000:]
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        letters = con.execute(
            "select source, origin, error_class, reason, record_key from bronze.dead_letter order by all"
        ).fetchall()
    return Poisoned(cfg, env, result, proc, serving(cfg, "select distinct run_id from meta.publication"), letters)


def test_poison_of_every_kind_is_dead_lettered_while_good_rows_reach_gold(poisoned: Poisoned):
    cfg, result, letters = poisoned.cfg, poisoned.result, poisoned.letters
    produced = {kind: n for kind, n in result.summary()["poison"].items() if n}
    assert {k.split(".", 1)[1] for k in produced if k.startswith("kafka.")} == set(POISONED.kafka_poison_kinds)
    assert {k.split(".", 1)[1] for k in produced if k.startswith("mongodb.")} == set(POISONED.mongo_poison_kinds)

    summary = json.loads(poisoned.proc.stdout)  # the run exited 3 (--fail-on-dead-letters)
    assert summary["stages"] == ["ingest", "transform", "check", "publish"]  # no audit stalled the run
    assert summary["dead_letters"] == sum(produced.values())
    assert poisoned.published == [(summary["run_id"],)]

    assert all(error_class and reason for _s, _o, error_class, reason, _k in letters)
    found = Counter(
        f"kafka.{kafka_kind(c, r)}" if source == "kafka" else f"mongodb.{mongo_kind(r)}"
        for source, _origin, c, r, _key in letters
    )
    assert found == produced
    by_class: dict[str, Counter[str]] = defaultdict(Counter)
    for source, _origin, error_class, _reason, _key in letters:
        by_class[source][error_class] += 1
    assert summary["quarantined"] == {source: dict(classes) for source, classes in by_class.items()}

    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        bad_ids = {doc["_id"] for doc in client[cfg.mongo_db].orders.find(BAD_ORDER, {"_id": 1})}
    assert {key for source, *_rest, key in letters if source == "mongodb"} == bad_ids
    good_ids, daily = order_truth(cfg, BAD_ORDER)
    assert bad_ids and not bad_ids & good_ids
    assert_gold_orders(cfg, good_ids, daily)
    events: Counter[tuple[date, str]] = Counter(
        (datetime.fromisoformat(e["event_ts"].replace("Z", "+00:00")).date(), e["event_type"])
        for e in result.events.values()
    )
    gold_events = {
        (d, t): n for d, t, n in serving(cfg, "select event_date, event_type, events from gold.agg_daily_events")
    }
    assert gold_events == dict(events)


# -- delete, update, insert between two runs ------------------------------------------------------
CHANGED = GeneratorConfig(customers=30, products=10, orders_per_day=12, sessions_per_day=4, days=3, malformed_rate=0.0)


def _delete_update_insert(cfg: Settings) -> tuple[str, str, str]:
    """Delete one paid order, cancel another, insert a new one on a day gold already holds (all three good
    orders, none of the poisoned ones); their ids."""
    now = datetime.now(UTC)
    good = {"$nor": [BAD_ORDER]}
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        orders = client[cfg.mongo_db].orders
        paid = orders.find({"status": "paid", **good}, {"_id": 1}).sort("_id").limit(2)
        deleted, updated = (o["_id"] for o in paid)
        template = orders.find_one({"status": "delivered", **good}) or orders.find_one(
            {"status": {"$ne": "cancelled"}, **good}
        )
        assert template is not None
        assert orders.delete_one({"_id": deleted}).deleted_count == 1
        orders.update_one(
            {"_id": updated},
            {"$set": {"status": "cancelled", "updated_at": now},
             "$push": {"status_history": {"status": "cancelled", "at": now}}},
        )  # fmt: skip
        created = template["created_at"]
        inserted = "ord_new_00000001"
        orders.insert_one(
            {**template, "_id": inserted, "status": "created", "status_history": [{"status": "created", "at": created}],
             "updated_at": now}
        )  # fmt: skip
    return deleted, updated, inserted


def _changes_reach_gold(cfg: Settings, env: dict[str, str], *, wait_s: float = 0.0) -> None:
    """On a built shop: delete/update/insert, `millpond run`: gold equals MongoDB (less the poisoned orders)."""
    deleted, updated, inserted = _delete_update_insert(cfg)
    assert deleted in {r[0] for r in serving(cfg, "select order_id from gold.fct_orders")}
    time.sleep(wait_s)
    second = faults.millpond(env, "run", timeout_s=600)
    assert second.returncode == 0, second.stderr[-3000:]
    ids, daily = order_truth(cfg, BAD_ORDER)
    assert deleted not in ids and {updated, inserted} <= ids
    assert_gold_orders(cfg, ids, daily)  # the deleted order left fct_orders and agg_daily_revenue
    status = dict(serving(cfg, "select order_id, status from gold.fct_orders"))
    assert status[updated] == "cancelled" and status[inserted] == "created"
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        truth = Counter(o["status"] for o in client[cfg.mongo_db].orders.find({"$nor": [BAD_ORDER]}, {"status": 1}))
    by_status = dict(serving(cfg, "select status, sum(orders)::int from gold.agg_daily_orders_by_status group by 1"))
    assert by_status == dict(truth)


def test_delete_update_insert_reach_gold_in_cdc_mode(poisoned: Poisoned):
    # the poisoned shop, built by `millpond run` in CDC mode: the changes come through the change streams
    assert poisoned.cfg.mongo_mode == "cdc"
    _changes_reach_gold(poisoned.cfg, poisoned.env)


def test_delete_update_insert_reach_gold_in_cursor_mode(make_settings):
    # every run reconciles ids, so the delete arrives at once; the changes are older than the lag when it scans
    overrides = {"mongo_mode": "cursor", "mongo_cursor_lag_s": 1.0, "mongo_reconcile_every": 1}
    cfg = make_settings("cursor").model_copy(update=overrides)
    env = pipeline_env(cfg) | {f"MILLPOND_{name.upper()}": str(value) for name, value in overrides.items()}
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        generate(CHANGED, TODAY - timedelta(days=1), client[cfg.mongo_db], cfg.kafka_bootstrap, cfg.topics.as_dict())
    run_all(cfg)  # the first run in process, the second through the CLI
    _changes_reach_gold(cfg, env, wait_s=1.5)
