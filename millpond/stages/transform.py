"""Transformation stage: apply the SQLMesh project to prod and rebuild what new landed data touched.

``sqlmesh run`` only fills intervals that are due by cron, so data that arrives late for an
interval already built would never reach gold. After each ingest this stage therefore

1. finds the distinct business dates of the landed (``bronze``) rows loaded since its last run,
   per landed table (:mod:`millpond.stages.restatement`);
2. removes, from SQLMesh's state, exactly those intervals of the prod models downstream of the
   changed tables, and records the new watermark: from here the pending work is SQLMesh's own
   record of missing intervals;
3. plans prod (model changes are applied and backfilled, and every missing interval due by cron
   is built with them, upstream before downstream) and runs prod, which fills whatever is still
   missing. Every batch is recorded as it completes, so a killed run resumes where it stopped, and
   nothing one step built is built again by the next. A failed batch stays missing, so the next run
   builds it again (from whatever bronze then holds) before anything downstream of it.

The unit tests run in CI, not here (``MILLPOND_TRANSFORM_UNIT_TESTS`` turns them on). A failed batch
(a blocking audit, a model error) is named in the error line and recorded in
``millpond_meta.transform_failures`` (:mod:`millpond.stages.transform_record`).
The landed tables are the ingest stage's: this stage only reads them, through SQLMesh's engine
adapter, so it works on any gateway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from millpond import logs
from millpond.envutil import scoped_env
from millpond.errors import StageFailed
from millpond.faults import crash_point
from millpond.locking import pipeline_lock
from millpond.settings import Settings
from millpond.stages.landed import DATASET, missing_landed_tables
from millpond.stages.landed_policies import apply_landed_policies
from millpond.stages.restatement import (
    describe,
    invalidated_intervals,
    newest_load_id,
    remove_intervals,
    touched_dates,
)
from millpond.stages.sqlmesh_console import Failure, StageConsole, installed
from millpond.stages.transform_record import read_watermark, record_gold_version, save_failures, save_watermark

log = logs.get(__name__)
PROD = "prod"


@dataclass
class TransformReport:
    restated_from: date | None
    end: date
    max_load_id: str | None
    seconds: float
    # landed table -> the business dates its new rows touched
    touched: dict[str, list[str]] = field(default_factory=dict)
    # model -> intervals removed from SQLMesh's state for rebuilding (``start/end``, end exclusive)
    restated: dict[str, list[str]] = field(default_factory=dict)
    # (model, start, end) of every batch SQLMesh evaluated in this run
    batches: list[tuple[str, str, str]] = field(default_factory=list)


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
    """Invalidate what new landed data touched, then plan and run prod through ``today``.

    Today's interval is built too (execution time = tomorrow); it is rebuilt on every later run
    that loads data for it, so a partial day never stays partial.
    """
    started = time.monotonic()
    today = today or datetime.now(UTC).date()
    missing = missing_landed_tables(settings)
    if missing:
        raise StageFailed(
            f"landed tables missing: {', '.join(f'{DATASET}.{t}' for t in missing)}",
            stage="transform",
            hint="run `millpond ingest` first: it creates every landed table external_models.yaml declares",
        )
    apply_landed_policies(settings)  # erasures and retention, to whatever landed by any path since
    with installed(StageConsole()) as console:
        return _build(settings, console, today, started)


def _build(settings: Settings, console: StageConsole, today: date, started: float) -> TransformReport:
    execution_time = today + timedelta(days=1)
    ctx = None
    try:
        ctx = sqlmesh_context(settings)
        console.adapter = ctx.engine_adapter
        # the janitor (expired environments, interval compaction) runs first, so the interval records
        # this run writes stay as written until the next run
        ctx.run_janitor(ignore_ttl=False)
        report = _invalidate(settings, ctx, today)
        log.info("transform.plan.start", environment=PROD, end=today.isoformat())
        # run=True: the plan fills every missing interval due by cron, in one pass over the DAG. Without it
        # SQLMesh caps each model's backfill at the end of its own recorded intervals, so a model whose
        # latest interval is missing (a failed or invalidated one) would be skipped while the models
        # downstream of it are rebuilt from its previous table.
        ctx.plan(
            PROD,
            execution_time=execution_time,
            skip_tests=not settings.transform_unit_tests,
            auto_apply=True,
            no_prompts=True,
            run=True,
        )
        crash_point("transform.plan")
        status = ctx.run(PROD, execution_time=execution_time, skip_janitor=True)
        if status.is_failure:
            raise _RunFailed("the run of the missing intervals failed")
        crash_point("transform.restate")
        record_gold_version(ctx.engine_adapter, audits_passed=True)
    except Exception as exc:
        if ctx is not None:
            _record_failures(ctx.engine_adapter, console.failures)
            record_gold_version(ctx.engine_adapter, audits_passed=False)
        raise _stage_failed(exc, console.failures) from exc
    finally:
        if ctx is not None:
            ctx.close()  # releases SQLMesh's read-write warehouse connection, on failure too
    report.batches = console.batches
    report.seconds = round(time.monotonic() - started, 2)
    log.info(
        "transform.done",
        restated_from=str(report.restated_from),
        end=today.isoformat(),
        batches=len(report.batches),
        seconds=report.seconds,
    )
    return report


class _RunFailed(Exception):
    """``sqlmesh run`` reported a failure; its console recorded which batches."""


def _invalidate(settings: Settings, ctx: Any, today: date) -> TransformReport:
    """Steps 1 and 2 of the module docstring; the report says what was touched and invalidated."""
    adapter = ctx.engine_adapter
    watermark = read_watermark(adapter)
    max_load_id = newest_load_id(adapter)
    touched = touched_dates(adapter, watermark, today, settings.start_date)
    invalidations = []
    environment = ctx.state_sync.get_environment(PROD)
    if environment is not None and touched:
        snapshots = ctx.state_sync.get_snapshots(environment.snapshots).values()
        invalidations = invalidated_intervals(snapshots, ctx.dag, ctx.models, touched, today)
    restated = describe(invalidations)
    restated_from = min((day for dates in touched.values() for day in dates), default=None)
    touched_iso = {table: sorted(day.isoformat() for day in dates) for table, dates in touched.items()}
    if invalidations:
        log.info("transform.restate.start", touched=touched_iso, intervals=restated)
        remove_intervals(ctx.state_sync, invalidations)
    if max_load_id is not None and max_load_id != watermark:
        save_watermark(adapter, max_load_id, restated_from)
    crash_point("transform.invalidate")
    return TransformReport(restated_from, today, max_load_id, 0.0, touched_iso, restated)


def _record_failures(adapter: Any, failures: list[Failure]) -> None:
    try:
        save_failures(adapter, failures)
    except Exception as exc:  # the failure itself is what the operator must see
        log.warning("transform.failures.not_recorded", error=str(exc))


def _stage_failed(exc: Exception, failures: list[Failure]) -> StageFailed:
    if failures:
        audits = [failure for failure in failures if failure.audit]
        shown = "; ".join(failure.line() for failure in failures[:3])
        more = f" (+{len(failures) - 3} more)" if len(failures) > 3 else ""
        hint = (
            "show the failing rows with the audit_query recorded in millpond_meta.transform_failures "
            "(docs/runbooks/audit-failed.md); fix the data or the model, then re-run: the failed intervals "
            "are still missing and are built next time; the serving data is untouched"
            if audits
            else "fix the model named above, then re-run: the failed intervals are still missing and are built "
            "next time; the serving data is untouched"
        )
        return StageFailed(f"SQLMesh failed: {shown}{more}", stage="transform", hint=hint)
    return StageFailed(
        f"SQLMesh failed: {' '.join(str(exc).split())}",
        stage="transform",
        hint="fix the model, macro or unit test named above, then re-run; the serving data is untouched",
    )
