import json

import pytest

from ingest.kafka.events import parse_event


def test_valid_event_gets_parsed_timestamp():
    event, problem = parse_event(
        b'{"event_id": "e1", "event_type": "page_view", "event_ts": "2026-03-01T10:00:00.123Z"}'
    )
    assert problem is None
    assert event is not None
    assert event["_event_ts"].isoformat() == "2026-03-01T10:00:00.123000+00:00"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"event_id": "trunc', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (json.dumps({"event_type": "x", "event_ts": "2026-01-01T00:00:00Z"}).encode(), "'event_id'"),
        (json.dumps({"event_id": "e", "event_type": "x", "event_ts": "yesterday"}).encode(), "not an ISO-8601"),
        (json.dumps({"event_id": "e", "event_type": "x", "event_ts": "2026-01-01T00:00:00"}).encode(), "no time zone"),
    ],
)
def test_invalid_events_get_a_reason(raw: bytes, reason: str):
    event, problem = parse_event(raw)
    assert event is None
    assert problem is not None and reason in problem
