"""Check stage (the "audit" of write-audit-publish): Soda Core data contracts on an audited gold version.

The stage refuses to run unless the latest ``transform`` recorded that the blocking SQLMesh audits
passed for exactly the gold version the warehouse holds now (:mod:`millpond.stages.gold_version`).
It then verifies every contract in ``checks/contracts`` against the warehouse (read-only) and
writes every check result to the quality history (:mod:`millpond.stages.quality`). When no
critical check failed it approves the gold version for publishing; a critical failure withdraws
any approval of that version and stops the run with the table, the check and the measured value.
Warnings are logged and recorded and never stop the publish (docs/governance/severity.md).
Contracts take the shop's vocabularies (``ingest.vocabulary``) as Soda variables, so a contract
and the SQLMesh audits accept the same order statuses and event types.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ingest.vocabulary import EVENT_TYPES, ORDER_STATUSES
from millpond import logs
from millpond.envutil import scoped_env
from millpond.errors import StageFailed
from millpond.locking import pipeline_lock
from millpond.settings import Settings
from millpond.stages import gold_version, quality
from millpond.stages.quality import CheckRecord

log = logs.get(__name__)
SHOWN_FAILURES = 3


@dataclass
class ContractOutcome:
    contract: str
    checks: int
    passed: int
    failed: int
    warned: int = 0
    errors: list[str] = field(default_factory=list)
    records: list[CheckRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No critical check failed or went unevaluated, and Soda reported no error."""
        return not any(record.blocking for record in self.records) and not self.errors

    @property
    def blocking(self) -> list[CheckRecord]:
        return [record for record in self.records if record.blocking]


@dataclass
class CheckReport:
    outcomes: list[ContractOutcome]
    seconds: float
    gold_version: str = ""
    run_id: str = ""

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def warnings(self) -> list[CheckRecord]:
        return [
            r for o in self.outcomes for r in o.records if not r.blocking and r.outcome in {"warn", "fail", "error"}
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "gold_version": self.gold_version,
            "run_id": self.run_id,
            "seconds": self.seconds,
            "warnings": [record.line() for record in self.warnings],
            "contracts": {
                o.contract: {"checks": o.checks, "passed": o.passed, "failed": o.failed, "warned": o.warned}
                for o in self.outcomes
            },
        }


def contract_files(settings: Settings) -> list[Path]:
    return sorted((settings.project_dir / "checks" / "contracts").glob("*.yml"))


