"""Kafka ingestion: the dlt pipeline vs a bare consumer that bulk-inserts into DuckDB."""

from __future__ import annotations

import statistics
from pathlib import Path

import pyarrow as pa
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from bench.harness import Comparison, Dataset, compare, land_arrow_tables, scratch, time_once
from ingest.kafka import KafkaCredentials
from millpond.stages.ingest import run_ingest

# librdkafka's default fetch.wait.max.ms (500) makes the broker hold the last fetch of every
# partition until it expires; a bounded read-to-the-end wants it short.
FAST_FETCH_MS = 10


def consume_topic(
    bootstrap: str, topic: str, fetch_wait_ms: int | None = FAST_FETCH_MS, timeout_s: float = 30.0
) -> pa.Table:
    """Every message of ``topic`` from the beginning to the end of each partition, as an Arrow table.

    ``fetch_wait_ms=None`` keeps librdkafka's default.
    """
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": "millpond-bench-baseline",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": True,
    }
    if fetch_wait_ms is not None:
        config["fetch.wait.max.ms"] = fetch_wait_ms
    consumer = Consumer(config)
    cols: dict[str, list] = {"topic": [], "partition": [], "offset": [], "message_key": [], "value": []}
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        pending = set(metadata.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(pending)])
        while pending:
            msg = consumer.poll(timeout_s)
            if msg is None:
                raise KafkaException(f"no message from {topic} within {timeout_s}s")
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                    continue
                raise KafkaException(error)
            key = msg.key()
            cols["topic"].append(topic)
            cols["partition"].append(msg.partition())
            cols["offset"].append(msg.offset())
            cols["message_key"].append(key.decode("utf-8", "replace") if key else None)
            cols["value"].append((msg.value() or b"").decode("utf-8", "replace"))
    finally:
        consumer.close()
    return pa.table(cols)


def baseline_ingest(ds: Dataset, warehouse: Path, fetch_wait_ms: int | None = FAST_FETCH_MS) -> int:
    """Read every topic and land the raw messages with one Arrow insert per topic: no parsing, no state."""
    return land_arrow_tables(
        warehouse,
        (
            (f"kafka_{stream}", consume_topic(ds.svc.kafka.uri, topic, fetch_wait_ms))
            for stream, topic in ds.topics().items()
        ),
    )


def run(ds: Dataset, repeat: int, warmup: int = 1) -> Comparison:
    """Full load of every generated message into a fresh warehouse, both ways."""
    root = ds.svc.root

    def candidate() -> None:
        with scratch(root, "kafka-dlt") as data_dir:
            report = run_ingest(ds.settings(data_dir), mongo=False)
            loaded = sum(report.rows.values())
            if loaded != ds.messages:
                raise AssertionError(f"dlt loaded {loaded} rows, expected {ds.messages}")

    def baseline(fetch_wait_ms: int | None = FAST_FETCH_MS) -> None:
        with scratch(root, "kafka-base") as data_dir:
            loaded = baseline_ingest(ds, data_dir / "baseline.duckdb", fetch_wait_ms)
            if loaded != ds.messages:
                raise AssertionError(f"baseline loaded {loaded} rows, expected {ds.messages}")

    result = Comparison(
        name="kafka_ingest",
        title="Kafka → DuckDB",
        candidate="run_ingest(mongo=False): dlt extract/normalize/load, validation, dead letters, merge",
        baseline=(
            f"confluent-kafka consumer (fetch.wait.max.ms={FAST_FETCH_MS}) + one Arrow insert per topic "
            "(raw messages, no parsing)"
        ),
        rows=ds.messages,
        notes="rows = Kafka messages (incl. injected duplicates and malformed records)",
    )
    compare(result, candidate, baseline, repeat, warmup)
    # the same baseline with librdkafka's default fetch wait: how much of a read-to-the-end is broker
    # long-polling at the end of each partition
    default_fetch = statistics.median(time_once(lambda: baseline(None)) for _ in range(repeat))
    source_config = KafkaCredentials(bootstrap_servers=ds.svc.kafka.uri).consumer_config(timeout_s=30)
    result.extra = {
        "millpond_source_sets_fetch_wait": "fetch.wait.max.ms" in source_config,
        "baseline_default_fetch_wait_median_s": round(default_fetch, 4),
        "ratio_vs_default_fetch_wait_baseline": round(result.candidate_median / default_fetch, 3),
    }
    return result
