"""Reading a whole topic back, for tests that check what was produced."""

from __future__ import annotations

from confluent_kafka import Consumer, KafkaError, TopicPartition


def topic_values(bootstrap: str, topic: str) -> list[bytes]:
    """Every message value of ``topic``, partition by partition, read from the beginning to the end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "t", "enable.partition.eof": True})
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    pending, values = set(meta.partitions), []
    while pending:
        msg = consumer.poll(10)
        assert msg is not None
        if msg.error():
            assert msg.error().code() == KafkaError._PARTITION_EOF
            pending.discard(msg.partition())
        else:
            values.append(msg.value())
    consumer.close()
    return values
