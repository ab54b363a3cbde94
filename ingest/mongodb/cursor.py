"""Cursor mode, for servers without change streams: documents read in ``(updated_at, _id)`` order.

State (the resource state dlt commits with the load package)::

    {"cursor": iso, "boundary_ids": [...], "quarantined": [...], "runs_since_reconcile": int}

A scan reads ``cursor <= updated_at <= upper``, where ``upper`` is the server's clock when the
scan starts minus ``lag_s``: a writer whose ``updated_at`` trails its commit by less than the lag
(clock skew, slow transactions, business times) is read by this scan or the next, never
skipped. The cursor moves to the newest ``updated_at`` read and keeps the ids read at exactly
that instant (``boundary_ids``, bounded by the writes of one instant), which the next scan skips.

Documents whose ``updated_at`` is missing or not a date never match that range; they are found
by their own query and quarantined once per version (``quarantined`` holds the dead-letter ids
of those still bad). Deletes leave no trace in a scan: every ``reconcile_every`` runs the landed
ids are checked against the source and the missing ones tombstoned.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import datetime, timedelta
from typing import Any

from bson import BSON
from pymongo.collection import Collection

from ingest.mongodb.helpers import EPOCH, cluster_time, key_of, server_now, ts_datetime
from ingest.mongodb.reconcile import LandedIds, deleted_tombstones
from ingest.mongodb.rows import document_row, mark_page, quarantine, table_hints, version_of

INDEX = [("updated_at", 1), ("_id", 1)]
# every BSON type but date: what a missing-or-non-date ``updated_at`` can be
NON_DATE_TYPES = [
    "double", "string", "object", "array", "binData", "objectId", "bool", "null",
    "regex", "javascript", "int", "timestamp", "long", "decimal", "minKey", "maxKey",
]  # fmt: skip


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
    position = datetime.fromisoformat(state["cursor"]) if "cursor" in state else EPOCH
    boundary = set(state.get("boundary_ids", []))
    read_ts = ts_datetime(cluster_time(coll.database, timeout_ms))
    upper = server_now(coll.database, timeout_ms) - timedelta(seconds=lag_s)
    page: list[Any] = []
    if upper >= position:
        docs = coll.find({"updated_at": {"$gte": position, "$lte": upper}}).sort(INDEX).batch_size(batch_size)
        for doc in docs:
            updated_at, key = doc["updated_at"], key_of(doc["_id"])
            if updated_at == position and key in boundary:
                continue
            if updated_at > position:
                position, boundary = updated_at, set()
            boundary.add(key)
            row = document_row(coll.name, doc, "cursor", read_ts, ingested_at)
            if not isinstance(row, dict):
                yield row
                continue
            page.append(row)
            if len(page) >= batch_size:
                yield mark_page(page, hints)
                page = []
    if page:
        yield mark_page(page, hints)
    state.update(cursor=position.isoformat(), boundary_ids=sorted(boundary))
    yield from _quarantine_undated(coll, state, batch_size)
    runs = int(state.get("runs_since_reconcile", 0)) + 1
    if landed_ids is not None and reconcile_every > 0 and runs >= reconcile_every:
        page = []
        for row in deleted_tombstones(coll, landed_ids(coll.name), timeout_ms, ingested_at):
            page.append(row)
            if len(page) >= batch_size:
                yield mark_page(page, hints)
                page = []
        if page:
            yield mark_page(page, hints)
        runs = 0
    state["runs_since_reconcile"] = runs


def _quarantine_undated(
    coll: Collection[dict[str, Any]], state: MutableMapping[str, Any], batch_size: int
) -> Iterator[Any]:
    """Dead letters for the documents whose ``updated_at`` is missing or not a date, each version once."""
    seen = set(state.get("quarantined", []))
    still_bad = set()
    query = {"$or": [{"updated_at": {"$exists": False}}, {"updated_at": {"$type": NON_DATE_TYPES}}]}
    for doc in coll.find(query).sort("_id", 1).batch_size(batch_size):
        marker = f"{key_of(doc['_id'])}@{version_of(doc, BSON.encode(doc))}"
        still_bad.add(marker)
        if marker in seen:
            continue
        updated_at = doc.get("updated_at")
        reason = (
            "missing required field 'updated_at'"
            if updated_at is None
            else f"field 'updated_at' has type {type(updated_at).__name__}"
        )
        yield quarantine(coll.name, doc, reason)
    state["quarantined"] = sorted(still_bad)
