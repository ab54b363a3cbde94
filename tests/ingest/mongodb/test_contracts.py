from datetime import UTC, datetime

from bson.decimal128 import Decimal128

from ingest.mongodb.contracts import validate

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _order(**overrides):
    doc = {
        "_id": "ord_1",
        "customer_id": "cus_1",
        "status": "paid",
        "line_items": [{"quantity": 2, "unit_price": Decimal128("3.50")}],
        "created_at": NOW,
        "updated_at": NOW,
    }
    doc.update(overrides)
    return doc


def test_valid_order_passes():
    assert validate("orders", _order()) is None


def test_order_problems_are_named():
    assert "missing required field 'customer_id'" in validate("orders", _order(customer_id=None))
    assert "unknown order status 'lost'" in validate("orders", _order(status="lost"))
    assert "no line items" in validate("orders", _order(line_items=[]))
    assert "invalid quantity" in validate("orders", _order(line_items=[{"quantity": "2", "unit_price": 1}]))
    assert "invalid unit_price" in validate("orders", _order(line_items=[{"quantity": 2, "unit_price": "x"}]))
    assert "field 'updated_at' has type str" in validate("orders", _order(updated_at="2026-03-01"))
