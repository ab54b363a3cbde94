"""Quarantined records: list them, and replay Kafka ones that pass the current contracts.

``millpond dead-letters list`` reads ``bronze.dead_letter`` read-only. ``millpond dead-letters
replay`` re-validates each Kafka dead letter not yet replayed, from its exact ``raw_bytes``, with
the contracts in force now (``ingest.kafka.contracts.validate`` over ``MILLPOND_KAFKA_SCHEMA_DIR``),
and loads the ones that pass into ``bronze.kafka_<stream>`` with the same row builder as the
reader. The dead letters are read in chunks of ``MILLPOND_KAFKA_MAX_BATCH_MESSAGES`` rows and
handed to dlt chunk by chunk, so memory is bounded by the chunk, not by the number of dead
letters. The landed rows (appended, like the reader's) and the dead letters' ``replayed_at``
travel in one dlt load package of the ingest pipeline: a crash leaves that package pending and
the next ingest or replay finishes it.
A replayed dead letter is not offered again, so a second replay loads nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dlt
import duckdb

from ingest.dead_letter import HINTS as DEAD_LETTER_HINTS
from ingest.dead_letter import TABLE as DEAD_LETTER_TABLE
from ingest.kafka.contracts import validate
from ingest.kafka.rows import LandedBatch, table_hints
from millpond import logs
from millpond.errors import StageFailed
from millpond.locking import pipeline_lock
from millpond.settings import Settings
from millpond.stages.ingest import finish_pending_packages, make_pipeline
from millpond.stages.landed import DATASET, collapse_landed_copies, landed_tables

log = logs.get(__name__)
REPLAY_SOURCE = "dead_letter_replay"
LISTED_COLUMNS = (
    "dead_letter_id",
    "source",
    "origin",
    "partition",
    "offset",
    "record_key",
    "error_class",
    "reason",
    "first_seen_at",
    "received_at",
    "replayed_at",
    "raw_value",
)
# Here the dead-letter table is merged (delete-insert on dead_letter_id, full rows), while the
# sources' schemas keep it insert-only.
REPLAYED_HINTS = dlt.mark.make_hints(
    table_name=DEAD_LETTER_TABLE,
    primary_key="dead_letter_id",
    write_disposition="merge",
    columns=DEAD_LETTER_HINTS["columns"],
)


def _quoted(column: str) -> str:
    return '"' + column + '"'


@contextmanager
def _dead_letter_table(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A read-only connection to the warehouse, or None when it has no dead-letter table (yet).

    After the first ingest the table has every declared column (``ensure_landed_tables``).
    """
    if not settings.warehouse.exists():
        yield None
        return
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        yield con if DEAD_LETTER_TABLE in landed_tables(con) else None


