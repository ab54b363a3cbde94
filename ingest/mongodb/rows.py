"""The landed rows of the MongoDB source: document versions, tombstones and dead letters.

Every landed row carries ``_op`` (what produced it), ``_source_ts`` (the cluster time of the
change, or the start of the read that saw it) and ``_deleted_at`` (set on tombstones only).
Within one load the row with the newest ``_source_ts`` per ``_id`` wins (dlt ``dedup_sort``);
across loads the merge on ``_id`` keeps the last one loaded.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import dlt
from bson import BSON, json_util

from ingest.dead_letter import dead_letter
from ingest.mongodb.contracts import COLLECTIONS, ERROR_CLASS, validate
from ingest.mongodb.helpers import from_bson, key_of

LINEAGE_COLUMNS: dict[str, Any] = {
    "_op": {"data_type": "text"},
    "_deleted_at": {"data_type": "timestamp", "nullable": True},
    "_source_ts": {"data_type": "timestamp", "dedup_sort": "desc"},
    "_ingested_at": {"data_type": "timestamp"},
}


def table_hints(collection: str) -> Any:
    """The hints every page of ``mongo_<collection>`` carries (a table variant, so dead letters keep their own)."""
    return dlt.mark.make_hints(
        table_name=f"mongo_{collection}",
        primary_key="_id",
        write_disposition={"disposition": "merge", "strategy": "delete-insert"},
        # copies: dlt writes each column's name into the hint dicts it is given
        columns=copy.deepcopy({**COLLECTIONS[collection].columns, **LINEAGE_COLUMNS}),
        nested_hints={
            path: dlt.mark.make_nested_hints(columns=copy.deepcopy(columns))
            for path, columns in COLLECTIONS[collection].nested_columns.items()
        },
    )


def mark_page(page: list[dict[str, Any]], hints: Any) -> Any:
    return dlt.mark.with_hints(page, hints, create_table_variant=True)


def version_of(doc: dict[str, Any], raw: bytes) -> str:
    """A stable name of one version of a document: ``<updated_at>-<hash of its BSON>`` (the hash alone without a
    date ``updated_at``), so two versions that share an ``updated_at`` keep their own names."""
    digest = hashlib.sha256(raw).hexdigest()[:16]
    updated_at = doc.get("updated_at")
    return f"{updated_at.isoformat()}-{digest}" if isinstance(updated_at, datetime) else digest


def record_id(doc: dict[str, Any], raw: bytes | None = None) -> str:
    """The dead-letter record id of a document version: ``<_id>@<version>``."""
    return f"{key_of(doc.get('_id'))}@{version_of(doc, BSON.encode(doc) if raw is None else raw)}"


def paged(rows: Iterable[Any], hints: Any, size: int) -> Iterator[Any]:
    """``rows`` handed to dlt in pages of ``size`` marked with ``hints``; anything else (a dead letter) goes alone, at
    once."""
    page: list[dict[str, Any]] = []
    for row in rows:
        if not isinstance(row, dict):
            yield row
            continue
        page.append(row)
        if len(page) >= size:
            yield mark_page(page, hints)
            page = []
    if page:
        yield mark_page(page, hints)


def document_row(
    collection: str, doc: dict[str, Any], op: str, source_ts: datetime, ingested_at: datetime
) -> dict[str, Any] | Any:
    """The landed row of a document version, or its dead letter when it breaks the contract."""
    problem = validate(collection, doc)
    if problem:
        return quarantine(collection, doc, problem)
    return {**from_bson(doc), "_op": op, "_deleted_at": None, "_source_ts": source_ts, "_ingested_at": ingested_at}


def quarantine(collection: str, doc: dict[str, Any], reason: str) -> Any:
    """The dead letter of a document version (never landed: the previous version stays in bronze)."""
    raw = BSON.encode(doc)
    key = key_of(doc.get("_id"))
    return dead_letter(
        source="mongodb",
        origin=collection,
        record_id=record_id(doc, raw),
        record_key=key,
        raw_value=json_util.dumps(doc),
        raw_bytes=raw,
        error_class=ERROR_CLASS,
        reason=reason,
    )


def tombstone(
    key: Any, deleted_at: datetime, source_ts: datetime, ingested_at: datetime, before: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The row of a deleted document: its key, the delete times and the pre-image fields that are not lists.

    Lists would become child rows again; a tombstone has none, so the merge removes the old ones.
    """
    fields = {k: v for k, v in from_bson(before or {}).items() if not isinstance(v, list)}
    return {
        **fields,
        "_id": key_of(key),
        "_op": "delete",
        "_deleted_at": deleted_at,
        "_source_ts": source_ts,
        "_ingested_at": ingested_at,
    }
