"""MongoDB source: the shop's operational collections, incremental on ``updated_at``, merged on ``_id``.

Documents are read in ``updated_at`` order from the last cursor value dlt keeps in its state;
nested lists (order line items, status history) become dlt child tables. A document that
breaks the collection's contract goes to the dead-letter table with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import dlt
from bson import json_util
from dlt.sources import DltResource
from pymongo import MongoClient

from ingest.dead_letter import dead_letter
from ingest.mongodb.contracts import COLLECTIONS, validate
from ingest.mongodb.helpers import from_bson

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dlt.source(name="mongodb", max_table_nesting=1)
def mongodb_source(
    connection_url: str = dlt.secrets.value,
    database: str = "shop",
    collections: Sequence[str] = tuple(COLLECTIONS),
    timeout_ms: int = 30_000,
    batch_size: int = 2_000,
) -> Iterator[DltResource]:
    """One merge resource per collection (``mongo_<collection>``)."""
    for name in collections:
        yield dlt.resource(
            _collection_reader,
            name=f"mongo_{name}",
            primary_key="_id",
            write_disposition="merge",
            columns=COLLECTIONS[name].columns,
        )(connection_url, database, name, timeout_ms, batch_size)


def _collection_reader(
    connection_url: str, database: str, collection: str, timeout_ms: int, batch_size: int
) -> Iterator[Any]:
    """Documents changed since the last load, oldest change first.

    The cursor (``updated_at``) and the ids seen at exactly that instant live in the resource
    state, which dlt commits together with the load: the boundary is read again with ``$gte``
    (a document written in the same millisecond is not missed) and the ids already loaded
    there are skipped. Quarantined documents advance the cursor too, so they are not re-sent.
    """
    state = dlt.current.resource_state()
    cursor = datetime.fromisoformat(state["cursor"]) if "cursor" in state else EPOCH
    seen_at_cursor = set(state.get("boundary_ids", []))
    client: MongoClient[dict[str, Any]] = MongoClient(
        connection_url,
        tz_aware=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms,
    )
    ingested_at = datetime.now(UTC)
    page: list[dict[str, Any]] = []
    try:
        docs = (
            client[database][collection]
            .find({"updated_at": {"$gte": cursor}})
            .sort([("updated_at", 1), ("_id", 1)])
            .batch_size(batch_size)
        )
        for doc in docs:
            updated_at = doc.get("updated_at")
            key = str(doc.get("_id"))
            if updated_at == cursor and key in seen_at_cursor:
                continue
            if isinstance(updated_at, datetime):
                if updated_at > cursor:
                    cursor, seen_at_cursor = updated_at, set()
                seen_at_cursor.add(key)
            problem = validate(collection, doc)
            if problem:
                yield dead_letter(
                    source="mongodb",
                    origin=collection,
                    record_id=f"{key}@{updated_at}",
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
        # only reached when every document was read; dlt commits the state with the load
        state["cursor"], state["boundary_ids"] = cursor.isoformat(), sorted(seen_at_cursor)
    finally:
        client.close()
