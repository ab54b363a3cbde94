"""Helpers of the MongoDB source: the client, the incremental read of one collection, and BSON values.

``from_bson``/``to_bson`` convert BSON-specific values to plain Python and back (the generator
writes with them too).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bson import ObjectId, json_util
from bson.decimal128 import Decimal128
from pymongo import MongoClient
from pymongo.collection import Collection

from ingest.dead_letter import dead_letter
from ingest.mongodb.contracts import validate

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def client_from_url(connection_url: str, timeout_ms: int) -> MongoClient[dict[str, Any]]:
    """A client returning time-zone-aware datetimes, with ``timeout_ms`` on every connect and socket call."""
    return MongoClient(
        connection_url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms,
    )


@dataclass
class UpdatedAtCursor:
    """How far a collection has been read: the newest ``updated_at`` and the ids loaded at exactly that instant.

    The boundary instant is read again (``$gte``), so a document written in the same millisecond
    as the last one loaded is not missed, and the ids already loaded there are skipped.
    """

    position: datetime = EPOCH
    boundary_ids: set[str] = field(default_factory=set)

    @classmethod
    def from_state(cls, state: MutableMapping[str, Any]) -> UpdatedAtCursor:
        if "cursor" not in state:
            return cls()
        return cls(datetime.fromisoformat(state["cursor"]), set(state.get("boundary_ids", [])))

    def save(self, state: MutableMapping[str, Any]) -> None:
        state["cursor"], state["boundary_ids"] = self.position.isoformat(), sorted(self.boundary_ids)

    def admit(self, doc: dict[str, Any]) -> bool:
        """False for a document already loaded at the boundary; otherwise move the cursor past it."""
        updated_at, key = doc.get("updated_at"), str(doc.get("_id"))
        if updated_at == self.position and key in self.boundary_ids:
            return False
        if isinstance(updated_at, datetime):
            if updated_at > self.position:
                self.position, self.boundary_ids = updated_at, set()
            self.boundary_ids.add(key)
        return True


def changed_documents(
    collection: Collection[dict[str, Any]], cursor: UpdatedAtCursor, batch_size: int
) -> Iterator[Any]:
    """Pages of documents changed since ``cursor`` (oldest change first) and single dead letters.

    Quarantined documents advance the cursor too, so they are not sent again.
    """
    ingested_at = datetime.now(UTC)
    page: list[dict[str, Any]] = []
    docs = (
        collection.find({"updated_at": {"$gte": cursor.position}})
        .sort([("updated_at", 1), ("_id", 1)])
        .batch_size(batch_size)
    )
    for doc in docs:
        if not cursor.admit(doc):
            continue
        problem = validate(collection.name, doc)
        if problem:
            key = str(doc.get("_id"))
            yield dead_letter(
                source="mongodb",
                origin=collection.name,
                record_id=f"{key}@{doc.get('updated_at')}",
                record_key=key,
                raw_value=json_util.dumps(doc),
                reason=problem,
            )
            continue
        page.append({**from_bson(doc), "_ingested_at": ingested_at})
        if len(page) >= batch_size:
            yield page
            page = []
    if page:
        yield page


def from_bson(value: Any) -> Any:
    """Recursively: Decimal128 -> Decimal, ObjectId -> str; everything else as is."""
    if isinstance(value, Decimal128):
        return value.to_decimal()
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
