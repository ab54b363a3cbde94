"""Fixtures of the MongoDB source tests: a fresh database (on the shared replica set, or on a standalone mongod)
and a small dlt pipeline."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dlt
import pymongo
import pytest

from millpond.services import MongoReplicaSet
from tests.ingest.mongodb.lake import Lake
from tests.support.ports import free_port


@pytest.fixture
def lake(tmp_path: Path, mongo: Any) -> Iterator[Lake]:
    yield from _lake(tmp_path, mongo.uri)


def _lake(tmp_path: Path, uri: str) -> Iterator[Lake]:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri, tz_aware=True)
    db = client[f"src_{uuid.uuid4().hex[:8]}"]
    warehouse = tmp_path / "warehouse.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name=f"mongo_{uuid.uuid4().hex[:8]}",
        destination=dlt.destinations.duckdb(str(warehouse)),
        dataset_name="bronze",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    yield Lake(uri, db, warehouse, pipeline)
    client.drop_database(db.name)
    client.close()


class StandaloneMongo(MongoReplicaSet):
    """A ``mongod`` without ``--replSet``: no change streams, no cluster time (what cursor mode is for)."""

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def _spawn(
        self, argv: Sequence[str], env: dict[str, str] | None = None, *, cwd: Path | None = None, full_env: bool = False
    ) -> None:
        at = list(argv).index("--replSet")
        super()._spawn([*argv[:at], *argv[at + 2 :]], env, cwd=cwd, full_env=full_env)

    def _after_start(self) -> None:
        pass


@pytest.fixture(scope="module")
def standalone_mongo(tmp_path_factory: pytest.TempPathFactory, machine_settings: Any) -> Iterator[MongoReplicaSet]:
    svc = StandaloneMongo(Path(tmp_path_factory.mktemp("standalone")), free_port(), machine_settings.mongod_bin)
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture
def standalone_lake(tmp_path: Path, standalone_mongo: MongoReplicaSet) -> Iterator[Lake]:
    """:func:`lake` on the standalone mongod."""
    yield from _lake(tmp_path, standalone_mongo.uri)
