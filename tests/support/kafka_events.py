"""One valid event per Kafka stream, and the clock the edge contract tests check event times against."""

from __future__ import annotations

from datetime import UTC, datetime

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
