"""Pure, deterministic generation of an online shop's documents and events.

Nothing here does I/O: given a seed, a clock ("as of") and the previous state it returns
the MongoDB documents to upsert and the Kafka messages to produce, including injected faults.

Two kinds of randomness keep the data reproducible however it is streamed: ``rng`` draws the
shop in a fixed order per step; everything else is a keyed hash (``keyed_bits``) of the seed and
what it is about: an order's lifecycle events (order id, event type), the faults injected after an
event (its event id), an order version's poison (order id, status) and deletes (order id). So the
good data does not change when a fault knob does, and nothing depends on which step or batch
reveals it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from faker import Faker

from ingest.vocabulary import EVENT_TYPES, ORDER_STATUS_FLOW, ORDER_STATUSES
from millpond.generator import poison
from millpond.generator.poison import KAFKA_POISON_KINDS, MONGO_POISON_KINDS

CATEGORIES = ("books", "garden", "kitchen", "toys", "outdoor", "electronics", "beauty")
COUNTRIES = ("GB", "NL", "DE")
SEGMENTS = ("consumer", "small_business", "corporate")  # the customer's account type; it changes over time
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

VOLUME_KNOBS = ("customers", "products", "orders_per_day", "sessions_per_day")


@dataclass(frozen=True)
class GeneratorConfig:
    """Volume knobs and fault rates; every run with the same values produces the same data.

    Fault rates: ``duplicate_rate``, ``malformed_rate`` and ``kafka_poison_rate`` are chances per
    good Kafka message of one extra record after it (an exact copy, a legacy malformed record, a
    poison record of a kind drawn from ``kafka_poison_kinds``); ``mongo_poison_rate`` is the chance
    per order version written that it breaks the contract (a kind from ``mongo_poison_kinds``; the
    next version of that order is clean again); ``delete_rate`` is the chance per new order that one
    earlier order (any order placed so far) is deleted from MongoDB.
    """

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
    kafka_poison_rate: float = 0.0
    kafka_poison_kinds: tuple[str, ...] = KAFKA_POISON_KINDS
    oversized_bytes: int = 1_200_000  # size of an oversized record's value (above the 1 MiB edge limit)
    mongo_poison_rate: float = 0.0
    mongo_poison_kinds: tuple[str, ...] = MONGO_POISON_KINDS
    delete_rate: float = 0.0

    def __post_init__(self) -> None:
        for name, kinds, known in (
            ("kafka_poison_kinds", self.kafka_poison_kinds, KAFKA_POISON_KINDS),
            ("mongo_poison_kinds", self.mongo_poison_kinds, MONGO_POISON_KINDS),
        ):
            unknown = sorted(set(kinds) - set(known))
            if unknown or not kinds:
                raise ValueError(f"{name}: unknown kinds {unknown} (known: {', '.join(known)})")

    def scaled(self, factor: float) -> GeneratorConfig:
        """The same shop with every volume knob (customers, products, orders and sessions per day) times ``factor``."""
        return dataclasses.replace(self, **{k: max(1, round(getattr(self, k) * factor)) for k in VOLUME_KNOBS})


@dataclass
class Message:
    """One Kafka record: ``value`` is bytes because malformed records are not JSON."""

    topic_key: str
    key: str
    value: bytes
    event: dict[str, Any] | None = None  # None for injected malformed and poison records
    poison: str | None = None  # the poison kind, for injected poison records


def keyed_bits(*parts: object) -> int:
    """128 bits that depend only on ``parts``: a draw that is the same in every step and process."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big")


def keyed_uuid(*parts: object) -> str:
    return str(uuid.UUID(int=keyed_bits(*parts), version=4))


