"""Failures the operator must act on: an unreachable server, a stalled command, a change stream that cannot resume."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pymongo
import pytest
from pymongo.errors import PyMongoError

from ingest.mongodb import ChangeStreamEnded, MongoUnreachable, ResumeTokenExpired
from ingest.mongodb.cdc import has_pre_images, open_stream
from ingest.mongodb.setup import ensure_collections
from millpond.services import MongoReplicaSet
from tests.ingest.mongodb.lake import Lake, customer
from tests.support.ports import free_port


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    current: BaseException | None = exc
    while current is not None and not isinstance(current, kind):
        current = current.__cause__ or current.__context__
    return current


def test_unreachable_mongodb_fails_within_the_timeout_naming_the_address_not_the_password(lake: Lake):
    port = free_port()
    lake.uri = f"mongodb://reader:s3cret@127.0.0.1:{port}/?directConnection=true"
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        lake.pipeline.extract(lake.source(timeout_ms=1_000))
    elapsed = time.monotonic() - started
    error = _cause(info.value, MongoUnreachable)
    assert error is not None, info.value
    message = str(error)
    assert f"127.0.0.1:{port}" in message and "MILLPOND_MONGO_URI" in message and "s3cret" not in message
    assert "\n" not in message
    assert elapsed < 5


class FailPointMongo(MongoReplicaSet):
    """A mongod with test commands enabled, so ``configureFailPoint`` can make it answer with an error code."""

    def _spawn(
        self, argv: Sequence[str], env: dict[str, str] | None = None, *, cwd: Path | None = None, full_env: bool = False
    ) -> None:
        super()._spawn([*argv, "--setParameter", "enableTestCommands=1"], env, cwd=cwd, full_env=full_env)


@pytest.fixture(scope="module")
def failpoint_mongo(tmp_path_factory: pytest.TempPathFactory, machine_settings: Any) -> Iterator[MongoReplicaSet]:
    svc = FailPointMongo(Path(tmp_path_factory.mktemp("failpoint")), free_port(), machine_settings.mongod_bin)
    svc.start()
    yield svc
    svc.stop()


def test_a_lost_change_stream_history_names_the_collection_and_the_fix(lake: Lake, failpoint_mongo: MongoReplicaSet):
    lake.uri = failpoint_mongo.uri
    with pymongo.MongoClient(failpoint_mongo.uri) as client:
        lake.db = client[lake.db.name]
        lake.db.customers.insert_one(customer(1))
        lake.run(lake.source())  # snapshot and stream position
        # the server answers the resume as it does once the oplog rolled past the stored token
        client.admin.command(
            "configureFailPoint",
            "failCommand",
            mode={"times": 1},
            data={
                "failCommands": ["aggregate"],
                "errorCode": 286,
                "errmsg": "resume point may no longer be in the oplog",
            },
        )
        with pytest.raises(Exception) as info:
            lake.pipeline.extract(lake.source())
        client.drop_database(lake.db.name)
    error = _cause(info.value, ResumeTokenExpired)
    assert error is not None, info.value
    assert "'customers'" in str(error) and "millpond mongo resnapshot customers" in str(error)


def test_commands_are_cut_off_by_the_server_at_the_timeout(failpoint_mongo: MongoReplicaSet):
    with pymongo.MongoClient(failpoint_mongo.uri, tz_aware=True) as client:
        db = client[f"t_{uuid.uuid4().hex[:8]}"]
        db.customers.insert_one(customer(1))
        # the server fails every operation that carries a maxTimeMS as if it had run out of time
        client.admin.command("configureFailPoint", "maxTimeAlwaysTimeOut", mode="alwaysOn")
        try:
            calls = {
                "setup": lambda: ensure_collections(db, ["customers", "orders"], timeout_ms=1_000),
                "list_collections": lambda: has_pre_images(db.customers, 1_000),
                "watch": lambda: open_stream(db.customers, 1_000, {}).close(),
            }
            for name, call in calls.items():
                with pytest.raises(PyMongoError) as info:
                    call()
                assert info.value.timeout, (name, info.value)
        finally:
            client.admin.command("configureFailPoint", "maxTimeAlwaysTimeOut", mode="off")
            client.drop_database(db.name)


def test_a_dropped_collection_ends_its_stream_with_the_resnapshot_hint(lake: Lake):
    lake.db.customers.insert_one(customer(1))
    lake.run(lake.source())
    lake.db.customers.drop()
    with pytest.raises(Exception) as info:
        lake.pipeline.extract(lake.source())
    error = _cause(info.value, ChangeStreamEnded)
    assert isinstance(error, ResumeTokenExpired), info.value  # one error class for the stage's resnapshot hint
    assert "ended: the collection saw 'drop'" in str(error) and "millpond mongo resnapshot customers" in str(error)
