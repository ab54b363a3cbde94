"""The shop's closed vocabularies: order statuses and event types per Kafka stream.

This module is the one place they are written. The sources' edge contracts, the generator,
the SQLMesh audits (through the ``@order_statuses()``/``@event_types(stream)`` macros) and the
Soda contracts all take their lists from here, so a new status or event type is one edit.
"""

from __future__ import annotations

# An order moves through these in this order; ``cancelled`` may follow any step before delivery.
ORDER_STATUS_FLOW: tuple[str, ...] = ("created", "paid", "shipped", "delivered")
ORDER_STATUSES: tuple[str, ...] = (*ORDER_STATUS_FLOW, "cancelled")

# Kafka stream (the topic's logical name) -> the event types it carries.
EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "clickstream": ("page_view", "add_to_cart", "checkout_started", "order_placed"),
    "payments": ("payment_authorized", "payment_captured", "payment_failed", "refund_issued"),
    "shipments": ("shipment_created", "shipment_delivered"),
}
