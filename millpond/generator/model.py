"""Pure, deterministic generation of an online shop's documents and events.

Nothing here does I/O: given a seed, a clock ("as of") and the previous state it returns
the MongoDB documents to upsert and the Kafka messages to produce, including injected faults.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from faker import Faker

from ingest.vocabulary import EVENT_TYPES, ORDER_STATUS_FLOW, ORDER_STATUSES

CATEGORIES = ("books", "garden", "kitchen", "toys", "outdoor", "electronics", "beauty")
CARRIERS = ("DHL", "UPS", "PostNL", "DPD")
PAYMENT_METHODS = ("card", "paypal", "klarna", "bank_transfer")
PAGES = ("/", "/search", "/category/{c}", "/product/{p}", "/cart", "/checkout")
CENT = Decimal("0.01")

# The names the model uses, taken from the one vocabulary (``ingest/vocabulary.py``).
CREATED, PAID, SHIPPED, DELIVERED = ORDER_STATUS_FLOW
(CANCELLED,) = set(ORDER_STATUSES) - set(ORDER_STATUS_FLOW)
CLOSED_STATUSES = (DELIVERED, CANCELLED)  # an order in one of these changes no more
PAGE_VIEW, ADD_TO_CART, CHECKOUT_STARTED, ORDER_PLACED = EVENT_TYPES["clickstream"]
PAYMENT_AUTHORIZED, PAYMENT_CAPTURED, _PAYMENT_FAILED, REFUND_ISSUED = EVENT_TYPES["payments"]  # never fails here
SHIPMENT_CREATED, SHIPMENT_DELIVERED = EVENT_TYPES["shipments"]


@dataclass(frozen=True)
class GeneratorConfig:
    """Volume knobs and fault rates; every run with the same values produces the same data."""

    seed: int = 42
    customers: int = 200
    products: int = 40
    orders_per_day: int = 60
    sessions_per_day: int = 40
    days: int = 14
    duplicate_rate: float = 0.02
    malformed_rate: float = 0.005
    late_rate: float = 0.03
    drift_rate: float = 0.05
    cancel_rate: float = 0.08


@dataclass
class Message:
    """One Kafka record: ``value`` is bytes because malformed records are not JSON."""

    topic_key: str
    key: str
    value: bytes
    event: dict[str, Any] | None = None  # None for injected malformed records


def ts(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds, the wire format of every event timestamp."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class ShopModel:
    """Builds a shop step by step; ``rng`` is seeded per step so increments stay deterministic."""

    def __init__(self, config: GeneratorConfig, step_seed: int, clock: datetime | None = None) -> None:
        self.config = config
        self.clock = clock  # no moment after it (today is only generated up to now)
        self.rng = random.Random(step_seed)
        self.fake = Faker(["en_GB", "nl_NL", "de_DE"])
        self.fake.seed_instance(step_seed)

    # -- helpers -------------------------------------------------------------------------
    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def moment(self, day: date) -> datetime:
        """A random second of ``day``, never after the model's ``clock``."""
        span_ms = 86_400_000
        if self.clock is not None:
            span_ms = max(1, min(span_ms, int((self.clock - day_start(day)).total_seconds() * 1000)))
        seconds = self.rng.randrange(span_ms) / 1000
        return (day_start(day) + timedelta(seconds=seconds)).replace(microsecond=0)

    # -- master data ---------------------------------------------------------------------
    def customer(self, number: int, created: datetime) -> dict[str, Any]:
        address: dict[str, Any] = {
            "street": self.fake.street_address(),
            "city": self.fake.city(),
            "postcode": self.fake.postcode(),
            "country": self.rng.choice(("GB", "NL", "DE")),
        }
        doc: dict[str, Any] = {
            "_id": f"cus_{number:06d}",
            "name": self.fake.name(),
            "email": self.fake.email(),
            "phone": self.fake.phone_number(),
            "address": address,
            "created_at": created,
            "updated_at": created,
        }
        if self.rng.random() < self.config.drift_rate:  # drift: optional field absent
            doc.pop("phone")
        return doc

    def product(self, number: int, created: datetime) -> dict[str, Any]:
        category = self.rng.choice(CATEGORIES)
        price = (Decimal(self.rng.randrange(199, 19999)) / 100).quantize(CENT)
        doc: dict[str, Any] = {
            "_id": f"prd_{number:04d}",
            "sku": f"SKU-{category[:3].upper()}-{number:04d}",
            "name": f"{self.fake.color_name()} {self.fake.word()} {category}".title(),
            "category": category,
            "price": price,
            "currency": "EUR",
            "active": True,
            "created_at": created,
            "updated_at": created,
        }
        if self.rng.random() < self.config.drift_rate:  # drift: a field that appears later
            doc["tags"] = [self.fake.word() for _ in range(2)]
        return doc

    # -- orders --------------------------------------------------------------------------
    def order(self, number: int, created: datetime, customer_id: str, products: list[dict[str, Any]]) -> dict[str, Any]:
        picks = self.rng.sample(products, k=min(len(products), self.rng.randint(1, 4)))
        items = [
            {
                "line_no": i + 1,
                "product_id": p["_id"],
                "sku": p["sku"],
                "quantity": self.rng.randint(1, 3),
                "unit_price": p["price"],
            }
            for i, p in enumerate(picks)
        ]
        total = sum((it["unit_price"] * it["quantity"] for it in items), Decimal(0)).quantize(CENT)
        # The whole future of the order is decided now; ``advance`` reveals it as time passes.
        paid = created + timedelta(minutes=self.rng.randint(1, 90))
        shipped = paid + timedelta(hours=self.rng.randint(6, 48))
        delivered = shipped + timedelta(hours=self.rng.randint(24, 96))
        plan = list(zip(ORDER_STATUS_FLOW, (created, paid, shipped, delivered), strict=True))
        if self.rng.random() < self.config.cancel_rate:
            cut = self.rng.randint(1, 2)
            plan = [
                *plan[:cut],
                (CANCELLED, plan[cut - 1][1] + timedelta(hours=self.rng.randint(1, 20))),
            ]
        return {
            "_id": f"ord_{number:08d}",
            "customer_id": customer_id,
            "status": CREATED,
            "currency": "EUR",
            "line_items": items,
            "total_amount": total,
            "status_history": [{"status": CREATED, "at": created}],
            "shipping_address": {
                "city": self.fake.city(),
                "country": self.rng.choice(("GB", "NL", "DE")),
            },
            "created_at": created,
            "updated_at": created,
            "_plan": [{"status": s, "at": at} for s, at in plan],
            "_session_id": self._uuid(),
            "_carrier": self.rng.choice(CARRIERS),
            "_method": self.rng.choice(PAYMENT_METHODS),
        }

    @staticmethod
    def advance(order: dict[str, Any], as_of: datetime) -> list[dict[str, Any]]:
        """Apply planned transitions up to ``as_of``; returns the newly applied ones."""
        done = {h["status"] for h in order["status_history"]}
        applied = [step for step in order["_plan"] if step["status"] not in done and step["at"] <= as_of]
        for step in applied:
            order["status_history"].append({"status": step["status"], "at": step["at"]})
            order["status"] = step["status"]
            order["updated_at"] = step["at"]
        return applied

    # -- events --------------------------------------------------------------------------
    def event(self, topic_key: str, key: str, event_type: str, at: datetime, **fields: Any) -> Message:
        body = {"event_id": self._uuid(), "event_type": event_type, "event_ts": ts(at), **fields}
        return Message(topic_key, key, json.dumps(body, default=str).encode(), body)

    def clickstream(
        self, session_id: str, start: datetime, customer_id: str | None, product_ids: list[str],
        order_id: str | None = None,
    ) -> list[Message]:  # fmt: skip
        """A browsing session; it ends with checkout and order_placed when ``order_id`` is set."""
        moment = start - timedelta(minutes=self.rng.randint(3, 30)) if order_id else start
        out: list[Message] = []
        schema_version = 2 if self.rng.random() < self.config.drift_rate else 1

        def emit(kind: str, **extra: Any) -> None:
            nonlocal moment
            fields: dict[str, Any] = {
                "session_id": session_id, "customer_id": customer_id, "product_id": None,
                "order_id": None, "page_url": "/", "schema_version": schema_version,
            }  # fmt: skip
            if schema_version == 2:
                fields["referrer"] = self.rng.choice(("google", "newsletter", "direct"))
            fields.update(extra)
            out.append(self.event("clickstream", session_id, kind, moment, **fields))
            moment += timedelta(seconds=self.rng.randint(5, 120))

        for _ in range(self.rng.randint(1, 4)):
            emit(PAGE_VIEW, page_url=self.rng.choice(PAGES).format(
                c=self.rng.choice(CATEGORIES), p=self.rng.choice(product_ids or ['prd_0001'])))  # fmt: skip
        for pid in product_ids[: self.rng.randint(1, len(product_ids))] if product_ids else []:
            emit(ADD_TO_CART, product_id=pid, page_url=f"/product/{pid}")
        if order_id:
            emit(CHECKOUT_STARTED, page_url="/checkout")
            moment = start
            emit(ORDER_PLACED, order_id=order_id, page_url="/checkout/done")
        return out

    def lifecycle_events(self, order: dict[str, Any], applied: list[dict[str, Any]]) -> list[Message]:
        """Payment and shipment events for the status transitions just applied."""
        out: list[Message] = []
        oid = order["_id"]
        amount = str(order["total_amount"])
        for step in applied:
            status, at = step["status"], step["at"]
            if status == PAID:
                base = {
                    "order_id": oid,
                    "amount": amount,
                    "currency": "EUR",
                    "method": order["_method"],
                }
                out.append(self.event("payments", oid, PAYMENT_AUTHORIZED, at - timedelta(seconds=30), **base))
                out.append(self.event("payments", oid, PAYMENT_CAPTURED, at, **base))
            elif status == SHIPPED:
                tracking = f"{order['_carrier']}{self.rng.randrange(10**9, 10**10)}"
                order["_tracking"] = tracking
                out.append(self.event("shipments", oid, SHIPMENT_CREATED, at, order_id=oid,
                                      carrier=order["_carrier"], tracking_number=tracking))  # fmt: skip
            elif status == DELIVERED:
                out.append(self.event("shipments", oid, SHIPMENT_DELIVERED, at, order_id=oid,
                                      carrier=order["_carrier"], tracking_number=order.get("_tracking")))  # fmt: skip
            elif status == CANCELLED and any(h["status"] == PAID for h in order["status_history"]):
                out.append(self.event("payments", oid, REFUND_ISSUED, at, order_id=oid, amount=amount,
                                      currency="EUR", method=order["_method"]))  # fmt: skip
        return out

    def inject_faults(self, messages: list[Message]) -> list[Message]:
        """Duplicates (same event, new offset) and malformed records, at the configured rates."""
        out: list[Message] = []
        for msg in messages:
            out.append(msg)
            if self.rng.random() < self.config.duplicate_rate:
                out.append(Message(msg.topic_key, msg.key, msg.value, msg.event))
            if self.rng.random() < self.config.malformed_rate:
                out.append(self.malformed(msg.topic_key))
        return out

    def malformed(self, topic_key: str) -> Message:
        kind = self.rng.randrange(3)
        if kind == 0:
            value = b'{"event_id": "truncated'
        elif kind == 1:
            value = json.dumps({"event_type": PAGE_VIEW, "event_ts": "yesterday"}).encode()
        else:
            value = json.dumps({"event_id": self._uuid(), "event_type": PAGE_VIEW,
                                "event_ts": "not-a-timestamp"}).encode()  # fmt: skip
        return Message(topic_key, "malformed", value, None)
