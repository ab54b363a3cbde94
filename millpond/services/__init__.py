"""Genuine local services for the demo and the tests: mongod, a Kafka-protocol broker, PostgreSQL."""

from millpond.services.base import LocalService, free_port, port_in_use
from millpond.services.kafka import KafkaBroker
from millpond.services.mongo import MongoReplicaSet
from millpond.services.postgres import PostgresCluster

__all__ = [
    "KafkaBroker",
    "LocalService",
    "MongoReplicaSet",
    "PostgresCluster",
    "free_port",
    "port_in_use",
]
