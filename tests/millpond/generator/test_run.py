from collections import Counter
from datetime import UTC, date, datetime

import pymongo

from millpond.generator import GeneratorConfig, generate
from millpond.generator.customers import id_number
from millpond.generator.model import ShopModel
from millpond.generator.run import STATE
from tests.support.kafka import topic_values

SMALL = GeneratorConfig(customers=30, products=10, orders_per_day=10, sessions_per_day=5, days=3)


def test_first_step_increment_and_noop(make_settings):
    cfg = make_settings()
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        db = client[cfg.mongo_db]
        first = generate(SMALL, date(2026, 3, 3), db, cfg.kafka_bootstrap, cfg.topics.as_dict())
        assert [d.isoformat() for d in first.new_days] == ["2026-03-01", "2026-03-02", "2026-03-03"]
        assert db.customers.count_documents({}) == 30
        orders_after_first = db.orders.count_documents({})
        assert orders_after_first == sum(1 for e in first.events.values() if e["event_type"] == "order_placed")
        produced = topic_values(cfg.kafka_bootstrap, cfg.topics.clickstream)
        assert len(produced) >= sum(1 for e in first.events.values() if "session_id" in e)

        again = generate(SMALL, date(2026, 3, 3), db, cfg.kafka_bootstrap, cfg.topics.as_dict())
        assert again.new_days == [] and again.events == {}

        inc = generate(SMALL, date(2026, 3, 4), db, cfg.kafka_bootstrap, cfg.topics.as_dict())
        assert [d.isoformat() for d in inc.new_days] == ["2026-03-04"]
        assert db.orders.count_documents({}) > orders_after_first
        assert db[STATE].find_one({"_id": "state"})["as_of"].date() == date(2026, 3, 4)
        # some orders placed before the increment moved on in their lifecycle
        kinds = Counter(e["event_type"] for e in inc.events.values())
        assert kinds["payment_captured"] + kinds["shipment_created"] + kinds["shipment_delivered"] > 0
        assert not set(inc.events) & set(first.events)
        # the slowly changing attributes moved: a segment, a category (the SKU names the first one), a retirement
        model = ShopModel(SMALL, step_seed=0)
        customers = list(db.customers.find())
        assert any(c["segment"] != model.first_segment(id_number(c["_id"])) for c in customers)
        products = list(db.products.find())
        assert [p["active"] for p in products].count(False) == 1
        assert any(p["sku"].split("-")[1] != p["category"][:3].upper() for p in products)
        retired = next(p["_id"] for p in products if not p["active"])
        sold_after = {i["product_id"] for o in db.orders.find({"created_at": {"$gte": datetime(2026, 3, 4, tzinfo=UTC)}})
                      for i in o["line_items"]}  # fmt: skip
        assert retired not in sold_after


def test_same_seed_same_shop(make_settings):
    cfg_a = make_settings("seed_a")
    cfg_b = make_settings("seed_b")

    with pymongo.MongoClient(cfg_a.mongo_uri, tz_aware=True) as client:
        a = generate(SMALL, date(2026, 3, 3), client[cfg_a.mongo_db], cfg_a.kafka_bootstrap, cfg_a.topics.as_dict())
        b = generate(SMALL, date(2026, 3, 3), client[cfg_b.mongo_db], cfg_b.kafka_bootstrap, cfg_b.topics.as_dict())
        assert a.events == b.events
        strip = lambda docs: [{k: v for k, v in d.items()} for d in docs]  # noqa: E731
        assert strip(client[cfg_a.mongo_db].orders.find().sort("_id")) == strip(
            client[cfg_b.mongo_db].orders.find().sort("_id")
        )
