"""The raw read floors: the least work that reads every source record once, and nothing else.

- Kafka: one bare confluent-kafka consumer assigned to every partition of every topic from the
  beginning, a ``consume(num_messages=N, timeout)`` loop until each partition reports its end.
  The values are touched (their sizes summed), never parsed.
- MongoDB ``find()``: every document of each collection decoded by pymongo into a dict.
- MongoDB raw BSON: ``find_raw_batches()``, the server's batches as bytes; documents are only
  counted by walking their length prefixes, never decoded.

Nothing is written anywhere and no state is kept, so no pipeline can be faster than these.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable
from typing import Any, cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from pymongo import MongoClient

CONSUME_BATCH = 1_000  # messages per consume() call, as the Kafka source asks for
CONSUME_TIMEOUT_S = 0.1  # one consume() call's wait; the loop ends on end-of-partition events
FETCH_WAIT_MS = 10  # the broker need not hold the last fetch of a partition open (the source does the same)
MONGO_BATCH = 2_000  # documents per cursor batch, the MongoDB source's default


def kafka_consume(bootstrap: str, topics: Iterable[str], timeout_s: float = 30.0) -> dict[str, int]:
    """Every message of ``topics`` once: ``{"messages": n, "bytes": value bytes}``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "millpond-bench-floor",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "fetch.wait.max.ms": FETCH_WAIT_MS,
        }
    )
    messages = size = 0
    try:
        assignment = []
        for topic in topics:
            metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
            if metadata.error is not None:
                raise KafkaException(metadata.error)
            assignment += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(metadata.partitions)]
        pending = {(tp.topic, tp.partition) for tp in assignment}
        consumer.assign(assignment)
        idle_since: float | None = None
        while pending:
            batch = consumer.consume(num_messages=CONSUME_BATCH, timeout=CONSUME_TIMEOUT_S)
            if not batch:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > timeout_s:
                    raise KafkaException(f"no message within {timeout_s}s, {len(pending)} partitions not at their end")
                continue
            idle_since = None
            for msg in batch:
                error = msg.error()
                if error is None:
                    messages += 1
                    size += len(msg.value() or b"")
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard((msg.topic(), msg.partition()))
                else:
                    raise KafkaException(error)
    finally:
        consumer.close()
    return {"messages": messages, "bytes": size}


def mongo_find(uri: str, database: str, collections: Iterable[str], timeout_ms: int = 30_000) -> dict[str, int]:
    """Every document of ``collections`` decoded into a dict: ``{"documents": n}``."""
    documents = 0
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms)
    with client:
        db = client[database]
        for name in collections:
            for _doc in db[name].find(batch_size=MONGO_BATCH):
                documents += 1
    return {"documents": documents}


def _count_bson_documents(batch: bytes) -> int:
    """Documents in a raw BSON batch (concatenated documents, each starting with its int32 length)."""
    count = offset = 0
    end = len(batch)
    unpack = struct.Struct("<i").unpack_from
    while offset < end:
        offset += unpack(batch, offset)[0]
        count += 1
    return count


def mongo_raw_batches(uri: str, database: str, collections: Iterable[str], timeout_ms: int = 30_000) -> dict[str, int]:
    """Every document of ``collections`` as raw BSON batches, counted but not decoded: ``{"documents": n, "bytes": b}``."""
    documents = size = 0
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=timeout_ms)
    with client:
        db = client[database]
        for name in collections:
            for batch in cast(Iterable[bytes], db[name].find_raw_batches(batch_size=MONGO_BATCH)):
                documents += _count_bson_documents(batch)
                size += len(batch)
    return {"documents": documents, "bytes": size}
