"""Reads bounded per run (the follower's micro-batches), a position at the broker's first offset, and no global config."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import dlt
import duckdb
from confluent_kafka import Producer

from ingest.kafka import ARROW_NORMALIZER_CONFIG, KafkaCredentials, kafka_source
from ingest.kafka.reader import ReadOptions, read_topic


def _topic() -> str:
    return f"bounded.{uuid.uuid4().hex[:8]}.clickstream"


def _produce(bootstrap: str, topic: str, first: int, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for n in range(first, first + count):
        body = {"event_id": f"e{n}", "event_type": "page_view", "event_ts": "2026-03-01T10:00:00Z",
                "session_id": "s1"}  # fmt: skip
        producer.produce(topic, key=b"k", value=json.dumps(body).encode(), partition=0)
    assert producer.flush(30) == 0


def _read(kafka, topic: str, state: dict, **options) -> list:
    credentials = KafkaCredentials(bootstrap_servers=kafka.uri)
    return list(read_topic(credentials, "clickstream", topic, None, state, ReadOptions(timeout_s=10, **options)))


def _event_ids(items: list) -> list[str]:
    return [event_id for item in items for event_id in item.data.column("event_id").to_pylist()]


def test_a_read_bounded_by_batches_stops_early_and_the_next_read_goes_on_from_there(kafka):
    topic = _topic()
    _produce(kafka.uri, topic, 0, 250)
    state: dict = {}

    first = _read(kafka, topic, state, max_batch_messages=40, max_batches=2)
    assert [len(item.data) for item in first] == [40, 40]  # two micro-batches, not the whole backlog
    assert state["caught_up"] is False and state["positions"]["0"]["offset"] == 80

    rest = _read(kafka, topic, state, max_batch_messages=40)  # unbounded: to the end of the partition
    assert state["caught_up"] is True and state["positions"]["0"]["offset"] == 250
    assert _event_ids(first) + _event_ids(rest) == [f"e{n}" for n in range(250)]  # each message once, in order


def test_a_position_at_the_brokers_first_offset_starts_there_without_a_recreated_topic(kafka):
    """A quiet partition trimmed by retention: the message read last is gone, the next offset is the broker's first.

    Tansu cannot trim a log (no retention, no DeleteRecords), so its first offset (low
    watermark) is always 0; a stored position whose next offset is 0 is the same state: there
    is no message before it to re-read, and nothing was lost.
    """
    topic = _topic()
    _produce(kafka.uri, topic, 0, 3)
    gone = {"offset": 0, "ts": 1_700_000_000_000, "sha256": "0" * 64}  # the last message read is not there
    state: dict = {"positions": {"0": dict(gone)}}

    items = _read(kafka, topic, state)

    assert _event_ids(items) == ["e0", "e1", "e2"]
    assert state["positions"]["0"]["offset"] == 3


def test_the_source_leaves_dlts_global_config_alone(tmp_path: Path, kafka):
    topic = _topic()
    _produce(kafka.uri, topic, 0, 2)
    pipeline = dlt.pipeline(
        pipeline_name=f"plain_{uuid.uuid4().hex[:8]}",
        destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")),
        dataset_name="bronze",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    pipeline.run(kafka_source(KafkaCredentials(bootstrap_servers=kafka.uri), {"clickstream": topic}, timeout_s=10))
    assert all(dlt.config.get(key) is None for key in ARROW_NORMALIZER_CONFIG)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from bronze.kafka_clickstream").fetchone() == (2,)