def _sql_list(values: Iterable[str]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


def contract_variables() -> dict[str, str]:
    """Soda variables for the contracts: each vocabulary as a SQL list of string literals.

    ``ORDER_STATUSES``, ``EVENT_TYPES`` (every stream) and ``<STREAM>_EVENT_TYPES`` per stream,
    used as ``status NOT IN (${var.ORDER_STATUSES})``; a contract declares the ones it uses.
    """
    variables = {
        "ORDER_STATUSES": _sql_list(ORDER_STATUSES),
        "EVENT_TYPES": _sql_list(t for types in EVENT_TYPES.values() for t in types),
    }
    variables.update({f"{stream.upper()}_EVENT_TYPES": _sql_list(types) for stream, types in EVENT_TYPES.items()})
    return variables


def verify(settings: Settings, contract: Path) -> ContractOutcome:
    """Verify one contract with Soda Core against the warehouse (read-only)."""
    from soda_core.contracts import verify_contract_locally

    env = {
        "MILLPOND_WAREHOUSE_PATH": str(settings.warehouse),  # read by checks/datasource.yml
        "SODA_CORE_TELEMETRY_ENABLED": "false",
    }
    try:
        with scoped_env(env):
            result = verify_contract_locally(
                data_source_file_path=str(settings.project_dir / "checks" / "datasource.yml"),
                contract_file_path=str(contract),
                variables=contract_variables(),
            )
    except Exception as exc:  # an unreadable contract: recorded and critical, like any contract error
        error = " ".join(str(exc).split())
        record = quality.contract_error(contract.stem, error, dataset=contract.stem)
        return ContractOutcome(contract.stem, 0, 0, 0, errors=[error], records=[record])
    errors = list(result.get_errors())
    return ContractOutcome(
        contract=contract.stem,
        checks=result.number_of_checks,
        passed=result.number_of_checks_passed,
        failed=result.number_of_checks_failed,
        warned=sum(1 for contract in result.results for check in contract.check_results if check.is_warned),
        errors=errors,
        records=quality.records_from(contract.stem, result),
    )


def run_checks(settings: Settings, run_id: str | None = None) -> CheckReport:
    """Check the current gold version (see the module docstring); ``run_id`` names the run in the quality history."""
    from millpond.stages.run import new_run_id  # run imports the stages when it runs them

    with pipeline_lock(settings.data_dir, "check", timeout_s=settings.lock_timeout_s):
        return _check(settings, run_id or logs.structlog.contextvars.get_contextvars().get("run_id") or new_run_id())


def audited_gold_version(settings: Settings) -> str:
    """The current gold version, when the latest transform recorded its blocking audits passing on it."""
    if not settings.warehouse.exists():
        raise StageFailed(
            "no warehouse yet", stage="check", hint="run `millpond ingest` and `millpond transform` first"
        )
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        fetch = gold_version.duckdb_fetch(con)
        version = gold_version.fingerprint(fetch)
        record = gold_version.latest_audit(fetch)
    if record is None or record.gold_version != version or not record.audits_passed:
        if record is None:
            why = "no transform run recorded its audits"
        elif not record.audits_passed:
            why = f"the latest transform (at {record.recorded_at}) failed its blocking audits"
        else:
            why = f"the latest transform recorded gold version {record.gold_version}: gold changed since"
        raise StageFailed(
            f"gold version {version} has no passing audit record ({why}), nothing was checked or published",
            stage="check",
            hint="run `millpond transform` (it rebuilds what failed and records its audits), then `millpond check`",
        )
    return version


def _check(settings: Settings, run_id: str) -> CheckReport:
    started = time.monotonic()
    contracts = contract_files(settings)
    if not contracts:
        raise StageFailed("no contracts found in checks/contracts", stage="check")
    version = audited_gold_version(settings)
    outcomes = []
    for position, contract in enumerate(contracts, start=1):
        outcome = verify(settings, contract)
        log.info(
            "check.contract",
            contract=outcome.contract,
            progress=f"{position}/{len(contracts)}",
            checks=outcome.checks,
            failed=outcome.failed,
            warned=outcome.warned,
            errors=len(outcome.errors),
        )
        for record in outcome.records:
            if not record.blocking and record.outcome in {"warn", "fail", "error"}:
                log.warning(
                    "check.warning",
                    table=record.dataset,
                    check=record.check_name,
                    column=record.column_name,
                    value=record.measured_value,
                    threshold=record.threshold,
                    outcome=record.outcome,
                )
        outcomes.append(outcome)
    report = CheckReport(outcomes, 0.0, gold_version=version, run_id=run_id)
    _record(settings, report)
    report.seconds = round(time.monotonic() - started, 2)
    if not report.ok:
        raise _failed(report)
    log.info("check.done", contracts=len(outcomes), gold_version=version, seconds=report.seconds)
    return report


def _record(settings: Settings, report: CheckReport) -> None:
    """Write the quality history and, when nothing critical failed, the approval, in one transaction.

    The gold version is measured again inside that transaction: an approval is only ever written
    for the content the contracts were verified on.
    """
    records = [record for outcome in report.outcomes for record in outcome.records]
    now = datetime.now(UTC)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("begin")
        quality.save(con, records, report.run_id, now, report.gold_version)
        if gold_version.fingerprint(gold_version.duckdb_fetch(con)) != report.gold_version:
            con.execute("commit")
            raise StageFailed(
                f"gold changed while it was checked (was {report.gold_version}), nothing was approved",
                stage="check",
                hint="another process wrote the warehouse: run `millpond transform`, then `millpond check`",
            )
        if report.ok:
            gold_version.approve(con, report.gold_version, report.run_id, now)
        else:
            gold_version.revoke(con, report.gold_version)
        con.execute("commit")
    log.info("check.recorded", results=len(records), gold_version=report.gold_version, approved=report.ok)


def _failed(report: CheckReport) -> StageFailed:
    bad = [o for o in report.outcomes if not o.ok]
    blocking = [record for o in bad for record in o.blocking]
    shown = "; ".join(record.line() for record in blocking[:SHOWN_FAILURES])
    more = f" (+{len(blocking) - SHOWN_FAILURES} more)" if len(blocking) > SHOWN_FAILURES else ""
    summary = ", ".join(_counts(o) for o in bad)
    return StageFailed(
        f"critical checks failed on gold version {report.gold_version}, nothing can be published ({summary}): "
        f"{shown}{more}",
        stage="check",
        hint="every result is in millpond_meta.quality_history (run_id "
        f"{report.run_id}); fix the data or the model, run `millpond transform`, then `millpond check`",
    )


def _counts(outcome: ContractOutcome) -> str:
    """``fct_orders: 2 failed`` (and ``, 1 not evaluated`` for critical checks Soda could not measure)."""
    failed = sum(1 for record in outcome.blocking if record.outcome == "fail")
    errors = sum(1 for record in outcome.blocking if record.outcome == "error")
    return f"{outcome.contract}: {failed} failed" + (f", {errors} not evaluated" if errors else "")
