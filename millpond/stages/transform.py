"""Transformation stage: apply the SQLMesh project to prod and restate what new landed data touched.

``sqlmesh run`` only fills intervals that are due by cron, so data that arrives late for an
interval already built would never reach gold. After each ingest this stage therefore finds
the earliest business date among landed (``bronze``) rows loaded since its last successful run,
and restates the models from that date (each interval is rebuilt idempotently from bronze). A
crash before the watermark is saved just means the next run restates the same window again.
A tombstone (a MongoDB delete) has no business time of its own unless it carries the pre-image,
and a quarantined version lands none: their date is the one the entity was built into in gold.
The landed tables are the ingest stage's: this stage only reads them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb

from millpond import logs
from millpond.envutil import scoped_env
from millpond.errors import StageFailed
from millpond.faults import crash_point
from millpond.locking import pipeline_lock
from millpond.settings import Settings
from millpond.stages.landed import DATASET, landed_tables, missing_landed_tables

log = logs.get(__name__)
META_SCHEMA = "millpond_meta"
RESTATE_SELECTORS = ["silver.stg_*"]
# landed table -> column giving the business time a new row belongs to; None: the row has none
# (customers, products feed FULL models), so a change to it restates just today, which rebuilds
# the FULL models and leaves the daily history alone
BUSINESS_TIME: dict[str, str | None] = {
    "mongo_orders": "created_at",
    "kafka_clickstream": "event_ts",
    "kafka_payments": "event_ts",
    "kafka_shipments": "event_ts",
    "mongo_customers": None,
    "mongo_products": None,
}


@dataclass(frozen=True)
class BuiltDate:
    """Where the business date of an entity already built can be read back by its MongoDB ``_id``."""

    table: str
    key: str
    date: str


# landed table -> the built table holding each entity's business date: a delete or a quarantined
# version restates the day the entity is in (the tombstone's own created_at, when it has a
# pre-image, counts too). Gold is read, not silver, because gold is what must lose the entity: a
# restatement killed after rebuilding silver still finds it there.
BUILT_DATE: dict[str, BuiltDate] = {
    "mongo_orders": BuiltDate("gold.fct_orders", "order_id", "order_date"),
}
# rows of the landed table aliased `landed` that a load after the watermark (the parameter) brought
NEW_ROWS = "try_cast(landed._dlt_load_id as double) > try_cast(? as double)"


@dataclass
class TransformReport:
    restated_from: date | None
    end: date
    max_load_id: str | None
    seconds: float


def pending_window(settings: Settings, today: date | None = None) -> tuple[date | None, str | None]:
    """Earliest business date among landed rows newer than the watermark, and the newest load id."""
    today = today or datetime.now(UTC).date()
    if not settings.warehouse.exists():
        return None, None
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        tables = landed_tables(con)
        if "_dlt_loads" not in tables:
            return None, None
        max_load = con.execute(
            f"select load_id from {DATASET}._dlt_loads where status = 0 "
            "order by try_cast(load_id as double) desc limit 1"
        ).fetchone()
        watermark = _watermark(con) or "0"
        built = {table: lookup for table, lookup in BUILT_DATE.items() if _relation_exists(con, lookup.table)}
        starts = [
            _landed_start(con, table, column, built.get(table), watermark, today)
            for table, column in BUSINESS_TIME.items()
            if table in tables
        ]
        if "dead_letter" in tables:
            starts += _quarantined_starts(con, built, watermark, today)
        dates = [start for start in starts if start is not None]
    return (min(dates) if dates else None), (max_load[0] if max_load else None)


def _landed_start(
    con: duckdb.DuckDBPyConnection,
    table: str,
    column: str | None,
    built: BuiltDate | None,
    watermark: str,
    today: date,
) -> date | None:
    """Earliest business date among the rows of ``table`` loaded after ``watermark``."""
    if column is None:
        row = con.execute(f"select count(*) > 0 from {DATASET}.{table} as landed where {NEW_ROWS}", [watermark])
        found = row.fetchone()
        return today if found and found[0] else None
    business_date = f"cast(landed.{column} as date)"
    join = ""
    if built is not None:  # least() skips NULLs: a tombstone without pre-image takes the built date
        business_date = f"least({business_date}, built.{built.date})"
        join = f"left join {built.table} as built on built.{built.key} = landed._id"
    row = con.execute(
        f"select min({business_date}) from {DATASET}.{table} as landed {join} where {NEW_ROWS}", [watermark]
    )
    found = row.fetchone()
    return found[0] if found else None


def _quarantined_starts(
    con: duckdb.DuckDBPyConnection, built: dict[str, BuiltDate], watermark: str, today: date
) -> list[date | None]:
    """Business dates of the entities whose MongoDB dead letters were loaded after ``watermark``.

    Their ``has_quarantined_version`` flag changes. A collection without a business time feeds FULL
    models only, so it restates today, like a changed document of it does.
    """
    origins = con.execute(
        f"select distinct landed.origin from {DATASET}.dead_letter as landed "
        f"where landed.source = 'mongodb' and {NEW_ROWS}",
        [watermark],
    ).fetchall()
    starts: list[date | None] = []
    for (origin,) in origins:
        table = f"mongo_{origin}"
        if table in built:
            lookup = built[table]
            row = con.execute(
                f"select min(built.{lookup.date}) from {DATASET}.dead_letter as landed "
                f"join {lookup.table} as built on built.{lookup.key} = landed.record_key "
                f"where landed.source = 'mongodb' and landed.origin = ? and {NEW_ROWS}",
                [origin, watermark],
            ).fetchone()
            starts.append(row[0] if row else None)
        elif table in BUSINESS_TIME and BUSINESS_TIME[table] is None:
            starts.append(today)
    return starts


def _relation_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    schema, table = name.split(".")
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
    ).fetchone()
    return bool(row and row[0])


def _watermark(con: duckdb.DuckDBPyConnection) -> str | None:
    exists = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = 'transform_runs'",
        [META_SCHEMA],
    ).fetchone()
    if not exists or not exists[0]:
        return None
    row = con.execute(
        f"select max_load_id from {META_SCHEMA}.transform_runs order by finished_at desc limit 1"
    ).fetchone()
    return row[0] if row else None


def _save_watermark(settings: Settings, max_load_id: str | None, restated_from: date | None) -> None:
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute(f"create schema if not exists {META_SCHEMA}")
        con.execute(
            f"create table if not exists {META_SCHEMA}.transform_runs "
            "(finished_at timestamptz, max_load_id varchar, restated_from date)"
        )
        con.execute(
            f"insert into {META_SCHEMA}.transform_runs values (?, ?, ?)",
            [datetime.now(UTC), max_load_id, restated_from],
        )


def sqlmesh_context(settings: Settings) -> Any:
    """A SQLMesh context for the project; ``config.yaml`` reads the MILLPOND_* paths at load."""
    from sqlmesh import Context  # heavy import: only when transforming

    with scoped_env(settings.sqlmesh_env()):
        return Context(paths=[str(settings.project_dir)])


def run_transform(settings: Settings, today: date | None = None) -> TransformReport:
    """Transform under the pipeline lock (see :func:`_transform`)."""
    with pipeline_lock(settings.data_dir, "transform", timeout_s=settings.lock_timeout_s):
        return _transform(settings, today)


def _transform(settings: Settings, today: date | None = None) -> TransformReport:
    """Plan prod (apply model changes, backfill due intervals), then restate the touched window.

    The restatement runs up to and including ``today``; its interval is rebuilt on every later
    run that loads data for it, so a partial day never stays partial.
    """
    started = time.monotonic()
    today = today or datetime.now(UTC).date()
    end = today  # today's partial interval too: new data for it triggers a restatement next run
    missing = missing_landed_tables(settings)
    if missing:
        raise StageFailed(
            f"landed tables missing: {', '.join(f'{DATASET}.{t}' for t in missing)}",
            stage="transform",
            hint="run `millpond ingest` first: it creates every landed table external_models.yaml declares",
        )
    restate_from, max_load_id = pending_window(settings, today)
    ctx = None
    try:
        ctx = sqlmesh_context(settings)
        log.info("transform.plan.start", environment="prod", end=end.isoformat())
        ctx.plan("prod", auto_apply=True, no_prompts=True)
        crash_point("transform.plan")
        if restate_from is not None and restate_from <= end:
            start = max(restate_from, settings.start_date)
            log.info("transform.restate.start", start=start.isoformat(), end=end.isoformat())
            ctx.plan(
                "prod",
                restate_models=RESTATE_SELECTORS,  # downstream models are restated with them
                start=start,
                end=end,
                execution_time=today + timedelta(days=1),  # lets SQLMesh build today's interval
                skip_tests=True,  # the unit tests ran in the plan above
                auto_apply=True,
                no_prompts=True,
            )
        crash_point("transform.restate")
    except Exception as exc:
        raise StageFailed(
            f"SQLMesh failed: {exc}",
            stage="transform",
            hint="fix the model or audit named above, then re-run; the serving data is untouched",
        ) from exc
    finally:
        if ctx is not None:
            ctx.close()  # releases SQLMesh's read-write warehouse connection, on failure too
    _save_watermark(settings, max_load_id, restate_from)
    report = TransformReport(restate_from, end, max_load_id, round(time.monotonic() - started, 2))
    log.info("transform.done", restated_from=str(restate_from), end=end.isoformat(), seconds=report.seconds)
    return report
