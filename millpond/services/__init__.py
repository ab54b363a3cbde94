"""Genuine local services for the demo and the tests: mongod, a Kafka-protocol broker, PostgreSQL, Cube."""

from millpond.services.base import LocalService, port_in_use
from millpond.services.cube import CubeDatabase, CubeServer
from millpond.services.kafka import KafkaBroker
from millpond.services.mongo import MongoReplicaSet
from millpond.services.postgres import PostgresCluster

__all__ = [
    "CubeDatabase",
    "CubeServer",
    "KafkaBroker",
    "LocalService",
    "MongoReplicaSet",
    "PostgresCluster",
    "port_in_use",
]
