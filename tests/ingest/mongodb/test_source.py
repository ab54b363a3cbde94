"""The MongoDB source on its own, against the real replica set: dlt config resolution and the incremental cursor."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import dlt
import duckdb
import pymongo

from ingest.mongodb import mongodb_source

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _customer(n: int, updated_at: datetime = NOW) -> dict:
    return {"_id": f"cus_{n}", "email": f"c{n}@example.com", "created_at": NOW, "updated_at": updated_at}


def _pipeline(tmp_path: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=f"mongo_{uuid.uuid4().hex[:8]}",
        destination=dlt.destinations.duckdb(str(tmp_path / "warehouse.duckdb")),
        dataset_name="bronze",
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def _customers(tmp_path: Path) -> list[tuple]:
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("select _id, email from bronze.mongo_customers order by _id").fetchall()


def test_source_resolves_from_dlt_config_and_reads_changes_once(tmp_path, mongo, monkeypatch):
    database = f"src_{uuid.uuid4().hex[:8]}"
    with pymongo.MongoClient(mongo.uri, tz_aware=True) as client:
        client[database].customers.insert_many([_customer(1), _customer(2)])
    monkeypatch.setenv("SOURCES__MONGODB__CONNECTION_URL", mongo.uri)
    monkeypatch.setenv("SOURCES__MONGODB__DATABASE", database)
    pipeline = _pipeline(tmp_path)

    pipeline.run(mongodb_source(collections=["customers"]))  # connection and database from dlt's providers
    assert _customers(tmp_path) == [("cus_1", "c1@example.com"), ("cus_2", "c2@example.com")]

    with pymongo.MongoClient(mongo.uri, tz_aware=True) as client:
        # written in the same instant as the last loaded change: the boundary is read again, and only it is new
        client[database].customers.insert_one(_customer(3))
        client[database].customers.update_one(
            {"_id": "cus_1"}, {"$set": {"email": "new@example.com", "updated_at": datetime(2026, 3, 2, tzinfo=UTC)}}
        )
    info = pipeline.run(mongodb_source(collections=["customers"]))
    assert pipeline.last_trace.last_normalize_info.row_counts["mongo_customers"] == 2, info
    assert _customers(tmp_path) == [
        ("cus_1", "new@example.com"),
        ("cus_2", "c2@example.com"),
        ("cus_3", "c3@example.com"),
    ]


def test_database_defaults_to_the_one_the_connection_url_names(tmp_path, mongo, monkeypatch):
    database = f"src_{uuid.uuid4().hex[:8]}"
    with pymongo.MongoClient(mongo.uri, tz_aware=True) as client:
        client[database].customers.insert_one(_customer(1))
    monkeypatch.setenv("SOURCES__MONGODB__CONNECTION_URL", mongo.uri.replace("/?", f"/{database}?"))
    _pipeline(tmp_path).run(mongodb_source(collections=["customers"]))
    assert _customers(tmp_path) == [("cus_1", "c1@example.com")]
