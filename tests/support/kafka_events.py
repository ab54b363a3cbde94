"""Kafka events for the edge contract tests: one valid event per stream, what the generator sends, and the clock event times are checked against."""

from __future__ import annotations

from datetime import UTC, datetime

from millpond.generator.model import GeneratorConfig, Message, ShopModel

NOW = datetime(2026, 3, 2, tzinfo=UTC)
EARLIEST = datetime(2020, 1, 1, tzinfo=UTC)
GOOD = {
    "clickstream": {"event_id": "c1", "event_type": "page_view", "event_ts": "2026-03-01T10:00:00.123Z",
                    "session_id": "s1", "customer_id": None, "product_id": None, "order_id": None,
                    "page_url": "/", "schema_version": 1},
    "payments": {"event_id": "p1", "event_type": "payment_captured", "event_ts": "2026-03-01T10:00:00.000Z",
                 "order_id": "ord_1", "amount": "12.50", "currency": "EUR", "method": "card"},
    "shipments": {"event_id": "s1", "event_type": "shipment_created", "event_ts": "2026-03-01T10:00:00.000Z",
                  "order_id": "ord_1", "carrier": "DHL", "tracking_number": None},
}  # fmt: skip


def generator_messages(step_seed: int) -> list[Message]:
    """What the generator sends for one order's lifecycle and 20 sessions: every stream, both
    clickstream schema versions, no injected faults."""
    model = ShopModel(
        GeneratorConfig(duplicate_rate=0, malformed_rate=0, drift_rate=0.5), step_seed=step_seed, clock=NOW
    )
    products = [model.product(n, datetime(2026, 1, 1, tzinfo=UTC)) for n in range(1, 6)]
    order = model.order(1, datetime(2026, 2, 1, tzinfo=UTC), "cus_000001", products)
    messages = model.lifecycle_events(order, model.advance(order, NOW))
    for n in range(20):
        messages += model.clickstream(f"sess{n}", datetime(2026, 2, 1, 12, tzinfo=UTC), None, ["prd_0001"], "ord_1")
    return messages
