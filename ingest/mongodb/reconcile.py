"""Id reconciliation: tombstones for landed documents that no longer exist at the source.

The source cannot read the warehouse itself, so the ids that are live in bronze come in as a
parameter: a callable ``landed_ids(collection)`` yielding batches of ``_id`` strings. Each batch
is looked up at the source in one ``$in`` query (an ``_id`` index lookup), so memory is bounded
by the batch and no id set is kept in state. :func:`warehouse_ids` builds that callable for a
DuckDB warehouse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from pymongo.collection import Collection

from ingest.mongodb.helpers import id_candidates, key_of, source_time
from ingest.mongodb.rows import tombstone

LandedIds = Callable[[str], Iterable[Sequence[str]]]


def deleted_tombstones(
    coll: Collection[dict[str, Any]],
    batches: Iterable[Sequence[str]],
    timeout_ms: int,
    ingested_at: datetime,
) -> Iterator[dict[str, Any]]:
    """A tombstone for every landed id of ``batches`` that ``coll`` no longer has.

    The tombstone's ``_source_ts`` is the server's time (:func:`source_time`) taken before its batch is looked
    up: never later than the delete, and earlier than any write that re-creates the document afterwards.
    """
    for batch in batches:
        keys = [str(k) for k in batch]
        if not keys:
            continue
        checked_at = source_time(coll.database, timeout_ms)
        found = coll.find({"_id": {"$in": id_candidates(keys)}}, {"_id": 1}).max_time_ms(timeout_ms)
        present = {key_of(doc["_id"]) for doc in found}
        for key in keys:
            if key not in present:
                yield tombstone(key, checked_at, checked_at, ingested_at)


def warehouse_ids(warehouse: Path | str, dataset: str = "bronze", batch_size: int = 10_000) -> LandedIds:
    """``landed_ids`` for a DuckDB warehouse: the ``_id`` of every row of ``<dataset>.mongo_<collection>``
    that is not a tombstone, read in batches (read-only; nothing when the table does not exist yet)."""

    def landed(collection: str) -> Iterator[list[str]]:
        if not Path(warehouse).exists():
            return
        with duckdb.connect(str(warehouse), read_only=True) as con:
            table = f"mongo_{collection}"
            exists = con.execute(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                [dataset, table],
            ).fetchone()
            if not exists or not exists[0]:
                return
            columns = {r[0] for r in con.execute(f'describe {dataset}."{table}"').fetchall()}
            live = "where _deleted_at is null" if "_deleted_at" in columns else ""
            con.execute(f'select distinct _id from {dataset}."{table}" {live} order by _id')
            while rows := con.fetchmany(batch_size):
                yield [str(r[0]) for r in rows]

    return landed
