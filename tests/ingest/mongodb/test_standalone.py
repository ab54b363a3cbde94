"""A standalone mongod (no replica set): cursor mode works end to end; CDC says to use cursor mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.mongodb import ChangeStreamsUnavailable, warehouse_ids
from ingest.mongodb.setup import ensure_collections
from tests.ingest.mongodb.lake import Lake, customer
from tests.ingest.mongodb.test_errors import _cause


def test_cursor_mode_loads_updates_and_reconciles_on_a_standalone_mongod(standalone_lake: Lake):
    lake = standalone_lake
    ensure_collections(lake.db, ["customers"])
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    lake.db.customers.insert_many([customer(n, old) for n in range(3)])
    source = lambda: lake.source(  # noqa: E731
        mode="cursor", cursor_lag_s=1.0, reconcile_every=1, landed_ids=warehouse_ids(lake.warehouse)
    )
    started = datetime.now(UTC)
    assert lake.run(source())["mongo_customers"] == 3
    lake.db.customers.update_one(
        {"_id": "cus_1"}, {"$set": {"email": "one@v2", "updated_at": old + timedelta(seconds=1)}}
    )
    lake.db.customers.delete_one({"_id": "cus_2"})
    lake.run(source())

    assert lake.live() == {"cus_0": "cus_0@example.com", "cus_1": "one@v2"}
    assert lake.query("select _op from bronze.mongo_customers where _id = 'cus_2'") == [("delete",)]
    (source_ts,) = lake.query("select min(_source_ts) from bronze.mongo_customers")[0]
    assert abs(source_ts - started) < timedelta(minutes=1)  # the server's clock


def test_cdc_mode_on_a_standalone_mongod_says_to_use_cursor_mode(standalone_lake: Lake):
    standalone_lake.db.customers.insert_one(customer(1))
    with pytest.raises(Exception) as info:
        standalone_lake.pipeline.extract(standalone_lake.source())
    error = _cause(info.value, ChangeStreamsUnavailable)
    assert error is not None, info.value
    assert "MILLPOND_MONGO_MODE=cursor" in str(error)
