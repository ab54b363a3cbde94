"""The local services ``millpond services`` manages: mongod and the Kafka-protocol broker of a data dir."""

from __future__ import annotations

from millpond.services.base import LocalService
from millpond.services.kafka import KafkaBroker
from millpond.services.mongo import MongoReplicaSet
from millpond.settings import Settings


def local_services(settings: Settings) -> list[LocalService]:
    """MongoDB and Kafka on the configured ports and binaries, their files under the data dir."""
    return [
        MongoReplicaSet(settings.data_dir, settings.mongo_port, settings.mongod_bin),
        KafkaBroker(settings.data_dir, settings.kafka_port, settings.tansu_bin),
    ]


def start_services(settings: Settings) -> dict[str, str]:
    """Start every service that is not running yet and wait until healthy; name -> client URI."""
    return {svc.name: svc.start().uri for svc in local_services(settings)}


def stop_services(settings: Settings) -> dict[str, str]:
    """Stop the services this data dir started; name -> ``stopped`` or ``not running``."""
    return {svc.name: "stopped" if svc.stop() else "not running" for svc in local_services(settings)}


def service_status(settings: Settings) -> dict[str, bool]:
    """Name -> whether the service runs."""
    return {svc.name: svc.is_running() for svc in local_services(settings)}
