"""Cursor mode against the real replica set: upper bound with a lag, quarantine, id reconciliation."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from ingest.mongodb import warehouse_ids
from ingest.mongodb.setup import ensure_collections
from tests.ingest.mongodb.lake import Lake, customer, on_page

LAG_S = 2.0


def _now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def test_concurrent_writers_with_older_and_equal_updated_at_are_not_missed(lake: Lake):
    """Writers commit after the scan read, with ``updated_at`` older than, or equal to, the newest one read."""
    recent = _now_ms()
    lake.db.customers.insert_many([customer(n, recent - timedelta(seconds=30)) for n in range(5)])
    lake.db.customers.insert_one(customer("cus_r", recent))

    def writers(n: int) -> None:
        if n == 1:  # the whole scan is one page: these commit after it was read
            lake.db.customers.update_one(
                {"_id": "cus_0"}, {"$set": {"email": "zero@v2", "updated_at": recent - timedelta(milliseconds=300)}}
            )
            lake.db.customers.update_one({"_id": "cus_r"}, {"$set": {"email": "r@v2"}})  # same updated_at
            lake.db.customers.insert_one(customer("cus_n", recent - timedelta(milliseconds=500)))

    source = lambda: lake.source(mode="cursor", cursor_lag_s=LAG_S)  # noqa: E731
    lake.run(on_page(source(), "mongo_customers", writers))
    time.sleep(max(0.0, (recent + timedelta(seconds=LAG_S + 0.5) - datetime.now(UTC)).total_seconds()))
    lake.run(source())

    live = lake.live()
    assert live["cus_0"] == "zero@v2"
    assert live["cus_r"] == "r@v2"
    assert "cus_n" in live
    assert len(live) == 7
    state = lake.source_state()
    assert state["cursor"] == recent.isoformat() and state["boundary_ids"] == ["cus_r"]


def test_the_scan_stops_the_lag_behind_the_server_clock_and_skips_the_boundary_it_read(lake: Lake):
    old = _now_ms() - timedelta(minutes=5)
    lake.db.customers.insert_many([customer(1, old), customer(2, old), customer(3, _now_ms() + timedelta(hours=1))])
    assert lake.run(lake.source(mode="cursor", cursor_lag_s=LAG_S))["mongo_customers"] == 2  # not the future one
    lake.db.customers.insert_one(customer(4, old))  # same instant as the boundary, not read yet
    assert lake.run(lake.source(mode="cursor", cursor_lag_s=LAG_S))["mongo_customers"] == 1
    assert sorted(lake.live()) == ["cus_1", "cus_2", "cus_4"]


def test_missing_or_non_date_updated_at_is_quarantined_once(lake: Lake):
    lake.db.customers.insert_many(
        [
            customer(1, _now_ms() - timedelta(minutes=1)),
            {"_id": "cus_nodate", "email": "x@example.com", "created_at": _now_ms()},
            {"_id": "cus_strdate", "email": "y@example.com", "created_at": _now_ms(), "updated_at": "2026-03-01"},
        ]
    )
    counts = lake.run(lake.source(mode="cursor", cursor_lag_s=LAG_S))
    assert counts == {"mongo_customers": 1, "dead_letter": 2}
    assert lake.query("select record_key, reason from bronze.dead_letter order by 1") == [
        ("cus_nodate", "missing required field 'updated_at'"),
        ("cus_strdate", "field 'updated_at' has type str"),
    ]
    assert "dead_letter" not in lake.run(lake.source(mode="cursor", cursor_lag_s=LAG_S))  # not again


def test_a_quarantined_document_fixed_with_an_old_updated_at_is_loaded(lake: Lake):
    old = _now_ms() - timedelta(minutes=1)
    lake.db.customers.insert_many(
        [
            customer(1, old),
            customer(2, old, email=None),  # breaks the contract
            {"_id": "cus_nodate", "email": "x@example.com", "created_at": old},
        ]
    )
    source = lambda: lake.source(mode="cursor", cursor_lag_s=LAG_S)  # noqa: E731
    assert lake.run(source()) == {"mongo_customers": 1, "dead_letter": 2}
    lake.db.customers.update_one({"_id": "cus_2"}, {"$set": {"email": "two@fixed"}})  # updated_at kept
    lake.db.customers.update_one({"_id": "cus_nodate"}, {"$set": {"updated_at": old - timedelta(days=1)}})

    assert lake.run(source()) == {"mongo_customers": 2}
    assert lake.live() == {"cus_1": "cus_1@example.com", "cus_2": "two@fixed", "cus_nodate": "x@example.com"}
    assert lake.source_state()["quarantined"] == []
    assert lake.run(source()) == {}  # nothing again


def test_id_reconciliation_tombstones_deleted_documents(lake: Lake):
    ensure_collections(lake.db, ["customers"])
    old = _now_ms() - timedelta(minutes=1)
    lake.db.customers.insert_many([customer(n, old) for n in range(4)])
    source = lambda: lake.source(  # noqa: E731
        mode="cursor", cursor_lag_s=LAG_S, reconcile_every=2, landed_ids=warehouse_ids(lake.warehouse)
    )
    lake.run(source())  # run 1: nothing landed yet to reconcile
    lake.db.customers.delete_one({"_id": "cus_2"})
    lake.run(source())  # run 2: reconciles
    assert sorted(lake.live()) == ["cus_0", "cus_1", "cus_3"]
    assert lake.query("select _op from bronze.mongo_customers where _id = 'cus_2'") == [("delete",)]
    assert lake.source_state()["runs_since_reconcile"] == 0


def test_setup_is_idempotent(lake: Lake):
    first = ensure_collections(lake.db)
    second = ensure_collections(lake.db)
    assert all(r["created"] for r in first.values()) and not any(r["created"] for r in second.values())
    for name in ("customers", "products", "orders"):
        keys = [list(ix["key"].items()) for ix in lake.db[name].list_indexes()]
        assert [("updated_at", 1), ("_id", 1)] in keys
        options = next(iter(lake.db.list_collections(filter={"name": name})))["options"]
        assert options["changeStreamPreAndPostImages"] == {"enabled": True}
