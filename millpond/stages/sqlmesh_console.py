"""SQLMesh's console for the transform stage: its progress and failures as structured log events.

SQLMesh reports what it evaluates (one batch of intervals of one model at a time) and what failed
through its console. This one logs every completed batch (``transform.batch.done``) and keeps
every failure, with its model, interval and cause, so the stage can name them in its error and in
the run record. A failed audit is read back in full: its count and a few keys of the failing rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlmesh.core.console import NoopConsole, get_console, set_console
from sqlmesh.utils.date import to_ds
from sqlmesh.utils.errors import AuditError, NodeAuditsErrors

from millpond import logs
from millpond.stages.restatement import short_name

log = logs.get(__name__)
SAMPLE_KEYS = 5


@dataclass
class Failure:
    """One failed batch: an audit that found rows, or an evaluation error."""

    model: str
    start: str | None
    end: str | None  # exclusive
    audit: str | None = None
    failing_rows: int | None = None
    sample_keys: list[str] = field(default_factory=list)
    audit_query: str | None = None
    error: str | None = None

    def line(self) -> str:
        """One line for the error message and the log."""
        interval = f"[{self.start}, {self.end})" if self.start else "(no interval)"
        if self.audit:
            keys = ", ".join(self.sample_keys) or "-"
            return (
                f"{self.model} {interval}: audit {self.audit} failed on {self.failing_rows} rows (sample keys: {keys})"
            )
        return f"{self.model} {interval}: {self.error}"


class StageConsole(NoopConsole):
    """A console that logs instead of printing, and records failures (see the module docstring)."""

    def __init__(self, adapter: Any = None) -> None:
        super().__init__()
        self.adapter = adapter  # reads the sample keys of a failing audit; set once the context exists
        self.failures: list[Failure] = []
        self.batches: list[tuple[str, str, str]] = []
        # model -> the intervals the last plan had to build, read before it was applied
        self.planned_backfill: dict[str, list[str]] = {}

    def plan(
        self,
        plan_builder: Any,
        auto_apply: bool,
        default_catalog: str | None,
        no_diff: bool = False,
        no_prompts: bool = False,
    ) -> None:
        self.planned_backfill = {
            short_name(item.snapshot_id.name): [f"{to_ds(start)}/{to_ds(end)}" for start, end in item.intervals]
            for item in plan_builder.build().missing_intervals
        }
        log.info("transform.plan.backfill", intervals=self.planned_backfill)
        super().plan(plan_builder, auto_apply, default_catalog, no_diff=no_diff, no_prompts=no_prompts)

    def update_snapshot_evaluation_progress(
        self,
        snapshot: Any,
        interval: Any,
        batch_idx: int,
        duration_ms: int | None,
        num_audits_passed: int,
        num_audits_failed: int,
        audit_only: bool = False,
        execution_stats: Any = None,
        auto_restatement_triggers: Any = None,
    ) -> None:
        start, end = (to_ds(interval[0]), to_ds(interval[1])) if interval else ("", "")
        model = short_name(snapshot.name)
        self.batches.append((model, start, end))
        log.info(
            "transform.batch.done",
            model=model,
            start=start,
            end=end,
            batch=batch_idx,
            ms=duration_ms,
            audits_failed=num_audits_failed,
        )

    def log_failed_models(self, errors: list[Any]) -> None:
        known = len(self.failures)
        for error in errors:
            node = error.node
            model = short_name(getattr(node, "snapshot_name", str(node)))
            interval = getattr(node, "interval", None)
            start, end = (to_ds(interval[0]), to_ds(interval[1])) if interval else (None, None)
            cause = error.__cause__
            if isinstance(cause, NodeAuditsErrors):
                self.failures += [self._audit_failure(model, start, end, audit) for audit in cause.errors]
            else:
                self.failures.append(Failure(model, start, end, error=_one_line(cause or error)))
        for failure in self.failures[known:]:
            log.error("transform.batch.failed", **{k: v for k, v in vars(failure).items() if k != "audit_query"})

    def _audit_failure(self, model: str, start: str | None, end: str | None, audit: AuditError) -> Failure:
        query = audit.sql()
        return Failure(
            model,
            start,
            end,
            audit=audit.audit_name,
            failing_rows=audit.count,
            sample_keys=self._sample_keys(audit),
            audit_query=query,
        )

    def _sample_keys(self, audit: AuditError) -> list[str]:
        """The grain (or first column) of a few failing rows; empty when they cannot be read."""
        if self.adapter is None:
            return []
        try:
            grains = audit.model.grains if audit.model else []
            grain = [column.name for expression in grains for column in expression.find_all(exp.Column)]
            failing = audit.query.subquery("failing")
            columns: list[exp.Expression] = [exp.column(name, table="failing") for name in grain] or [exp.Star()]
            rows = self.adapter.fetchall(exp.select(*columns).from_(failing).limit(SAMPLE_KEYS))
        except Exception as exc:  # the keys only help: the failure is reported either way
            log.warning("transform.audit.sample_failed", audit=audit.audit_name, error=_one_line(exc))
            return []
        width = len(grain) if grain else 1
        return ["/".join(str(value) for value in row[:width]) for row in rows]

    def log_warning(self, short_message: str, long_message: str | None = None) -> None:
        log.warning("transform.sqlmesh.warning", message=short_message.strip())

    def log_error(self, message: str) -> None:
        log.error("transform.sqlmesh.error", message=message.strip())


@contextmanager
def installed(console: Any) -> Iterator[Any]:
    """Make ``console`` SQLMesh's console (it is process-wide) while the block runs."""
    previous = get_console()
    set_console(console)
    try:
        yield console
    finally:
        set_console(previous)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 500 else text[:497] + "..."
