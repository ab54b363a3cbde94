"""CDC mode against the real replica set: snapshot + stream, every operation, crash and resume, re-snapshot."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId

from ingest.mongodb import warehouse_ids
from ingest.mongodb.setup import ensure_collections
from tests.ingest.mongodb.lake import NOW, Lake, customer, on_page, order


def test_snapshot_then_stream_keeps_writes_made_during_the_snapshot(lake: Lake):
    lake.db.customers.insert_many([customer(n) for n in range(50)])

    def write_during_snapshot(n: int) -> None:
        if n == 1:  # the first page is out, the snapshot cursor is still open
            lake.db.customers.insert_one(customer("cus_new"))
            lake.db.customers.update_one({"_id": "cus_2"}, {"$set": {"email": "two@v2"}})
            lake.db.customers.update_one({"_id": "cus_45"}, {"$set": {"email": "fortyfive@v2"}})
            lake.db.customers.delete_one({"_id": "cus_49"})

    lake.run(on_page(lake.source(batch_size=10), "mongo_customers", write_during_snapshot))
    lake.run(lake.source(batch_size=10))  # the events of the snapshot window

    live = lake.live()
    assert set(live) == {f"cus_{n}" for n in range(49)} | {"cus_new"}
    assert live["cus_2"] == "two@v2" and live["cus_45"] == "fortyfive@v2"
    assert lake.query("select _op, _deleted_at is not null from bronze.mongo_customers where _id = 'cus_49'") == [
        ("delete", True)
    ]
    assert lake.query("select count(*), count(distinct _id) from bronze.mongo_customers") == [(51, 51)]
    state = lake.source_state()
    assert state["snapshot_done"] is True and state["resume_token"]["_data"]


def test_insert_update_replace_delete_arrive_and_the_newest_wins_within_a_load(lake: Lake):
    ensure_collections(lake.db, ["orders"])  # pre-images: the delete's tombstone keeps the last version
    lake.db.orders.insert_many([order(1), order(2), order(3, lines=3)])
    assert lake.run(lake.source(("orders",)))["mongo_orders"] == 3

    lake.db.orders.insert_one(order(4))
    lake.db.orders.update_one({"_id": "ord_1"}, {"$set": {"status": "paid"}})
    lake.db.orders.update_one({"_id": "ord_1"}, {"$set": {"status": "shipped"}})  # same load: newer wins
    lake.db.orders.replace_one({"_id": "ord_2"}, order(2, status="cancelled", lines=1))
    lake.db.orders.delete_one({"_id": "ord_3"})
    lake.db.orders.insert_one(order(5))  # inserted and deleted within one load: the tombstone wins
    lake.db.orders.delete_one({"_id": "ord_5"})
    lake.run(lake.source(("orders",)))

    rows = lake.query("select _id, _op, status, _deleted_at is not null from bronze.mongo_orders order by _id")
    assert rows == [
        ("ord_1", "update", "shipped", False),
        ("ord_2", "replace", "cancelled", False),
        ("ord_3", "delete", "created", True),  # pre-image fields on the tombstone
        ("ord_4", "insert", "created", False),
        ("ord_5", "delete", "created", True),
    ]
    lines = lake.query(
        "select o._id, count(*) from bronze.mongo_orders__line_items l join bronze.mongo_orders o "
        "on l._dlt_root_id = o._dlt_id group by 1 order by 1"
    )
    assert lines == [("ord_1", 2), ("ord_2", 1), ("ord_4", 2)]  # the deleted order's lines are gone


def test_a_crash_mid_read_loses_and_doubles_nothing(lake: Lake):
    lake.db.customers.insert_many([customer(n) for n in range(5)])
    lake.run(lake.source())
    for n in range(5, 40):
        lake.db.customers.insert_one(customer(n))
    lake.db.customers.update_one({"_id": "cus_1"}, {"$set": {"email": "one@v2"}})

    def crash(n: int) -> None:
        if n == 2:
            raise RuntimeError("killed mid-read")

    with pytest.raises(Exception, match="killed mid-read"):
        lake.pipeline.extract(on_page(lake.source(batch_size=10), "mongo_customers", crash))
    lake.run(lake.source(batch_size=10))

    assert lake.live() == {**{f"cus_{n}": f"cus_{n}@example.com" for n in range(40)}, "cus_1": "one@v2"}
    assert lake.query("select count(*), count(distinct _id) from bronze.mongo_customers") == [(40, 40)]


def test_concurrent_writers_with_older_and_equal_updated_at_are_not_missed(lake: Lake):
    recent = NOW.replace(microsecond=0)
    lake.db.customers.insert_many([customer(n, recent - timedelta(seconds=30)) for n in range(5)])
    lake.db.customers.insert_one(customer("cus_r", recent))

    def writers(n: int) -> None:
        if n == 1:
            lake.db.customers.update_one(  # older than the newest updated_at already read
                {"_id": "cus_0"}, {"$set": {"email": "zero@v2", "updated_at": recent - timedelta(seconds=1)}}
            )
            lake.db.customers.update_one({"_id": "cus_r"}, {"$set": {"email": "r@v2"}})  # equal updated_at
            lake.db.customers.insert_one(customer("cus_n", recent - timedelta(milliseconds=500)))

    lake.run(on_page(lake.source(), "mongo_customers", writers))
    lake.run(lake.source())
    live = lake.live()
    assert live["cus_0"] == "zero@v2" and live["cus_r"] == "r@v2" and "cus_n" in live


def test_resnapshot_tombstones_what_was_deleted_while_the_stream_was_lost(lake: Lake):
    lake.db.customers.insert_many([customer(n) for n in range(6)])
    source = lambda: lake.source(landed_ids=warehouse_ids(lake.warehouse))  # noqa: E731
    lake.run(source())
    lake.forget("customers")  # `millpond mongo resnapshot customers`
    lake.db.customers.delete_many({"_id": {"$in": ["cus_1", "cus_4"]}})  # the stream never shows these
    lake.db.customers.update_one({"_id": "cus_2"}, {"$set": {"email": "two@v2"}})

    lake.run(source())

    assert lake.live() == {"cus_0": "cus_0@example.com", "cus_2": "two@v2", "cus_3": "cus_3@example.com",
                           "cus_5": "cus_5@example.com"}  # fmt: skip
    assert lake.query("select _id from bronze.mongo_customers where _op = 'delete' order by 1") == [
        ("cus_1",),
        ("cus_4",),
    ]
    assert lake.query("select count(*), count(distinct _id) from bronze.mongo_customers") == [(6, 6)]
    lake.run(source())  # the stream after the re-snapshot: nothing new, nothing doubled
    assert lake.query("select count(*) from bronze.mongo_customers") == [(6,)]


def test_a_contract_breaking_version_is_dead_lettered_and_the_old_one_stays(lake: Lake):
    lake.db.orders.insert_one(order(1))
    lake.run(lake.source(("orders",)))
    bad_line = {"line_no": 1, "quantity": 1, "unit_price": -3}
    lake.db.orders.update_one({"_id": "ord_1"}, {"$set": {"line_items": [bad_line], "updated_at": NOW + timedelta(1)}})
    lake.run(lake.source(("orders",)))

    assert lake.query("select _id, _op from bronze.mongo_orders") == [("ord_1", "snapshot")]
    rows = lake.query("select record_key, error_class, reason, dead_letter_id from bronze.dead_letter")
    assert [row[:3] for row in rows] == [("ord_1", "mongodb.contract", "line_items[0] has a negative unit_price (-3)")]
    assert re.fullmatch(
        rf"mongodb:orders:ord_1@{re.escape((NOW + timedelta(1)).isoformat())}-[0-9a-f]{{16}}", rows[0][3]
    )


def test_two_bad_versions_with_the_same_updated_at_are_both_dead_lettered(lake: Lake):
    lake.db.orders.insert_one(order(1))
    lake.run(lake.source(("orders",)))
    for price in (-3, -4):  # an update that does not bump updated_at
        line = {"line_no": 1, "quantity": 1, "unit_price": price}
        lake.db.orders.update_one({"_id": "ord_1"}, {"$set": {"line_items": [line]}})
        lake.run(lake.source(("orders",)))

    assert lake.query("select reason from bronze.dead_letter order by reason") == [
        ("line_items[0] has a negative unit_price (-3)",),
        ("line_items[0] has a negative unit_price (-4)",),
    ]


def test_a_bounded_snapshot_goes_on_where_it_stopped_and_misses_no_write_made_between_its_packages(lake: Lake):
    ids: list[Any] = [f"cus_{n:02d}" for n in range(23)] + [ObjectId() for _ in range(3)]  # two BSON types
    lake.db.customers.insert_many([{**customer("x"), "_id": key, "email": f"{key}@example.com"} for key in ids])
    source = lambda: lake.source(batch_size=4, snapshot_docs_per_run=10)  # noqa: E731

    counts = [lake.run(source())["mongo_customers"]]
    assert lake.source_state()["snapshot_done"] is False
    lake.db.customers.update_one({"_id": "cus_03"}, {"$set": {"email": "three@v2"}})  # read already
    lake.db.customers.update_one({"_id": "cus_20"}, {"$set": {"email": "twenty@v2"}})  # not read yet
    lake.db.customers.delete_many({"_id": {"$in": ["cus_05", "cus_15"]}})  # read already; not read yet
    while not lake.source_state().get("snapshot_done"):
        counts.append(lake.run(source()).get("mongo_customers", 0))
    # strings first, then the ObjectIds (the _id index's order); the last run, the snapshot done, reads the
    # stream from before the first package: 5 documents and the 4 writes made between the packages
    assert counts == [10, 10, 9]
    assert "snapshot_after" not in lake.source_state()
    assert lake.run(source()).get("mongo_customers", 0) == 0

    live = lake.live()
    assert set(live) == {str(key) for key in ids} - {"cus_05", "cus_15"}
    assert live["cus_03"] == "three@v2" and live["cus_20"] == "twenty@v2"
    assert lake.query("select count(*), count(distinct _id) from bronze.mongo_customers") == [(26, 26)]
