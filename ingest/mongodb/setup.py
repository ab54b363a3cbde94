"""The MongoDB side of the pipeline, created explicitly and idempotently (``millpond mongo setup``).

For every contracted collection: the collection itself, the ``(updated_at, _id)`` index that the
cursor mode reads along, and pre-/post-images for change streams (``changeStreamPreAndPostImages``,
MongoDB 6.0+), which give a delete's tombstone the document's last version. Running it again
changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo.database import Database
from pymongo.errors import OperationFailure

from ingest.mongodb.contracts import COLLECTIONS
from ingest.mongodb.cursor import INDEX

INDEX_NAME = "updated_at_1__id_1"


def ensure_collections(
    db: Database[Any], collections: Iterable[str] = tuple(COLLECTIONS), *, timeout_ms: int = 30_000
) -> dict[str, dict[str, Any]]:
    """Create what is missing; returns, per collection, what was created or enabled by this call.

    Every command carries ``maxTimeMS=timeout_ms``.
    """
    existing = set(db.list_collection_names(maxTimeMS=timeout_ms))
    result: dict[str, dict[str, Any]] = {}
    for name in collections:
        done: dict[str, Any] = {"created": False, "index": INDEX_NAME, "pre_images": "enabled"}
        if name not in existing:
            db.create_collection(name, maxTimeMS=timeout_ms)
            done["created"] = True
        db[name].create_index(INDEX, name=INDEX_NAME, maxTimeMS=timeout_ms)  # no-op when it exists with the same keys
        try:
            db.command("collMod", name, changeStreamPreAndPostImages={"enabled": True}, maxTimeMS=timeout_ms)
        except OperationFailure as exc:  # MongoDB < 6.0 has no pre-images: tombstones then carry the key only
            done["pre_images"] = f"unavailable ({exc.details.get('errmsg') if exc.details else exc})"
        result[name] = done
    return result
