from decimal import Decimal

from bson import ObjectId
from bson.decimal128 import Decimal128

from ingest.mongodb.helpers import from_bson, to_bson


def test_from_bson_converts_bson_types_recursively():
    oid = ObjectId()
    out = from_bson({"_id": oid, "items": [{"price": Decimal128("1.25")}], "n": 1})
    assert out == {"_id": str(oid), "items": [{"price": Decimal("1.25")}], "n": 1}


def test_to_bson_stores_money_as_decimal128_and_round_trips():
    doc = {"total": Decimal("12.50"), "items": [{"price": Decimal("6.25"), "qty": 2}]}
    stored = to_bson(doc)
    assert stored["items"][0]["price"] == Decimal128("6.25")
    assert from_bson(stored) == doc
