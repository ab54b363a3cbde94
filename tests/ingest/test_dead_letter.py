"""The dead-letter row builder: stable ids, exact bytes, headers, first-seen time; older callers still work."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest.dead_letter import HINTS, dead_letter, dead_letter_row, kafka_headers


def test_row_keeps_exact_bytes_and_defaults_first_seen_to_received():
    received = datetime(2026, 3, 1, tzinfo=UTC)
    row = dead_letter_row(
        source="kafka", origin="shop.payments", record_id="0:7", raw_value="\ufffd", reason="r",
        raw_bytes=b"\xff\x00", headers=kafka_headers([("h", b"\x00"), ("n", None)]), error_class="json.invalid",
        received_at=received, partition=0, offset=7,
    )  # fmt: skip
    assert row["dead_letter_id"] == "kafka:shop.payments:0:7"
    assert row["raw_bytes"] == b"\xff\x00"
    assert row["headers"] == [{"key": "h", "value_b64": "AA=="}, {"key": "n", "value_b64": None}]
    assert row["first_seen_at"] == row["received_at"] == received and row["replayed_at"] is None


def test_same_record_same_id_and_insert_only_merge_keeps_the_first_row():
    a = dead_letter_row(source="mongodb", origin="orders", record_id="o1@v", raw_value="{}", reason="r")
    b = dead_letter_row(source="mongodb", origin="orders", record_id="o1@v", raw_value="{}", reason="r")
    assert a["dead_letter_id"] == b["dead_letter_id"]
    assert HINTS["write_disposition"] == {"disposition": "merge", "strategy": "insert-only"}
    assert HINTS["primary_key"] == "dead_letter_id"


def test_the_former_call_still_builds_a_marked_row():
    marked = dead_letter(
        source="mongodb", origin="orders", record_id="o1@2026", record_key="o1", raw_value="{}", reason="bad"
    )
    assert marked.meta.hints["table_name"] == "dead_letter"
    assert marked.data["reason"] == "bad" and marked.data["raw_bytes"] is None
    assert kafka_headers(None) is None and kafka_headers([]) is None
