"""Poison: the records a broken producer or application writes, one kind at a time.

Each Kafka kind breaks exactly one rule of the topic's edge contract, starting from a good event
(with a fresh ``event_id``, so it never collides with the good one); each MongoDB kind breaks one
rule of the collection's contract in one order version.
"""

from __future__ import annotations

import copy
import json
from typing import Any

KAFKA_POISON_KINDS = (
    "invalid_utf8",  # value bytes are not UTF-8
    "invalid_json",  # value is cut off mid-document
    "missing_field",  # payments/shipments without order_id, clickstream without session_id
    "wrong_type",  # payments with a non-numeric amount, the others with a numeric key field
    "unknown_schema_version",
    "unknown_event_type",
    "oversized",  # a valid event padded to ``oversized_bytes``
    "future_time",  # event_ts years ahead
    "ancient_time",  # event_ts before the shop existed
)
MONGO_POISON_KINDS = (
    "wrong_type",  # a line item's quantity is a string
    "missing_field",  # no customer_id
    "negative_amount",  # a line item's unit_price < 0
    "missing_updated_at",
    "non_date_updated_at",  # updated_at is a string
)
UNKNOWN_SCHEMA_VERSION = 99
UNKNOWN_EVENT_TYPE = "coupon_redeemed"
FUTURE_TS = "2099-01-01T00:00:00.000Z"
ANCIENT_TS = "1999-01-01T00:00:00.000Z"
KEY_FIELD = {"clickstream": "session_id", "payments": "order_id", "shipments": "order_id"}


def kafka_value(kind: str, stream: str, event: dict[str, Any], *, oversized_bytes: int) -> bytes:
    """The value bytes of a ``kind`` poison record on ``stream``, made from the good ``event``."""
    body = dict(event)
    key_field = KEY_FIELD[stream]
    if kind == "missing_field":
        body.pop(key_field, None)
    elif kind == "wrong_type":
        if stream == "payments":
            body["amount"] = "twelve euros"
        else:
            body[key_field] = 12345
    elif kind == "unknown_schema_version":
        body["schema_version"] = UNKNOWN_SCHEMA_VERSION
    elif kind == "unknown_event_type":
        body["event_type"] = UNKNOWN_EVENT_TYPE
    elif kind == "future_time":
        body["event_ts"] = FUTURE_TS
    elif kind == "ancient_time":
        body["event_ts"] = ANCIENT_TS
    raw = json.dumps(body, default=str).encode()
    if kind == "invalid_utf8":
        marker = body["event_id"].encode()
        return raw.replace(marker, marker + b"\xc3\x28", 1)  # 0xC3 must be followed by a continuation byte
    if kind == "invalid_json":
        return raw[: len(raw) // 2]
    if kind == "oversized":
        padding = max(0, oversized_bytes - len(raw) - len(', "padding": ""'))
        return json.dumps({**body, "padding": "x" * padding}, default=str).encode()
    if kind not in KAFKA_POISON_KINDS:
        raise ValueError(f"unknown Kafka poison kind {kind!r}")
    return raw


def mongo_document(kind: str, order: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(poisoned copy of order, clean values of the fields it breaks)``."""
    doc = copy.deepcopy(order)
    if kind == "wrong_type":
        doc["line_items"][0]["quantity"] = str(doc["line_items"][0]["quantity"])
        broken = "line_items"
    elif kind == "negative_amount":
        doc["line_items"][0]["unit_price"] = -abs(doc["line_items"][0]["unit_price"])
        broken = "line_items"
    elif kind == "missing_field":
        del doc["customer_id"]
        broken = "customer_id"
    elif kind == "missing_updated_at":
        del doc["updated_at"]
        broken = "updated_at"
    elif kind == "non_date_updated_at":
        doc["updated_at"] = doc["updated_at"].isoformat()
        broken = "updated_at"
    else:
        raise ValueError(f"unknown MongoDB poison kind {kind!r}")
    return doc, {broken: copy.deepcopy(order[broken])}
