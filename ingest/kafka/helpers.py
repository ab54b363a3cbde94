"""Helpers of the Kafka source: credentials, errors, the consumer, topic metadata and the group commit."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

import dlt
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from dlt.common.configuration import configspec
from dlt.common.configuration.specs import CredentialsConfiguration
from dlt.common.typing import TSecretStrValue

log = logging.getLogger(__name__)
BOOTSTRAP_SETTING = "MILLPOND_KAFKA_BOOTSTRAP"
REBASELINE_COMMAND = "millpond kafka rebaseline {topic}"
DIGITS = re.compile(r"\d+")
PREFETCH_KBYTES = 16 * 1024  # fetched messages the consumer holds ahead of the reader


class KafkaSourceError(Exception):
    """A Kafka read that cannot go on; the message is one line that says what to check."""


class BrokerUnreachable(KafkaSourceError):
    """No broker at the bootstrap address answered within the timeout."""

    def __init__(self, bootstrap: str, timeout_s: float, detail: str) -> None:
        self.bootstrap = bootstrap
        super().__init__(
            f"Kafka broker unreachable at {bootstrap} within {timeout_s:g}s ({detail}); "
            f"check {BOOTSTRAP_SETTING} and that the broker runs"
        )


class TopicUnavailable(KafkaSourceError):
    """The broker reports an error for the topic's metadata (unknown topic, authorization, ...)."""

    def __init__(self, topic: str, detail: str) -> None:
        self.topic = topic
        super().__init__(
            f"Kafka topic {topic} is not readable: {detail}; create it, grant this client Describe/Read on it, "
            "or mark it optional"
        )


class TopicRecreated(KafkaSourceError):
    """The stored position of a partition does not point after the message it was taken from."""

    def __init__(self, topic: str, partition: int, detail: str) -> None:
        self.topic = topic
        self.partition = partition
        super().__init__(
            f"Kafka topic {topic} partition {partition} was recreated or truncated: {detail}; nothing was read. "
            f"If the new topic is the one to load from its start, run `{REBASELINE_COMMAND.format(topic=topic)}` "
            "(see docs/pipelines/kafka.md)"
        )


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
    # the consumer group the loaded positions are committed to (reads assign partitions themselves)
    group_id: str = "millpond-dlt"

    def client_config(self, timeout_s: float) -> dict[str, Any]:
        """Connection and authentication settings shared by every client of the source."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "socket.timeout.ms": int(timeout_s * 1000),
        }
        optional = {
            "sasl.mechanisms": self.sasl_mechanisms,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
            "ssl.ca.location": self.ssl_ca_location,
        }
        config.update({key: value for key, value in optional.items() if value is not None})
        return config

    def consumer_config(self, timeout_s: float) -> dict[str, Any]:
        """The confluent-kafka consumer configuration for a bounded read to the end of each partition."""
        return {
            **self.client_config(timeout_s),
            "group.id": self.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # An offset the broker no longer has is an error, never a silent reset: the stored
            # position is checked against the broker instead (see TopicRecreated).
            "auto.offset.reset": "error",
            "enable.partition.eof": True,
            # The read stops at end-of-partition, so the broker need not hold the last fetch open.
            "fetch.wait.max.ms": 10,
            # librdkafka's prefetch queue (64 MiB by default) is memory beside the batch being built;
            # a smaller one keeps the reader's memory set by the batch bounds.
            "queued.max.messages.kbytes": PREFETCH_KBYTES,
        }


class LibrdkafkaLog:
    """librdkafka's log lines into the ``ingest.kafka.librdkafka`` logger, each distinct line once.

    librdkafka repeats a failing connection's line on every reconnect; the source raises its
    own error for that, so the lines are kept at WARNING at most and repeats are only counted.
    """

    def __init__(self) -> None:
        self.logger = logging.getLogger("ingest.kafka.librdkafka")
        self.seen: dict[str, int] = {}

    def log(self, level: int, fmt: str, *args: Any) -> None:
        text = fmt % args if args else fmt
        line = DIGITS.sub("#", text.split("]: ", 1)[-1])
        count = self.seen.get(line, 0)
        self.seen[line] = count + 1
        if count == 0:
            self.logger.log(min(level, logging.WARNING), "kafka.librdkafka", extra={"line": text})

    @property
    def suppressed(self) -> int:
        return sum(n - 1 for n in self.seen.values())


class SourceConsumer:
    """A confluent-kafka Consumer whose logs and global errors go through :class:`LibrdkafkaLog`."""

    def __init__(self, credentials: KafkaCredentials, timeout_s: float) -> None:
        self.bootstrap = credentials.bootstrap_servers
        self.timeout_s = timeout_s
        self.librdkafka_log = LibrdkafkaLog()
        self.last_error: KafkaError | None = None
        self.consumer = Consumer(
            credentials.consumer_config(timeout_s), logger=self.librdkafka_log, error_cb=self._on_error
        )

    def _on_error(self, error: KafkaError) -> None:
        self.last_error = error

    def unreachable(self, detail: str) -> BrokerUnreachable:
        if self.last_error is not None:
            detail = f"{detail}; last client error: {self.last_error.str()}"
        return BrokerUnreachable(self.bootstrap, self.timeout_s, detail)

    def partitions(self, topic: str, *, optional: bool) -> list[int] | None:
        """The topic's partitions; None for an optional topic that does not exist (yet).

        Raises BrokerUnreachable when no broker answers within the timeout, TopicUnavailable
        for any metadata error of the topic (unless optional and merely unknown).
        """
        try:
            metadata = self.consumer.list_topics(topic, timeout=self.timeout_s)
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            raise self.unreachable(error.str() if error else str(exc)) from exc
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            error = found.error if found is not None else None
            unknown = error is None or error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            if optional and unknown:
                log.info("kafka.topic.absent_optional", extra={"topic": topic})
                return None
            raise TopicUnavailable(topic, error.str() if error else "the broker does not know it")
        if not found.partitions:
            raise TopicUnavailable(topic, "it has no partitions")
        for number, partition in found.partitions.items():
            if partition.error is not None and partition.error.code() != KafkaError.LEADER_NOT_AVAILABLE:
                raise TopicUnavailable(topic, f"partition {number}: {partition.error.str()}")
        return sorted(found.partitions)

    def close(self) -> None:
        self.consumer.close()
        if self.librdkafka_log.suppressed:
            log.info("kafka.librdkafka.repeats_suppressed", extra={"count": self.librdkafka_log.suppressed})


def offsets_of(positions: Mapping[str, Mapping[str, Any]]) -> dict[int, int]:
    """partition -> next offset, from a resource state's ``positions``."""
    return {int(partition): int(position["offset"]) for partition, position in positions.items()}


