"""``millpond run``: ingest → transform → check → publish, stopping at the first failure."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from millpond import logs
from millpond.errors import MillpondError, StageFailed
from millpond.locking import pipeline_lock
from millpond.settings import Settings

log = logs.get(__name__)


@dataclass
class RunReport:
    run_id: str
    stages: dict[str, Any] = field(default_factory=dict)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def stage_plan(settings: Settings, run_id: str) -> list[tuple[str, Callable[[], Any]]]:
    """The stages in order, each bound to its arguments."""
    # imported here, not at the top: publish imports new_run_id from this module
    from millpond.stages.check import run_checks
    from millpond.stages.ingest import run_ingest
    from millpond.stages.publish import run_publish
    from millpond.stages.transform import run_transform

    return [
        ("ingest", lambda: run_ingest(settings)),
        ("transform", lambda: run_transform(settings)),
        ("check", lambda: run_checks(settings)),
        ("publish", lambda: run_publish(settings, run_id)),
    ]


def run_all(settings: Settings, run_id: str | None = None) -> RunReport:
    """Run every stage in order; a failure stops the run before anything is published."""
    report = RunReport(run_id=run_id or new_run_id())
    logs.structlog.contextvars.bind_contextvars(run_id=report.run_id)
    try:
        with pipeline_lock(settings.data_dir, "run", timeout_s=settings.lock_timeout_s):
            _run_stages(settings, report)
    finally:
        logs.structlog.contextvars.unbind_contextvars("run_id")
    return report


def _run_stages(settings: Settings, report: RunReport) -> None:
    stages = stage_plan(settings, report.run_id)
    for position, (name, stage) in enumerate(stages, start=1):
        log.info("run.stage.start", stage=name, step=f"{position}/{len(stages)}")
        started = time.monotonic()
        try:
            report.stages[name] = stage()
        except MillpondError as exc:
            log.error("run.stage.failed", stage=name, error=str(exc))
            raise
        except Exception as exc:
            log.error("run.stage.failed", stage=name, error=str(exc))
            raise StageFailed(f"unexpected error: {exc}", stage=name) from exc
        log.info("run.stage.done", stage=name, seconds=round(time.monotonic() - started, 2))
