"""The Kafka source on its own, against the real broker: dlt config resolution, offsets in state, credentials."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import dlt
import duckdb
import pytest
from confluent_kafka import Consumer, Producer
from dlt.common.configuration.exceptions import ConfigFieldMissingException

from ingest.kafka import KafkaCredentials, kafka_source


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for value in values:
        producer.produce(topic, key=b"k", value=value, partition=0)
    assert producer.flush(30) == 0


def _event(n: int) -> bytes:
    return json.dumps({"event_id": f"e{n}", "event_type": "page_view", "event_ts": "2026-03-01T10:00:00Z"}).encode()


def _pipeline(tmp_path: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=f"kafka_{uuid.uuid4().hex[:8]}",
        destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")),
        dataset_name="bronze",
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def test_source_resolves_from_dlt_config_and_keeps_offsets_in_state(tmp_path, kafka, monkeypatch):
    topic = f"src.{uuid.uuid4().hex[:8]}.clickstream"
    _produce(kafka.uri, topic, [_event(1), _event(2), b"{not json"])
    monkeypatch.setenv("SOURCES__KAFKA__CREDENTIALS__BOOTSTRAP_SERVERS", kafka.uri)
    monkeypatch.setenv("SOURCES__KAFKA__TOPICS", json.dumps({"clickstream": topic}))
    pipeline = _pipeline(tmp_path)

    pipeline.run(kafka_source(timeout_s=10))  # no arguments: credentials and topics come from dlt's providers
    _produce(kafka.uri, topic, [_event(3)])
    pipeline.run(kafka_source(timeout_s=10))  # reads only what came after the stored offsets

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        events = con.execute('select event_id, "offset" from bronze.kafka_clickstream order by "offset"').fetchall()
        dead = con.execute("select dead_letter_id, reason from bronze.dead_letter").fetchall()
    assert events == [("e1", 0), ("e2", 1), ("e3", 3)]
    assert [(d[0], d[1].split(":")[0]) for d in dead] == [(f"kafka:{topic}:0:2", "value is not valid JSON")]
    state = pipeline.state["sources"]["kafka"]["resources"]["kafka_clickstream"]
    assert state["offsets"] == {"0": 4}


def test_missing_bootstrap_servers_names_the_config_key(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCES__KAFKA__TOPICS", json.dumps({"clickstream": "shop.clickstream"}))
    with pytest.raises(ConfigFieldMissingException, match="SOURCES__KAFKA__CREDENTIALS__BOOTSTRAP_SERVERS"):
        kafka_source()


def test_credentials_build_a_sasl_tls_consumer_config_librdkafka_accepts():
    credentials = KafkaCredentials(
        bootstrap_servers="broker-1:9093,broker-2:9093",
        security_protocol="SASL_SSL",
        sasl_mechanisms="SCRAM-SHA-512",
        sasl_username="millpond",
        sasl_password="s3cret",
        ssl_ca_location="/etc/ssl/certs/ca-certificates.crt",
    )
    config = credentials.consumer_config(timeout_s=5)
    assert {k: config[k] for k in ("security.protocol", "sasl.mechanisms", "sasl.username", "sasl.password")} == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "millpond",
        "sasl.password": "s3cret",
    }
    assert config["ssl.ca.location"] == "/etc/ssl/certs/ca-certificates.crt"
    assert config["auto.offset.reset"] == "error"  # a lost offset is an error, never a silent reset
    Consumer(config).close()  # librdkafka validates every property (and loads the CA file) here
    plain = KafkaCredentials(bootstrap_servers="127.0.0.1:9092").consumer_config(timeout_s=5)
    assert plain["security.protocol"] == "PLAINTEXT" and not any(k.startswith(("sasl.", "ssl.")) for k in plain)
