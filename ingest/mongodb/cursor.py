"""Cursor mode, for servers without change streams: documents read in ``(updated_at, _id)`` order.

State (the resource state dlt commits with the load package)::

    {"cursor": iso, "boundary_ids": [...], "quarantined": [[_id, record id], ...], "runs_since_reconcile": int}

A scan reads ``cursor <= updated_at <= upper``, where ``upper`` is the server's clock when the
scan starts minus ``lag_s``: a writer whose ``updated_at`` trails its commit by less than the lag
(clock skew, slow transactions, business times) is read by this scan or the next, never
skipped. The cursor moves to the newest ``updated_at`` read and keeps the ids read at exactly
that instant (``boundary_ids``, bounded by the writes of one instant), which the next scan skips.
Rows carry the server's time at the scan start as ``_source_ts`` (:func:`source_time`), which
works on a standalone mongod too.

Documents whose ``updated_at`` is missing or not a date never match that range; they are found
by their own query and quarantined. ``quarantined`` tracks the most recent
:data:`QUARANTINE_TRACKED` quarantined documents (``_id`` and the dead-letter record id of the
bad version); every run reads them again by ``_id``, so a document fixed at the source lands
even when its fix keeps an ``updated_at`` behind the cursor, and a bad version is dead-lettered
once. Deletes leave no trace in a scan: every ``reconcile_every`` runs the landed ids are
checked against the source and the missing ones tombstoned.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import datetime, timedelta
from typing import Any

from pymongo.collection import Collection

from ingest.mongodb.contracts import validate
from ingest.mongodb.helpers import EPOCH, id_candidates, key_of, server_now, source_time
from ingest.mongodb.reconcile import LandedIds, deleted_tombstones
from ingest.mongodb.rows import document_row, paged, quarantine, record_id, table_hints

INDEX = [("updated_at", 1), ("_id", 1)]
# how many quarantined documents are read again each run (the most recently quarantined); one
# beyond it lands once its updated_at moves past the cursor, or at a re-snapshot
QUARANTINE_TRACKED = 1_000
# every BSON type but date: what a missing-or-non-date ``updated_at`` can be
NON_DATE_TYPES = [
    "double", "string", "object", "array", "binData", "objectId", "bool", "null",
    "regex", "javascript", "int", "timestamp", "long", "decimal", "minKey", "maxKey",
]  # fmt: skip
UNDATED = {"$or": [{"updated_at": {"$exists": False}}, {"updated_at": {"$type": NON_DATE_TYPES}}]}


class Quarantined:
    """The tracked quarantined documents, ``_id -> record id`` of the bad version, most recent last."""

    def __init__(self, saved: Any) -> None:
        pairs = [item for item in saved if isinstance(item, list) and len(item) == 2] if isinstance(saved, list) else []
        self.ids: dict[str, str] = {str(key): str(version) for key, version in pairs}

    def is_new(self, doc: dict[str, Any]) -> bool:
        """Track ``doc`` as the bad version of its ``_id``; whether this version was not dead-lettered yet."""
        key, version = key_of(doc["_id"]), record_id(doc)
        new = self.ids.pop(key, None) != version
        self.ids[key] = version
        return new

    def fixed(self, key: str) -> None:
        self.ids.pop(key, None)

    def saved(self) -> list[list[str]]:
        return [[k, v] for k, v in self.ids.items()][-QUARANTINE_TRACKED:]


def cursor_changes(
    coll: Collection[dict[str, Any]],
    state: MutableMapping[str, Any],
    *,
    batch_size: int,
    timeout_ms: int,
    lag_s: float,
    reconcile_every: int,
    landed_ids: LandedIds | None,
    ingested_at: datetime,
) -> Iterator[Any]:
    """Pages of rows (and single dead letters) of ``coll`` changed since the cursor in ``state``."""
    hints = table_hints(coll.name)
    read_ts = source_time(coll.database, timeout_ms)
    upper = server_now(coll.database, timeout_ms) - timedelta(seconds=lag_s)
    tracked = Quarantined(state.get("quarantined"))

    def landed_or_quarantined(doc: dict[str, Any]) -> Any:
        row = document_row(coll.name, doc, "cursor", read_ts, ingested_at)
        if isinstance(row, dict):
            tracked.fixed(key_of(doc["_id"]))
            return row
        return row if tracked.is_new(doc) else None

    def tracked_again() -> Iterator[Any]:
        keys = list(tracked.ids)
        if not keys:
            return
        found = coll.find({"_id": {"$in": id_candidates(keys)}}).max_time_ms(timeout_ms).batch_size(batch_size)
        present = set()
        for doc in found:
            present.add(key_of(doc["_id"]))
            if (row := landed_or_quarantined(doc)) is not None:
                yield row
        for key in set(keys) - present:  # deleted at the source: reconciliation tombstones a landed version
            tracked.fixed(key)

    def scanned() -> Iterator[Any]:
        position = datetime.fromisoformat(state["cursor"]) if "cursor" in state else EPOCH
        boundary = set(state.get("boundary_ids", []))
        if upper >= position:  # a long scan carries no maxTimeMS (cumulative); the socket timeout bounds each batch
            docs = coll.find({"updated_at": {"$gte": position, "$lte": upper}}).sort(INDEX).batch_size(batch_size)
            for doc in docs:
                updated_at, key = doc["updated_at"], key_of(doc["_id"])
                if updated_at == position and key in boundary:
                    continue
                if updated_at > position:
                    position, boundary = updated_at, set()
                boundary.add(key)
                if (row := landed_or_quarantined(doc)) is not None:
                    yield row
        state.update(cursor=position.isoformat(), boundary_ids=sorted(boundary))

    def undated() -> Iterator[Any]:
        for doc in coll.find(UNDATED).sort("_id", 1).max_time_ms(timeout_ms).batch_size(batch_size):
            if tracked.is_new(doc):
                yield quarantine(coll.name, doc, validate(coll.name, doc) or _undated_reason(doc))

    yield from paged(tracked_again(), hints, batch_size)
    yield from paged(scanned(), hints, batch_size)
    yield from undated()
    state["quarantined"] = tracked.saved()
    runs = int(state.get("runs_since_reconcile", 0)) + 1
    if landed_ids is not None and reconcile_every > 0 and runs >= reconcile_every:
        yield from paged(deleted_tombstones(coll, landed_ids(coll.name), timeout_ms, ingested_at), hints, batch_size)
        runs = 0
    state["runs_since_reconcile"] = runs


def _undated_reason(doc: dict[str, Any]) -> str:
    updated_at = doc.get("updated_at")
    if updated_at is None:
        return "missing required field 'updated_at'"
    return f"field 'updated_at' has type {type(updated_at).__name__}"
