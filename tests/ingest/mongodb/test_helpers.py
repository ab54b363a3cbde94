import random
import struct
from decimal import Decimal

from bson import ObjectId
from bson.decimal128 import Decimal128

from ingest.mongodb.helpers import from_bson, to_bson, to_decimal


def test_from_bson_converts_bson_types_recursively():
    oid = ObjectId()
    out = from_bson({"_id": oid, "items": [{"price": Decimal128("1.25")}], "n": 1})
    assert out == {"_id": str(oid), "items": [{"price": Decimal("1.25")}], "n": 1}


def test_to_bson_stores_money_as_decimal128_and_round_trips():
    doc = {"total": Decimal("12.50"), "items": [{"price": Decimal("6.25"), "qty": 2}]}
    stored = to_bson(doc)
    assert stored["items"][0]["price"] == Decimal128("6.25")
    assert from_bson(stored) == doc


def _bid(low: int, high: int) -> Decimal128:
    return Decimal128.from_bid(struct.pack("<QQ", low, high))


def _edge_decimals() -> list[Decimal128]:
    values = [
        "0",
        "-0",
        "0.00",
        "-0E-6176",
        "1",
        "-1",
        "12.34",
        "-99999999999999.99",
        "1E+6111",
        "-1E-6176",
        "9999999999999999999999999999999999",
        "9.999999999999999999999999999999999E+6144",
        "1E-6176",
        "NaN",
        "-NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
        "0E+6111",
        "123456789012345678901234567890.1234",
    ]
    out = [Decimal128(v) for v in values]
    # a coefficient above 34 digits and the second (implied-coefficient) form are read as zero
    out += [_bid(2**64 - 1, 0x3040_0000_0000_0000 | 0x1_FFFF_FFFF_FFFF), _bid(0, 0x6000_0000_0000_0000 | (1 << 50))]
    return out


def test_to_decimal_is_exactly_pymongos_conversion():
    """Same digits, exponent and sign as ``Decimal128.to_decimal`` (representation, not only value), over edge cases
    and 20,000 random bit patterns."""
    rng = random.Random(7)
    randoms = [_bid(rng.getrandbits(64), rng.getrandbits(64)) for _ in range(10_000)]
    # money-like values: small coefficients and exponents near the bias, as the shop stores them
    money = [Decimal128(f"{rng.randint(-(10**9), 10**9)}E{rng.randint(-8, 2)}") for _ in range(10_000)]
    for value in _edge_decimals() + randoms + money:
        assert to_decimal(value).as_tuple() == value.to_decimal().as_tuple(), value.bid.hex()


def test_from_bson_converts_decimal128_with_to_decimal():
    out = from_bson({"a": [Decimal128("-0.50"), {"b": Decimal128("1E+3")}]})
    assert [str(out["a"][0]), str(out["a"][1]["b"])] == ["-0.50", "1E+3"]
