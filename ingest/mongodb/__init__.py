"""MongoDB source: the shop's operational collections, merged on ``_id``, deletes as tombstones.

Two modes, one resource per collection (``mongo_<collection>``):

* ``cdc`` (default; replica sets): a consistent initial snapshot, then the collection's change
  stream from the position taken before the snapshot (:mod:`ingest.mongodb.cdc`). The resume
  token lives in the resource state, which dlt commits with the load package.
* ``cursor`` (servers without change streams): ``updated_at`` ranges with an upper bound and a
  safety lag, plus a periodic id reconciliation that finds deletes (:mod:`ingest.mongodb.cursor`).

Nested lists (order line items, status history) become dlt child tables. A document version
that breaks the collection's contract goes to the dead-letter table with the reason and is not
landed. Reads use majority read concern on the primary, retryable reads and a timeout on every
call; memory is bounded by ``batch_size``. A read broken by a lost connection (mongod restarted,
a primary stepping down) is read again, with backoff, while the first failure is less than the
timeout ago; a server that stays away longer fails the read with :class:`MongoUnreachable`. See
docs/pipelines/mongodb.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import dlt
from dlt.sources import DltResource
from pymongo.errors import ConnectionFailure, CursorNotFound, ServerSelectionTimeoutError

from ingest.mongodb.cdc import cdc_changes
from ingest.mongodb.contracts import COLLECTIONS
from ingest.mongodb.cursor import cursor_changes
from ingest.mongodb.helpers import (
    ChangeStreamEnded,
    ChangeStreamsUnavailable,
    MongoSourceError,
    MongoUnreachable,
    ResumeTokenExpired,
    address_of,
    client_from_url,
    source_database,
)
from ingest.mongodb.reconcile import LandedIds, warehouse_ids

__all__ = [
    "COLLECTIONS",
    "ChangeStreamEnded",
    "ChangeStreamsUnavailable",
    "LandedIds",
    "MongoSourceError",
    "MongoUnreachable",
    "ResumeTokenExpired",
    "collection_changes",
    "mongodb_source",
    "warehouse_ids",
]

Mode = Literal["cdc", "cursor"]
log = logging.getLogger(__name__)
FIRST_RETRY_S = 0.5  # the wait before the first re-read; it doubles for each further one


@dlt.source(name="mongodb", max_table_nesting=1)
def mongodb_source(
    connection_url: str = dlt.secrets.value,
    database: str | None = dlt.config.value,
    collections: Sequence[str] = tuple(COLLECTIONS),
    mode: Mode = "cdc",
    timeout_ms: int = 30_000,
    batch_size: int = 2_000,
    cursor_lag_s: float = 5.0,
    reconcile_every: int = 10,
    landed_ids: LandedIds | None = None,
    await_ms: int = 100,
    snapshot_docs_per_run: int | None = None,
) -> Iterator[DltResource]:
    """One merge resource per collection (``mongo_<collection>``).

    Args:
        connection_url: a MongoDB connection string; from ``sources.mongodb.connection_url`` when not passed.
        database: the database to read; from ``sources.mongodb.database``, else the one the URL names.
        collections: which of the contracted collections to read.
        mode: ``cdc`` (change streams) or ``cursor`` (``updated_at`` ranges).
        timeout_ms: server selection, connect and socket timeout, and ``maxTimeMS`` of commands.
        batch_size: documents per server batch and per page handed to dlt.
        cursor_lag_s: cursor mode: how far behind the server clock a scan stops.
        reconcile_every: cursor mode: reconcile ids every this many runs (0: never).
        landed_ids: ``collection -> batches of live landed _ids`` (e.g. :func:`warehouse_ids`); used to
            tombstone deleted documents after a snapshot (cdc) and on reconciliation (cursor). None: no
            reconciliation.
        await_ms: cdc: how long the server waits for another event before a run counts as caught up.
        snapshot_docs_per_run: cdc: the most documents of a collection's initial snapshot one run reads; the
            resource state's ``snapshot_done`` stays false until a run has read the rest (None: all at once).
    """
    if mode not in ("cdc", "cursor"):
        raise ValueError(f"mode must be 'cdc' or 'cursor', not {mode!r}")
    for name in collections:
        yield dlt.resource(collection_changes, name=f"mongo_{name}")(
            connection_url,
            database,
            name,
            mode=mode,
            timeout_ms=timeout_ms,
            batch_size=batch_size,
            cursor_lag_s=cursor_lag_s,
            reconcile_every=reconcile_every,
            landed_ids=landed_ids,
            await_ms=await_ms,
            snapshot_docs_per_run=snapshot_docs_per_run,
        )


def collection_changes(
    connection_url: str,
    database: str | None,
    collection: str,
    *,
    mode: Mode,
    timeout_ms: int,
    batch_size: int,
    cursor_lag_s: float,
    reconcile_every: int,
    landed_ids: LandedIds | None,
    await_ms: int,
    snapshot_docs_per_run: int | None = None,
) -> Iterator[Any]:
    """The changes of ``collection`` since the position in this resource's state, in pages.

    The state is updated as the read goes and committed by dlt with the load package only. A read
    broken by a lost connection starts again from the state as it is then; the rows it hands out
    twice are the same versions or older ones, which the merge on ``_id`` (newest ``_source_ts``
    wins) collapses.
    """
    state = dlt.current.resource_state()
    ingested_at = datetime.now(UTC)
    first_failure: float | None = None
    backoff = FIRST_RETRY_S
    while True:
        try:
            with client_from_url(connection_url, timeout_ms) as client:
                coll = source_database(client, database)[collection]
                if mode == "cdc":
                    yield from cdc_changes(
                        coll,
                        state,
                        batch_size=batch_size,
                        timeout_ms=timeout_ms,
                        await_ms=min(await_ms, timeout_ms),
                        landed_ids=landed_ids,
                        ingested_at=ingested_at,
                        snapshot_docs=snapshot_docs_per_run,
                    )
                else:
                    yield from cursor_changes(
                        coll,
                        state,
                        batch_size=batch_size,
                        timeout_ms=timeout_ms,
                        lag_s=cursor_lag_s,
                        reconcile_every=reconcile_every,
                        landed_ids=landed_ids,
                        ingested_at=ingested_at,
                    )
            return
        except (ConnectionFailure, CursorNotFound) as exc:
            now = time.monotonic()
            first_failure = now if first_failure is None else first_failure
            if isinstance(exc, ServerSelectionTimeoutError) or now - first_failure + backoff > timeout_ms / 1000:
                raise MongoUnreachable(address_of(connection_url), timeout_ms) from exc
            log.warning(
                "mongodb.read.retry",
                extra={"collection": collection, "retry_in_s": backoff, "error": str(exc).split(",")[0]},
            )
            time.sleep(backoff)
            backoff *= 2
