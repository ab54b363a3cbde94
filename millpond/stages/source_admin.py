"""Operator commands on the sources: MongoDB setup and re-snapshot, Kafka re-baseline.

The two state edits change the ingest pipeline's dlt state (``state["sources"][<source>]
["resources"][<resource>]``) inside ``pipeline.managed_state(extract_state=True)``: dlt saves the
edited state locally and puts it in a load package, which is loaded at once, so the state
stored in the warehouse (``bronze._dlt_pipeline_state``, which dlt restores from when the local
working dir is lost) says the same. Both run under the pipeline lock, after finishing any
pending package, so no other stage's package carries an older state past the edit.
"""

from __future__ import annotations

import time
from typing import Any

import duckdb

from ingest.mongodb import COLLECTIONS
from ingest.mongodb.helpers import client_from_url
from ingest.mongodb.setup import ensure_collections
from millpond import logs
from millpond.errors import MillpondError
from millpond.locking import pipeline_lock
from millpond.settings import Settings
from millpond.stages.ingest import KAFKA_SOURCE, MONGO_SOURCE, finish_pending_packages, make_pipeline
from millpond.stages.landed import DATASET, DEAD_LETTER_TABLE, landed_tables

log = logs.get(__name__)
ARCHIVE_SCHEMA = "bronze_archive"


def mongo_setup(settings: Settings) -> Any:
    """Create the ``(updated_at, _id)`` indexes and enable pre-images on the shop's collections (idempotent)."""
    timeout_ms = int(settings.io_timeout_s * 1000)
    with client_from_url(settings.mongo_uri, timeout_ms) as client:
        result = ensure_collections(client.get_database(settings.mongo_db), timeout_ms=timeout_ms)
    log.info("mongo.setup.done", database=settings.mongo_db, result=result)
    return result


def _edit_resource_state(settings: Settings, source: str, resource: str, command: str) -> dict[str, Any]:
    """Remove ``resource``'s state of ``source`` and persist the edit; returns the state that was removed."""
    with pipeline_lock(settings.data_dir, command, timeout_s=settings.lock_timeout_s):
        pipeline = make_pipeline(settings)
        finish_pending_packages(pipeline, settings, command)
        with pipeline.managed_state(extract_state=True) as state:
            resources = state.get("sources", {}).get(source, {}).get("resources", {})
            removed = resources.pop(resource, None)
        if removed is None:
            return {}
        pipeline.normalize()
        pipeline.load().raise_on_failed_jobs()
        return dict(removed)


def mongo_resnapshot(settings: Settings, collection: str) -> dict[str, Any]:
    """Forget ``collection``'s change-stream (or cursor) position, so the next ingest takes a fresh snapshot.

    The snapshot re-reads every document and merges it on ``_id``: nothing is doubled, and
    documents changed while the stream was broken arrive in their current version.
    """
    if collection not in COLLECTIONS:
        raise MillpondError(
            f"unknown collection {collection!r}",
            stage="mongo",
            hint=f"one of {', '.join(sorted(COLLECTIONS))}",
        )
    removed = _edit_resource_state(settings, MONGO_SOURCE, f"mongo_{collection}", "mongo-resnapshot")
    log.warning("mongo.resnapshot.done", collection=collection, removed_state=bool(removed))
    return {"collection": collection, "cleared": bool(removed), "next": "the next `millpond ingest` re-snapshots it"}


def kafka_rebaseline(settings: Settings, topic: str) -> dict[str, Any]:
    """Forget ``topic``'s stored positions after it was recreated, so the next ingest reads it from the beginning.

    The rows already landed from the old topic, and its dead letters, are first moved to
    ``bronze_archive`` (copied and deleted in one transaction each): the tables hold one row per
    ``(topic, partition, offset)``, and an old row left at a position would sit beside the new
    topic's message there (ADR 0021).
    """
    streams = {t: stream for stream, t in settings.topics.as_dict().items()}
    stream = streams.get(topic)
    if stream is None:
        raise MillpondError(
            f"topic {topic!r} is not one of the configured topics {sorted(streams)}",
            stage="kafka",
            hint="pass the topic name as in MILLPOND_TOPIC_*",
        )
    table = f"kafka_{stream}"
    with pipeline_lock(settings.data_dir, "kafka-rebaseline", timeout_s=settings.lock_timeout_s):
        archived = _archive_topic_rows(settings, table, topic)
        archived_dead_letters = _archive_topic_dead_letters(settings, stream, topic)
        removed = _edit_resource_state(settings, KAFKA_SOURCE, table, "kafka-rebaseline")  # the lock is re-entrant
    log.warning(
        "kafka.rebaseline.done",
        topic=topic,
        removed_state=bool(removed),
        archived=archived,
        archived_dead_letters=archived_dead_letters,
    )
    return {
        "topic": topic,
        "cleared": bool(removed),
        "previous_positions": removed.get("positions", removed.get("offsets", {})),
        "archived": archived,
        "archived_dead_letters": archived_dead_letters,
        "next": "the next `millpond ingest` reads the topic from its beginning",
    }


def _archive_topic_rows(settings: Settings, table: str, topic: str) -> dict[str, Any] | None:
    """Move the landed rows of ``topic`` to ``bronze_archive.<table>__<UTC time>``; None when there are none."""
    return _archive(settings, table, "topic = ?", [topic], f"{table}__{_utc_stamp()}")


def _archive_topic_dead_letters(settings: Settings, stream: str, topic: str) -> dict[str, Any] | None:
    """Move the dead letters of ``topic`` to ``bronze_archive.dead_letter__<stream>__<UTC time>``; None when none.

    A Kafka dead letter is keyed by its topic position: one of the old topic left in place would
    stop the new topic's dead letter at that position from being inserted, and a replay could land
    the old record at a position the new topic's message holds.
    """
    where = "source = 'kafka' and origin = ?"
    return _archive(settings, DEAD_LETTER_TABLE, where, [topic], f"{DEAD_LETTER_TABLE}__{stream}__{_utc_stamp()}")


def _utc_stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _archive(settings: Settings, table: str, where: str, args: list[Any], target: str) -> dict[str, Any] | None:
    """Move the rows of ``table`` that match ``where`` to ``bronze_archive.<target>``, in one transaction."""
    if not settings.warehouse.exists():
        return None
    with duckdb.connect(str(settings.warehouse)) as con:
        if table not in landed_tables(con):
            return None
        row = con.execute(f"select count(*) from {DATASET}.{table} where {where}", args).fetchone()
        count = int(row[0]) if row else 0
        if not count:
            return None
        con.execute(f"create schema if not exists {ARCHIVE_SCHEMA}")
        con.execute("begin")
        con.execute(f'create table {ARCHIVE_SCHEMA}."{target}" as select * from {DATASET}.{table} where {where}', args)
        con.execute(f"delete from {DATASET}.{table} where {where}", args)
        con.execute("commit")
    return {"table": f"{ARCHIVE_SCHEMA}.{target}", "rows": count}
