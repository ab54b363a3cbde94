"""The Kafka source on its own, against the real broker: config resolution, positions, poison, batching, errors."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dlt
import duckdb
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from dlt.common.configuration.exceptions import ConfigFieldMissingException

from ingest.kafka import (
    ARROW_NORMALIZER_CONFIG,
    BrokerUnreachable,
    KafkaCredentials,
    commit_offsets,
    kafka_source,
    offsets_of,
)
from ingest.kafka.reader import ReadOptions, read_topic
from tests.support.ports import free_port


def _produce(bootstrap: str, topic: str, values: list[bytes], headers: list | None = None) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for value in values:
        producer.produce(topic, key=b"k", value=value, partition=0, headers=headers)
    assert producer.flush(30) == 0


def _event(n: int, **extra) -> bytes:
    body = {"event_id": f"e{n}", "event_type": "page_view", "event_ts": "2026-03-01T10:00:00Z", "session_id": "s1"}
    return json.dumps({**body, **extra}).encode()


def _pipeline(tmp_path: Path) -> dlt.Pipeline:
    """A pipeline of its own, asking its parquet normalizer for dlt's row columns (as the ingest stage does)."""
    name = f"kafka_{uuid.uuid4().hex[:8]}"
    for key, value in ARROW_NORMALIZER_CONFIG.items():
        dlt.config[f"{name}.{key}"] = value
    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")),
        dataset_name="bronze",
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def _topic(stream: str = "clickstream") -> str:
    return f"src.{uuid.uuid4().hex[:8]}.{stream}"


