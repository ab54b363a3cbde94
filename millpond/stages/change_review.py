"""The change-review workflow: plan a model change into an environment, built through today.

``millpond plan dev`` is ``sqlmesh plan dev`` with the stage's conventions: the environment is
built through today (execution time = tomorrow, as the transform stage does for prod), the unit
tests run unless told otherwise (a change under review is what they are for), and the result is
a summary of what changed and what was built. ``millpond plan prod`` after a reviewed dev plan
promotes the same snapshots: a virtual-layer swap of views, nothing is recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from millpond import logs
from millpond.errors import StageFailed
from millpond.locking import pipeline_lock
from millpond.settings import Settings
from millpond.stages.restatement import short_name
from millpond.stages.sqlmesh_console import StageConsole, installed

log = logs.get(__name__)


@dataclass
class PlanSummary:
    environment: str
    # directly modified model -> its change category (BREAKING, NON_BREAKING, ...)
    directly_modified: dict[str, str] = field(default_factory=dict)
    indirectly_modified: list[str] = field(default_factory=list)
    new_snapshots: list[str] = field(default_factory=list)
    # model -> the intervals the plan had to build (``start/end``, end exclusive)
    backfilled: dict[str, list[str]] = field(default_factory=dict)
    # (model, start, end) of every batch SQLMesh evaluated while applying the plan
    batches: list[tuple[str, str, str]] = field(default_factory=list)


def plan_environment(
    settings: Settings, environment: str, today: date | None = None, skip_tests: bool = False
) -> PlanSummary:
    """Plan and apply ``environment`` through ``today``; raises StageFailed naming what failed."""
    from millpond.stages.transform import sqlmesh_context

    today = today or datetime.now(UTC).date()
    lock = pipeline_lock(settings.data_dir, "plan", timeout_s=settings.lock_timeout_s)
    with lock, installed(StageConsole()) as console:
        ctx = None
        try:
            ctx = sqlmesh_context(settings)
            console.adapter = ctx.engine_adapter
            plan = ctx.plan(
                environment,
                execution_time=today + timedelta(days=1),
                skip_tests=skip_tests,
                auto_apply=True,
                no_prompts=True,
            )
        except Exception as exc:
            shown = "; ".join(failure.line() for failure in console.failures[:3]) or " ".join(str(exc).split())
            raise StageFailed(
                f"plan {environment} failed: {shown}",
                stage="plan",
                hint="fix the model change, then plan again; prod is untouched by a dev plan",
            ) from exc
        finally:
            if ctx is not None:
                ctx.close()
    diff = plan.context_diff
    summary = PlanSummary(
        environment=environment,
        directly_modified={
            short_name(name): str(getattr(new.change_category, "name", ""))
            for name, (new, _old) in diff.modified_snapshots.items()
            if diff.directly_modified(name)
        },
        indirectly_modified=sorted(
            short_name(name) for name in diff.modified_snapshots if diff.indirectly_modified(name)
        ),
        new_snapshots=sorted(short_name(s.name) for s in plan.new_snapshots),
        backfilled=console.planned_backfill,
        batches=console.batches,
    )
    log.info("plan.applied", **{k: v for k, v in summary.__dict__.items() if k != "batches"})
    return summary


def summary_dict(summary: PlanSummary) -> dict[str, Any]:
    return dict(summary.__dict__)
