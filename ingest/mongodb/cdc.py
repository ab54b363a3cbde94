"""Change-stream (CDC) reading of one collection: a consistent initial snapshot, then its change stream.

State (the resource state dlt commits with the load package)::

    {"snapshot_done": bool, "resume_token": {"_data": ...} | None, "start_at": [time, inc] | None}

(``snapshot_token`` holds the snapshot's stream position while it runs, and ``snapshot_after`` the
``_id`` (extended JSON) of the last document a bounded snapshot read so far; both are gone once the
snapshot is done.)

The snapshot first opens the change stream and keeps its position (the post-batch resume
token: "now" in the oplog), then reads every document; the stream is then read from that
position, so a write made while the snapshot runs arrives at least once, either in the
snapshot or as an event (the merge on ``_id`` makes the overlap harmless). After a snapshot,
landed ids that the source no longer has are tombstoned (``landed_ids``), which makes a
re-snapshot correct after deletes that the stream missed.

With ``snapshot_docs`` set, a run's snapshot reads at most that many documents (in ``_id``
order) and stops there; the next run (the ingest stage starts it at once, as a package of its
own) goes on after the stored ``_id``, so the memory of a load package is bounded whatever the
collection's size. The stream is read only once the snapshot is done; it starts from the
position taken before the snapshot's first document, so the writes made while the snapshot ran
over several packages arrive as events.

A run is bounded: it reads events until the server has none within ``await_ms`` or until it
reaches the cluster time at which the read began, then stores the resume token after the last
event read (or the post-batch token, which also moves on while the collection is idle).
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import datetime
from typing import Any

import pymongo
from bson import Timestamp, json_util
from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from ingest.mongodb.helpers import (
    ChangeStreamEnded,
    ChangeStreamsUnavailable,
    ResumeTokenExpired,
    cluster_time,
    is_history_lost,
    ts_datetime,
    ts_from_state,
)
from ingest.mongodb.reconcile import LandedIds, deleted_tombstones
from ingest.mongodb.rows import document_row, paged, table_hints, tombstone

DOCUMENT_OPS = {"insert", "update", "replace"}
END_OPS = {"drop", "rename", "dropDatabase", "invalidate"}
NO_CHANGE_STREAMS_CODES = {40573, 40324}  # not a replica set; unknown $changeStream stage


def has_pre_images(coll: Collection[dict[str, Any]], timeout_ms: int) -> bool:
    """Whether the collection records pre-/post-images (``millpond mongo setup`` enables them)."""
    info = next(iter(coll.database.list_collections(filter={"name": coll.name}, maxTimeMS=timeout_ms)), None)
    options = (info or {}).get("options", {})
    return bool(options.get("changeStreamPreAndPostImages", {}).get("enabled"))


def open_stream(coll: Collection[dict[str, Any]], timeout_ms: int, options: dict[str, Any]) -> Any:
    """The change stream of ``coll``: its opening ``aggregate`` carries ``maxTimeMS`` (a ``pymongo.timeout`` around
    the open only), and each ``getMore`` waits at most the ``max_await_time_ms`` of ``options``."""
    with pymongo.timeout(timeout_ms / 1000):
        return coll.watch(**options)


def cdc_changes(
    coll: Collection[dict[str, Any]],
    state: MutableMapping[str, Any],
    *,
    batch_size: int,
    timeout_ms: int,
    await_ms: int,
    landed_ids: LandedIds | None,
    ingested_at: datetime,
    snapshot_docs: int | None = None,
) -> Iterator[Any]:
    """Pages of rows (and single dead letters) for ``coll``: the snapshot when none was taken, then changes.

    ``snapshot_docs``: the most documents one run's snapshot reads (None: the whole collection).
    """
    name = coll.name
    hints = table_hints(name)
    watch: dict[str, Any] = {"full_document": "updateLookup", "batch_size": batch_size, "max_await_time_ms": await_ms}
    if has_pre_images(coll, timeout_ms):
        watch["full_document_before_change"] = "whenAvailable"
    try:
        if not state.get("snapshot_done"):
            snapshot = Snapshot(coll, state, watch, hints, batch_size, timeout_ms, ingested_at)
            yield from snapshot.read(snapshot_docs, landed_ids)
            if not state.get("snapshot_done"):
                return  # the next run goes on with the snapshot
        yield from _stream(coll, state, watch, hints, batch_size, timeout_ms, ingested_at)
    except OperationFailure as exc:
        if is_history_lost(exc):
            raise ResumeTokenExpired(name, f" (server: {exc.details.get('errmsg') if exc.details else exc})") from exc
        if exc.code in NO_CHANGE_STREAMS_CODES:
            raise ChangeStreamsUnavailable(name, str(exc.details.get("errmsg") if exc.details else exc)) from exc
        raise


class Snapshot:
    """The initial snapshot of one collection, read in ``_id`` order, whole or a bounded part per run."""

    def __init__(
        self,
        coll: Collection[dict[str, Any]],
        state: MutableMapping[str, Any],
        watch: dict[str, Any],
        hints: Any,
        batch_size: int,
        timeout_ms: int,
        ingested_at: datetime,
    ) -> None:
        self.coll, self.state, self.watch, self.hints = coll, state, watch, hints
        self.batch_size, self.timeout_ms, self.ingested_at = batch_size, timeout_ms, ingested_at

    def read(self, limit: int | None, landed_ids: LandedIds | None) -> Iterator[Any]:
        """The pages of the next (at most ``limit``) documents; the tombstones and ``snapshot_done`` after the last."""
        coll, state = self.coll, self.state
        token = state.get("snapshot_token")
        if token is None:  # a snapshot read again after a lost connection keeps the position of its first try
            with open_stream(coll, self.timeout_ms, self.watch) as stream:
                token = stream.resume_token
            state["snapshot_token"] = token
        # taken after the stream position: any event after the position but before this instant is older
        # than what this read sees, so the snapshot's version wins over it within the load
        snapshot_ts = ts_datetime(cluster_time(coll.database, self.timeout_ms))
        after = state.get("snapshot_after")
        docs = self._documents(json_util.loads(after) if after is not None else None, limit)
        rows = (document_row(coll.name, doc, "snapshot", snapshot_ts, self.ingested_at) for doc in docs)
        yield from paged(rows, self.hints, self.batch_size)
        if docs.more:
            state.update(snapshot_done=False, snapshot_after=json_util.dumps(docs.last_id))
            return
        if landed_ids is not None:
            tombstones = deleted_tombstones(coll, landed_ids(coll.name), self.timeout_ms, self.ingested_at)
            yield from paged(tombstones, self.hints, self.batch_size)
        state.pop("snapshot_token", None)
        state.pop("snapshot_after", None)
        state.update(snapshot_done=True, resume_token=token, start_at=None)

    def _documents(self, after: Any, limit: int | None) -> _Documents:
        # the ``_id`` index's order (``min``, inclusive, with the index as hint) spans every BSON type an
        # ``_id`` may have, where ``$gt`` would compare within one type only
        query = self.coll.find({}).sort("_id", 1).batch_size(self.batch_size).hint([("_id", 1)])
        if after is not None:
            query = query.min([("_id", after)])
        if limit is not None:
            query = query.limit(limit + 2)  # the document ``after`` itself, and one to tell whether more follow
        # a scan carries no maxTimeMS (it is cumulative over the cursor's life); the socket timeout bounds each batch
        return _Documents(query, after, limit)


class _Documents:
    """The documents of a snapshot read after ``after`` (exclusive), at most ``limit``; ``more`` says whether the
    collection holds more after ``last_id`` (known once iterated)."""

    def __init__(self, cursor: Any, after: Any, limit: int | None) -> None:
        self.cursor, self.after, self.limit = cursor, after, limit
        self.more = False
        self.last_id: Any = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        read = 0
        first = True
        with self.cursor as cursor:
            for doc in cursor:
                if first and self.after is not None and doc["_id"] == self.after:
                    first = False
                    continue  # ``min`` is inclusive: this one was read in the previous run
                first = False
                if self.limit is not None and read >= self.limit:
                    self.more = True
                    return
                read += 1
                self.last_id = doc["_id"]
                yield doc


def _stream(
    coll: Collection[dict[str, Any]],
    state: MutableMapping[str, Any],
    watch: dict[str, Any],
    hints: Any,
    batch_size: int,
    timeout_ms: int,
    ingested_at: datetime,
) -> Iterator[Any]:
    options = dict(watch)
    if state.get("resume_token"):
        options["resume_after"] = state["resume_token"]
    elif state.get("start_at"):
        options["start_at_operation_time"] = ts_from_state(state["start_at"])
    read_until: Timestamp = cluster_time(coll.database, timeout_ms)

    def changes() -> Iterator[Any]:
        with open_stream(coll, timeout_ms, options) as stream:
            while True:
                change = stream.try_next()
                if change is None:  # nothing more now: the post-batch token is past everything read
                    if stream.resume_token is not None:
                        state.update(resume_token=stream.resume_token, start_at=None)
                    return
                if change["clusterTime"] > read_until:  # written after this run began: the next run reads it
                    return
                op = change["operationType"]
                if op in END_OPS:
                    raise ChangeStreamEnded(coll.name, op)
                row = _change_row(coll.name, change, ingested_at)
                state.update(resume_token=change["_id"], start_at=None)
                if row is not None:
                    yield row

    yield from paged(changes(), hints, batch_size)


def _change_row(collection: str, change: dict[str, Any], ingested_at: datetime) -> Any:
    """The row of one change event; None for events that carry nothing to land."""
    op = change["operationType"]
    source_ts = ts_datetime(change["clusterTime"])
    if op == "delete":
        deleted_at = change.get("wallTime") or source_ts
        return tombstone(
            change["documentKey"]["_id"], deleted_at, source_ts, ingested_at, change.get("fullDocumentBeforeChange")
        )
    if op in DOCUMENT_OPS:
        doc = change.get("fullDocument")
        if doc is None:  # deleted since: its delete event follows
            return None
        return document_row(collection, doc, op, source_ts, ingested_at)
    return None
