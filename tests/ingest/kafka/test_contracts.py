"""The edge contracts: every good event the generator makes passes, every kind of poison has its class and field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from ingest.kafka import contracts
from ingest.kafka.contracts import validate
from ingest.vocabulary import EVENT_TYPES
from millpond.generator.poison import KAFKA_POISON_KINDS, KEY_FIELD, kafka_value
from tests.support.kafka_events import EARLIEST, GOOD, NOW, generator_messages

POISON_CLASS = {
    "invalid_utf8": "json.invalid",
    "invalid_json": "json.invalid",
    "missing_field": "contract.missing_field",
    "wrong_type": "contract.type",
    "unknown_schema_version": "contract.unknown_schema_version",
    "unknown_event_type": "contract.value",
    "oversized": "size.oversized",
    "future_time": "contract.implausible_time",
    "ancient_time": "contract.implausible_time",
}


def _check(stream: str, raw: bytes, **kwargs):
    return validate(stream, raw, now=NOW, earliest=EARLIEST, **kwargs)


def test_enums_come_from_the_vocabulary():
    for stream, versions in contracts.contracts().items():
        for contract in versions.values():
            assert contract.schema["properties"]["event_type"]["enum"] == list(EVENT_TYPES[stream])
    raw = (contracts.SCHEMA_DIR / "payments" / "v1.json").read_text()
    assert "payment_captured" not in raw  # the schema files do not copy the list


@pytest.mark.parametrize("stream", sorted(GOOD))
def test_a_good_event_passes_with_its_parsed_time_and_version(stream):
    event, problem = _check(stream, json.dumps(GOOD[stream]).encode())
    assert problem is None and event is not None
    assert event.event_ts.tzinfo is not None and event.schema_version == 1
    assert event.payload == GOOD[stream]


def test_every_event_the_generator_makes_meets_its_contract():
    messages = generator_messages(step_seed=7)
    assert {m.topic_key for m in messages} == {"clickstream", "payments", "shipments"}
    assert {json.loads(m.value).get("schema_version") for m in messages if m.topic_key == "clickstream"} == {1, 2}
    for message in messages:
        _event, problem = _check(message.topic_key, message.value)
        assert problem is None, (message.topic_key, message.value, problem)


@pytest.mark.parametrize("stream", sorted(GOOD))
@pytest.mark.parametrize("kind", KAFKA_POISON_KINDS)
def test_each_poison_kind_is_refused_with_its_class_and_field(stream, kind):
    raw = kafka_value(kind, stream, GOOD[stream], oversized_bytes=2048)
    event, problem = _check(stream, raw, max_bytes=1024)
    assert event is None and problem is not None
    error_class, reason = problem
    assert error_class == POISON_CLASS[kind], reason
    field = {"missing_field": KEY_FIELD[stream], "wrong_type": "amount" if stream == "payments" else KEY_FIELD[stream],
             "unknown_schema_version": "schema_version", "unknown_event_type": "event_type",
             "future_time": "event_ts", "ancient_time": "event_ts"}.get(kind)  # fmt: skip
    if field:
        assert f"'{field}'" in reason, reason


@pytest.mark.parametrize(
    ("stream", "change", "error_class", "fragment"),
    [
        ("payments", {"amount": "-1.00"}, "contract.value", "'amount'"),
        ("payments", {"amount": -1}, "contract.value", "'amount'"),
        ("payments", {"amount": 12.5}, None, None),
        ("payments", {"amount": None}, "contract.missing_field", "'amount' is null"),
        ("payments", {"order_id": " "}, "contract.value", "'order_id' is blank"),
        ("clickstream", {"schema_version": 2, "referrer": "google"}, None, None),
        ("clickstream", {"schema_version": "1"}, "contract.unknown_schema_version", "'schema_version'"),
        ("clickstream", {"event_ts": "2026-03-01T10:00:00"}, "contract.value", "time zone"),
        ("clickstream", {"event_ts": 1700000000}, "contract.type", "'event_ts'"),
        ("shipments", {"carrier": 7}, "contract.type", "'carrier'"),
    ],
)
def test_field_rules(stream, change, error_class, fragment):
    event, problem = _check(stream, json.dumps({**GOOD[stream], **change}).encode())
    if error_class is None:
        assert problem is None and event is not None
    else:
        assert problem is not None and problem[0] == error_class and fragment in problem[1], problem


def test_not_an_object_and_unknown_stream():
    assert _check("payments", b"[1]") == (None, ("contract.type", "value is a JSON array, not an object"))
    assert _check("refunds", b"{}")[1][0] == "contract.unknown_stream"


def test_future_skew_and_replay_after_time_passes():
    raw = json.dumps({**GOOD["payments"], "event_ts": "2026-03-02T00:10:00Z"}).encode()
    assert _check("payments", raw, max_future_skew_s=60)[1][0] == "contract.implausible_time"
    assert _check("payments", raw, max_future_skew_s=3600)[1] is None
    later = validate("payments", raw, now=datetime(2026, 3, 3, tzinfo=UTC), earliest=EARLIEST, max_future_skew_s=60)
    assert later[1] is None  # a replay re-validates the same bytes against the clock of the replay