def _query(tmp_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _state(pipeline: dlt.Pipeline, stream: str = "clickstream") -> dict:
    return pipeline.state["sources"]["kafka"]["resources"][f"kafka_{stream}"]


def test_source_resolves_from_dlt_config_and_keeps_positions_in_state(tmp_path, kafka, monkeypatch):
    topic = _topic()
    _produce(kafka.uri, topic, [_event(1), _event(2), b"{not json"])
    monkeypatch.setenv("SOURCES__KAFKA__CREDENTIALS__BOOTSTRAP_SERVERS", kafka.uri)
    monkeypatch.setenv("SOURCES__KAFKA__TOPICS", json.dumps({"clickstream": topic}))
    pipeline = _pipeline(tmp_path)

    pipeline.run(kafka_source(timeout_s=10))  # no arguments: credentials and topics come from dlt's providers
    _produce(kafka.uri, topic, [_event(3)])
    pipeline.run(kafka_source(timeout_s=10))  # reads only what came after the stored positions

    events = _query(
        tmp_path, 'select event_id, "offset", schema_version, payload from bronze.kafka_clickstream order by "offset"'
    )
    assert [e[:3] for e in events] == [("e1", 0, 1), ("e2", 1, 1), ("e3", 3, 1)]
    assert json.loads(events[0][3]) == json.loads(_event(1))
    dead = _query(tmp_path, "select dead_letter_id, error_class from bronze.dead_letter")
    assert dead == [(f"kafka:{topic}:0:2", "json.invalid")]
    positions = _state(pipeline)["positions"]
    assert list(positions) == ["0"] and positions["0"]["offset"] == 4 and len(positions["0"]["sha256"]) == 64
    columns = [r[0] for r in _query(tmp_path, "describe bronze.kafka_clickstream")]
    assert {"_dlt_load_id", "_dlt_id", "schema_version"} <= set(columns)
    types = dict(_query(tmp_path, "select column_name, data_type from information_schema.columns "
                                  "where table_name = 'kafka_clickstream'"))  # fmt: skip
    assert types["payload"] == "JSON"
    assert _query(tmp_path, "select count(*) from bronze.kafka_clickstream where _dlt_load_id is null") == [(0,)]


def test_poison_mixed_with_good_traffic_is_dead_lettered_with_reason_and_exact_bytes(tmp_path, kafka):
    topics = {"clickstream": _topic("clickstream"), "payments": _topic("payments")}
    now = datetime.now(UTC)
    payment = {"event_id": "p", "event_type": "payment_captured", "event_ts": "2026-03-01T10:00:00Z",
               "order_id": "ord_1", "amount": "12.50", "currency": "EUR", "method": "card"}  # fmt: skip
    poison = {
        b"\xff\xfe\x00garbage": ("json.invalid", "UTF-8"),
        b'{"event_id": "trunc': ("json.invalid", "JSON"),
        b"[1, 2]": ("contract.type", "array"),
        json.dumps({**payment, "event_id": "p1", "amount": "twelve"}).encode(): ("contract.type", "'amount'"),
        json.dumps({**payment, "event_id": "p2", "amount": "-1.00"}).encode(): ("contract.value", "'amount'"),
        json.dumps({**payment, "event_id": "p3", "amount": -3}).encode(): ("contract.value", "'amount'"),
        json.dumps({**payment, "event_id": "p4", "amount": True}).encode(): ("contract.type", "'amount'"),
        json.dumps({k: v for k, v in payment.items() if k != "order_id"}).encode(): (
            "contract.missing_field",
            "'order_id'",
        ),
        json.dumps({**payment, "event_id": "p6", "order_id": None}).encode(): ("contract.missing_field", "'order_id'"),
        json.dumps({**payment, "event_id": "p7", "order_id": "  "}).encode(): ("contract.value", "'order_id'"),
        json.dumps({**payment, "event_id": "p8", "event_type": "page_view"}).encode(): (
            "contract.value",
            "'event_type'",
        ),
        json.dumps({**payment, "event_id": "p9", "schema_version": 7}).encode(): (
            "contract.unknown_schema_version",
            "'schema_version'",
        ),
        json.dumps({**payment, "event_id": "p10", "event_ts": "yesterday"}).encode(): ("contract.value", "'event_ts'"),
        json.dumps({**payment, "event_id": "p11", "event_ts": (now + timedelta(days=2)).isoformat()}).encode(): (
            "contract.implausible_time",
            "'event_ts'",
        ),
        json.dumps({**payment, "event_id": "p12", "event_ts": "1999-12-31T23:59:59Z"}).encode(): (
            "contract.implausible_time",
            "'event_ts'",
        ),
        json.dumps({**payment, "event_id": "p13", "pad": "x" * 5000}).encode(): ("size.oversized", "over the limit"),
    }
    good = [json.dumps({**payment, "event_id": f"g{n}"}).encode() for n in range(5)]
    mixed = [value for pair in zip(good, list(poison)[:5], strict=True) for value in pair] + list(poison)[5:]
    headers = [("trace", b"\x00\x01"), ("origin", b"test")]
    _produce(kafka.uri, topics["payments"], mixed, headers=headers)
    _produce(kafka.uri, topics["clickstream"], [_event(1), _event(2, session_id=None), _event(3)])

    _pipeline(tmp_path).run(
        kafka_source(
            KafkaCredentials(bootstrap_servers=kafka.uri),
            topics,
            timeout_s=10,
            earliest_event_time=datetime(2020, 1, 1, tzinfo=UTC),
            max_message_bytes=4096,
        )
    )

    assert _query(tmp_path, "select event_id from bronze.kafka_payments order by 1") == [(f"g{n}",) for n in range(5)]
    assert _query(tmp_path, "select event_id from bronze.kafka_clickstream order by 1") == [("e1",), ("e3",)]
    rows = _query(
        tmp_path,
        "select raw_bytes, error_class, reason, origin, headers, record_key, first_seen_at, message_ts "
        "from bronze.dead_letter",
    )
    by_bytes = {bytes(r[0]): r for r in rows if r[3] == topics["payments"]}
    assert set(by_bytes) == set(poison)  # every bad message, byte for byte
    for raw, (error_class, fragment) in poison.items():
        row = by_bytes[raw]
        assert row[1] == error_class, (raw[:60], row[2])
        assert fragment in row[2], (raw[:60], row[2])
        assert json.loads(row[4]) == [{"key": "trace", "value_b64": "AAE="}, {"key": "origin", "value_b64": "dGVzdA=="}]
        assert row[5] == "k" and row[6] is not None and row[7] is not None
    clickstream_dead = [r for r in rows if r[3] == topics["clickstream"]]
    assert [(r[1], "'session_id'" in r[2]) for r in clickstream_dead] == [("contract.missing_field", True)]


def test_batches_are_bounded_and_a_rerun_is_idempotent(tmp_path, kafka):
    topic = _topic()
    _produce(kafka.uri, topic, [_event(n) for n in range(250)])
    pipeline = _pipeline(tmp_path)
    source = kafka_source(KafkaCredentials(bootstrap_servers=kafka.uri), {"clickstream": topic}, max_batch_messages=40)
    state: dict = {}
    options = ReadOptions(timeout_s=10, max_batch_messages=40)
    items = list(read_topic(KafkaCredentials(bootstrap_servers=kafka.uri), "clickstream", topic, None, state, options))
    assert [len(item.data) for item in items] == [40] * 6 + [10]  # bounded batches, not the whole topic at once
    assert state["positions"]["0"]["offset"] == 250
    pipeline.run(source)
    load_ids = _query(tmp_path, "select count(distinct _dlt_load_id), count(*) from bronze.kafka_clickstream")
    assert load_ids == [(1, 250)]
    positions = _state(pipeline)["positions"]
    # a re-run reads on from the stored positions: nothing again
    pipeline.run(kafka_source(KafkaCredentials(bootstrap_servers=kafka.uri), {"clickstream": topic}))
    assert _query(tmp_path, 'select count(*), count(distinct "offset") from bronze.kafka_clickstream') == [(250, 250)]
    assert _state(pipeline)["positions"] == positions


def test_unknown_topic_fails_unless_optional(tmp_path, kafka):
    topic = _topic()
    credentials = KafkaCredentials(bootstrap_servers=kafka.uri)
    with pytest.raises(Exception, match=f"Kafka topic {topic} is not readable"):
        _pipeline(tmp_path).run(kafka_source(credentials, {"clickstream": topic}, timeout_s=5))
    info = _pipeline(tmp_path).run(kafka_source(credentials, {"clickstream": topic}, timeout_s=5,
                                                optional_topics=[topic]))  # fmt: skip
    assert not info.has_failed_jobs


def test_unreachable_broker_is_one_clear_error_within_the_timeout(tmp_path, capfd):
    address = f"127.0.0.1:{free_port()}"
    started = datetime.now(UTC)
    with pytest.raises(Exception) as caught:
        _pipeline(tmp_path).run(
            kafka_source(KafkaCredentials(bootstrap_servers=address), {"clickstream": "shop.clickstream"}, timeout_s=3)
        )
    elapsed = (datetime.now(UTC) - started).total_seconds()
    chain = [caught.value]
    while chain[-1].__cause__ is not None:
        chain.append(chain[-1].__cause__)
    root = next(e for e in chain if isinstance(e, BrokerUnreachable))
    assert address in str(root) and "MILLPOND_KAFKA_BOOTSTRAP" in str(root) and "\n" not in str(root)
    assert elapsed < 10
    err = capfd.readouterr().err
    assert err.count("Connection refused") <= 1, err[-2000:]


def test_commit_offsets_puts_the_positions_into_the_consumer_group(tmp_path, kafka):
    topic = _topic()
    admin = AdminClient({"bootstrap.servers": kafka.uri})
    for future in admin.create_topics([NewTopic(topic, num_partitions=2)]).values():
        future.result(10)
    producer = Producer({"bootstrap.servers": kafka.uri})
    for n in range(7):
        producer.produce(topic, value=_event(n), partition=n % 2)
    assert producer.flush(30) == 0
    credentials = KafkaCredentials(bootstrap_servers=kafka.uri)
    pipeline = _pipeline(tmp_path)
    pipeline.run(kafka_source(credentials, {"clickstream": topic}))
    offsets = offsets_of(_state(pipeline)["positions"])
    assert offsets == {0: 4, 1: 3}
    group = f"g-{uuid.uuid4().hex[:8]}"

    commit_offsets(credentials, group, {topic: offsets}, timeout_s=10)

    consumer = Consumer({"bootstrap.servers": kafka.uri, "group.id": group})
    try:
        committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    finally:
        consumer.close()
    assert {tp.partition: tp.offset for tp in committed} == offsets


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
