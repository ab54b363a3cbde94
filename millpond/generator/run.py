"""One generation step: the initial history, or an increment up to a later day, streamed.

State lives in MongoDB (``_millpond_generator*`` collections) so that an increment continues
where the last step stopped; every step is seeded from (seed, end date), hence deterministic.
Documents and events are written as they are made: Kafka messages go straight to the producer,
documents to bulk writes of ``batch_size``, and before each bulk write the producer is flushed,
so a document is written only after the events it caused are acknowledged. Memory is bounded by
the batch size and the producer queue, plus 16 bytes per customer and one small record per product.

A crashed step can simply be run again: the state document is written last, a step reads only
what existed before it (ids up to the stored counters; a product repriced by this step is not
repriced twice), so it writes the same documents again and produces the same events again
(same ``event_id``, deduplicated downstream).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from ingest.mongodb.helpers import from_bson
from millpond import logs
from millpond.errors import MillpondError
from millpond.generator import writers
from millpond.generator.customers import CustomerIndex, id_number
from millpond.generator.model import (
    CLOSED_STATUSES,
    KAFKA_POISON_KINDS,
    MONGO_POISON_KINDS,
    GeneratorConfig,
    Message,
    ShopModel,
    day_start,
)
from millpond.settings import Settings

log = logs.get(__name__)
STATE = "_millpond_generator"
PRIVATE = "_millpond_generator_orders"
PRIVATE_KEYS = ("_plan", "_session_id", "_carrier", "_method")
BATCH_SIZE = 5_000  # documents per MongoDB bulk write (and Kafka flush)


@dataclass
class GenerationResult:
    """What a step wrote.

    ``events`` are the distinct valid events by id (the Kafka truth), kept only when asked for;
    ``poison`` counts the injected poison records by ``kafka.<kind>`` / ``mongodb.<kind>``
    (every kind, zeros included), ``deleted_orders`` the orders really deleted from MongoDB.
    """

    as_of: date
    new_days: list[date] = field(default_factory=list)
    customers: int = 0
    products: int = 0
    orders_written: int = 0
    messages: int = 0
    malformed: int = 0
    duplicates: int = 0
    deleted_orders: int = 0
    producer_queue_full: int = 0
    poison: Counter[str] = field(default_factory=Counter)
    events_by_type: Counter[str] = field(default_factory=Counter)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        kinds = [f"kafka.{k}" for k in KAFKA_POISON_KINDS] + [f"mongodb.{k}" for k in MONGO_POISON_KINDS]
        return {
            "as_of": self.as_of.isoformat(),
            "new_days": len(self.new_days),
            "customers": self.customers,
            "products": self.products,
            "orders_written": self.orders_written,
            "messages": self.messages,
            "malformed": self.malformed,
            "duplicates": self.duplicates,
            "deleted_orders": self.deleted_orders,
            "producer_queue_full": self.producer_queue_full,
            "poison": {k: self.poison.get(k, 0) for k in kinds},
            "events_by_type": dict(sorted(self.events_by_type.items())),
        }


def generate_shop(
    settings: Settings,
    config: GeneratorConfig,
    end_date: date | None = None,
    *,
    increment: bool = False,
    batch_size: int = BATCH_SIZE,
) -> GenerationResult:
    """``millpond generate``: bring the configured MongoDB database and Kafka topics up to ``end_date``.

    ``end_date`` defaults to yesterday (UTC); ``increment`` continues one day after the last
    generated day instead.
    """
    timeout_ms = int(settings.io_timeout_s * 1000)
    client: MongoClient[dict[str, Any]]
    with MongoClient(settings.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=timeout_ms) as client:
        db: Database[dict[str, Any]] = client[settings.mongo_db]
        day = end_date or datetime.now(UTC).date() - timedelta(days=1)
        if increment:
            state = db[STATE].find_one({"_id": "state"})
            if state is None:
                raise MillpondError(
                    "--increment needs a first generation step",
                    stage="generate",
                    hint="run `millpond generate` without --increment first",
                )
            day = state["as_of"].date() + timedelta(days=1)
        topics = settings.topics.as_dict()
        return generate(config, day, db, settings.kafka_bootstrap, topics, batch_size=batch_size, keep_events=False)


def generate(
    config: GeneratorConfig,
    end_date: date,
    db: Database,
    bootstrap: str,
    topics: dict[str, str],
    *,
    batch_size: int = BATCH_SIZE,
    keep_events: bool = True,
    producer_config: Mapping[str, Any] | None = None,
) -> GenerationResult:
    """Bring the shop up to the end of ``end_date``; a no-op when it is already there.

    ``batch_size`` and ``producer_config`` (librdkafka settings over the defaults) change how the
    data is written, never what it is; ``keep_events=False`` leaves ``events`` empty (memory).
    """
    state = db[STATE].find_one({"_id": "state"})
    prev_as_of = state["as_of"].date() if state else None
    if prev_as_of is not None and end_date <= prev_as_of:
        log.info("generate.up_to_date", as_of=prev_as_of.isoformat())
        return GenerationResult(as_of=prev_as_of)
    first_day = end_date - timedelta(days=config.days - 1) if prev_as_of is None else prev_as_of + timedelta(days=1)
    new_days = [first_day + timedelta(days=i) for i in range((end_date - first_day).days + 1)]
    # the shop's clock: the end of end_date, or now when that is today (no record from the future)
    as_of = min(day_start(end_date + timedelta(days=1)) - timedelta(milliseconds=1), datetime.now(UTC))
    model = ShopModel(config, step_seed=config.seed * 1_000_003 + end_date.toordinal(), clock=as_of)
    counters = dict(state["counters"]) if state else {"customer": 0, "product": 0, "order": 0}

    writers.ensure_topics(bootstrap, topics.values())
    kafka = writers.KafkaWriter(bootstrap, topics, {**_size_limit(config), **(producer_config or {})})
    mongo = writers.MongoWriter(db, batch_size, before_write=kafka.flush)
    step = _Step(model, kafka, mongo, GenerationResult(as_of=end_date, new_days=new_days), keep_events)

    if state is None:
        customers, products = _first_master_data(step, counters, day_start(first_day))
    else:
        customers, products = _next_master_data(step, db, counters, new_days)
        _advance_open_orders(step, db, counters["order"], as_of)
    for day in new_days:
        _one_day(step, day, customers, products, counters, late=state is not None)
    mongo.flush()
    db[STATE].replace_one({"_id": "state"}, {"_id": "state", "as_of": as_of, "counters": counters}, upsert=True)

    result = step.result
    kafka_poison = sum(n for k, n in result.poison.items() if k.startswith("kafka."))
    result.duplicates = result.messages - sum(result.events_by_type.values()) - result.malformed - kafka_poison
    result.deleted_orders = mongo.deleted.get("orders", 0)
    result.producer_queue_full = kafka.queue_full
    log.info("generate.done", **result.summary())
    return result


class _Step:
    """Sends what the model makes, as it makes it, and counts it."""

    def __init__(
        self, model: ShopModel, kafka: writers.KafkaWriter, mongo: writers.MongoWriter, result: GenerationResult,
        keep_events: bool,
    ) -> None:  # fmt: skip
        self.model, self.kafka, self.mongo, self.result, self.keep_events = model, kafka, mongo, result, keep_events

    def emit(self, messages: list[Message]) -> None:
        result = self.result
        for msg in messages:
            assert msg.event is not None  # the model's own events; faults are added below
            result.events_by_type[msg.event["event_type"]] += 1
            if self.keep_events:
                result.events[msg.event["event_id"]] = msg.event
        for msg in self.model.inject_faults(messages):
            self.kafka.send(msg)
            result.messages += 1
            if msg.poison is not None:
                result.poison[f"kafka.{msg.poison}"] += 1
            elif msg.event is None:
                result.malformed += 1

    def write(self, collection: str, doc: dict[str, Any]) -> None:
        self.mongo.upsert(collection, doc)
        if collection == "customers":
            self.result.customers += 1
        elif collection == "products":
            self.result.products += 1

    def write_order(self, order: dict[str, Any]) -> None:
        public = {k: v for k, v in order.items() if k not in PRIVATE_KEYS}
        doc, kind, repair = self.model.poison_order(public)
        self.mongo.upsert("orders", doc)
        private = {"_id": order["_id"], "open": order["status"] not in CLOSED_STATUSES}
        private.update({k: order.get(k) for k in PRIVATE_KEYS})
        if repair:
            private["_repair"] = repair  # the next version of this order is clean again
        self.mongo.upsert(PRIVATE, private)
        self.result.orders_written += 1
        if kind is not None:
            self.result.poison[f"mongodb.{kind}"] += 1

    def delete_order(self, order_id: str) -> None:
        self.mongo.delete("orders", order_id)
        self.mongo.delete(PRIVATE, order_id)


def _first_master_data(
    step: _Step, counters: dict[str, int], window_start: datetime
) -> tuple[CustomerIndex, list[dict[str, Any]]]:
    model, config = step.model, step.model.config
    customers = CustomerIndex()
    for _ in range(config.customers):
        counters["customer"] += 1
        created = window_start - timedelta(days=model.rng.randint(1, 365), seconds=model.rng.randrange(86_400))
        step.write("customers", model.customer(counters["customer"], created))
        customers.add(counters["customer"], created)
    customers.freeze()
    products = []
    for _ in range(config.products):
        counters["product"] += 1
        created = window_start - timedelta(days=model.rng.randint(30, 400))
        doc = model.product(counters["product"], created)
        step.write("products", doc)
        products.append(_product_ref(doc))
    return customers, products


def _next_master_data(
    step: _Step, db: Database, counters: dict[str, int], new_days: list[date]
) -> tuple[CustomerIndex, list[dict[str, Any]]]:
    """New customers; some customers move or change segment; some products are repriced, move category or are retired.

    What existed before the step is read back.
    """
    model, config = step.model, step.model.config
    customers = CustomerIndex()
    for doc in db.customers.find({}, {"created_at": 1}).sort("_id", 1):
        if id_number(doc["_id"]) <= counters["customer"]:
            customers.add(id_number(doc["_id"]), doc["created_at"])
    customers.freeze()
    step_start = day_start(new_days[0])
    # the products sold before this step (one it retired in a crashed attempt still counts)
    products = [
        _product_ref(from_bson(d))
        for d in db.products.find({}, {"sku": 1, "price": 1, "active": 1, "updated_at": 1}).sort("_id", 1)
        if id_number(d["_id"]) <= counters["product"] and (d.get("active", True) or d["updated_at"] >= step_start)
    ]
    for _ in range(max(1, config.customers // 20) * len(new_days)):
        counters["customer"] += 1
        created = model.moment(new_days[0])
        step.write("customers", model.customer(counters["customer"], created))
        customers.add(counters["customer"], created)
    # about 2% of the customers move and 2% more change segment (disjoint: one change per customer and step)
    changes = max(1, len(customers) // 50)
    changed_ids = customers.sample(model.rng, k=min(len(customers), 2 * changes))
    moved_ids = set(changed_ids[:changes])
    for cust in _fetch(db, "customers", changed_ids, step.mongo.batch_size):
        updated_at = model.moment(new_days[-1])
        changed = model.moved(cust, updated_at) if cust["_id"] in moved_ids else model.resegmented(cust, updated_at)
        if cust["updated_at"] < step_start:  # else already changed by this step (a re-run after a crash)
            step.write("customers", changed)
    customers.freeze()

    # about 10% of the products are repriced, 5% move category and, while more than half of the
    # catalogue is still sold, one is retired: disjoint, so each product changes once per step
    by_id = {p["_id"]: p for p in products}
    repriced, recategorised = max(1, len(products) // 10), max(1, len(products) // 20)
    retired = 1 if len(products) > config.products // 2 else 0
    picked = model.rng.sample(products, k=min(len(products), repriced + recategorised + retired))
    kinds = {p["_id"]: ("price" if i < repriced else "category" if i < repriced + recategorised else "retire")
             for i, p in enumerate(picked)}  # fmt: skip
    for prod in _fetch(db, "products", list(kinds), step.mongo.batch_size):
        updated_at = model.moment(new_days[-1])
        kind = kinds[prod["_id"]]
        if kind == "price":
            changed = {**prod, "price": (prod["price"] * 105 / 100).quantize(prod["price"]), "updated_at": updated_at}
        elif kind == "category":
            changed = model.recategorised(prod, updated_at)  # drawn even when skipped below: the same draws
        else:
            changed = model.retired(prod, updated_at)
        if prod["updated_at"] >= step_start:
            continue  # already changed by this step (a re-run after a crash)
        step.write("products", changed)
        by_id[prod["_id"]]["price"] = changed["price"]
    # a product retired by this step (now, or by a crashed attempt of it) is not sold in its new days
    retired_ids = {pid for pid, kind in kinds.items() if kind == "retire"}
    return customers, [p for p in products if p["_id"] not in retired_ids]


def _advance_open_orders(step: _Step, db: Database, last_order: int, as_of: datetime) -> None:
    """Reveal the status changes up to ``as_of`` of the orders still open before this step, batch by batch."""
    model = step.model
    chunk: list[dict[str, Any]] = []

    def advance(chunk: list[dict[str, Any]]) -> None:
        docs = _fetch(db, "orders", [p["_id"] for p in chunk], len(chunk), keep_missing=True)
        for priv, doc in zip(chunk, docs, strict=True):
            if doc is None:
                continue  # deleted
            order = {**doc, **{k: priv.get(k) for k in PRIVATE_KEYS}, **from_bson(priv.get("_repair") or {})}
            applied = model.advance(order, as_of)
            if applied:
                step.emit(model.lifecycle_events(order, applied))
                step.write_order(order)

    for priv in db[PRIVATE].find({"open": True}).sort("_id", 1).batch_size(step.mongo.batch_size):
        if id_number(priv["_id"]) > last_order:
            continue  # written by an earlier, crashed attempt of this step
        chunk.append(priv)
        if len(chunk) >= step.mongo.batch_size:
            advance(chunk)
            chunk = []
    advance(chunk)


def _one_day(
    step: _Step, day: date, customers: CustomerIndex, products: list[dict[str, Any]], counters: dict[str, int],
    late: bool,
) -> None:  # fmt: skip
    """The day's orders (each with its session and the lifecycle up to the clock) and sessions without order."""
    model, config = step.model, step.model.config
    as_of = model.clock
    assert as_of is not None
    for _ in range(max(0, int(config.orders_per_day * model.rng.uniform(0.8, 1.2)))):
        counters["order"] += 1
        created = model.moment(day)
        cust_id = customers.existing_at(model.rng, created)
        order = model.order(counters["order"], created, cust_id, products)
        items = [it["product_id"] for it in order["line_items"]]
        messages = model.clickstream(order["_session_id"], created, cust_id, items, order["_id"])
        messages += model.lifecycle_events(order, model.advance(order, as_of))
        step.emit(messages)
        step.write_order(order)
        target = model.deleted_order(order["_id"], counters["order"])
        if target is not None:
            step.delete_order(f"ord_{target:08d}")
    for _ in range(config.sessions_per_day):
        start = model.moment(day)
        if late and model.rng.random() < config.late_rate:
            start -= timedelta(days=model.rng.randint(1, 3))  # late arrival for a closed day
        visitor = customers.any(model.rng) if model.rng.random() < 0.5 else None
        picks = [p["_id"] for p in model.rng.sample(products, k=min(3, len(products)))]
        step.emit(model.clickstream(model._uuid(), start, visitor, picks[: model.rng.randint(0, 3)]))


def _size_limit(config: GeneratorConfig) -> dict[str, Any]:
    """A producer limit that lets oversized poison records through, when there are any."""
    if not config.kafka_poison_rate or "oversized" not in config.kafka_poison_kinds:
        return {}
    return {"message.max.bytes": max(writers.MESSAGE_MAX_BYTES, config.oversized_bytes + 64 * 1024)}


def _product_ref(doc: dict[str, Any]) -> dict[str, Any]:
    """What an order needs of a product."""
    return {"_id": doc["_id"], "sku": doc["sku"], "price": doc["price"]}


def _fetch(
    db: Database, collection: str, ids: list[str], batch_size: int, *, keep_missing: bool = False
) -> Iterator[Any]:
    """The documents with ``ids``, in that order, ``batch_size`` per query (None for a missing one when asked)."""
    for start in range(0, len(ids), max(1, batch_size)):
        chunk = ids[start : start + batch_size]
        found = {d["_id"]: from_bson(d) for d in db[collection].find({"_id": {"$in": chunk}})}
        for doc_id in chunk:
            if doc_id in found:
                yield found[doc_id]
            elif keep_missing:
                yield None
