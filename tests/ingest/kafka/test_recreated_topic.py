"""A broker that lost its log (Tansu keeps it in memory) is detected, however long the new topic is."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import dlt
import duckdb
import pytest

from ingest.kafka import KafkaCredentials, TopicRecreated, kafka_source
from millpond.services import KafkaBroker
from millpond.settings import Settings
from tests.support.ports import free_port


def _produce(bootstrap: str, topic: str, first: int, count: int, tag: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for n in range(first, first + count):
        body = {"event_id": f"{tag}{n}", "event_type": "page_view", "event_ts": "2026-03-01T10:00:00Z",
                "session_id": "s"}  # fmt: skip
        producer.produce(topic, key=b"k", value=json.dumps(body).encode(), partition=0)
    assert producer.flush(30) == 0


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    while exc is not None and not isinstance(exc, kind):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return exc


@pytest.fixture
def own_broker(tmp_path: Path, machine_settings: Settings):
    broker = KafkaBroker(tmp_path / "services", free_port(), machine_settings.tansu_bin)
    broker.start()
    yield broker
    broker.stop()


def test_restarted_broker_with_a_longer_new_topic_stops_the_read(tmp_path, own_broker):
    topic = f"re.{uuid.uuid4().hex[:8]}.clickstream"
    credentials = KafkaCredentials(bootstrap_servers=own_broker.uri)
    pipeline = dlt.pipeline(
        pipeline_name=f"re_{uuid.uuid4().hex[:8]}",
        destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")),
        dataset_name="bronze",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    _produce(own_broker.uri, topic, 0, 5, "old")
    pipeline.run(kafka_source(credentials, {"clickstream": topic}, timeout_s=10))

    own_broker.stop()  # the log is gone with the process
    own_broker.start()
    _produce(own_broker.uri, topic, 0, 12, "new")  # more messages than before: offset 4 exists again

    with pytest.raises(Exception) as caught:
        pipeline.run(kafka_source(credentials, {"clickstream": topic}, timeout_s=10))
    recreated = _cause(caught.value, TopicRecreated)
    assert isinstance(recreated, TopicRecreated), caught.value
    assert recreated.topic == topic and recreated.partition == 0
    assert f"millpond kafka rebaseline {topic}" in str(recreated)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from bronze.kafka_clickstream").fetchone() == (5,)

    # re-baselining moves the old topic's landed rows out (left there, they would sit beside the new
    # topic's messages at the same positions) and clears its positions in dlt state, as
    # `millpond kafka rebaseline` does: the new topic then loads from its start
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("delete from bronze.kafka_clickstream where topic = ?", [topic])
    with pipeline.managed_state() as state:
        state["sources"]["kafka"]["resources"]["kafka_clickstream"]["positions"] = {}
    pipeline.run(kafka_source(credentials, {"clickstream": topic}, timeout_s=10))
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        ids = [r[0] for r in con.execute('select event_id from bronze.kafka_clickstream order by "offset"').fetchall()]
    assert ids == [f"new{n}" for n in range(12)]


def test_shorter_new_topic_and_missing_partition_message_also_stop_the_read(tmp_path, own_broker):
    topic = f"re.{uuid.uuid4().hex[:8]}.clickstream"
    credentials = KafkaCredentials(bootstrap_servers=own_broker.uri)
    pipeline = dlt.pipeline(
        pipeline_name=f"re_{uuid.uuid4().hex[:8]}",
        destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")),
        dataset_name="bronze",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    _produce(own_broker.uri, topic, 0, 6, "old")
    pipeline.run(kafka_source(credentials, {"clickstream": topic}, timeout_s=10))
    own_broker.stop()
    own_broker.start()
    _produce(own_broker.uri, topic, 0, 2, "new")
    with pytest.raises(Exception) as caught:
        pipeline.run(kafka_source(credentials, {"clickstream": topic}, timeout_s=10))
    assert isinstance(_cause(caught.value, TopicRecreated), TopicRecreated), caught.value
