"""The ingest stage against real MongoDB and Kafka: exactly-once loads, crashes at every step, the lock, follow mode."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pymongo
import pytest

from ingest.kafka import ENVELOPE_COLUMNS
from millpond.errors import PipelineBusy, StageFailed
from millpond.generator import GeneratorConfig, generate
from millpond.health import Heartbeat
from millpond.settings import Settings
from millpond.stages.ingest import (
    FOLLOW_HEARTBEAT,
    declared_landed_tables,
    ensure_landed_tables,
    follow,
    kafka_credentials,
    missing_landed_tables,
    run_ingest,
)
from tests.support.pipelines import isolated_settings, pipeline_env
from tests.support.ports import free_port
from tests.support.warehouse import landed_row_counts

# Holds the pipeline lock from another process (the lock is re-entrant within one) for argv[2] seconds.
HOLD_LOCK = """
import sys, time
from pathlib import Path
from millpond.locking import pipeline_lock
with pipeline_lock(Path(sys.argv[1]), "transform"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""
SMALL = GeneratorConfig(customers=30, products=10, orders_per_day=15, sessions_per_day=5, days=3, malformed_rate=0.05)
STREAMS = ("clickstream", "payments", "shipments")


def _generate(cfg: Settings, day: date, config: GeneratorConfig = SMALL):
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        return generate(config, day, client[cfg.mongo_db], cfg.kafka_bootstrap, cfg.topics.as_dict())


def _hold_lock(cfg: Settings, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(cfg.data_dir), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def _truth(cfg: Settings) -> dict[str, int]:
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        db = client[cfg.mongo_db]
        return {"mongo_orders": db.orders.count_documents({}), "mongo_customers": db.customers.count_documents({})}


def _kafka_rows(cfg: Settings) -> tuple[int, int]:
    """Landed Kafka rows and Kafka dead letters."""
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        rows = sum(con.execute(f"select count(*) from bronze.kafka_{s}").fetchone()[0] for s in STREAMS)
        dead = con.execute("select count(*) from bronze.dead_letter where source = 'kafka'").fetchone()[0]
    return rows, dead


def _assert_exactly_once(cfg: Settings, produced_messages: int) -> None:
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        dup_keys = con.execute(
            'select count(*) from (select topic, partition, "offset" from bronze.kafka_clickstream group by all having count(*) > 1)'
        ).fetchone()[0]
        dup_orders = con.execute("select count(*) - count(distinct _id) from bronze.mongo_orders").fetchone()[0]
        orphan_items = con.execute(
            "select count(*) from bronze.mongo_orders__line_items li "
            "left join bronze.mongo_orders o on li._dlt_root_id = o._dlt_id where o._id is null"
        ).fetchone()[0]
    assert sum(_kafka_rows(cfg)) == produced_messages  # nothing lost, nothing twice
    assert dup_keys == 0 and dup_orders == 0 and orphan_items == 0
    counts = landed_row_counts(cfg.warehouse)
    for table, expected in _truth(cfg).items():
        assert counts[table] == expected


def test_kafka_credentials_come_from_the_millpond_kafka_settings(tmp_path: Path):
    cfg = Settings(
        data_dir=tmp_path,
        kafka_bootstrap="b1:9093,b2:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="millpond",
        kafka_sasl_password="pw",
        kafka_ssl_ca_location=tmp_path / "ca.pem",
    )
    config = kafka_credentials(cfg).consumer_config(timeout_s=1)
    assert {k: config[k] for k in ("bootstrap.servers", "security.protocol", "sasl.mechanisms", "sasl.username")} == {
        "bootstrap.servers": "b1:9093,b2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "PLAIN",
        "sasl.username": "millpond",
    }
    assert config["sasl.password"] == "pw" and config["ssl.ca.location"] == str(tmp_path / "ca.pem")


def test_ingest_loads_everything_once_and_quarantines_bad_records(make_settings):
    cfg = make_settings()
    first = _generate(cfg, date(2026, 3, 3))
    report = run_ingest(cfg)
    assert report.dead_letters == first.malformed > 0
    _assert_exactly_once(cfg, first.messages)
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        reasons = [r[0] for r in con.execute("select distinct reason from bronze.dead_letter").fetchall()]
        columns = {
            table: [r[0] for r in con.execute(f"describe bronze.{table}").fetchall() if not r[0].startswith("_dlt")]
            for table in ("dead_letter", "kafka_clickstream")
        }
    assert all(reasons) and any("JSON" in r or "event_id" in r or "event_ts" in r for r in reasons)
    # each table has its own columns: the dead letters carry none of the Kafka event envelope
    assert columns["dead_letter"] == [
        "dead_letter_id", "source", "origin", "partition", "offset", "record_key", "raw_value", "reason", "received_at",
    ]  # fmt: skip
    assert columns["kafka_clickstream"] == list(ENVELOPE_COLUMNS)
    assert missing_landed_tables(cfg) == []  # every declared landed table exists after a run

    assert not run_ingest(cfg).rows  # nothing new: nothing loaded
    second = _generate(cfg, date(2026, 3, 4))
    run_ingest(cfg)
    _assert_exactly_once(cfg, first.messages + second.messages)


def test_mongo_document_breaking_contract_goes_to_dead_letter(make_settings):
    cfg = make_settings()
    _generate(cfg, date(2026, 3, 3))
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        order = client[cfg.mongo_db].orders.find_one()
        client[cfg.mongo_db].orders.update_one({"_id": order["_id"]}, {"$set": {"status": "teleported"}})
    run_ingest(cfg)
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        row = con.execute(
            "select origin, record_key, reason from bronze.dead_letter where source = 'mongodb'"
        ).fetchall()
    assert row == [("orders", order["_id"], "unknown order status 'teleported'")]


def test_declared_landed_tables_are_created_empty_and_then_filled_by_dlt(make_settings):
    cfg = make_settings()
    declared = declared_landed_tables(cfg)
    assert ensure_landed_tables(cfg) == list(declared)
    assert ensure_landed_tables(cfg) == []  # idempotent
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        cols = [r[0] for r in con.execute("describe bronze.kafka_shipments").fetchall()]
    assert cols == list(declared["kafka_shipments"])
    # dlt loads into the pre-created tables and adds the columns they lack
    produced = _generate(cfg, date(2026, 3, 3)).messages
    run_ingest(cfg)
    _assert_exactly_once(cfg, produced)


@pytest.mark.parametrize("crash_after", ["extract", "normalize"])
def test_rerun_after_injected_crash_loses_and_duplicates_nothing(make_settings, crash_after: str):
    cfg = make_settings()
    produced = _generate(cfg, date(2026, 3, 3)).messages
    env = pipeline_env(cfg) | {"MILLPOND_CRASH_AFTER": crash_after}
    crashed = subprocess.run([sys.executable, "-m", "millpond", "ingest"], env=env, capture_output=True, timeout=300)
    assert crashed.returncode == 137, crashed.stderr.decode()[-2000:]
    ok = subprocess.run(
        [sys.executable, "-m", "millpond", "ingest"], env=pipeline_env(cfg), capture_output=True, timeout=300
    )
    assert ok.returncode == 0, ok.stderr.decode()[-2000:]
    _assert_exactly_once(cfg, produced)


def test_rerun_after_sigkill_during_load(make_settings):
    cfg = make_settings()
    produced = _generate(cfg, date(2026, 3, 3)).messages
    proc = subprocess.Popen(
        [sys.executable, "-m", "millpond", "ingest"],
        env=pipeline_env(cfg),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if b"ingest.load.start" in line:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    ok = subprocess.run(
        [sys.executable, "-m", "millpond", "ingest"], env=pipeline_env(cfg), capture_output=True, timeout=300
    )
    assert ok.returncode == 0, ok.stderr.decode()[-2000:]
    _assert_exactly_once(cfg, produced)


def test_ingest_waits_for_the_lock_up_to_the_timeout(make_settings):
    cfg = make_settings().model_copy(update={"lock_timeout_s": 60.0})
    produced = _generate(cfg, date(2026, 3, 3)).messages
    holder = _hold_lock(cfg, 2)  # released well within the timeout
    try:
        run_ingest(cfg)
        assert holder.poll() is not None  # it got the lock only once the holder had finished
    finally:
        holder.kill()
        holder.wait(timeout=30)
    _assert_exactly_once(cfg, produced)


def test_ingest_gives_up_on_the_lock_after_the_timeout(make_settings):
    cfg = make_settings().model_copy(update={"lock_timeout_s": 1.0})
    holder = _hold_lock(cfg, 600)
    try:
        with pytest.raises(PipelineBusy, match="MILLPOND_LOCK_TIMEOUT_S") as busy:
            run_ingest(cfg)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert f"pid {holder.pid}, stage transform" in str(busy.value)  # names who holds it
    assert str(cfg.data_dir / "pipeline.lock") in str(busy.value) and "waited 1s" in str(busy.value)
    assert not cfg.warehouse.exists()


def test_follow_mode_loads_new_messages_each_cycle(make_settings):
    cfg = make_settings()
    produced = _generate(cfg, date(2026, 3, 3)).messages
    follow(cfg, interval_s=0, max_cycles=2)
    # follow mode reads Kafka only: the MongoDB tables are there (declared), but empty
    assert landed_row_counts(cfg.warehouse)["mongo_orders"] == 0
    assert sum(_kafka_rows(cfg)) == produced
    beat = Heartbeat(cfg.data_dir, FOLLOW_HEARTBEAT).read()
    assert beat is not None and beat["cycle"] == 2 and beat["rows"] == 0  # the second cycle found nothing new


def test_follow_skips_its_cycle_while_another_stage_holds_the_lock(make_settings):
    cfg = make_settings().model_copy(update={"lock_timeout_s": 600.0})  # the follower never waits
    _generate(cfg, date(2026, 3, 3))
    holder = _hold_lock(cfg, 600)
    try:
        follow(cfg, interval_s=0, max_cycles=2)  # busy both times: no error, no load, still alive
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert not cfg.warehouse.exists()
    busy = Heartbeat(cfg.data_dir, FOLLOW_HEARTBEAT).read()
    assert busy is not None and busy["busy"] is True and busy["cycle"] == 2
    follow(cfg, interval_s=0, max_cycles=1)
    loaded = Heartbeat(cfg.data_dir, FOLLOW_HEARTBEAT).read()
    assert loaded is not None and "busy" not in loaded and loaded["rows"] > 0


def test_follow_gives_up_after_consecutive_failures(make_settings):
    cfg = make_settings().model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}", "io_timeout_s": 2})
    with pytest.raises(StageFailed, match="ingestion failed"):
        follow(cfg, interval_s=0, max_cycles=10, max_consecutive_failures=2)
    assert Heartbeat(cfg.data_dir, FOLLOW_HEARTBEAT).read() is None


def test_offsets_beyond_a_recreated_topic_fail_loudly(tmp_path, mongo):
    """A broker that lost its log (Tansu keeps it in memory) must not make ingest re-use offsets."""
    from millpond.services import KafkaBroker

    broker = KafkaBroker(tmp_path / "broker", free_port())
    broker.start()
    try:
        cfg = isolated_settings(tmp_path / "data", mongo, broker, "recreated")
        _generate(cfg, date(2026, 3, 3))
        run_ingest(cfg)
        broker.stop()
        broker.start()  # empty log, offsets start again at 0
        with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
            client.drop_database(cfg.mongo_db)
        _generate(
            cfg,
            date(2026, 3, 3),
            GeneratorConfig(customers=3, products=2, orders_per_day=1, sessions_per_day=1, days=1),
        )
        before = landed_row_counts(cfg.warehouse)
        with pytest.raises(StageFailed, match=r"no longer on the broker|stored offsets are beyond its end"):
            run_ingest(cfg.model_copy(update={"io_timeout_s": 5}))
        assert landed_row_counts(cfg.warehouse)["kafka_clickstream"] == before["kafka_clickstream"]
    finally:
        broker.stop()
