"""What each MongoDB collection must look like to be loaded, and the dlt column hints of its table.

Besides the required fields and their types, :func:`validate` enforces every rule on one
document that a blocking silver/gold audit also enforces (docs/data-contracts/README.md, "Edge
rules paired with blocking audits"): such a document is quarantined here instead of stopping
the whole transform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bson import ObjectId
from bson.decimal128 import Decimal128

from ingest.mongodb.helpers import to_decimal
from ingest.vocabulary import ORDER_STATUSES

MONEY = {"data_type": "decimal", "precision": 18, "scale": 2}
# DECIMAL(18, 2): the largest amount the warehouse holds (also for quantity * unit_price).
MONEY_LIMIT = Decimal(10) ** 16
ERROR_CLASS = "mongodb.contract"
NUMBER = (Decimal128, Decimal, int, float)


@dataclass(frozen=True)
class CollectionContract:
    """Required fields (``name -> python type``), the ones that must be non-blank text, and dlt column hints.

    ``nested_columns`` holds the column hints of the child tables dlt makes from nested lists
    (``line_items`` -> ``mongo_orders__line_items``).
    """

    required: dict[str, type | tuple[type, ...]]
    non_blank: tuple[str, ...] = ()
    columns: dict[str, Any] = field(default_factory=dict)
    nested_columns: dict[str, dict[str, Any]] = field(default_factory=dict)


COLLECTIONS: dict[str, CollectionContract] = {
    "customers": CollectionContract(
        required={"_id": (str, ObjectId), "email": str, "created_at": datetime, "updated_at": datetime},
    ),
    "products": CollectionContract(
        required={"_id": (str, ObjectId), "sku": str, "price": NUMBER, "updated_at": datetime},
        non_blank=("sku",),
        columns={"price": MONEY},
    ),
    "orders": CollectionContract(
        required={
            "_id": (str, ObjectId),
            "customer_id": str,
            "status": str,
            "line_items": list,
            "created_at": datetime,
            "updated_at": datetime,
        },
        non_blank=("customer_id", "status"),
        columns={"total_amount": MONEY},
        nested_columns={"line_items": {"unit_price": MONEY}},
    ),
}


def _amount(value: Any) -> Decimal | None:
    """``value`` as a finite Decimal, or None when it is not a number (bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, NUMBER):
        return None
    try:
        amount = to_decimal(value) if isinstance(value, Decimal128) else Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _status_ok(value: Any) -> bool:
    """The status as staging reads it (trimmed, lower-cased) is one of ORDER_STATUSES."""
    return isinstance(value, str) and value.strip().lower() in ORDER_STATUSES


def validate(collection: str, doc: dict[str, Any]) -> str | None:
    """The reason ``doc`` breaks its collection's contract, or None when it is fine."""
    contract = COLLECTIONS[collection]
    for name, kind in contract.required.items():
        if doc.get(name) is None:
            return f"missing required field '{name}'"
        if not isinstance(doc[name], kind) or isinstance(doc[name], bool):
            return f"field '{name}' has type {type(doc[name]).__name__}"
    for name in contract.non_blank:
        if not doc[name].strip():
            return f"field '{name}' is blank"
    if collection == "products":
        return _check_price(doc["price"])
    if collection == "orders":
        return _check_order(doc)
    return None


def _check_price(value: Any) -> str | None:
    price = _amount(value)
    if price is None:
        return f"field 'price' is not a finite number ({value!r:.40})"
    if price < 0:
        return f"field 'price' is negative ({price})"
    if price >= MONEY_LIMIT:
        return f"field 'price' does not fit DECIMAL(18, 2) ({price})"
    return None


def _check_order(doc: dict[str, Any]) -> str | None:
    if not _status_ok(doc["status"]):
        return f"unknown order status '{doc['status']}'"
    if not doc["line_items"]:
        return "order has no line items"
    line_numbers: set[int] = set()
    for index, item in enumerate(doc["line_items"]):
        problem = _check_line(index, item, line_numbers)
        if problem:
            return problem
    history = doc.get("status_history")
    if history is not None:
        if not isinstance(history, list):
            return f"field 'status_history' has type {type(history).__name__}"
        for index, entry in enumerate(history):
            status = entry.get("status") if isinstance(entry, dict) else None
            if not _status_ok(status):
                return f"status_history[{index}] has an unknown status {status!r:.40}"
    return None


def _check_line(index: int, item: Any, line_numbers: set[int]) -> str | None:
    if not isinstance(item, dict):
        return f"line_items[{index}] is not a document"
    quantity = item.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        return f"line_items[{index}] has an invalid quantity {quantity!r:.40}"
    price = _amount(item.get("unit_price"))
    if price is None:
        return f"line_items[{index}] has an invalid unit_price {item.get('unit_price')!r:.40}"
    if price < 0:
        return f"line_items[{index}] has a negative unit_price ({price})"
    if price * quantity >= MONEY_LIMIT or not math.isfinite(float(price * quantity)):
        return f"line_items[{index}] total does not fit DECIMAL(18, 2)"
    line_no = item.get("line_no")
    if line_no is not None:
        if isinstance(line_no, bool) or not isinstance(line_no, int):
            return f"line_items[{index}] has a non-integer line_no {line_no!r:.40}"
        if line_no in line_numbers:
            return f"line_items[{index}] repeats line_no {line_no}"
        line_numbers.add(line_no)
    return None
