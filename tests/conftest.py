"""Session-scoped real services (mongod, Kafka-protocol broker, PostgreSQL) on free ports."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from millpond import logs
from millpond.services import KafkaBroker, MongoReplicaSet, PostgresCluster, free_port
from millpond.settings import KafkaTopics, Settings

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
logs.configure("console", "WARNING")


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """No test leaks environment variables into the next one."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="millpond-services-"))
    path.chmod(0o755)  # the postgres user must reach its data dir
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def mongo(services_dir: Path) -> Iterator[MongoReplicaSet]:
    svc = MongoReplicaSet(services_dir, free_port())
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def kafka(services_dir: Path) -> Iterator[KafkaBroker]:
    svc = KafkaBroker(services_dir, free_port())
    svc.start()
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def postgres(services_dir: Path) -> Iterator[PostgresCluster]:
    svc = PostgresCluster(services_dir, free_port())
    svc.start()
    yield svc
    svc.stop()


def isolated_settings(data_dir: Path, mongo: MongoReplicaSet, kafka: KafkaBroker, name: str = "t") -> Settings:
    """Settings for an isolated pipeline: own data dir, Mongo database and Kafka topics."""
    tag = f"{name}_{uuid.uuid4().hex[:10]}"
    return Settings(
        data_dir=data_dir,
        mongo_uri=mongo.uri,
        mongo_db=tag,
        kafka_bootstrap=kafka.uri,
        topics=KafkaTopics.prefixed(tag),
        io_timeout_s=20,
    )


def pipeline_env(cfg: Settings) -> dict[str, str]:
    """The environment a ``millpond`` subprocess needs to act on ``cfg``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLPOND_CRASH")}
    env.update(
        {
            "MILLPOND_DATA_DIR": str(cfg.data_dir),
            "MILLPOND_MONGO_URI": cfg.mongo_uri,
            "MILLPOND_MONGO_DB": cfg.mongo_db,
            "MILLPOND_KAFKA_BOOTSTRAP": cfg.kafka_bootstrap,
            "MILLPOND_IO_TIMEOUT_S": str(cfg.io_timeout_s),
            "MILLPOND_LOG_FORMAT": "json",
            **{f"MILLPOND_TOPIC_{k.upper()}": v for k, v in cfg.topics.as_dict().items()},
        }
    )
    return env


@pytest.fixture
def make_settings(tmp_path: Path, mongo: MongoReplicaSet, kafka: KafkaBroker):
    def build(name: str = "t") -> Settings:
        return isolated_settings(tmp_path / "data", mongo, kafka, name)

    return build