def _records(names: Sequence[str], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows as dicts, the JSON ``headers`` parsed."""
    records = [dict(zip(names, row, strict=True)) for row in rows]
    for record in records:
        if isinstance(record.get("headers"), str):
            record["headers"] = json.loads(record["headers"])
    return records


def list_dead_letters(
    settings: Settings,
    *,
    source: str | None = None,
    origin: str | None = None,
    error_class: str | None = None,
    include_replayed: bool = True,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Dead letters, newest first, as JSON-ready dicts (``raw_bytes`` as its length, headers parsed)."""
    with _dead_letter_table(settings) as con:
        if con is None:
            return []
        where, params = ["true"], []
        for column, value in (("source", source), ("origin", origin), ("error_class", error_class)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if not include_replayed:
            where.append("replayed_at is null")
        computed = ["octet_length(raw_bytes) as raw_bytes_length", "headers"]
        projection = ", ".join([_quoted(c) for c in LISTED_COLUMNS] + computed)
        cursor = con.execute(
            f"select {projection} from {DATASET}.{DEAD_LETTER_TABLE} "
            f"where {' and '.join(where)} order by first_seen_at desc nulls last, dead_letter_id limit ?",
            [*params, limit],
        )
        return _records([d[0] for d in cursor.description], cursor.fetchall())


@dataclass
class ReplayReport:
    """What a replay considered, loaded (per topic) and left quarantined (per error class)."""

    considered: int = 0
    replayed: dict[str, int] = field(default_factory=dict)
    still_failing: dict[str, int] = field(default_factory=dict)
    unknown_topics: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    load_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "considered": self.considered,
            "replayed": self.replayed,
            "still_failing": self.still_failing,
            "unknown_topics": self.unknown_topics,
            "dry_run": self.dry_run,
            "load_ids": self.load_ids,
        }


def replay_dead_letters(
    settings: Settings, *, origin: str | None = None, dry_run: bool = False, chunk_rows: int | None = None
) -> ReplayReport:
    """Re-validate the Kafka dead letters not yet replayed (of topic ``origin``, or all) and load those that pass.

    Runs under the pipeline lock, like a stage; with ``dry_run`` nothing is written. The dead
    letters are read ``chunk_rows`` at a time (default ``kafka_max_batch_messages``).
    """
    chunk = chunk_rows or settings.kafka_max_batch_messages
    with pipeline_lock(settings.data_dir, "dead-letters", timeout_s=settings.lock_timeout_s):
        return _replay(settings, origin, dry_run, chunk)


def pending_dead_letters(settings: Settings, origin: str | None, chunk_rows: int) -> Iterator[list[dict[str, Any]]]:
    """Full rows (without dlt's columns) of the Kafka dead letters not yet replayed, ``chunk_rows`` at a time."""
    with _dead_letter_table(settings) as con:
        if con is None:
            return
        columns = [r[0] for r in con.execute(f"describe {DATASET}.{DEAD_LETTER_TABLE}").fetchall()]
        params: list[Any] = []
        where = "source = 'kafka' and replayed_at is null and raw_bytes is not null"
        if origin is not None:
            where += " and origin = ?"
            params.append(origin)
        cursor = con.execute(
            f"select {', '.join(_quoted(c) for c in columns if not c.startswith('_dlt'))} "
            f'from {DATASET}.{DEAD_LETTER_TABLE} where {where} order by origin, "partition", "offset"',
            params,
        )
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(chunk_rows):
            yield _records(names, rows)


def replayed_items(settings: Settings, origin: str | None, report: ReplayReport, chunk_rows: int) -> Iterator[Any]:
    """Per chunk of dead letters: an Arrow table of landed rows per stream, then the passing dead letters.

    The landed rows carry the reader's table hints (appended, keyed on topic/partition/offset); the dead
    letters, now with ``replayed_at``, carry :data:`REPLAYED_HINTS`. ``report`` counts as the
    chunks go by.
    """
    streams = {topic: stream for stream, topic in settings.topics.as_dict().items()}
    now = datetime.now(UTC)
    for chunk in pending_dead_letters(settings, origin, chunk_rows):
        batches: dict[str, LandedBatch] = {}
        replayed: list[dict[str, Any]] = []
        for row in chunk:
            report.considered += 1
            topic = row["origin"]
            stream = streams.get(topic)
            if stream is None:
                report.unknown_topics[topic] = report.unknown_topics.get(topic, 0) + 1
                continue
            raw = bytes(row["raw_bytes"])
            event, problem = validate(
                stream,
                raw,
                now=now,
                earliest=settings.earliest_event,
                max_future_skew_s=settings.max_future_skew_s,
                max_bytes=settings.kafka_max_message_bytes,
                schema_dir=settings.kafka_schema_dir,
            )
            if event is None:
                klass = problem[0] if problem else "unknown"
                report.still_failing[klass] = report.still_failing.get(klass, 0) + 1
                continue
            message_ts = row.get("message_ts")
            ts_ms = int(message_ts.timestamp() * 1000) if isinstance(message_ts, datetime) else None
            key = row["record_key"].encode() if row.get("record_key") is not None else None
            batch = batches.setdefault(stream, LandedBatch(topic, now))
            batch.add(int(row["partition"]), int(row["offset"]), key, ts_ms, raw, event)
            replayed.append({**row, "replayed_at": now})
            report.replayed[topic] = report.replayed.get(topic, 0) + 1
        for stream, batch in batches.items():
            yield dlt.mark.with_hints(batch.to_arrow(), table_hints(f"kafka_{stream}"), create_table_variant=True)
        if replayed:
            yield dlt.mark.with_hints(replayed, REPLAYED_HINTS, create_table_variant=True)


@dlt.source(name=REPLAY_SOURCE)
def replay_source(items: Iterator[Any]) -> Any:
    """The replayed records' landed rows and dead letters, in one package, with this source's own dlt schema."""
    return dlt.resource(items, name="replayed")


def _replay(settings: Settings, origin: str | None, dry_run: bool, chunk_rows: int) -> ReplayReport:
    report = ReplayReport(dry_run=dry_run)
    if dry_run:
        for _item in replayed_items(settings, origin, report, chunk_rows):
            pass
        log.info("dead_letters.replay.validated", **report.as_dict())
        return report
    try:
        report.load_ids = _load_replay(settings, origin, report, chunk_rows)
    except Exception as exc:
        raise StageFailed(
            f"replaying dead letters failed: {exc}",
            stage="dead-letters",
            hint="re-run `millpond dead-letters replay`: a pending package is finished first, merges are idempotent",
        ) from exc
    log.info("dead_letters.replay.done", **report.as_dict())
    return report


def _load_replay(settings: Settings, origin: str | None, report: ReplayReport, chunk_rows: int) -> list[str]:
    """Finish any pending package, then extract, normalize and load the replay (nothing when nothing passes)."""
    pipeline = make_pipeline(settings)
    load_ids = finish_pending_packages(pipeline, settings, "dead-letters replay")
    pipeline.extract(replay_source(replayed_items(settings, origin, report, chunk_rows)))
    if not report.replayed:
        pipeline.abort_packages()
        return load_ids
    pipeline.normalize()
    info = pipeline.load()
    info.raise_on_failed_jobs()
    collapse_landed_copies(settings)  # copies a resumed load job left, as ingest does
    return load_ids + list(info.loads_ids)
