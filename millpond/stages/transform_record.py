"""The transform stage's own records in the warehouse schema ``millpond_meta``.

* ``transform_runs``: one row per run that handed its work to SQLMesh; ``max_load_id`` is the
  watermark (landed rows of later loads are new to the next run), ``restated_from`` the earliest
  date that run invalidated.
* ``transform_failures``: one row per failed batch of a failed run: the model, the audit, the
  interval, how many rows failed, a few of their keys, and the audit query that shows them.
* ``gold_audits``: one row per run that reached SQLMesh: the gold version it left
  (:mod:`millpond.stages.gold_version`) and whether its blocking audits passed. ``check`` runs
  only on a version whose latest record passed; a failed run also withdraws any approval of the
  version it left, so ``publish`` refuses it.

All are written through SQLMesh's engine adapter. The transform runs on any gateway; the gold
version and its records are DuckDB-only (see :mod:`millpond.stages.gold_version`), and on another
gateway nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from sqlglot import exp, parse_one

from millpond import logs
from millpond.stages import gold_version
from millpond.stages.sqlmesh_console import Failure

log = logs.get(__name__)

META_SCHEMA = "millpond_meta"
RUNS = f"{META_SCHEMA}.transform_runs"
FAILURES = f"{META_SCHEMA}.transform_failures"
_RUNS_DDL = f"create table if not exists {RUNS} (finished_at timestamptz, max_load_id varchar, restated_from date)"
_FAILURES_DDL = (
    f"create table if not exists {FAILURES} (failed_at timestamptz, run_id varchar, model varchar, audit varchar, "
    "interval_start date, interval_end date, failing_rows bigint, sample_keys varchar, audit_query varchar, "
    "error varchar)"
)


def _literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    return exp.Literal.string(str(value)).sql()


def _execute(adapter: Any, sql: str) -> None:
    adapter.execute(parse_one(sql, dialect="duckdb"))


def _ensure(adapter: Any, ddl: str) -> None:
    adapter.create_schema(META_SCHEMA)
    _execute(adapter, ddl)


def read_watermark(adapter: Any) -> str | None:
    """The load id the last successful hand-over recorded, or None (every landed row is new)."""
    if not adapter.table_exists(RUNS):
        return None
    rows = adapter.fetchall(
        parse_one(f"select max_load_id from {RUNS} order by finished_at desc limit 1", dialect="duckdb")
    )
    return str(rows[0][0]) if rows and rows[0][0] is not None else None


def save_watermark(adapter: Any, max_load_id: str | None, restated_from: date | None) -> None:
    _ensure(adapter, _RUNS_DDL)
    now = datetime.now(UTC).isoformat()
    _execute(
        adapter,
        f"insert into {RUNS} values (cast({_literal(now)} as timestamptz), {_literal(max_load_id)}, "
        f"cast({_literal(restated_from and restated_from.isoformat())} as date))",
    )


def save_failures(adapter: Any, failures: Iterable[Failure]) -> None:
    """Record the failed batches of this run (the run id is the one ``millpond run`` bound, if any)."""
    failures = list(failures)
    if not failures:
        return
    _ensure(adapter, _FAILURES_DDL)
    run_id = logs.structlog.contextvars.get_contextvars().get("run_id")
    now = datetime.now(UTC).isoformat()
    for failure in failures:
        values = [
            f"cast({_literal(now)} as timestamptz)",
            _literal(run_id),
            _literal(failure.model),
            _literal(failure.audit),
            f"cast({_literal(failure.start)} as date)",
            f"cast({_literal(failure.end)} as date)",
            _literal(failure.failing_rows),
            _literal(", ".join(failure.sample_keys) if failure.audit else None),
            _literal(failure.audit_query),
            _literal(failure.error),
        ]
        _execute(adapter, f"insert into {FAILURES} values ({', '.join(values)})")


def record_gold_version(adapter: Any, audits_passed: bool) -> str | None:
    """Record the gold version this run left and whether its blocking audits passed; return the version.

    After a successful run an error here fails the stage (``check`` would refuse an unrecorded
    version anyway); after a failed run it is logged, since the run's own failure is what the
    operator must see.
    """
    if getattr(adapter, "dialect", None) != "duckdb":
        log.info("transform.gold_version.not_recorded", reason="the write-audit-publish gate needs a DuckDB warehouse")
        return None
    try:
        version = gold_version.fingerprint(adapter.fetchall)
        run_id = logs.structlog.contextvars.get_contextvars().get("run_id")
        _ensure(adapter, gold_version.GOLD_AUDITS_DDL)
        now = datetime.now(UTC).isoformat()
        _execute(
            adapter,
            f"insert into {gold_version.GOLD_AUDITS} values (cast({_literal(now)} as timestamptz), "
            f"{_literal(run_id)}, {_literal(version)}, {'true' if audits_passed else 'false'})",
        )
        if not audits_passed and adapter.table_exists(gold_version.APPROVALS):
            _execute(adapter, gold_version.revoke_sql(version))
    except Exception as exc:
        if audits_passed:
            raise
        log.warning("transform.gold_version.not_recorded", error=str(exc))
        return None
    log.info("transform.gold_version", gold_version=version, audits_passed=audits_passed)
    return version
