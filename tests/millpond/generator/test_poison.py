import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ingest.vocabulary import EVENT_TYPES
from millpond.generator.model import GeneratorConfig, ShopModel
from millpond.generator.poison import KAFKA_POISON_KINDS, MONGO_POISON_KINDS, kafka_value, mongo_document

GOOD = {
    "clickstream": {"event_id": "e1", "event_type": "page_view", "event_ts": "2026-03-01T10:00:00.000Z",
                    "session_id": "s1", "schema_version": 1},
    "payments": {"event_id": "e2", "event_type": "payment_captured", "event_ts": "2026-03-01T10:00:00.000Z",
                 "order_id": "ord_00000001", "amount": "12.50", "currency": "EUR"},
    "shipments": {"event_id": "e3", "event_type": "shipment_created", "event_ts": "2026-03-01T10:00:00.000Z",
                  "order_id": "ord_00000001", "carrier": "DHL"},
}  # fmt: skip
KEY = {"clickstream": "session_id", "payments": "order_id", "shipments": "order_id"}


@pytest.mark.parametrize("stream", sorted(GOOD))
def test_each_kafka_kind_breaks_exactly_its_rule(stream):
    good = GOOD[stream]
    values = {kind: kafka_value(kind, stream, good, oversized_bytes=5_000) for kind in KAFKA_POISON_KINDS}
    with pytest.raises(UnicodeDecodeError):
        values["invalid_utf8"].decode("utf-8")
    with pytest.raises(json.JSONDecodeError):
        json.loads(values["invalid_json"])
    parsed = {k: json.loads(v) for k, v in values.items() if k not in ("invalid_utf8", "invalid_json")}
    assert KEY[stream] not in parsed["missing_field"]
    if stream == "payments":
        with pytest.raises(ArithmeticError):
            Decimal(parsed["wrong_type"]["amount"])
    else:
        assert not isinstance(parsed["wrong_type"][KEY[stream]], str)
    assert parsed["unknown_schema_version"]["schema_version"] not in (1, 2)
    assert parsed["unknown_event_type"]["event_type"] not in EVENT_TYPES[stream]
    assert 5_000 <= len(values["oversized"]) < 5_100
    assert parsed["future_time"]["event_ts"] > "2090"
    assert parsed["ancient_time"]["event_ts"] < "2000"
    for kind, body in parsed.items():  # nothing else is broken
        changed = {k for k in {*body, *good} if body.get(k) != good.get(k)}
        assert len(changed) == 1, (kind, changed)


def test_each_mongo_kind_breaks_one_field_and_keeps_its_clean_value():
    model = ShopModel(GeneratorConfig(), step_seed=5)
    products = [model.product(i, datetime(2026, 1, 1, tzinfo=UTC)) for i in range(1, 4)]
    order = model.order(1, datetime(2026, 3, 1, 12, tzinfo=UTC), "cus_000001", products)
    for kind in MONGO_POISON_KINDS:
        doc, repair = mongo_document(kind, order)
        assert {**doc, **repair} == order, kind
        assert doc != order
    assert mongo_document("negative_amount", order)[0]["line_items"][0]["unit_price"] < 0
    assert isinstance(mongo_document("wrong_type", order)[0]["line_items"][0]["quantity"], str)
    assert "customer_id" not in mongo_document("missing_field", order)[0]
    assert "updated_at" not in mongo_document("missing_updated_at", order)[0]
    assert isinstance(mongo_document("non_date_updated_at", order)[0]["updated_at"], str)


def test_unknown_poison_kind_is_refused():
    with pytest.raises(ValueError, match="unknown kinds"):
        GeneratorConfig(kafka_poison_kinds=("nope",))


def test_fault_knobs_leave_the_good_data_unchanged():
    def shop(**faults):
        config = GeneratorConfig(**faults)
        model = ShopModel(config, step_seed=9)
        products = [model.product(i, datetime(2026, 1, 1, tzinfo=UTC)) for i in range(1, 6)]
        good, out = [], []
        for number in range(1, 30):
            order = model.order(number, datetime(2026, 3, 1, 12, tzinfo=UTC), "cus_000001", products)
            msgs = model.clickstream("s", order["created_at"], None, ["prd_0001"], order["_id"])
            good += [m.event for m in msgs]
            out += model.inject_faults(msgs)
        return good, out

    clean, clean_out = shop(duplicate_rate=0, malformed_rate=0)
    faulty, faulty_out = shop(duplicate_rate=0.3, malformed_rate=0.3, kafka_poison_rate=0.5)
    assert clean == faulty
    assert len(clean_out) == len(clean) < len(faulty_out)
    assert {m.poison for m in faulty_out if m.poison} == set(KAFKA_POISON_KINDS)  # every kind is drawn
