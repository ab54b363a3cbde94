"""Helpers of the MongoDB source: BSON-specific values to plain Python and back (the generator writes with them too)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bson import ObjectId
from bson.decimal128 import Decimal128


def from_bson(value: Any) -> Any:
    """Recursively: Decimal128 -> Decimal, ObjectId -> str; everything else as is."""
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dict):
        return {k: from_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_bson(v) for v in value]
    return value


def to_bson(value: Any) -> Any:
    """Recursively: money (Decimal) as Decimal128; everything else as is."""
    if isinstance(value, Decimal):
        return Decimal128(value)
    if isinstance(value, dict):
        return {k: to_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_bson(v) for v in value]
    return value
