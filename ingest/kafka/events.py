"""The minimal contract every event must meet to be loaded: JSON object, id, type, timestamp."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def parse_event(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """``(event, None)`` for a valid event (with ``_event_ts`` parsed), else ``(None, reason)``."""
    try:
        event = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"value is not valid JSON: {exc.msg if hasattr(exc, 'msg') else exc}"
    if not isinstance(event, dict):
        return None, f"value is a JSON {type(event).__name__}, not an object"
    for name in ("event_id", "event_type", "event_ts"):
        if not isinstance(event.get(name), str) or not event[name].strip():
            return None, f"missing or empty string field '{name}'"
    try:
        moment = datetime.fromisoformat(event["event_ts"].replace("Z", "+00:00"))
    except ValueError:
        return None, f"field 'event_ts' is not an ISO-8601 timestamp: {event['event_ts']!r:.40}"
    if moment.tzinfo is None:
        return None, "field 'event_ts' has no time zone"
    event["_event_ts"] = moment.astimezone(UTC)
    return event, None
