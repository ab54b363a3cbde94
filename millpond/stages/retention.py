"""``millpond retention``: age out landed Kafka events and dead letters (docs/governance/retention.md).

* ``bronze.kafka_<stream>``: rows whose ``event_ts`` is before UTC midnight of today minus
  ``MILLPOND_RETENTION_EVENTS_DAYS`` days (a whole number of days goes, never part of one);
* ``bronze.dead_letter``: rows whose ``first_seen_at`` is more than
  ``MILLPOND_RETENTION_DEAD_LETTER_DAYS`` days ago.

Unset means kept forever. Each application is one transaction under the pipeline lock and records
a row per table in ``millpond_meta.retention_runs`` (run id, time, cutoff, rows deleted, dry run);
running it again deletes only what aged out since.

Gold stays correct because nothing rebuilds a day from landed events once its interval is built:
the silver event models are incremental by event time (``stg_*_events``, lookback 1 day, hence the
2-day minimum), everything downstream reads silver, and no FULL or VIEW model reads the landed
events. The one way back into an aged-out day is a restatement triggered by a late event for it:
:func:`drop_aged_out_arrivals` (run after every ingest and before every transform) drops such
late arrivals older than the cutoff last applied, so a restatement never reaches a day whose
landed rows are gone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import duckdb

from ingest.dead_letter import TABLE as DEAD_LETTERS
from millpond import logs
from millpond.locking import pipeline_lock
from millpond.settings import Settings
from millpond.stages.destination import DATASET

log = logs.get(__name__)
META_SCHEMA = "millpond_meta"
RUNS = f"{META_SCHEMA}.retention_runs"
_DDL = (
    f"create table if not exists {RUNS} (run_id varchar not null, applied_at timestamptz not null, "
    "table_name varchar not null, time_column varchar not null, cutoff timestamptz not null, "
    "rows_deleted bigint not null, dry_run boolean not null)"
)


@dataclass
class RetentionReport:
    run_id: str
    dry_run: bool
    cutoffs: dict[str, str] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "dry_run": self.dry_run, "cutoffs": self.cutoffs, "deleted": self.deleted}


def policies(settings: Settings, now: datetime) -> dict[str, tuple[str, datetime]]:
    """Landed table -> (time column, cutoff) of every configured retention."""
    out: dict[str, tuple[str, datetime]] = {}
    if settings.retention_events_days is not None:
        midnight = datetime.combine(now.astimezone(UTC).date(), time(0), UTC)
        cutoff = midnight - timedelta(days=settings.retention_events_days)
        for stream in settings.topics.as_dict():
            out[f"kafka_{stream}"] = ("event_ts", cutoff)
    if settings.retention_dead_letter_days is not None:
        out[DEAD_LETTERS] = ("first_seen_at", now - timedelta(days=settings.retention_dead_letter_days))
    return out


def run_retention(settings: Settings, *, dry_run: bool = False, now: datetime | None = None) -> RetentionReport:
    """Apply the configured retention (or, with ``dry_run``, count what it would delete)."""
    from millpond.stages.erasure import require_duckdb

    require_duckdb(settings, "retention")
    now = now or datetime.now(UTC)
    report = RetentionReport(run_id=uuid.uuid4().hex[:12], dry_run=dry_run)
    configured = policies(settings, now)
    if not configured:
        log.info("retention.nothing_configured")
        return report
    with pipeline_lock(settings.data_dir, "retention", timeout_s=settings.lock_timeout_s):
        if not settings.warehouse.exists():
            return report
        with duckdb.connect(str(settings.warehouse)) as con:
            con.execute(f"create schema if not exists {META_SCHEMA}")
            con.execute(_DDL)
            con.execute("begin")
            for table, (column, cutoff) in configured.items():
                report.cutoffs[f"{DATASET}.{table}"] = cutoff.isoformat()
                if not _exists(con, table):
                    continue
                verb = "select count(*)" if dry_run else "delete"
                row = con.execute(f'{verb} from {DATASET}."{table}" where "{column}" < ?', [cutoff]).fetchone()
                deleted = int(row[0]) if row else 0
                report.deleted[f"{DATASET}.{table}"] = deleted
                con.execute(
                    f"insert into {RUNS} values (?, ?, ?, ?, ?, ?, ?)",
                    [report.run_id, now, f"{DATASET}.{table}", column, cutoff, deleted, dry_run],
                )
            con.execute("commit")
    log.info("retention.done", run_id=report.run_id, dry_run=dry_run, deleted=report.deleted, cutoffs=report.cutoffs)
    return report


def _exists(con: duckdb.DuckDBPyConnection, table: str, schema: str = DATASET) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
    ).fetchone()
    return bool(row and row[0])


def applied_cutoffs(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, datetime]]:
    """Landed table (``bronze.<t>``) -> (time column, the latest cutoff retention applied to it)."""
    if not _exists(con, "retention_runs", META_SCHEMA):
        return {}
    rows = con.execute(
        f"select table_name, any_value(time_column), max(cutoff) from {RUNS} where not dry_run group by table_name"
    ).fetchall()
    return {str(table): (str(column), cutoff) for table, column, cutoff in rows}


def drop_aged_out_arrivals(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Delete Kafka rows that landed after retention with an event time before its cutoff; table -> rows.

    Such a late event belongs to a day whose other landed events are gone: letting it through would
    make the transform restate that day from it alone. Dead letters are left alone (nothing is
    built from them by date).
    """
    dropped: dict[str, int] = {}
    for table, (column, cutoff) in applied_cutoffs(con).items():
        schema, name = table.split(".", 1)
        if name == DEAD_LETTERS or not _exists(con, name, schema):
            continue
        row = con.execute(f'delete from {schema}."{name}" where "{column}" < ?', [cutoff]).fetchone()
        if row and row[0]:
            dropped[table] = int(row[0])
    if dropped:
        log.warning("retention.aged_out_arrivals_dropped", rows=dropped, hint="older than the applied retention cutoff")
    return dropped
