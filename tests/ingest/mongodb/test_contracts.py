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


def test_every_single_record_rule_of_a_blocking_audit_is_an_edge_rule():
    line = {"line_no": 1, "quantity": 1, "unit_price": Decimal128("1.00")}
    assert validate("orders", _order(status=" PAID ", line_items=[line])) is None  # staging trims and lower-cases
    assert "is blank" in validate("orders", _order(customer_id="  "))
    assert "negative unit_price" in validate("orders", _order(line_items=[{**line, "unit_price": -1}]))
    assert "invalid unit_price" in validate("orders", _order(line_items=[{**line, "unit_price": float("nan")}]))
    assert "invalid quantity" in validate("orders", _order(line_items=[{**line, "quantity": True}]))
    assert "does not fit" in validate("orders", _order(line_items=[{**line, "unit_price": Decimal128("1E17")}]))
    assert "repeats line_no 1" in validate("orders", _order(line_items=[line, line]))
    assert "status_history[0] has an unknown status" in validate("orders", _order(status_history=[{"status": "x"}]))
    product = {"_id": "p1", "sku": "A", "price": Decimal128("2.00"), "updated_at": NOW}
    assert validate("products", product) is None
    assert "'price' is negative" in validate("products", {**product, "price": -0.01})
    assert "'sku' is blank" in validate("products", {**product, "sku": " "})
    assert "missing required field 'created_at'" in validate("customers", {"_id": "c", "email": "e", "updated_at": NOW})
