"""Kafka source: one append-only table per topic, offsets kept in dlt state.

Each run reads every partition from the offset after the last loaded message until the broker
reports the end of the partition, so a run is bounded. Offsets live in the resource state,
which dlt commits with the load package: a crashed run re-reads the same messages, and the
merge on ``(topic, partition, offset)`` keeps that idempotent (at-least-once + dedup).
Messages that are not valid events go to the dead-letter table with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import dlt
from dlt.sources import DltResource

from ingest.kafka.helpers import ENVELOPE_COLUMNS, KafkaCredentials, read_topic

__all__ = ["ENVELOPE_COLUMNS", "KafkaCredentials", "kafka_source", "topic_messages"]


@dlt.source(name="kafka")
def kafka_source(
    credentials: KafkaCredentials = dlt.secrets.value,
    topics: Mapping[str, str] = dlt.config.value,
    timeout_s: float = 30.0,
) -> Iterator[DltResource]:
    """One resource per stream (``kafka_<stream>``), e.g. ``kafka_clickstream`` for ``shop.clickstream``.

    Args:
        credentials: brokers and authentication; from ``sources.kafka.credentials`` when not passed.
        topics: stream name -> topic name; from ``sources.kafka.topics`` when not passed.
        timeout_s: the longest wait for any broker call or poll.
    """
    for stream, topic in topics.items():
        yield dlt.resource(topic_messages, name=f"kafka_{stream}")(credentials, topic, f"kafka_{stream}", timeout_s)


def topic_messages(credentials: KafkaCredentials, topic: str, table_name: str, timeout_s: float) -> Iterator[Any]:
    """All messages of ``topic`` after the offsets in this resource's state, as rows of ``table_name``.

    The table hints travel with each page (a table variant, like the dead letters) rather than
    being resource hints, which dlt would copy into every table the resource dispatches to,
    the dead-letter table included.
    """
    table = dlt.mark.make_hints(
        table_name=table_name,
        primary_key=["topic", "partition", "offset"],
        write_disposition="merge",
        columns=ENVELOPE_COLUMNS,
    )
    offsets: dict[str, int] = dlt.current.resource_state().setdefault("offsets", {})
    yield from read_topic(credentials, topic, table, offsets, timeout_s)