def fraction(bits: int, slot: int) -> float:
    """The ``slot``-th 32-bit slice (0..3) of ``bits`` as a uniform draw in [0, 1)."""
    return ((bits >> (32 * slot)) & 0xFFFF_FFFF) / 2**32


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
            "country": self.rng.choice(COUNTRIES),
        }
        doc: dict[str, Any] = {
            "_id": f"cus_{number:06d}",
            "name": self.fake.name(),
            "email": self.fake.email(),
            "phone": self.fake.phone_number(),
            "address": address,
            "segment": self.first_segment(number),
            "created_at": created,
            "updated_at": created,
        }
        if self.rng.random() < self.config.drift_rate:  # drift: optional field absent
            doc.pop("phone")
        return doc

    def first_segment(self, number: int) -> str:
        """A customer's segment at sign-up: a keyed draw, so adding it left every ``rng`` draw as it was."""
        return SEGMENTS[keyed_bits(self.config.seed, "segment", number) % len(SEGMENTS)]

    def moved(self, customer: dict[str, Any], at: datetime) -> dict[str, Any]:
        """The customer after a move to another city; one move in five crosses a border.

        Every call makes the same draws, whatever it decides, so a step that skips a change it
        already wrote (a re-run) draws the rest of the shop as before.
        """
        address = {**customer["address"], "city": self.fake.city()}
        abroad = self.rng.random() < 0.2
        country = self.rng.choice([c for c in COUNTRIES if c != address.get("country")])
        if abroad:
            address["country"] = country
        return {**customer, "address": address, "updated_at": at}

    def resegmented(self, customer: dict[str, Any], at: datetime) -> dict[str, Any]:
        """The customer moved to another segment (an upgrade or a downgrade of the account)."""
        segment = self.rng.choice([s for s in SEGMENTS if s != customer.get("segment")])
        return {**customer, "segment": segment, "updated_at": at}

    def recategorised(self, product: dict[str, Any], at: datetime) -> dict[str, Any]:
        """The product moved to another category of the catalogue (its SKU stays)."""
        category = self.rng.choice([c for c in CATEGORIES if c != product.get("category")])
        return {**product, "category": category, "updated_at": at}

    @staticmethod
    def retired(product: dict[str, Any], at: datetime) -> dict[str, Any]:
        """The product is no longer sold: it stays in the catalogue with ``active`` FALSE."""
        return {**product, "active": False, "updated_at": at}

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
                "country": self.rng.choice(COUNTRIES),
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
    def event(
        self, topic_key: str, key: str, event_type: str, at: datetime, event_id: str | None = None, **fields: Any
    ) -> Message:
        body = {"event_id": event_id or self._uuid(), "event_type": event_type, "event_ts": ts(at), **fields}
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
        """Payment and shipment events for the status transitions just applied (no draw from ``rng``)."""
        out: list[Message] = []
        oid = order["_id"]
        amount = str(order["total_amount"])
        seed = self.config.seed

        def event(topic_key: str, event_type: str, at: datetime, **fields: Any) -> Message:
            return self.event(topic_key, oid, event_type, at, keyed_uuid(seed, oid, event_type), **fields)

        tracking = f"{order['_carrier']}{10**9 + keyed_bits(seed, oid, 'tracking') % (9 * 10**9)}"
        for step in applied:
            status, at = step["status"], step["at"]
            if status == PAID:
                base = {
                    "order_id": oid,
                    "amount": amount,
                    "currency": "EUR",
                    "method": order["_method"],
                }
                out.append(event("payments", PAYMENT_AUTHORIZED, at - timedelta(seconds=30), **base))
                out.append(event("payments", PAYMENT_CAPTURED, at, **base))
            elif status in (SHIPPED, DELIVERED):
                kind = SHIPMENT_CREATED if status == SHIPPED else SHIPMENT_DELIVERED
                carrier = order["_carrier"]
                out.append(event("shipments", kind, at, order_id=oid, carrier=carrier, tracking_number=tracking))
            elif status == CANCELLED and any(h["status"] == PAID for h in order["status_history"]):
                out.append(event("payments", REFUND_ISSUED, at, order_id=oid, amount=amount,
                                 currency="EUR", method=order["_method"]))  # fmt: skip
        return out

    def inject_faults(self, messages: list[Message]) -> list[Message]:
        """Each good message followed by its duplicate, malformed and poison records, at the configured rates."""
        out: list[Message] = []
        config = self.config
        for msg in messages:
            out.append(msg)
            if msg.event is None:
                continue
            event_id = msg.event["event_id"]
            bits = keyed_bits(config.seed, "faults", event_id)
            if fraction(bits, 0) < config.duplicate_rate:
                out.append(Message(msg.topic_key, msg.key, msg.value, msg.event))
            if fraction(bits, 1) < config.malformed_rate:
                out.append(self.malformed(msg.topic_key, event_id))
            if fraction(bits, 2) < config.kafka_poison_rate:
                kind = config.kafka_poison_kinds[(bits >> 96) % len(config.kafka_poison_kinds)]
                body = {**msg.event, "event_id": keyed_uuid(config.seed, "poison", event_id)}
                value = poison.kafka_value(kind, msg.topic_key, body, oversized_bytes=config.oversized_bytes)
                out.append(Message(msg.topic_key, msg.key, value, None, kind))
        return out

    def malformed(self, topic_key: str, event_id: str) -> Message:
        """One of three legacy malformed records, drawn from the good event it follows."""
        kind = keyed_bits(self.config.seed, "malformed", event_id) % 3
        if kind == 0:
            value = b'{"event_id": "truncated'
        elif kind == 1:
            value = json.dumps({"event_type": PAGE_VIEW, "event_ts": "yesterday"}).encode()
        else:
            bad_id = keyed_uuid(self.config.seed, "malformed", event_id)
            value = json.dumps({"event_id": bad_id, "event_type": PAGE_VIEW, "event_ts": "not-a-timestamp"}).encode()
        return Message(topic_key, "malformed", value, None)

    def poison_order(self, order: dict[str, Any]) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
        """``(document to write, poison kind or None, clean values of the fields it breaks)`` for one order version."""
        config = self.config
        bits = keyed_bits(config.seed, "mongo_poison", order["_id"], order["status"])
        if fraction(bits, 0) >= config.mongo_poison_rate:
            return order, None, {}
        kind = config.mongo_poison_kinds[(bits >> 96) % len(config.mongo_poison_kinds)]
        doc, repair = poison.mongo_document(kind, order)
        return doc, kind, repair

    def deleted_order(self, order_id: str, orders_so_far: int) -> int | None:
        """The number of the earlier order (any placed so far, ``order_id`` included) deleted after this one, if any."""
        bits = keyed_bits(self.config.seed, "delete", order_id)
        if fraction(bits, 0) >= self.config.delete_rate:
            return None
        return 1 + (bits >> 64) % orders_so_far
