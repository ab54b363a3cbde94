"""Helpers of the Kafka source: credentials, the bounded consumer loop and the landed row of a message."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any

import dlt
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from dlt.common.configuration import configspec
from dlt.common.configuration.specs import CredentialsConfiguration
from dlt.common.typing import TSecretStrValue

from ingest.dead_letter import dead_letter
from ingest.kafka.events import parse_event

PAGE_SIZE = 1_000  # rows handed to dlt at once

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


@configspec
class KafkaCredentials(CredentialsConfiguration):
    """Where the brokers are and how to authenticate, in librdkafka's terms with ``_`` for ``.``.

    Resolved by dlt from its config providers when not passed, e.g.
    ``SOURCES__KAFKA__CREDENTIALS__BOOTSTRAP_SERVERS`` or ``[sources.kafka.credentials]`` in
    ``.dlt/secrets.toml``.
    """

    bootstrap_servers: str = dlt.config.value
    security_protocol: str = "PLAINTEXT"
    sasl_mechanisms: str | None = None
    sasl_username: str | None = None
    sasl_password: TSecretStrValue | None = None
    ssl_ca_location: str | None = None
    # librdkafka requires a group id; the source assigns partitions itself and never commits to it
    group_id: str = "millpond-dlt"

    def consumer_config(self, timeout_s: float) -> dict[str, Any]:
        """The confluent-kafka consumer configuration for a bounded read to the end of each partition."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # A stored offset the broker no longer has (topic recreated, retention) is an error, never
            # silently reset: re-read offsets would overwrite other messages' landed rows.
            "auto.offset.reset": "error",
            "socket.timeout.ms": int(timeout_s * 1000),
            "enable.partition.eof": True,
            # The read stops at end-of-partition, so the broker need not hold the last fetch open.
            "fetch.wait.max.ms": 10,
        }
        optional = {
            "sasl.mechanisms": self.sasl_mechanisms,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
            "ssl.ca.location": self.ssl_ca_location,
        }
        config.update({key: value for key, value in optional.items() if value is not None})
        return config


def read_topic(
    credentials: KafkaCredentials,
    topic: str,
    table: Any,
    offsets: MutableMapping[str, int],
    timeout_s: float,
) -> Iterator[Any]:
    """Pages of landed rows (and single dead letters) of ``topic`` after ``offsets``, up to each partition's end.

    ``offsets`` (partition -> next offset) is updated as messages are read. The end is the
    end-of-partition event that comes with the fetch; a poll that returns nothing within
    ``timeout_s`` raises, so an unreachable broker fails the run instead of ending it as caught up.
    ``table`` holds the hints every page carries.
    """
    consumer = Consumer(credentials.consumer_config(timeout_s))
    ingested_at = datetime.now(UTC)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            return  # topic not created yet: nothing to read
        pending = set(metadata.partitions)
        consumer.assign([TopicPartition(topic, p, offsets.get(str(p), OFFSET_BEGINNING)) for p in sorted(pending)])
        page: list[dict[str, Any]] = []
        while pending:
            msg = consumer.poll(timeout_s)
            if msg is None:
                raise KafkaException(
                    f"no message or end-of-partition from {topic} partitions {sorted(pending)} within {timeout_s}s "
                    f"(stored offsets {dict(offsets)}): the broker is unreachable, or the topic was recreated and "
                    "the stored offsets are beyond its end; see docs/runbooks/pipeline-failed.md"
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
            offsets[str(msg.partition())] = int(msg.offset() or 0) + 1
            row = message_row(topic, msg, ingested_at)
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


def message_row(topic: str, msg: Message, ingested_at: datetime) -> Any:
    """The landed row of a valid event, or a dead letter naming what is wrong with it."""
    raw_key = msg.key()
    key = raw_key.decode("utf-8", "replace") if raw_key else None
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
