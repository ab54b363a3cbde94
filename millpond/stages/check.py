"""Validation stage (the "audit" of write-audit-publish): Soda Core data contracts on gold.

SQLMesh audits already ran inside ``transform``; here every contract in ``checks/contracts``
is verified against the warehouse. Any failed check or error stops the run before publish.
Contracts take the shop's vocabularies (``ingest.vocabulary``) as Soda variables, so a contract
and the SQLMesh audits accept the same order statuses and event types.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.vocabulary import EVENT_TYPES, ORDER_STATUSES
from millpond import logs
from millpond.envutil import scoped_env
from millpond.errors import StageFailed
from millpond.locking import pipeline_lock
from millpond.settings import Settings

log = logs.get(__name__)


@dataclass
class ContractOutcome:
    contract: str
    checks: int
    passed: int
    failed: int
    warned: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.errors


@dataclass
class CheckReport:
    outcomes: list[ContractOutcome]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": self.seconds,
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
    with scoped_env(env):
        result = verify_contract_locally(
            data_source_file_path=str(settings.project_dir / "checks" / "datasource.yml"),
            contract_file_path=str(contract),
            variables=contract_variables(),
        )
    errors = list(result.get_errors())
    return ContractOutcome(
        contract=contract.stem,
        checks=result.number_of_checks,
        passed=result.number_of_checks_passed,
        failed=result.number_of_checks_failed,
        warned=sum(1 for contract in result.results for check in contract.check_results if check.is_warned),
        errors=errors,
    )


def run_checks(settings: Settings) -> CheckReport:
    """Verify every contract; raise StageFailed (after checking all of them) when one fails."""
    with pipeline_lock(settings.data_dir, "check", timeout_s=settings.lock_timeout_s):
        return _check(settings)


def _check(settings: Settings) -> CheckReport:
    started = time.monotonic()
    contracts = contract_files(settings)
    if not contracts:
        raise StageFailed("no contracts found in checks/contracts", stage="check")
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
        if outcome.warned:
            log.warning("check.contract.warned", contract=outcome.contract, warned=outcome.warned)
        outcomes.append(outcome)
    report = CheckReport(outcomes, round(time.monotonic() - started, 2))
    if not report.ok:
        bad = [o for o in outcomes if not o.ok]
        detail = "; ".join(f"{o.contract}: {o.failed} failed, errors: {o.errors[:2]}" for o in bad)
        raise StageFailed(
            f"data contracts failed, nothing was published: {detail}",
            stage="check",
            hint="inspect the failing rows in the warehouse (gold.*), fix the data or model, then re-run",
        )
    log.info("check.done", contracts=len(outcomes), seconds=report.seconds)
    return report
