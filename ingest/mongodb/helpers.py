"""Helpers of the MongoDB source: the client, its errors, cluster times, and BSON values.

``from_bson``/``to_bson`` convert BSON-specific values to plain Python and back (the generator
writes with them too).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bson import ObjectId, Timestamp
from bson.decimal128 import Decimal128
from pymongo import MongoClient, ReadPreference
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, OperationFailure
from pymongo.read_concern import ReadConcern
from pymongo.uri_parser import parse_uri

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
URI_SETTING = "MILLPOND_MONGO_URI"
# The server's answers when a change stream cannot resume from the stored position.
HISTORY_LOST_CODES = {286, 280}  # ChangeStreamHistoryLost, ChangeStreamFatalError


class MongoSourceError(Exception):
    """A MongoDB source failure that names what to do (``hint``); the stage wraps it in its own error."""

    hint = "see docs/pipelines/mongodb.md"

    def __str__(self) -> str:
        return f"{self.args[0]} ({self.hint})" if self.args else self.hint


class MongoUnreachable(MongoSourceError):
    """No MongoDB server answered within the timeout."""

    def __init__(self, address: str, timeout_ms: int, detail: str = "") -> None:
        self.address, self.timeout_ms = address, timeout_ms
        self.hint = f"check {URI_SETTING} and that mongod is running"
        super().__init__(f"MongoDB at {address} is unreachable within {timeout_ms / 1000:g}s{detail}")


class ResumeTokenExpired(MongoSourceError):
    """The oplog no longer holds the collection's stored change-stream position (server code 286/280).

    :class:`ChangeStreamEnded` (a drop, rename or invalidate) is a subclass: both need a re-snapshot.
    """

    def __init__(self, collection: str, detail: str = "") -> None:
        self.collection = collection
        self.hint = f"run `millpond mongo resnapshot {collection}` to re-read it in full"
        super().__init__(
            f"the change stream of collection '{collection}' cannot resume: its stored position is no longer "
            f"in the oplog{detail}"
        )


class ChangeStreamEnded(ResumeTokenExpired):
    """The collection's change stream ended for good: the collection was dropped or renamed, its database dropped,
    or the stream invalidated. Like an expired token, only a re-snapshot continues from there."""

    def __init__(self, collection: str, operation: str) -> None:
        super().__init__(collection)
        self.operation = operation
        self.args = (
            f"the change stream of collection '{collection}' ended: the collection saw '{operation}' "
            "(dropped, renamed or invalidated)",
        )


class ChangeStreamsUnavailable(MongoSourceError):
    """The server runs no replica set (or is too old) for change streams."""

    def __init__(self, collection: str, detail: str) -> None:
        self.hint = "use cursor mode (MILLPOND_MONGO_MODE=cursor) on servers without change streams"
        super().__init__(f"no change stream on collection '{collection}': {detail}")


def address_of(connection_url: str) -> str:
    """The hosts of a connection string, without credentials or options."""
    try:
        nodes = parse_uri(connection_url, validate=False, warn=True).get("nodelist") or []
    except Exception:
        return "<unparseable MongoDB URI>"
    return ",".join(f"{host}:{port}" for host, port in nodes) or "<no host>"


def client_from_url(connection_url: str, timeout_ms: int) -> MongoClient[dict[str, Any]]:
    """A client for the source's reads: majority read concern, primary, retryable reads, ``timeout_ms`` per call.

    Time-zone-aware datetimes. ``timeout_ms`` bounds server selection, connecting and every
    socket read; commands and bounded queries also carry it as ``maxTimeMS``.
    """
    return MongoClient(
        connection_url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms,
        retryReads=True,
        readConcernLevel="majority",
        readPreference="primary",
    )


def source_database(client: MongoClient[dict[str, Any]], database: str | None) -> Database[dict[str, Any]]:
    """The database to read (the URL's when ``database`` is None), majority-committed data from the primary."""
    return client.get_database(database, read_concern=ReadConcern("majority"), read_preference=ReadPreference.PRIMARY)


@contextmanager
def reaching(connection_url: str, timeout_ms: int) -> Iterator[None]:
    """Turn "no server within the timeout" into :class:`MongoUnreachable` naming the address."""
    try:
        yield
    except ConnectionFailure as exc:
        raise MongoUnreachable(address_of(connection_url), timeout_ms) from exc


def cluster_time(db: Database[dict[str, Any]], timeout_ms: int) -> Timestamp:
    """The cluster time the server has reached now (the ``operationTime`` of a ping; change streams only)."""
    reply = db.command("ping", maxTimeMS=timeout_ms)
    ts = reply.get("operationTime")
    if not isinstance(ts, Timestamp):
        raise ChangeStreamsUnavailable(db.name, "the server reports no cluster time (not a replica set)")
    return ts


def server_now(db: Database[dict[str, Any]], timeout_ms: int) -> datetime:
    """The server's wall clock (``hello.localTime``), time-zone aware."""
    return _local_time(db.command("hello", maxTimeMS=timeout_ms))


def source_time(db: Database[dict[str, Any]], timeout_ms: int) -> datetime:
    """The ``_source_ts`` of a read that starts now, on any server.

    The cluster time (as :func:`ts_datetime`) where the server has one (replica-set members and
    mongos answer with an ``operationTime``), so it orders with change events; else (a standalone
    mongod) the server's wall clock.
    """
    reply = db.command("hello", maxTimeMS=timeout_ms)
    ts = reply.get("operationTime")
    return ts_datetime(ts) if isinstance(ts, Timestamp) else _local_time(reply)


def _local_time(hello: dict[str, Any]) -> datetime:
    local: datetime = hello["localTime"]
    return local if local.tzinfo else local.replace(tzinfo=UTC)


def ts_datetime(ts: Timestamp) -> datetime:
    """A cluster time as a timestamp that keeps its order: the oplog increment counts as microseconds.

    Two events of one second stay ordered (``_source_ts`` is the dedup sort key) as long as a
    second holds fewer than a million oplog entries.
    """
    return datetime.fromtimestamp(ts.time, UTC) + timedelta(microseconds=min(ts.inc, 999_999))


def ts_to_state(ts: Timestamp) -> list[int]:
    return [ts.time, ts.inc]


def ts_from_state(value: list[int]) -> Timestamp:
    return Timestamp(int(value[0]), int(value[1]))


def is_history_lost(exc: OperationFailure) -> bool:
    return exc.code in HISTORY_LOST_CODES


def key_of(value: Any) -> str:
    """The landed form of a document ``_id``."""
    return str(value)


def id_candidates(keys: list[str]) -> list[Any]:
    """The source ``_id`` values a landed key may stand for (a string, or the ObjectId it spells)."""
    out: list[Any] = list(keys)
    out += [ObjectId(k) for k in keys if ObjectId.is_valid(k)]
    return out


_BID = struct.Struct("<QQ")
_SIGN = 1 << 63
# Combination bits 11: NaN, infinity, or the form with an implied coefficient (read as zero).
_SECOND_FORM = 0x6000_0000_0000_0000
_COEFFICIENT_HIGH = (1 << 49) - 1
_MAX_COEFFICIENT = 10**34 - 1
_EXPONENT_BIAS = 6176


def to_decimal(value: Decimal128) -> Decimal:
    """``value.to_decimal()``, with the same digits and exponent, about five times faster.

    pymongo builds the Decimal from a tuple of digits in Python; this reads the coefficient and
    exponent from the BID bits and has the C decimal module parse ``<coefficient>E<exponent>``,
    which is exact. The rare special values go to pymongo.
    """
    low, high = _BID.unpack(value.bid)
    coefficient = ((high & _COEFFICIENT_HIGH) << 64) | low
    if high & _SECOND_FORM == _SECOND_FORM or coefficient > _MAX_COEFFICIENT:
        return value.to_decimal()
    exponent = ((high >> 49) & 0x3FFF) - _EXPONENT_BIAS
    return Decimal(f"{'-' if high & _SIGN else ''}{coefficient}E{exponent}")


def from_bson(value: Any) -> Any:
    """Recursively: Decimal128 -> Decimal, ObjectId -> str; everything else as is."""
    if isinstance(value, Decimal128):
        return to_decimal(value)
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dict):
        return {k: from_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_bson(v) for v in value]
    return value


def to_bson(value: Any) -> Any:
    """Recursively: money (Decimal) as Decimal128; everything else as is."""
    if isinstance(value, Decimal):
        return Decimal128(value)
    if isinstance(value, dict):
        return {k: to_bson(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_bson(v) for v in value]
    return value
