"""Kafka source: one table per stream (``kafka_<stream>``), contracts at the edge, positions in dlt state.

Each run reads every partition from the position after the last loaded message until the
broker reports the end of the partition, or until ``max_batches_per_run`` batches (the
follower's micro-batches), so a run is bounded. Messages that meet their
stream's contract (``ingest/kafka/contracts.py``) land as Arrow batches; the others go to the
dead-letter table with their exact bytes and the reason. Positions live in the resource state,
which dlt commits with the load package: a crashed run either re-reads messages none of which
landed, or leaves the package pending for the next run to load, so the tables are appended to
(ADR 0021). A stored position is checked
against the message it was taken from, so a recreated topic stops the run (TopicRecreated).

The source changes no global configuration. Its Arrow batches carry dlt's ``_dlt_id`` row ids
themselves, so dlt loads their files as extracted, and get the ``_dlt_load_id`` column only from a
pipeline whose normalizer is asked for it: set :data:`ARROW_NORMALIZER_CONFIG` for the pipeline
that runs it (the ingest stage does).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import dlt
from dlt.sources import DltResource

from ingest.kafka.contracts import DEFAULT_MAX_FUTURE_SKEW_S
from ingest.kafka.helpers import (
    BrokerUnreachable,
    KafkaCredentials,
    KafkaSourceError,
    TopicRecreated,
    TopicUnavailable,
    commit_offsets,
    offsets_of,
)
from ingest.kafka.reader import ReadOptions, read_topic
from ingest.kafka.rows import ENVELOPE_COLUMNS, table_hints

__all__ = [
    "ARROW_NORMALIZER_CONFIG",
    "ENVELOPE_COLUMNS",
    "BrokerUnreachable",
    "KafkaCredentials",
    "KafkaSourceError",
    "TopicRecreated",
    "TopicUnavailable",
    "commit_offsets",
    "kafka_source",
    "offsets_of",
    "topic_messages",
]

# dlt config keys (relative: prefix a pipeline name to scope them to that pipeline) that make dlt add
# ``_dlt_load_id`` to Arrow items as they are extracted (the staging models read it), and not add
# ``_dlt_id`` (the batches have their own), which would make the normalizer rewrite every file.
ARROW_NORMALIZER_CONFIG = {
    "normalize.parquet_normalizer.add_dlt_load_id": True,
    "normalize.parquet_normalizer.add_dlt_id": False,
}


@dlt.source(name="kafka")
def kafka_source(
    credentials: KafkaCredentials = dlt.secrets.value,
    topics: Mapping[str, str] = dlt.config.value,
    timeout_s: float = 30.0,
    optional_topics: Sequence[str] = (),
    max_batch_messages: int = 50_000,
    max_batch_bytes: int = 32 * 1024 * 1024,
    max_batch_seconds: float = 5.0,
    max_message_bytes: int = 1024 * 1024,
    earliest_event_time: datetime | None = None,
    max_future_skew_s: float = DEFAULT_MAX_FUTURE_SKEW_S,
    max_batches_per_run: int | None = None,
    schema_dir: str | None = None,
) -> Iterator[DltResource]:
    """One resource per stream (``kafka_<stream>``), e.g. ``kafka_clickstream`` for ``shop.clickstream``.

    Args:
        credentials: brokers and authentication; from ``sources.kafka.credentials`` when not passed.
        topics: stream name -> topic name; from ``sources.kafka.topics`` when not passed.
        timeout_s: the longest wait for any broker call, and for a message or end of partition.
        optional_topics: topics (names, or stream names) that may not exist yet; any other
            topic the broker does not know fails the read.
        max_batch_messages, max_batch_bytes, max_batch_seconds: bounds of one Arrow batch.
        max_message_bytes: a larger value is dead-lettered as oversized.
        earliest_event_time, max_future_skew_s: event times before the one or after now plus
            the other are implausible and dead-lettered.
        max_batches_per_run: each topic's read ends after this many batches, the rest waits for
            the next run (None: read to the end of every partition).
        schema_dir: the contracts' directory, ``<stream>/v<N>.json`` (None: ``ingest/kafka/schemas``).
    """
    optional = set(optional_topics)
    for stream, topic in topics.items():
        options = ReadOptions(
            timeout_s=timeout_s,
            max_batch_messages=max_batch_messages,
            max_batch_bytes=max_batch_bytes,
            max_batch_seconds=max_batch_seconds,
            max_message_bytes=max_message_bytes,
            earliest_event_time=earliest_event_time,
            max_future_skew_s=max_future_skew_s,
            optional=topic in optional or stream in optional,
            max_batches=max_batches_per_run,
            schema_dir=Path(schema_dir) if schema_dir else None,
        )
        yield dlt.resource(topic_messages, name=f"kafka_{stream}")(credentials, stream, topic, options)


def topic_messages(credentials: KafkaCredentials, stream: str, topic: str, options: ReadOptions) -> Iterator[Any]:
    """All messages of ``topic`` after the positions in this resource's state.

    The table hints travel with each batch (a table variant, like the dead letters) rather than
    being resource hints, which dlt would copy into every table the resource dispatches to,
    the dead-letter table included.
    """
    state = dlt.current.resource_state()
    yield from read_topic(credentials, stream, topic, table_hints(f"kafka_{stream}"), state, options)
