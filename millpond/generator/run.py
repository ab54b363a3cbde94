"""One generation step: the initial history, or an increment up to a later day.

State lives in MongoDB (``_millpond_generator*`` collections) so that an increment continues
where the last step stopped; every step is seeded from (seed, end date), hence deterministic.
Kafka is written first and MongoDB last, so a crashed step can simply be run again: the
repeated events carry the same ``event_id`` and are deduplicated downstream.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from ingest.mongodb.helpers import from_bson
from millpond import logs
from millpond.errors import MillpondError
from millpond.generator import writers
from millpond.generator.model import CLOSED_STATUSES, GeneratorConfig, Message, ShopModel, day_start
from millpond.settings import Settings

log = logs.get(__name__)
STATE = "_millpond_generator"
PRIVATE = "_millpond_generator_orders"
PRIVATE_KEYS = ("_plan", "_session_id", "_carrier", "_method", "_tracking")


@dataclass
class GenerationResult:
    """What a step wrote; ``events`` are the distinct valid events by id (the Kafka truth)."""

    as_of: date
    new_days: list[date] = field(default_factory=list)
    customers: int = 0
    products: int = 0
    orders_written: int = 0
    messages: int = 0
    malformed: int = 0
    duplicates: int = 0
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        by_type = Counter(e["event_type"] for e in self.events.values())
        return {
            "as_of": self.as_of.isoformat(),
            "new_days": len(self.new_days),
            "customers": self.customers,
            "products": self.products,
            "orders_written": self.orders_written,
            "messages": self.messages,
            "malformed": self.malformed,
            "duplicates": self.duplicates,
            "events_by_type": dict(sorted(by_type.items())),
        }


def generate_shop(
    settings: Settings, config: GeneratorConfig, end_date: date | None = None, *, increment: bool = False
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
        return generate(config, day, db, settings.kafka_bootstrap, settings.topics.as_dict())


def generate(
    config: GeneratorConfig,
    end_date: date,
    db: Database,
    bootstrap: str,
    topics: dict[str, str],
) -> GenerationResult:
    """Bring the shop up to the end of ``end_date``; a no-op when it is already there."""
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

    customers, products, orders = _load(db) if state else ([], [], [])
    counters = dict(state["counters"]) if state else {"customer": 0, "product": 0, "order": 0}
    batch_customers: list[dict[str, Any]] = []
    batch_products: list[dict[str, Any]] = []
    messages: list[Message] = []

    if state is None:
        window_start = day_start(first_day)
        for _ in range(config.customers):
            counters["customer"] += 1
            created = window_start - timedelta(days=model.rng.randint(1, 365), seconds=model.rng.randrange(86_400))
            batch_customers.append(model.customer(counters["customer"], created))
        for _ in range(config.products):
            counters["product"] += 1
            created = window_start - timedelta(days=model.rng.randint(30, 400))
            batch_products.append(model.product(counters["product"], created))
    else:
        for _ in range(max(1, config.customers // 20) * len(new_days)):
            counters["customer"] += 1
            batch_customers.append(model.customer(counters["customer"], model.moment(new_days[0])))
        for cust in model.rng.sample(customers, k=min(len(customers), max(1, len(customers) // 50))):
            moved = {**cust, "address": {**cust["address"], "city": model.fake.city()}}
            moved["updated_at"] = model.moment(new_days[-1])
            batch_customers.append(moved)
        for prod in model.rng.sample(products, k=min(len(products), max(1, len(products) // 10))):
            repriced = {**prod, "price": (prod["price"] * 105 / 100).quantize(prod["price"])}
            repriced["updated_at"] = model.moment(new_days[-1])
            batch_products.append(repriced)

    all_customers = _merge(customers, batch_customers)
    all_products = [p for p in _merge(products, batch_products) if p.get("active", True)]
    new_orders: list[dict[str, Any]] = []
    for day in new_days:
        for _ in range(max(0, int(config.orders_per_day * model.rng.uniform(0.8, 1.2)))):
            counters["order"] += 1
            created = model.moment(day)
            eligible = [c for c in all_customers if c["created_at"] <= created] or all_customers
            cust = model.rng.choice(eligible)
            order = model.order(counters["order"], created, cust["_id"], all_products)
            items = [it["product_id"] for it in order["line_items"]]
            messages += model.clickstream(order["_session_id"], created, cust["_id"], items, order["_id"])
            new_orders.append(order)
        for _ in range(config.sessions_per_day):
            start = model.moment(day)
            if state is not None and model.rng.random() < config.late_rate:
                start -= timedelta(days=model.rng.randint(1, 3))  # late arrival for a closed day
            cust_id = model.rng.choice(all_customers)["_id"] if model.rng.random() < 0.5 else None
            picks = [p["_id"] for p in model.rng.sample(all_products, k=min(3, len(all_products)))]
            messages += model.clickstream(model._uuid(), start, cust_id, picks[: model.rng.randint(0, 3)])

    changed: list[dict[str, Any]] = []
    for order in [*orders, *new_orders]:
        applied = model.advance(order, as_of)
        if applied or order in new_orders:
            changed.append(order)
            messages += model.lifecycle_events(order, applied)

    faulty = model.inject_faults(messages)
    result = GenerationResult(
        as_of=end_date,
        new_days=new_days,
        customers=len(batch_customers),
        products=len(batch_products),
        orders_written=len(changed),
        messages=len(faulty),
        malformed=sum(1 for m in faulty if m.event is None),
        duplicates=len(faulty) - len(messages) - sum(1 for m in faulty if m.event is None),
        events={m.event["event_id"]: m.event for m in messages if m.event is not None},
    )
    _write(db, bootstrap, topics, faulty, batch_customers, batch_products, changed, counters, as_of)
    log.info("generate.done", **result.summary())
    return result


def _merge(existing: list[dict[str, Any]], updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {d["_id"]: d for d in existing}
    by_id.update({d["_id"]: d for d in updates})
    return [by_id[k] for k in sorted(by_id)]


def _load(db: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    customers = [from_bson(d) for d in db.customers.find().sort("_id", 1)]
    products = [from_bson(d) for d in db.products.find().sort("_id", 1)]
    private = {d["_id"]: d for d in db[PRIVATE].find({"open": True})}
    orders = []
    for doc in db.orders.find({"_id": {"$in": sorted(private)}}).sort("_id", 1):
        order = from_bson(doc)
        extra = private[doc["_id"]]
        order.update({k: extra.get(k) for k in PRIVATE_KEYS})
        orders.append(order)
    return customers, products, orders


def _write(
    db: Database,
    bootstrap: str,
    topics: dict[str, str],
    messages: list[Message],
    customers: list[dict[str, Any]],
    products: list[dict[str, Any]],
    orders: list[dict[str, Any]],
    counters: dict[str, int],
    as_of: datetime,
) -> None:
    writers.ensure_topics(bootstrap, topics.values())
    writers.produce(bootstrap, topics, messages)
    writers.upsert(db, "customers", customers)
    writers.upsert(db, "products", products)
    public = [{k: v for k, v in o.items() if k not in PRIVATE_KEYS} for o in orders]
    writers.upsert(db, "orders", public)
    private = [
        {
            "_id": o["_id"],
            "open": o["status"] not in CLOSED_STATUSES,
            **{k: o.get(k) for k in PRIVATE_KEYS},
        }
        for o in orders
    ]
    writers.upsert(db, PRIVATE, private)
    db[STATE].replace_one({"_id": "state"}, {"_id": "state", "as_of": as_of, "counters": counters}, upsert=True)
