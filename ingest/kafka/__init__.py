"""Kafka source: one append-only table per topic, offsets kept in dlt state.

Each run reads every partition from the offset after the last loaded message until the broker
reports the end of the partition, so a run is bounded. Offsets live in the resource state,
which dlt commits with the load package: a crashed run re-reads the same messages, and the
merge on ``(topic, partition, offset)`` keeps that idempotent (at-least-once + dedup).
Messages that are not valid events go to the dead-letter table with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import dlt
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from dlt.sources import DltResource

from ingest.dead_letter import dead_letter
from ingest.kafka.events import parse_event

PAGE_SIZE = 1_000  # rows handed to dlt at once: per-item overhead dominated one-row yields

ENVELOPE_COLUMNS: dict[str, Any] = {
    "topic": {"data_type": "text"},
    "partition": {"data_type": "bigint"},
    "offset": {"data_type": "bigint"},
    "message_key": {"data_type": "text"},
    "message_ts": {"data_type": "timestamp"},
    "event_id": {"data_type": "text"},
    "event_type": {"data_type": "text"},
    "event_ts": {"data_type": "timestamp"},
    "payload": {"data_type": "json"},
    "_ingested_at": {"data_type": "timestamp"},
}


@dlt.source(name="kafka")
def kafka_source(
    bootstrap_servers: str = dlt.config.value,
    topics: Mapping[str, str] = dlt.config.value,
    timeout_s: float = 30.0,
    max_messages: int | None = None,
) -> Iterator[DltResource]:
    """One resource per stream (``kafka_<stream>``), e.g. ``kafka_clickstream`` for ``shop.clickstream``."""
    for stream, topic in topics.items():
        # The table hints travel with each page (a table variant, like the dead letters) instead of
        # being resource hints: dlt copies resource hints into every table a resource dispatches to,
        # which gave raw.dead_letter ten always-NULL envelope columns.
        table = dlt.mark.make_hints(
            table_name=f"kafka_{stream}",
            primary_key=["topic", "partition", "offset"],
            write_disposition="merge",
            columns=ENVELOPE_COLUMNS,
        )
        yield dlt.resource(_topic_reader, name=f"kafka_{stream}")(
            bootstrap_servers, topic, table, timeout_s, max_messages
        )


def _consumer(bootstrap_servers: str, timeout_s: float) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": "millpond-dlt",  # required by librdkafka; we assign and never commit
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # A stored offset the broker no longer has (topic recreated, retention) must not be
            # silently reset: re-read offsets would overwrite other messages' raw rows.
            "auto.offset.reset": "error",
            "socket.timeout.ms": int(timeout_s * 1000),
            "enable.partition.eof": True,
            # Reads stop at end-of-partition: don't let the broker hold the last fetch for the
            # default 500 ms per topic (measured: ~1.4 s of a 2.7 s run, docs/benchmarks.md).
            "fetch.wait.max.ms": 10,
        }
    )


def _topic_reader(
    bootstrap_servers: str, topic: str, table: Any, timeout_s: float, max_messages: int | None
) -> Iterator[Any]:
    """All messages of ``topic`` after the stored offsets, until every partition reports its end.

    (End-of-partition events are used instead of ListOffsets watermarks: they come with the
    fetch itself and are correct on every Kafka-protocol broker we run.)
    """
    offsets: dict[str, int] = dlt.current.resource_state().setdefault("offsets", {})
    consumer = _consumer(bootstrap_servers, timeout_s)
    ingested_at = datetime.now(UTC)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            return  # topic not created yet: nothing to read
        pending = set(metadata.partitions)
        consumer.assign([TopicPartition(topic, p, offsets.get(str(p), OFFSET_BEGINNING)) for p in sorted(pending)])
        read = 0
        page: list[dict[str, Any]] = []
        while pending and (max_messages is None or read < max_messages):
            msg = consumer.poll(timeout_s)
            if msg is None:
                raise KafkaException(
                    f"no message or end-of-partition from {topic} partitions {sorted(pending)} within {timeout_s}s "
                    f"(stored offsets {offsets}): the broker is unreachable, or the topic was recreated and the "
                    "stored offsets are beyond its end; see docs/runbooks/pipeline-failed.md"
                )
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                    continue
                if error.code() == KafkaError._AUTO_OFFSET_RESET:
                    raise KafkaException(
                        f"the offset stored for {topic} [{msg.partition()}] is no longer on the broker "
                        f"({error.str()}); the topic was recreated or its retention passed the consumer. "
                        "See docs/runbooks/pipeline-failed.md (Kafka offsets out of range)"
                    )
                raise KafkaException(error)
            read += 1
            row = _row(topic, msg, ingested_at)
            offsets[str(msg.partition())] = int(msg.offset() or 0) + 1
            if not isinstance(row, dict):
                yield row  # a dead letter, routed to its own table
                continue
            page.append(row)
            if len(page) >= PAGE_SIZE:
                yield dlt.mark.with_hints(page, table, create_table_variant=True)
                page = []
        if page:
            yield dlt.mark.with_hints(page, table, create_table_variant=True)
    finally:
        consumer.close()


def _row(topic: str, msg: Any, ingested_at: datetime) -> Any:
    key = msg.key().decode("utf-8", "replace") if msg.key() else None
    raw = msg.value() or b""
    _ts_type, ts_ms = msg.timestamp()
    event, problem = parse_event(raw)
    if problem or event is None:
        return dead_letter(
            source="kafka",
            origin=topic,
            record_id=f"{msg.partition()}:{msg.offset()}",
            record_key=key,
            partition=msg.partition(),
            offset=msg.offset(),
            raw_value=raw.decode("utf-8", "replace"),
            reason=problem or "unparseable",
        )
    return {
        "topic": topic,
        "partition": msg.partition(),
        "offset": msg.offset(),
        "message_key": key,
        "message_ts": datetime.fromtimestamp(ts_ms / 1000, UTC) if ts_ms and ts_ms > 0 else None,
        "event_id": event["event_id"],
        "event_type": event["event_type"],
        "event_ts": event["_event_ts"],
        "payload": {k: v for k, v in event.items() if k != "_event_ts"},
        "_ingested_at": ingested_at,
    }
