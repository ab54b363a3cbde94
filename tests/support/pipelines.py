"""Isolated pipelines on the shared test services: own data dir, MongoDB database and Kafka topics."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from millpond.services import KafkaBroker, MongoReplicaSet
from millpond.settings import KafkaTopics, Settings


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
