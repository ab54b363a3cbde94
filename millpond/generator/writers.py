"""I/O of the generator: batched upserts into MongoDB and a producer to Kafka, both idempotent to re-run."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pymongo import DeleteOne, ReplaceOne
from pymongo.database import Database

from ingest.mongodb.helpers import to_bson
from millpond import logs
from millpond.errors import MillpondError
from millpond.generator.model import Message

log = logs.get(__name__)
TOPIC_PARTITIONS = 2
TOPIC_TIMEOUT_S = 30.0  # listing and creating topics
DELIVERY_TIMEOUT_S = 60.0  # until every produced message is acknowledged
POLL_EVERY = 1000  # serve delivery reports after this many messages
BACKOFF_FIRST_S = 0.005  # waits while the local producer queue is full, doubling up to BACKOFF_MAX_S
BACKOFF_MAX_S = 0.5
MESSAGE_MAX_BYTES = 1_000_000  # librdkafka's default limit of one message
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 20,
    "queue.buffering.max.kbytes": 64 * 1024,  # the local queue, bounded in bytes as well as in messages
}


def upsert(db: Database, collection: str, docs: Iterable[Mapping[str, Any]]) -> int:
    """Replace-or-insert by ``_id``; re-running with the same documents changes nothing."""
    ops = [ReplaceOne({"_id": d["_id"]}, to_bson(dict(d)), upsert=True) for d in docs]
    if not ops:
        return 0
    result = db[collection].bulk_write(ops, ordered=False)
    return int(result.upserted_count + result.modified_count)


def ensure_topics(bootstrap: str, topics: Iterable[str]) -> None:
    """Create the topics that do not exist yet."""
    timeout_s = TOPIC_TIMEOUT_S
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout_s * 1000)})
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    missing = [NewTopic(t, num_partitions=TOPIC_PARTITIONS, replication_factor=1) for t in topics if t not in existing]
    if not missing:
        return
    for topic, future in admin.create_topics(missing, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise MillpondError(f"could not create topic {topic}: {exc}", stage="generate") from exc


class KafkaWriter:
    """Produces messages as they are made (idempotent producer, acks=all).

    When librdkafka's local queue is full, ``send`` serves delivery reports (``poll``) with a
    growing wait and retries, so the queue, not the volume, bounds memory; ``flush`` waits until
    every message sent so far is acknowledged.
    """

    def __init__(
        self,
        bootstrap: str,
        topics: Mapping[str, str],
        config: Mapping[str, Any] | None = None,
        timeout_s: float = DELIVERY_TIMEOUT_S,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = dict(topics)
        self.timeout_s = timeout_s
        self.sent = 0
        self.queue_full = 0  # how often the local queue was full (each followed by a wait and a retry)
        self._errors: list[str] = []
        self._unpolled = 0
        self.producer = Producer(
            {
                **PRODUCER_DEFAULTS,
                "bootstrap.servers": bootstrap,
                "message.timeout.ms": int(timeout_s * 1000),
                **(config or {}),
            }
        )

    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def send(self, msg: Message) -> None:
        topic, key = self.topics[msg.topic_key], msg.key.encode()
        wait_s, stalled_s = BACKOFF_FIRST_S, 0.0
        while True:
            try:
                self.producer.produce(topic, key=key, value=msg.value, on_delivery=self._on_delivery)
                break
            except BufferError:
                self.queue_full += 1
                if stalled_s >= self.timeout_s:
                    raise self._undelivered(len(self.producer), "the local producer queue stayed full") from None
                started = time.monotonic()
                self.producer.poll(wait_s)  # returns as soon as a delivery report frees a slot
                stalled_s += time.monotonic() - started
                wait_s = min(wait_s * 2, BACKOFF_MAX_S)
        self.sent += 1
        self._unpolled += 1
        if self._unpolled >= POLL_EVERY:
            self.producer.poll(0)
            self._unpolled = 0
        if self._errors:
            raise self._undelivered(len(self.producer), "delivery failed")

    def flush(self) -> None:
        """Wait until every message sent so far is acknowledged; fail when one was not."""
        remaining = self.producer.flush(self.timeout_s)
        if remaining or self._errors:
            raise self._undelivered(remaining, "delivery failed" if self._errors else "delivery timed out")

    def _undelivered(self, remaining: int, what: str) -> MillpondError:
        first = self._errors[:1]
        return MillpondError(
            f"{what}: {remaining} messages undelivered to {self.bootstrap}, {len(self._errors)} delivery errors"
            f" (first: {first})",
            stage="generate",
            hint="check that the Kafka broker is up (millpond services status) and MILLPOND_KAFKA_BOOTSTRAP",
        )


class MongoWriter:
    """Buffers upserts and deletes and writes them as ordered-per-collection bulk writes of ``batch_size``.

    ``before_write`` runs first on every flush (the generator flushes Kafka there), so a document
    is written only after the events it caused are acknowledged.
    """

    def __init__(self, db: Database, batch_size: int, before_write: Any = None) -> None:
        if batch_size < 1:
            raise MillpondError(f"batch size must be at least 1, got {batch_size}", stage="generate")
        self.db = db
        self.batch_size = batch_size
        self.before_write = before_write
        self.deleted: dict[str, int] = {}
        self._ops: dict[str, list[Any]] = {}
        self._pending = 0

    def upsert(self, collection: str, doc: Mapping[str, Any]) -> None:
        self._add(collection, ReplaceOne({"_id": doc["_id"]}, to_bson(dict(doc)), upsert=True))

    def delete(self, collection: str, doc_id: Any) -> None:
        self._add(collection, DeleteOne({"_id": doc_id}))

    def _add(self, collection: str, op: Any) -> None:
        self._ops.setdefault(collection, []).append(op)
        self._pending += 1
        if self._pending >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if self.before_write is not None:
            self.before_write()
        for collection, ops in self._ops.items():
            if ops:
                # ordered: an upsert and a later delete of the same document apply in that order
                result = self.db[collection].bulk_write(ops, ordered=True)
                self.deleted[collection] = self.deleted.get(collection, 0) + result.deleted_count
        self._ops = {}
        self._pending = 0
