"""Dead letters against real Kafka: listed with what an operator needs, replayed exactly once after a contract fix."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from click.testing import CliRunner
from confluent_kafka import Producer

from ingest.kafka.contracts import SCHEMA_DIR
from millpond.cli import cli
from millpond.settings import Settings
from millpond.stages.dead_letters import list_dead_letters, pending_dead_letters, replay_dead_letters
from millpond.stages.ingest import run_ingest
from tests.support.pipelines import pipeline_env

NOW = datetime.now(UTC).replace(microsecond=0)


def _click(version: int, **fields: object) -> bytes:
    event = {
        "event_id": f"evt_{uuid.uuid4().hex[:12]}",
        "event_type": "page_view",
        "event_ts": NOW.isoformat(),
        "session_id": "ses_1",
        "schema_version": version,
        **fields,
    }
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


def _produce(cfg: Settings, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": cfg.kafka_bootstrap})
    for value in values:
        producer.produce(cfg.topics.clickstream, key=b"ses_1", value=value, headers=[("trace", b"\x00\xff")])
    assert producer.flush(30) == 0


def _landed(cfg: Settings) -> tuple[int, int, int]:
    """Landed clickstream rows, distinct positions, dead letters not replayed."""
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        rows, keys = con.execute(
            'select count(*), count(distinct (topic, "partition", "offset")) from bronze.kafka_clickstream'
        ).fetchone()
        pending = con.execute("select count(*) from bronze.dead_letter where replayed_at is null").fetchone()[0]
    return rows, keys, pending


def _kafka_only(cfg: Settings) -> Settings:
    """Only clickstream gets messages here: the other two topics may not exist."""
    return cfg.model_copy(update={"kafka_optional_topics": [cfg.topics.payments, cfg.topics.shipments]})


def _accepting_version_3(cfg: Settings, tmp_path: Path) -> Settings:
    """A contract change: the shipped schemas plus clickstream v3 (a copy of v2 with its own const)."""
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, schemas)
    v2 = json.loads((schemas / "clickstream" / "v2.json").read_text())
    v2["properties"]["schema_version"] = {"const": 3}
    (schemas / "clickstream" / "v3.json").write_text(json.dumps(v2))
    return cfg.model_copy(update={"kafka_schema_dir": schemas})


def test_quarantined_records_are_listed_and_replayed_once_after_a_contract_fix(make_settings, tmp_path):
    cfg = make_settings("dl")
    good, future, broken = _click(2), _click(3), _click(2, session_id=None)
    binary = b"\x00\x9f not json \xff"
    _produce(cfg, [good, future, future.replace(b"evt_", b"evt2_"), broken, binary])
    report = run_ingest(_kafka_only(cfg), mongo=False)
    assert report.quarantined == {
        "kafka": {"contract.unknown_schema_version": 2, "contract.missing_field": 1, "json.invalid": 1}
    }
    assert report.dead_letters == 4 and _landed(cfg) == (1, 1, 4)

    listed = list_dead_letters(cfg, source="kafka", error_class="contract.unknown_schema_version")
    assert len(listed) == 2 and all(r["origin"] == cfg.topics.clickstream for r in listed)
    assert all("schema_version" in r["reason"] and r["replayed_at"] is None for r in listed)
    assert listed[0]["headers"] == [{"key": "trace", "value_b64": "AP8="}]
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        kept = con.execute("select raw_bytes from bronze.dead_letter where error_class = 'json.invalid'").fetchone()[0]
    assert bytes(kept) == binary  # byte for byte

    assert replay_dead_letters(cfg).replayed == {}  # nothing passes the unchanged contracts
    dry = replay_dead_letters(cfg, dry_run=True)
    assert dry.still_failing == {"contract.unknown_schema_version": 2, "contract.missing_field": 1, "json.invalid": 1}

    cfg = _accepting_version_3(cfg, tmp_path)
    assert replay_dead_letters(cfg, dry_run=True).replayed == {cfg.topics.clickstream: 2}
    assert _landed(cfg) == (1, 1, 4)  # a dry run writes nothing
    replayed = replay_dead_letters(cfg, origin=cfg.topics.clickstream)
    assert replayed.replayed == {cfg.topics.clickstream: 2} and replayed.still_failing == {
        "contract.missing_field": 1,
        "json.invalid": 1,
    }
    assert _landed(cfg) == (3, 3, 2)
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        versions = con.execute("select schema_version, count(*) from bronze.kafka_clickstream group by 1 order by 1")
        assert versions.fetchall() == [(2, 1), (3, 2)]
        done = con.execute("select count(*) from bronze.dead_letter where replayed_at is not null").fetchone()[0]
    assert done == 2

    again = replay_dead_letters(cfg)
    assert again.replayed == {} and again.load_ids == []
    assert _landed(cfg) == (3, 3, 2)
    # a later ingest neither re-offers nor re-opens the replayed dead letters
    run_ingest(_kafka_only(cfg), mongo=False)
    assert _landed(cfg) == (3, 3, 2)


def test_dead_letters_cli_lists_json(make_settings):
    cfg = make_settings("dlcli")
    _produce(cfg, [_click(2, event_id=None)])
    env = pipeline_env(cfg) | {
        "MILLPOND_KAFKA_OPTIONAL_TOPICS": f"{cfg.topics.payments},{cfg.topics.shipments}",
        "MILLPOND_MONGO_MODE": "cursor",
    }
    runner = CliRunner()
    ingested = runner.invoke(cli, ["ingest"], env=env, catch_exceptions=False)
    assert ingested.exit_code == 0, ingested.output
    assert json.loads(ingested.stdout)["quarantined"] == {"kafka": {"contract.missing_field": 1}}
    failing = runner.invoke(cli, ["ingest", "--fail-on-dead-letters"], env=env, catch_exceptions=False)
    assert failing.exit_code == 0  # nothing new was quarantined by this run
    listed = runner.invoke(cli, ["dead-letters", "list", "--source", "kafka", "--limit", "5"], env=env)
    rows = json.loads(listed.stdout)
    assert [r["error_class"] for r in rows] == ["contract.missing_field"] and "event_id" in rows[0]["reason"]
    replay = runner.invoke(cli, ["dead-letters", "replay", "--dry-run"], env=env, catch_exceptions=False)
    assert json.loads(replay.stdout)["still_failing"] == {"contract.missing_field": 1}


def test_replay_reads_the_dead_letters_in_chunks_and_loads_each_once(make_settings, tmp_path):
    cfg = make_settings("dlchunks")
    _produce(cfg, [_click(3) for _ in range(7)] + [_click(2, session_id=None)])
    run_ingest(_kafka_only(cfg), mongo=False)
    assert _landed(cfg) == (0, 0, 8)
    chunks = [len(chunk) for chunk in pending_dead_letters(cfg, None, chunk_rows=3)]
    assert chunks == [3, 3, 2]  # never more than one chunk in memory

    fixed = _accepting_version_3(cfg, tmp_path)
    report = replay_dead_letters(fixed, chunk_rows=3)
    assert report.considered == 8 and report.replayed == {cfg.topics.clickstream: 7}
    assert report.still_failing == {"contract.missing_field": 1} and report.load_ids
    assert _landed(cfg) == (7, 7, 1)
    assert replay_dead_letters(fixed, chunk_rows=3).load_ids == []
    assert _landed(cfg) == (7, 7, 1)


def test_the_ingest_validates_with_the_configured_schema_dir(make_settings, tmp_path):
    cfg = _accepting_version_3(make_settings("dlschemas"), tmp_path)
    _produce(cfg, [_click(3), _click(4)])
    report = run_ingest(_kafka_only(cfg), mongo=False)
    assert report.quarantined == {"kafka": {"contract.unknown_schema_version": 1}}
    assert _landed(cfg) == (1, 1, 1)