def commit_offsets(
    credentials: KafkaCredentials,
    group_id: str,
    offsets: Mapping[str, Mapping[int, int]],
    timeout_s: float,
) -> None:
    """Commit ``{topic: {partition: next_offset}}`` to ``group_id``, so lag shows in Kafka tooling.

    The positions that count are the ones in dlt state; this is a copy for operators, made
    after the load that stored them.
    """
    partitions = [
        TopicPartition(topic, int(partition), int(offset))
        for topic, by_partition in offsets.items()
        for partition, offset in by_partition.items()
    ]
    if not partitions:
        return
    answers: list[tuple[KafkaError | None, list[TopicPartition]]] = []
    config = {
        **credentials.consumer_config(timeout_s),
        "group.id": group_id,
        "on_commit": lambda error, committed: answers.append((error, committed)),
    }
    librdkafka_log = LibrdkafkaLog()
    consumer = Consumer(config, logger=librdkafka_log)
    try:
        # A commit in flight to a broker that is not there holds close() for librdkafka's own retry
        # schedule (tens of seconds), whatever the I/O timeout says: the broker is asked for its
        # metadata first, within the timeout, and the commit itself is polled until a deadline.
        try:
            consumer.list_topics(timeout=timeout_s)
        except KafkaException as exc:
            raise KafkaSourceError(
                f"committing offsets of group {group_id}: no broker at {credentials.bootstrap_servers} answered "
                f"within {timeout_s}s; check {BOOTSTRAP_SETTING} and that the broker runs"
            ) from exc
        consumer.commit(offsets=partitions, asynchronous=True)
        deadline = time.monotonic() + timeout_s
        while not answers and time.monotonic() < deadline:
            consumer.poll(0.05)
        if not answers:
            raise KafkaSourceError(
                f"committing offsets of group {group_id} to {credentials.bootstrap_servers} got no answer "
                f"within {timeout_s}s; check {BOOTSTRAP_SETTING} and that the broker runs"
            )
        error, result = answers[0]
        if error is not None:
            raise KafkaSourceError(
                f"committing offsets of group {group_id} to {credentials.bootstrap_servers} failed: "
                f"{error.str()}; check {BOOTSTRAP_SETTING} and the group's ACLs"
            )
        failed = [tp for tp in result or [] if tp.error is not None]
        if failed:
            raise KafkaSourceError(
                f"committing offsets of group {group_id} failed for "
                + ", ".join(f"{tp.topic} [{tp.partition}]: {tp.error}" for tp in failed)
            )
    finally:
        consumer.close()
