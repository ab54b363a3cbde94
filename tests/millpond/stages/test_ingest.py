"""The ingest stage against real MongoDB and Kafka: exactly-once loads, crashes at every step, the lock, follow mode."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pymongo
import pytest
from confluent_kafka import Producer

from ingest.kafka import ENVELOPE_COLUMNS
from millpond.errors import PipelineBusy, StageFailed
from millpond.generator import GeneratorConfig, generate
from millpond.health import Heartbeat
from millpond.settings import Settings
from millpond.stages.destination import landed_client
from millpond.stages.follow import FOLLOW_HEARTBEAT, follow
from millpond.stages.ingest import commit_kafka_positions, kafka_credentials, make_pipeline, run_ingest
from millpond.stages.landed import (
    declared_landed_tables,
    ensure_landed_tables,
    missing_landed_tables,
)
from millpond.stages.source_admin import kafka_rebaseline
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


def _kafka_only(cfg: Settings) -> Settings:
    """Only clickstream gets messages: the other two topics may not exist."""
    return cfg.model_copy(update={"kafka_optional_topics": [cfg.topics.payments, cfg.topics.shipments]})


def _produce_clicks(cfg: Settings, count: int) -> None:
    producer = Producer({"bootstrap.servers": cfg.kafka_bootstrap, "linger.ms": 5})
    for n in range(count):
        event = {"event_id": f"evt_{n}", "event_type": "page_view", "event_ts": "2026-03-01T10:00:00Z",
                 "session_id": f"ses_{n % 7}"}  # fmt: skip
        producer.produce(cfg.topics.clickstream, key=b"k", value=json.dumps(event).encode(), partition=0)
    assert producer.flush(30) == 0


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


def _assert_landed_types_are_declared(cfg: Settings, tables: set[str] | None = None) -> None:
    """The parquet loads keep the column types the models read (decimals, TIMESTAMPTZ, JSON payload)."""
    aliases = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        for table, columns in declared_landed_tables(cfg).items():
            if tables is not None and table not in tables:
                continue
            actual = {r[0]: r[1] for r in con.execute(f'describe bronze."{table}"').fetchall()}
            wrong = {
                name: (kind, actual[name])
                for name, kind in columns.items()
                if name in actual
                and aliases.get(kind.replace(" ", ""), kind).replace(" ", "") != actual[name].replace(" ", "")
            }
            assert not wrong, (table, wrong)


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
    assert set(columns["dead_letter"]) >= {
        "dead_letter_id", "source", "origin", "partition", "offset", "record_key", "raw_value", "raw_bytes", "headers",
        "error_class", "reason", "first_seen_at", "received_at", "replayed_at",
    }  # fmt: skip
    assert not set(columns["dead_letter"]) & {"event_id", "event_type", "payload"}
    assert columns["kafka_clickstream"] == list(ENVELOPE_COLUMNS)
    assert sum(n for classes in report.quarantined.values() for n in classes.values()) == report.dead_letters
    assert missing_landed_tables(cfg) == []  # every declared landed table exists after a run
    _assert_landed_types_are_declared(cfg)

    assert not run_ingest(cfg).rows  # nothing new: nothing loaded
    second = _generate(cfg, date(2026, 3, 4))
    run_ingest(cfg)
    _assert_exactly_once(cfg, first.messages + second.messages)


def test_child_table_decimals_land_as_declared(make_settings):
    cfg = make_settings()
    _generate(cfg, date(2026, 3, 3))
    run_ingest(cfg, kafka=False)
    _assert_landed_types_are_declared(cfg, {"mongo_orders__line_items"})


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


def test_declared_columns_missing_from_an_existing_landed_table_are_added(tmp_path: Path):
    cfg = Settings(data_dir=tmp_path)
    declared = declared_landed_tables(cfg)
    cfg.warehouse.parent.mkdir(parents=True)
    with duckdb.connect(str(cfg.warehouse)) as con:  # a warehouse landed before _op/_deleted_at were declared
        con.execute("create schema bronze")
        con.execute('create table bronze.mongo_orders (_id varchar, "status" varchar)')
        con.execute("insert into bronze.mongo_orders values ('o1', 'paid')")
    changed = ensure_landed_tables(cfg)
    assert "mongo_orders.status" not in changed
    assert {"mongo_orders._op", "mongo_orders._deleted_at"} <= set(changed)
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        cols = {r[0] for r in con.execute("describe bronze.mongo_orders").fetchall()}
        assert con.execute("select _id, status, _deleted_at from bronze.mongo_orders").fetchall() == [
            ("o1", "paid", None)
        ]
    assert cols == set(declared["mongo_orders"])
    assert ensure_landed_tables(cfg) == []  # idempotent


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


def test_a_load_beyond_the_duckdb_memory_limit_names_the_setting_and_a_rerun_loads_it_once(make_settings):
    cfg = make_settings()
    produced = _generate(cfg, date(2026, 3, 3)).messages
    tight = cfg.model_copy(update={"duckdb_memory_limit": "1MB"})
    with pytest.raises(StageFailed) as failed:
        run_ingest(tight)
    assert "Out of Memory" in str(failed.value)
    assert failed.value.hint is not None and "MILLPOND_DUCKDB_MEMORY_LIMIT" in failed.value.hint
    assert "1MB" in failed.value.hint  # the limit the run had
    run_ingest(cfg)  # the pending package is loaded within the default limit
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


def _dead_letters(cfg: Settings) -> list[tuple[str, bytes]]:
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        rows = con.execute("select dead_letter_id, raw_bytes from bronze.dead_letter order by 1").fetchall()
    return [(str(key), bytes(raw)) for key, raw in rows]


def test_rebaseline_archives_the_old_topic_dead_letters_so_the_new_topic_own_are_kept(tmp_path, mongo):
    """A dead letter is keyed by its topic position: an old one left in place would hide the new topic's
    record at that position (its insert is skipped) and a replay could land the old record there."""
    from millpond.services import KafkaBroker
    from millpond.stages.dead_letters import replay_dead_letters

    broker = KafkaBroker(tmp_path / "broker", free_port())
    broker.start()
    try:
        cfg = _kafka_only(isolated_settings(tmp_path / "data", mongo, broker, "dlrebase"))
        producer = Producer({"bootstrap.servers": cfg.kafka_bootstrap})
        producer.produce(cfg.topics.clickstream, value=b"old: not json", partition=0)
        assert producer.flush(30) == 0
        run_ingest(cfg, mongo=False)
        assert _dead_letters(cfg) == [(f"kafka:{cfg.topics.clickstream}:0:0", b"old: not json")]

        broker.stop()
        broker.start()  # empty log: the new topic's first message is at offset 0 again
        producer = Producer({"bootstrap.servers": cfg.kafka_bootstrap})
        producer.produce(cfg.topics.clickstream, value=b"new: not json either", partition=0)
        assert producer.flush(30) == 0
        result = kafka_rebaseline(cfg, cfg.topics.clickstream)
        report = run_ingest(cfg, mongo=False)
        assert report.dead_letters == 1
        assert _dead_letters(cfg) == [(f"kafka:{cfg.topics.clickstream}:0:0", b"new: not json either")]
        assert result["archived_dead_letters"]["rows"] == 1
        with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
            archived = con.execute(f"select raw_bytes from {result['archived_dead_letters']['table']}").fetchall()
        assert [bytes(r[0]) for r in archived] == [b"old: not json"]
        assert replay_dead_letters(cfg).replayed == {}  # the new one still fails; the old one is not offered
    finally:
        broker.stop()


def test_rebaseline_after_a_recreated_topic(tmp_path, mongo):
    """A broker that lost its log (Tansu keeps it in memory) stops ingest until the topics are re-baselined."""
    from millpond.services import KafkaBroker

    broker = KafkaBroker(tmp_path / "broker", free_port())
    broker.start()
    try:
        cfg = isolated_settings(tmp_path / "data", mongo, broker, "recreated")
        _generate(cfg, date(2026, 3, 3))
        run_ingest(cfg, mongo=False)
        broker.stop()
        broker.start()  # empty log, offsets start again at 0
        with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
            client.drop_database(cfg.mongo_db)
        tiny = GeneratorConfig(customers=3, products=2, orders_per_day=1, sessions_per_day=1, days=1)
        produced = _generate(cfg, date(2026, 3, 3), tiny).messages
        before = landed_row_counts(cfg.warehouse)
        with pytest.raises(StageFailed, match=r"kafka-rebaseline\.md") as stopped:
            run_ingest(cfg.model_copy(update={"io_timeout_s": 5}), mongo=False)
        assert "TopicRecreated" not in str(stopped.value) and "[ingest]" in str(stopped.value)
        assert landed_row_counts(cfg.warehouse) == before  # nothing loaded, nothing skipped

        results = [kafka_rebaseline(cfg, topic) for topic in cfg.topics.as_dict().values()]
        assert all(r["cleared"] and r["previous_positions"] for r in results)
        assert sum(r["archived"]["rows"] for r in results) == sum(before[f"kafka_{s}"] for s in STREAMS)
        state = make_pipeline(cfg).state["sources"]["kafka"]["resources"]
        assert not any(f"kafka_{s}" in state for s in STREAMS)
        with duckdb.connect(str(cfg.warehouse), read_only=True) as con:  # the edit reached the stored state too
            stored = con.execute("select max(version) from bronze._dlt_pipeline_state").fetchone()[0]
        assert stored == make_pipeline(cfg).state["_state_version"]

        run_ingest(cfg, mongo=False)  # reads the new topics from their beginning
        with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
            fresh = con.execute(
                "select count(*) from (select _dlt_load_id from bronze.kafka_clickstream union all "
                "select _dlt_load_id from bronze.kafka_payments union all select _dlt_load_id from bronze.kafka_shipments"
                " union all select _dlt_load_id from bronze.dead_letter where source = 'kafka') "
                "where _dlt_load_id = (select max(load_id) from bronze._dlt_loads)"
            ).fetchone()[0]
        assert fresh == produced
    finally:
        broker.stop()


def _next_positions(cfg: Settings) -> dict[str, dict[int, int]]:
    """Topic -> partition -> the offset after the last message read (landed or quarantined)."""
    union = " union all ".join(
        [f'select topic, "partition", "offset" from bronze.kafka_{s}' for s in STREAMS]
        + ['select origin, "partition", "offset" from bronze.dead_letter where source = \'kafka\'']
    )
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        rows = con.execute(f'select topic, "partition", max("offset") + 1 from ({union}) group by all').fetchall()
    out: dict[str, dict[int, int]] = {}
    for topic, partition, offset in rows:
        out.setdefault(topic, {})[int(partition)] = int(offset)
    return out


def _committed(cfg: Settings) -> dict[str, dict[int, int]]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": cfg.kafka_bootstrap, "group.id": cfg.kafka_consumer_group})
    try:
        wanted = [TopicPartition(t, p) for t, parts in _next_positions(cfg).items() for p in parts]
        out: dict[str, dict[int, int]] = {}
        for tp in consumer.committed(wanted, timeout=10):
            out.setdefault(tp.topic, {})[tp.partition] = tp.offset
        return out
    finally:
        consumer.close()


def test_loads_are_parquet_files_and_positions_are_committed_to_the_consumer_group(make_settings):
    cfg = make_settings()
    produced = _generate(cfg, date(2026, 3, 3)).messages
    report = run_ingest(cfg, mongo=False)
    assert report.committed_offsets is True
    assert _committed(cfg) == _next_positions(cfg)  # lag 0 in standard Kafka tooling
    assert sum(_kafka_rows(cfg)) == produced
    loaded = cfg.dlt_dir / "pipelines" / "millpond_ingest" / "load" / "loaded"
    jobs = [p.name for p in loaded.glob("*/completed_jobs/*") if p.name.startswith(("kafka_", "dead_letter"))]
    # data jobs are parquet files (the .sql ones are dlt's merge follow-up jobs); no INSERT VALUES jobs
    assert any(name.endswith(".parquet") for name in jobs), jobs
    assert all(name.endswith((".parquet", ".sql")) for name in jobs), jobs


def test_intermediate_files_are_not_compressed(make_settings):
    cfg = make_settings()
    _generate(cfg, date(2026, 3, 3))
    env = pipeline_env(cfg) | {"MILLPOND_CRASH_AFTER": "extract"}
    crashed = subprocess.run([sys.executable, "-m", "millpond", "ingest"], env=env, capture_output=True, timeout=300)
    assert crashed.returncode == 137, crashed.stderr.decode()[-2000:]
    extracted = cfg.dlt_dir / "pipelines" / "millpond_ingest" / "normalize" / "extracted"
    files = [p for p in extracted.glob("*/new_jobs/*") if p.is_file()]
    assert files
    assert not [p.name for p in files if p.read_bytes()[:2] == b"\x1f\x8b"]  # gzip magic


def test_the_duckdb_settings_reach_the_connections_dlt_loads_with(tmp_path: Path):
    cfg = Settings(data_dir=tmp_path, duckdb_memory_limit="300MB", duckdb_threads=1)
    with make_pipeline(cfg).sql_client() as client:
        limit, threads, ordered = client.execute_sql(
            "select current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('preserve_insertion_order')"
        )[0]
    assert (limit, threads, ordered) == ("286.1 MiB", 1, False)


def test_the_post_load_steps_run_within_the_same_duckdb_bounds_as_the_load(tmp_path: Path):
    # collapse, landed ids and the quarantine counts scan whole landed tables: unbounded, they set the peak
    cfg = Settings(data_dir=tmp_path, duckdb_memory_limit="300MB", duckdb_threads=1)
    with landed_client(cfg) as client:
        limit, threads, ordered = client.sql_client.execute_sql(
            "select current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('preserve_insertion_order')"
        )[0]
    assert (limit, threads, ordered) == ("286.1 MiB", 1, False)


def test_the_landed_policies_an_ingest_applies_run_within_the_same_duckdb_bounds(
    make_settings, monkeypatch: pytest.MonkeyPatch
):
    from millpond.stages import retention

    seen: list[tuple[str, int]] = []
    drop = retention.drop_aged_out_arrivals

    def observed(con: duckdb.DuckDBPyConnection) -> int:
        seen.append(con.execute("select current_setting('memory_limit'), current_setting('threads')").fetchone())
        return drop(con)

    monkeypatch.setattr(retention, "drop_aged_out_arrivals", observed)
    cfg = make_settings().model_copy(update={"duckdb_memory_limit": "300MB", "duckdb_threads": 1})
    _generate(cfg, date(2026, 3, 3))
    run_ingest(cfg, mongo=False)
    assert seen == [("286.1 MiB", 1)]


def test_by_default_the_warehouse_loads_with_bounded_memory_on_one_thread(tmp_path: Path):
    with make_pipeline(Settings(data_dir=tmp_path)).sql_client() as client:
        limit, threads, temp_dir = client.execute_sql(
            "select current_setting('memory_limit'), current_setting('threads'), current_setting('temp_directory')"
        )[0]
    assert (limit, threads) == ("122.0 MiB", 1)
    assert Path(temp_dir).is_relative_to(tmp_path)  # DuckDB spills inside the data dir


def test_load_jobs_run_one_at_a_time(make_settings, monkeypatch: pytest.MonkeyPatch):
    from dlt.destinations.impl.duckdb.duck import DuckDbCopyJob

    running, most = [0], [0]
    copy = DuckDbCopyJob.run

    def observed(job: DuckDbCopyJob) -> None:
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            time.sleep(0.2)  # long enough for a parallel load to start its other jobs meanwhile
            copy(job)
        finally:
            running[0] -= 1

    monkeypatch.setattr(DuckDbCopyJob, "run", observed)
    cfg = make_settings()
    _generate(cfg, date(2026, 3, 3))
    report = run_ingest(cfg)
    assert len([t for t, n in report.rows.items() if n]) > 2  # several tables, so several jobs to run
    assert most[0] == 1


def test_topics_are_read_one_after_another(make_settings, monkeypatch: pytest.MonkeyPatch):
    """One Kafka consumer, with its prefetch queue, is open at a time, not one per topic."""
    from ingest.kafka.helpers import SourceConsumer

    opened, open_now, most = [0], [0], [0]
    start, close = SourceConsumer.__init__, SourceConsumer.close

    def counted_start(consumer: SourceConsumer, *args: object) -> None:
        start(consumer, *args)  # type: ignore[arg-type]
        opened[0] += 1
        open_now[0] += 1
        most[0] = max(most[0], open_now[0])

    def counted_close(consumer: SourceConsumer) -> None:
        open_now[0] -= 1
        close(consumer)

    monkeypatch.setattr(SourceConsumer, "__init__", counted_start)
    monkeypatch.setattr(SourceConsumer, "close", counted_close)
    cfg = make_settings().model_copy(update={"kafka_max_batch_messages": 5})  # several batches per topic
    _generate(cfg, date(2026, 3, 3))
    report = run_ingest(cfg, mongo=False)
    assert all(report.rows[f"kafka_{stream}"] > 10 for stream in STREAMS)
    assert opened[0] >= len(STREAMS)
    assert most[0] == 1


def test_a_commit_failure_after_a_good_load_is_a_warning(make_settings):
    cfg = make_settings()
    produced = _generate(cfg, date(2026, 3, 3)).messages
    run_ingest(cfg, mongo=False)
    # the broker is gone by the time of the commit: a warning, the load stands, dlt state is the truth
    gone = cfg.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{free_port()}", "io_timeout_s": 2})
    started = time.monotonic()
    assert commit_kafka_positions(gone, make_pipeline(cfg)) is False
    # bounded by the I/O timeout (with room for a loaded machine), not by librdkafka's own retries
    assert time.monotonic() - started < 15
    assert sum(_kafka_rows(cfg)) == produced


def test_follow_finishes_its_batch_on_sigterm_and_exits_0(make_settings):
    cfg = make_settings()
    produced = _generate(cfg, date(2026, 3, 3)).messages
    proc = subprocess.Popen(
        [sys.executable, "-m", "millpond", "ingest", "--follow", "--interval", "30"],
        env=pipeline_env(cfg),
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if b"ingest.load.start" in line:  # mid-batch: extracted and normalized, not loaded
            proc.send_signal(signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (b"".join(seen) + err).decode()[-3000:]
    assert json.loads(out)["cycles"] == 1
    assert b"ingest.follow.stopped" in err
    assert sum(_kafka_rows(cfg)) == produced  # the batch landed whole
    assert _committed(cfg) == _next_positions(cfg)
    beat = Heartbeat(cfg.data_dir, FOLLOW_HEARTBEAT).read()
    assert beat is not None and beat["cycle"] == 1


def test_follow_reads_a_backlog_in_micro_batches_and_stops_on_sigterm_within_seconds(make_settings):
    cfg = _kafka_only(make_settings())
    produced = 3_000
    _produce_clicks(cfg, produced)
    env = pipeline_env(cfg) | {
        "MILLPOND_KAFKA_OPTIONAL_TOPICS": f"{cfg.topics.payments},{cfg.topics.shipments}",
        "MILLPOND_KAFKA_MAX_BATCH_MESSAGES": "200",  # a micro-batch is one batch of 200 messages per topic
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "millpond", "ingest", "--follow", "--interval", "30"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if b"ingest.follow.cycle" in line:  # the first micro-batch landed; the next one is under way
            proc.send_signal(signal.SIGTERM)
            break
    signalled = time.monotonic()
    out, err = proc.communicate(timeout=120)
    stopped_after = time.monotonic() - signalled
    assert proc.returncode == 0, (b"".join(seen) + err).decode()[-3000:]
    assert stopped_after < 15, stopped_after
    landed, dead = _kafka_rows(cfg)
    assert dead == 0 and 0 < landed < produced  # the backlog was not read in one go
    assert json.loads(out)["cycles"] <= 3
    assert _committed(cfg) == _next_positions(cfg)

    report = run_ingest(cfg, mongo=False)  # a batch run reads the rest to the end
    assert report.kafka_caught_up is True
    assert _kafka_rows(cfg) == (produced, 0)
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        offsets = con.execute(
            'select count(distinct "offset"), min("offset"), max("offset") from bronze.kafka_clickstream'
        )
        assert offsets.fetchone() == (produced, 0, produced - 1)  # each message exactly once


def test_a_follow_cycle_that_stops_at_its_bound_is_followed_at_once(make_settings):
    cfg = _kafka_only(make_settings()).model_copy(update={"kafka_max_batch_messages": 100, "follow_max_batches": 2})
    _produce_clicks(cfg, 450)
    started = time.monotonic()
    assert follow(cfg, interval_s=60, max_cycles=3) == 3  # no 60 s wait while there is a backlog
    assert time.monotonic() - started < 50
    assert _kafka_rows(cfg) == (450, 0)  # 200 + 200 + 50
    beat = Heartbeat(cfg.data_dir, FOLLOW_HEARTBEAT).read()
    assert beat is not None and beat["rows"] == 50


def test_a_batch_ingest_loads_a_backlog_in_packages_bounded_by_kafka_batches_per_load(make_settings):
    cfg = _kafka_only(make_settings()).model_copy(update={"kafka_max_batch_messages": 100, "kafka_batches_per_load": 2})
    _produce_clicks(cfg, 450)
    report = run_ingest(cfg, mongo=False)
    assert report.kafka_caught_up is True
    assert report.rows["kafka_clickstream"] == 450
    assert len(report.load_ids) == 3  # 200 + 200 + 50
    assert _kafka_rows(cfg) == (450, 0)
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        per_load = con.execute(
            'select count(*), count(distinct "offset") from bronze.kafka_clickstream group by _dlt_load_id order by 1'
        ).fetchall()
    assert per_load == [(50, 50), (200, 200), (200, 200)]
    assert _committed(cfg) == _next_positions(cfg)
