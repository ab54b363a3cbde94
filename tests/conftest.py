"""Session-scoped real services (mongod, Kafka-protocol broker, PostgreSQL) on free ports."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from millpond import logs
from millpond import settings as settings_mod
from millpond.services import KafkaBroker, MongoReplicaSet, PostgresCluster
from millpond.settings import Settings
from tests.support import scheduling
from tests.support.pipelines import isolated_settings
from tests.support.ports import free_port

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
logs.configure("console", "WARNING")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    """Under ``--dist loadgroup`` (``make test``): heavy modules first, and the tests that share a fixture
    on one worker; the fixtures of this file are per worker (see tests/support/scheduling.py)."""
    grouped = getattr(config.option, "loadgroup", False)  # set on xdist's workers
    if grouped:  # before every other implementation, xdist's included
        scheduling.heavy_first(items)
        scheduling.assign_groups(items, per_worker=Path(__file__).parent.relative_to(config.rootpath).as_posix())
    yield
    if grouped:  # after them: the items that are left, as xdist has named them
        scheduling.suffix_group_ids(items)


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """No test leaks environment variables into the next one."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def machine_settings() -> Settings:
    """The settings of the environment the tests run in (service binaries, project dir)."""
    return settings_mod.load()


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="millpond-services-"))
    path.chmod(0o755)  # the postgres user must reach its data dir
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def mongo(services_dir: Path, machine_settings: Settings) -> Iterator[MongoReplicaSet]:
    svc = MongoReplicaSet(services_dir, free_port(), machine_settings.mongod_bin)
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def kafka(services_dir: Path, machine_settings: Settings) -> Iterator[KafkaBroker]:
    svc = KafkaBroker(services_dir, free_port(), machine_settings.tansu_bin)
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def postgres(services_dir: Path, machine_settings: Settings) -> Iterator[PostgresCluster]:
    svc = PostgresCluster(services_dir, free_port(), machine_settings.pg_bin)
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture
def make_settings(tmp_path: Path, mongo: MongoReplicaSet, kafka: KafkaBroker):
    def build(name: str = "t") -> Settings:
        return isolated_settings(tmp_path / "data", mongo, kafka, name)

    return build
