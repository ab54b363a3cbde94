"""The compiled fast path on a message's bytes is never looser than the full check, and a page lands as before.

``EdgeCheck.envelope(raw)`` decodes and checks the bytes in one step; whatever it accepts, the
full check (orjson, fastjsonschema, the time window) must accept with the same envelope. A page
of messages through ``Extract.take`` lands the good ones in offset order with the instants the
full check reads, and dead-letters the rest with exactly the reasons ``validate`` gives.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import pytest
from confluent_kafka import Message

from ingest.kafka import ARROW_NORMALIZER_CONFIG, contracts
from ingest.kafka.contracts import EdgeCheck, validate
from ingest.kafka.reader import Extract, ReadOptions
from ingest.kafka.rows import RFC3339, ROW_ID, ROW_ID_BYTES, LandedBatch, row_ids
from millpond.generator.poison import KAFKA_POISON_KINDS, kafka_value
from tests.support.kafka_events import EARLIEST, GOOD, NOW, generator_messages

MAX_BYTES = 1024
TIMES = [
    "2026-03-01T10:00:00Z", "2026-03-01T10:00:00.5+05:30", "2026-03-01T10:00:00.123456-01:00",
    "2026-03-01 10:00:00Z", "2026-03-01T10:00Z", "2026-03-01T10:00:00.1234567Z", "2026-03-01T10:00:00+0530",
    "20260301T100000Z", "2026-W09-7T10:00:00Z", "2026-03-01T10:00:00", "2026-03-01", "2099-01-01T00:00:00Z",
    "1999-01-01T00:00:00Z", "2026-03-02T00:04:59Z", "2026-03-02T00:05:01Z", "2026-13-01T00:00:00Z", "yesterday", "",
]  # fmt: skip


def _gate(stream: str) -> EdgeCheck:
    return EdgeCheck(stream, now=NOW, earliest=EARLIEST, max_bytes=MAX_BYTES)


def _variants(stream: str) -> list[bytes]:
    """The good event as bytes, changed one way at a time: JSON edge cases, types, versions and times."""
    good = GOOD[stream]
    text = json.dumps(good)
    body = text[1:-1]
    out = [text.encode(), (" " + text + "\n").encode(), json.dumps(good, indent=2).encode()]
    out += [json.dumps({**good, "event_ts": moment}).encode() for moment in TIMES]
    for field in [*good, "schema_version", "extra"]:
        out.append(json.dumps({k: v for k, v in good.items() if k != field}).encode())
        for probe in (None, "", " ", "\u00a0", "x", 12, 1.5, True, [], {}, "2026-03-01T10:00:00Z", 2, "1"):
            out.append(json.dumps({**good, field: probe}).encode())
    out += [
        ("{" + body + ', "extra": 1e999}').encode(),  # orjson refuses infinity, in any field
        ("{" + body + ', "amount": 1e999}').encode(),
        ("{" + body + ', "extra": 1' + "0" * 400 + "}").encode(),
        ("{" + body + ', "schema_version": 1' + "0" * 30 + "}").encode(),
        ("{" + body + ', "extra": "').encode() + b"\xed\xa0\x80" + b'"}',  # UTF-8-encoded surrogate
        ("{" + body + ', "extra": "').encode() + b"\xff" + b'"}',
        ("{" + body + ', "extra": "\\ud800"}').encode(),  # lone surrogate escape
        ("{" + body + ', "event_id": "x", "event_id": " "}').encode(),  # duplicate key: the last one counts
        ("{" + body + ', "event_id": " ", "event_id": "x"}').encode(),
        b"\xef\xbb\xbf" + text.encode(),  # byte order mark
        text.encode() + b"\x00",
        text.encode() + b" {}",
        ("[" + text + "]").encode(),
        text.replace('"event_id"', '"\\u0065vent_id"').encode(),
        text.encode() + b" " * MAX_BYTES,  # oversized
        b"",
        b"null",
        b'{"event_id": "truncated',
    ]
    return out


@pytest.mark.parametrize("stream", sorted(GOOD))
def test_the_fast_path_on_bytes_is_never_looser_than_the_full_check(stream):
    gate = _gate(stream)
    taken = 0
    for raw in _variants(stream):
        envelope = gate.envelope(raw)
        event, problem = gate.check(raw)
        if envelope is None:
            continue
        taken += 1
        assert problem is None and event is not None, (raw, problem)
        event_id, event_type, event_ts, version = envelope
        assert (event_id, event_type, version) == (event.event_id, event.event_type, event.schema_version), raw
        assert datetime.fromisoformat(event_ts) == event.event_ts, raw
    assert taken > 10


def test_the_fast_path_takes_every_event_the_generator_makes():
    messages = generator_messages(step_seed=5)
    assert {m.topic_key for m in messages} == {"clickstream", "payments", "shipments"}
    for message in messages:
        assert _gate(message.topic_key).envelope(message.value) is not None, message.value


def test_a_schema_version_the_wire_struct_does_not_pin_is_looked_at_again(tmp_path):
    schema = json.loads((contracts.SCHEMA_DIR / "shipments" / "v1.json").read_text())
    schema["properties"]["schema_version"] = {"type": ["integer", "null"]}  # not a const: any version decodes
    (tmp_path / "shipments").mkdir()
    (tmp_path / "shipments" / "v1.json").write_text(json.dumps(schema))
    gate = EdgeCheck("shipments", now=NOW, earliest=EARLIEST, schema_dir=tmp_path)
    for version in (1, None, 2):
        raw = json.dumps({**GOOD["shipments"], "schema_version": version}).encode()
        event, problem = gate.check(raw)
        assert (gate.envelope(raw) is not None) == (event is not None), (version, problem)
    assert gate.envelope(json.dumps(GOOD["shipments"]).encode()) is not None  # absent: the default version


def _message(stream: str, offset: int, value: bytes, partition: int = 0) -> Message:
    return Message(
        topic=f"shop.{stream}", partition=partition, offset=offset, key=b"k", value=value, timestamp=(1, 1_772_000_000)
    )


@pytest.mark.parametrize("stream", sorted(GOOD))
def test_a_page_with_poison_of_every_kind_lands_the_good_in_order_and_letters_the_rest(stream):
    values = []
    for n, moment in enumerate(TIMES):
        values.append(json.dumps({**GOOD[stream], "event_id": f"e{n}", "event_ts": moment}).encode())
        for kind in KAFKA_POISON_KINDS:
            poison = kafka_value(kind, stream, {**GOOD[stream], "event_id": f"p{n}"}, oversized_bytes=2 * MAX_BYTES)
            values.append(poison)
    values += [json.dumps({**GOOD[stream], "event_id": "extra", "extra": "x"}).encode()]  # full check only
    messages = [_message(stream, offset, value, offset % 2) for offset, value in enumerate(values)]
    options = ReadOptions(max_message_bytes=MAX_BYTES, earliest_event_time=EARLIEST)
    extract = Extract(stream, f"shop.{stream}", options, NOW)
    extract.take(messages[:100], {}, set())
    extract.take(messages[100:], {}, set())
    now = datetime.now(UTC)
    verdicts = [validate(stream, v, now=now, earliest=EARLIEST, max_bytes=MAX_BYTES) for v in values]
    good = [(offset, event) for offset, (event, _problem) in enumerate(verdicts) if event is not None]
    table = extract.batch.to_arrow()
    assert table.column("offset").to_pylist() == [offset for offset, _event in good]
    assert table.column("event_ts").to_pylist() == [event.event_ts for _offset, event in good]
    assert table.column("payload").to_pylist() == [values[offset].decode() for offset, _event in good]
    assert table.column("event_id").to_pylist()[-1] == "extra"
    expected_dead = [(o, p) for o, (_e, p) in enumerate(verdicts) if p is not None]
    assert [(row["offset"], (row["error_class"], row["reason"])) for row in extract.dead] == expected_dead
    assert [row["raw_bytes"] for row in extract.dead] == [values[offset] for offset, _p in expected_dead]
    assert {p[0] for _o, p in expected_dead} >= {"json.invalid", "size.oversized", "contract.implausible_time"}
    assert {p: m.offset() for p, m in extract.last.items()} == {
        len(values) % 2: len(values) - 2,
        1 - len(values) % 2: len(values) - 1,
    }


def test_event_times_in_any_accepted_form_land_as_the_instant_the_check_read():
    def accepted(moment: str) -> bool:
        raw = json.dumps({**GOOD["payments"], "event_ts": moment}).encode()
        return validate("payments", raw, now=NOW, earliest=EARLIEST)[0] is not None

    rfc3339 = ["2026-03-01T10:00:00Z", "2026-03-01T10:00:00.5+05:30", "2026-03-01T10:00:00.123456-01:00"]
    assert all(re.fullmatch(RFC3339, t) for t in rfc3339)  # Arrow's cast in bulk
    others = [t for t in TIMES if accepted(t) and not re.fullmatch(RFC3339, t)]  # Python's parser one by one
    assert len(others) > 3
    for times in (rfc3339, rfc3339 + others):
        batch = LandedBatch("shop.payments", NOW)
        envelopes = [("e", "payment_captured", t, 1) for t in times]
        batch.extend([_message("payments", n, b"{}") for n in range(len(times))], [b"{}"] * len(times), envelopes)
        landed = batch.to_arrow().column("event_ts").to_pylist()
        assert landed == [datetime.fromisoformat(t).astimezone(UTC) for t in times]


def test_an_integer_field_beyond_64_bits_takes_the_full_check(tmp_path):
    schema = json.loads((contracts.SCHEMA_DIR / "shipments" / "v1.json").read_text())
    schema["properties"]["parcels"] = {"type": ["integer", "null"]}
    (tmp_path / "shipments").mkdir()
    (tmp_path / "shipments" / "v1.json").write_text(json.dumps(schema))
    gate = EdgeCheck("shipments", now=NOW, earliest=EARLIEST, schema_dir=tmp_path)
    body = json.dumps(GOOD["shipments"])[1:-1]
    for parcels in ("3", "-9223372036854775808", "18446744073709551615", "1" + "0" * 30, "1" + "0" * 400):
        raw = ("{" + body + ', "parcels": ' + parcels + "}").encode()
        if gate.envelope(raw) is not None:
            assert gate.check(raw)[1] is None, parcels
    assert gate.envelope(("{" + body + ', "parcels": 3}').encode()) is not None


def test_each_landed_row_gets_its_own_row_id_so_dlt_loads_the_file_as_extracted():
    batch = LandedBatch("shop.payments", NOW)
    n = 5_000
    envelopes = [("e", "payment_captured", "2026-03-01T10:00:00Z", 1)] * n
    batch.extend([_message("payments", i, b"{}") for i in range(n)], [b"{}"] * n, envelopes)
    ids = batch.to_arrow().column(ROW_ID)
    assert ids.null_count == 0
    values = ids.to_pylist()
    assert len(set(values)) == n
    assert all(len(value) == ROW_ID_BYTES * 4 // 3 and base64.b64decode(value) for value in values)
    assert ARROW_NORMALIZER_CONFIG["normalize.parquet_normalizer.add_dlt_id"] is False
    assert row_ids(0).to_pylist() == []
