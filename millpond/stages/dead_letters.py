"""Quarantined records: list them, and replay Kafka ones that pass the current contracts.

``millpond dead-letters list`` reads ``bronze.dead_letter`` read-only. ``millpond dead-letters
replay`` re-validates each Kafka dead letter not yet replayed, from its exact ``raw_bytes``, with
the contracts in the code now (``ingest.kafka.contracts.validate``), and loads the ones that
pass into ``bronze.kafka_<stream>`` with the same row builder as the reader. The landed rows
(merged on topic/partition/offset, so a record also delivered otherwise is not doubled) and
the dead letters' ``replayed_at`` travel in one dlt load package of the ingest pipeline: a crash
leaves that package pending and the next ingest or replay finishes it. A replayed dead letter is
not offered again, so a second replay loads nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import dlt
import duckdb

from ingest.dead_letter import HINTS as DEAD_LETTER_HINTS
from ingest.dead_letter import TABLE as DEAD_LETTER_TABLE
from ingest.kafka import ARROW_NORMALIZER_CONFIG, ENVELOPE_COLUMNS
from ingest.kafka.contracts import validate
from ingest.kafka.rows import LandedBatch
from millpond import logs
from millpond.errors import MillpondError, StageFailed
from millpond.locking import pipeline_lock
from millpond.settings import Settings
from millpond.stages.ingest import DATASET, landed_tables, make_pipeline

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


def _quoted(column: str) -> str:
    return '"' + column + '"'


def _columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(f"describe {DATASET}.{DEAD_LETTER_TABLE}").fetchall()]


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
    if not settings.warehouse.exists():
        return []
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        if DEAD_LETTER_TABLE not in landed_tables(con):
            return []
        present = _columns(con)
        selected = [c for c in LISTED_COLUMNS if c in present]
        extra = ["octet_length(raw_bytes) as raw_bytes_length"] if "raw_bytes" in present else []
        extra += ["headers"] if "headers" in present else []
        where, params = ["true"], []
        for column, value in (("source", source), ("origin", origin), ("error_class", error_class)):
            if value is not None and column in present:
                where.append(f"{column} = ?")
                params.append(value)
        if not include_replayed and "replayed_at" in present:
            where.append("replayed_at is null")
        order = "first_seen_at" if "first_seen_at" in present else "received_at"
        projection = ", ".join([_quoted(c) for c in selected] + extra)
        cursor = con.execute(
            f"select {projection} from {DATASET}.{DEAD_LETTER_TABLE} "
            f"where {' and '.join(where)} order by {order} desc nulls last, dead_letter_id limit ?",
            [*params, limit],
        )
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        if isinstance(row.get("headers"), str):
            row["headers"] = json.loads(row["headers"])
    return rows


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


def replay_dead_letters(settings: Settings, *, origin: str | None = None, dry_run: bool = False) -> ReplayReport:
    """Re-validate the Kafka dead letters not yet replayed (of topic ``origin``, or all) and load those that pass.

    Runs under the pipeline lock, like a stage; with ``dry_run`` nothing is written.
    """
    with pipeline_lock(settings.data_dir, "dead-letters", timeout_s=settings.lock_timeout_s):
        return _replay(settings, origin, dry_run)


def _pending(settings: Settings, origin: str | None) -> list[dict[str, Any]]:
    """Full rows (without dlt's columns) of the Kafka dead letters not yet replayed."""
    if not settings.warehouse.exists():
        return []
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        if DEAD_LETTER_TABLE not in landed_tables(con):
            return []
        present = _columns(con)
        missing = {"raw_bytes", "replayed_at"} - set(present)
        if missing:
            raise MillpondError(
                f"{DATASET}.{DEAD_LETTER_TABLE} has no column(s) {sorted(missing)}: it was written before dead"
                " letters kept their raw bytes",
                stage="dead-letters",
                hint="run `millpond ingest` once with the current version; older dead letters cannot be replayed",
            )
        columns = [c for c in present if not c.startswith("_dlt")]
        params: list[Any] = []
        where = "source = 'kafka' and replayed_at is null and raw_bytes is not null"
        if origin is not None:
            where += " and origin = ?"
            params.append(origin)
        cursor = con.execute(
            f"select {', '.join(_quoted(c) for c in columns)} from {DATASET}.{DEAD_LETTER_TABLE} "
            f'where {where} order by origin, "partition", "offset"',
            params,
        )
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        if isinstance(row.get("headers"), str):
            row["headers"] = json.loads(row["headers"])
    return rows


def _replay(settings: Settings, origin: str | None, dry_run: bool) -> ReplayReport:
    report = ReplayReport(dry_run=dry_run)
    streams = {topic: stream for stream, topic in settings.topics.as_dict().items()}
    now = datetime.now(UTC)
    batches: dict[str, LandedBatch] = {}
    replayed: list[dict[str, Any]] = []
    for row in _pending(settings, origin):
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
    log.info("dead_letters.replay.validated", **report.as_dict())
    if dry_run or not replayed:
        return report
    try:
        report.load_ids = _load_replay(settings, batches, replayed)
    except Exception as exc:
        raise StageFailed(
            f"replaying dead letters failed: {exc}",
            stage="dead-letters",
            hint="re-run `millpond dead-letters replay`: a pending package is finished first, merges are idempotent",
        ) from exc
    log.info("dead_letters.replay.done", replayed=report.replayed, load_ids=report.load_ids)
    return report


@dlt.source(name=REPLAY_SOURCE)
def replay_source(batches: dict[str, LandedBatch], replayed: list[dict[str, Any]]) -> Iterator[Any]:
    """The landed rows of the replayed records and their dead letters with ``replayed_at`` set, in one package.

    Its own dlt schema: here the dead-letter table is merged (delete-insert on
    ``dead_letter_id``, full rows), while the sources' schemas keep it insert-only.
    """
    for stream, batch in batches.items():
        yield dlt.resource(
            [batch.to_arrow()],
            name=f"kafka_{stream}",
            primary_key=["topic", "partition", "offset"],
            write_disposition="merge",
            columns=ENVELOPE_COLUMNS,
        )
    yield dlt.resource(
        replayed,
        name=DEAD_LETTER_TABLE,
        primary_key="dead_letter_id",
        write_disposition="merge",
        columns=cast(dict[str, Any], DEAD_LETTER_HINTS["columns"]),
    )


def _load_replay(settings: Settings, batches: dict[str, LandedBatch], replayed: list[dict[str, Any]]) -> list[str]:
    pipeline = make_pipeline(settings)
    load_ids: list[str] = []
    if pipeline.has_pending_data:
        log.warning("dead_letters.replay.resuming_pending_packages")
        pipeline.normalize()
        load_ids += list(pipeline.load().loads_ids)
    for key, value in ARROW_NORMALIZER_CONFIG.items():
        dlt.config[key] = value
    pipeline.extract(replay_source(batches, replayed))
    pipeline.normalize()
    info = pipeline.load()
    info.raise_on_failed_jobs()
    return load_ids + list(info.loads_ids)
