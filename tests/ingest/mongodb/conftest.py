"""Fixtures of the MongoDB source tests: a fresh database on the shared replica set and a small dlt pipeline."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pymongo
import pytest

from tests.ingest.mongodb.lake import Lake


@pytest.fixture
def lake(tmp_path: Path, mongo: Any) -> Iterator[Lake]:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mongo.uri, tz_aware=True)
    db = client[f"src_{uuid.uuid4().hex[:8]}"]
    warehouse = tmp_path / "warehouse.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name=f"mongo_{uuid.uuid4().hex[:8]}",
        destination=dlt.destinations.duckdb(str(warehouse)),
        dataset_name="bronze",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    yield Lake(mongo.uri, db, warehouse, pipeline)
    client.drop_database(db.name)
    client.close()
