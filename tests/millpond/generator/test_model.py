from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ingest.vocabulary import EVENT_TYPES, ORDER_STATUSES
from millpond.generator.model import SEGMENTS, GeneratorConfig, ShopModel, ts


def _order(seed: int = 7, cancel_rate: float = 0.0):
    model = ShopModel(GeneratorConfig(cancel_rate=cancel_rate), step_seed=seed)
    products = [model.product(i, datetime(2026, 1, 1, tzinfo=UTC)) for i in range(1, 6)]
    return model, model.order(1, datetime(2026, 3, 1, 12, tzinfo=UTC), "cus_000001", products)


def test_same_seed_same_documents():
    a = _order(seed=11)[1]
    b = _order(seed=11)[1]
    c = _order(seed=12)[1]
    assert a == b
    assert a != c


def test_order_total_is_sum_of_line_items():
    _, order = _order()
    expected = sum(i["unit_price"] * i["quantity"] for i in order["line_items"])
    assert order["total_amount"] == expected.quantize(Decimal("0.01"))
    assert 1 <= len(order["line_items"]) <= 4


def test_advance_reveals_status_transitions_in_time_order():
    model, order = _order()
    created = order["created_at"]
    assert model.advance(order, created - timedelta(seconds=1)) == []
    first = model.advance(order, created + timedelta(days=30))
    assert [s["status"] for s in first] == ["paid", "shipped", "delivered"]
    assert order["status"] == "delivered"
    assert order["updated_at"] == first[-1]["at"]
    assert model.advance(order, created + timedelta(days=60)) == []  # idempotent


def test_cancelled_orders_stop_early():
    model, order = _order(cancel_rate=1.0)
    model.advance(order, order["created_at"] + timedelta(days=30))
    assert order["status"] == "cancelled"
    assert "delivered" not in [h["status"] for h in order["status_history"]]


def test_clickstream_session_ends_with_order_placed_at_order_time():
    model, order = _order()
    msgs = model.clickstream("s1", order["created_at"], "cus_000001", ["prd_0001"], order["_id"])
    kinds = [m.event["event_type"] for m in msgs]
    assert kinds[-1] == "order_placed"
    assert "checkout_started" in kinds
    assert msgs[-1].event["event_ts"] == ts(order["created_at"])


def test_faults_duplicate_and_corrupt_at_configured_rates():
    model = ShopModel(GeneratorConfig(duplicate_rate=1.0, malformed_rate=1.0), step_seed=1)
    msgs = model.clickstream("s1", datetime(2026, 3, 1, tzinfo=UTC), None, ["prd_0001"])
    faulty = model.inject_faults(msgs)
    assert len(faulty) == 3 * len(msgs)
    assert sum(1 for m in faulty if m.event is None) == len(msgs)
    ids = [m.event["event_id"] for m in faulty if m.event is not None]
    assert len(set(ids)) == len(msgs)


def test_statuses_and_event_types_come_from_the_one_vocabulary():
    model = ShopModel(GeneratorConfig(cancel_rate=0.5), step_seed=3)
    products = [model.product(i, datetime(2026, 1, 1, tzinfo=UTC)) for i in range(1, 6)]
    statuses, events = set(), {}
    for number in range(1, 60):
        order = model.order(number, datetime(2026, 3, 1, 12, tzinfo=UTC), "cus_000001", products)
        messages = model.clickstream("s", order["created_at"], None, ["prd_0001"], order["_id"])
        messages += model.lifecycle_events(order, model.advance(order, order["created_at"] + timedelta(days=30)))
        statuses |= {step["status"] for step in order["status_history"]}
        for message in messages:
            events.setdefault(message.topic_key, set()).add(message.event["event_type"])
    assert statuses == set(ORDER_STATUSES)
    assert set(events) == set(EVENT_TYPES)
    for stream, kinds in events.items():
        assert kinds <= set(EVENT_TYPES[stream]), stream
    assert events["payments"] == set(EVENT_TYPES["payments"]) - {"payment_failed"}  # the shop never fails a payment


def test_a_customers_first_segment_is_a_keyed_draw_over_every_segment():
    model = ShopModel(GeneratorConfig(), step_seed=1)
    other_step = ShopModel(GeneratorConfig(), step_seed=2)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    segments = [model.customer(number, at)["segment"] for number in range(1, 60)]
    assert segments == [other_step.customer(number, at)["segment"] for number in range(1, 60)]
    assert set(segments) == set(SEGMENTS)


def test_scd_attributes_change_and_nothing_else_does():
    model = ShopModel(GeneratorConfig(), step_seed=5)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    later = at + timedelta(days=3)
    customer, product = model.customer(1, at), model.product(1, at)

    resegmented = model.resegmented(customer, later)
    assert resegmented["segment"] != customer["segment"] and resegmented["updated_at"] == later
    assert {k: v for k, v in resegmented.items() if k not in ("segment", "updated_at")} == {
        k: v for k, v in customer.items() if k not in ("segment", "updated_at")
    }
    moves = [model.moved(customer, later) for _ in range(40)]
    assert all(m["address"]["street"] == customer["address"]["street"] for m in moves)
    assert {m["address"]["country"] != customer["address"]["country"] for m in moves} == {True, False}

    recategorised = model.recategorised(product, later)
    assert recategorised["category"] != product["category"] and recategorised["sku"] == product["sku"]
    retired = ShopModel.retired(product, later)
    assert retired["active"] is False and retired["price"] == product["price"] and product["active"] is True
