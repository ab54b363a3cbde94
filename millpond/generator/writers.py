"""I/O of the generator: upserts into MongoDB and produces to Kafka, both idempotent to re-run."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pymongo import ReplaceOne
from pymongo.database import Database

from ingest.mongodb.helpers import to_bson
from millpond.errors import MillpondError
from millpond.generator.model import Message

TOPIC_PARTITIONS = 2
TOPIC_TIMEOUT_S = 30.0  # listing and creating topics
DELIVERY_TIMEOUT_S = 60.0  # until every produced message is acknowledged


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


def produce(bootstrap: str, topics: Mapping[str, str], messages: list[Message]) -> int:
    """Produce every message (idempotent producer, acks=all) and wait for delivery."""
    timeout_s = DELIVERY_TIMEOUT_S
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
            "message.timeout.ms": int(timeout_s * 1000),
        }
    )
    for i, msg in enumerate(messages):
        producer.produce(topics[msg.topic_key], key=msg.key.encode(), value=msg.value, on_delivery=on_delivery)
        if i % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(timeout_s)
    if remaining or errors:
        raise MillpondError(
            f"{remaining} messages undelivered, {len(errors)} delivery errors (first: {errors[:1]})",
            stage="generate",
            hint="check that the Kafka broker is up (millpond services status)",
        )
    return len(messages)
