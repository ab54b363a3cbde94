"""What each MongoDB collection must look like to be loaded, and the dlt column hints of its table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from bson import ObjectId
from bson.decimal128 import Decimal128

from ingest.vocabulary import ORDER_STATUSES

MONEY = {"data_type": "decimal", "precision": 18, "scale": 2}


@dataclass(frozen=True)
class CollectionContract:
    """Required fields (``name -> python type``) and dlt column hints of one collection."""

    required: dict[str, type | tuple[type, ...]]
    columns: dict[str, Any] = field(default_factory=dict)


COLLECTIONS: dict[str, CollectionContract] = {
    "customers": CollectionContract(
        required={"_id": (str, ObjectId), "email": str, "created_at": datetime, "updated_at": datetime},
    ),
    "products": CollectionContract(
        required={
            "_id": (str, ObjectId),
            "sku": str,
            "price": (Decimal128, Decimal, int, float),
            "updated_at": datetime,
        },
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
        columns={"total_amount": MONEY},
    ),
}


def validate(collection: str, doc: dict[str, Any]) -> str | None:
    """The reason ``doc`` breaks its collection's contract, or None when it is fine."""
    for name, kind in COLLECTIONS[collection].required.items():
        if doc.get(name) is None:
            return f"missing required field '{name}'"
        if not isinstance(doc[name], kind):
            return f"field '{name}' has type {type(doc[name]).__name__}"
    if collection == "orders":
        if doc["status"] not in ORDER_STATUSES:
            return f"unknown order status '{doc['status']}'"
        if not doc["line_items"]:
            return "order has no line items"
        for item in doc["line_items"]:
            quantity = item.get("quantity") if isinstance(item, dict) else None
            if not isinstance(quantity, int) or quantity <= 0:
                return f"line item {item!r:.80} has an invalid quantity"
            if not isinstance(item.get("unit_price"), Decimal128 | Decimal | int | float):
                return f"line item {item!r:.80} has an invalid unit_price"
    return None
