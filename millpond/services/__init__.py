"""Genuine local services for the demo and the tests: mongod, a Kafka-protocol broker, PostgreSQL, Cube."""

from millpond.services.base import LocalService, port_in_use
from millpond.services.cube import CubeDatabase, CubeServer
from millpond.services.kafka import KafkaBroker
from millpond.services.local import local_services, service_status, start_services, stop_services
from millpond.services.mongo import MongoReplicaSet
from millpond.services.postgres import PostgresCluster

__all__ = [
    "CubeDatabase",
    "CubeServer",
    "KafkaBroker",
    "LocalService",
    "MongoReplicaSet",
    "PostgresCluster",
    "local_services",
    "port_in_use",
    "service_status",
    "start_services",
    "stop_services",
]
