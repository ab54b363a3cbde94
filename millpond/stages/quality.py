"""The quality history: every Soda check result of every ``millpond check``, kept in the warehouse.

``millpond_meta.quality_history`` has one row per check per run (docs/governance/severity.md):
the run, the time, the contract and its table, the check (name, qualifier, column, type), its
severity, the outcome, the measured value, the threshold and the gold version it was measured on.
Publish copies it to both serving targets as ``quality.check_results`` for the dashboards.

Severity is the check's Soda threshold level: the default level ``fail`` is ``critical`` (a
failure stops the publish), ``level: warn`` is ``warning`` (logged and recorded). The measured
value is the number Soda compared with the threshold (``CheckResult.threshold_value``: a count of
missing, invalid or failed rows, a row count, a freshness age...); Soda's other diagnostic metrics
are kept as JSON in ``diagnostics``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from numbers import Number
from typing import Any

import duckdb

from millpond.stages.gold_version import META_SCHEMA

QUALITY_HISTORY = f"{META_SCHEMA}.quality_history"
PUBLISHED_AS = "quality.check_results"
CRITICAL, WARNING = "critical", "warning"
_DDL = (
    f"create table if not exists {QUALITY_HISTORY} (run_id varchar, checked_at timestamptz, contract varchar, "
    "dataset varchar, column_name varchar, check_name varchar, qualifier varchar, check_type varchar, "
    "severity varchar, outcome varchar, measured_value double, threshold varchar, diagnostics varchar, "
    "gold_version varchar)"
)
_OUTCOMES = {"PASSED": "pass", "FAILED": "fail", "WARN": "warn", "NOT_EVALUATED": "error", "EXCLUDED": "excluded"}
_COMPARISONS = (
    ("must_be", "must be"),
    ("must_not_be", "must not be"),
    ("must_be_greater_than", "must be greater than"),
    ("must_be_greater_than_or_equal", "must be greater than or equal to"),
    ("must_be_less_than", "must be less than"),
    ("must_be_less_than_or_equal", "must be less than or equal to"),
)


@dataclass
class CheckRecord:
    """One check result of one contract, as the quality history keeps it."""

    contract: str
    dataset: str  # schema.table
    check_name: str
    check_type: str
    severity: str
    outcome: str  # pass | fail | warn | error
    measured_value: float | None = None
    threshold: str = ""
    column_name: str | None = None
    qualifier: str | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        """A critical check that failed, or could not be evaluated: the version must not be published."""
        return self.severity == CRITICAL and self.outcome in {"fail", "error"}

    def line(self) -> str:
        """``gold.fct_orders: 'is_cancelled agrees with status' measured 3 (must be 0)``."""
        measured = "not measured" if self.measured_value is None else f"measured {_number(self.measured_value)}"
        where = f"{self.dataset}.{self.column_name}" if self.column_name else self.dataset
        threshold = f" ({self.threshold})" if self.threshold else ""
        error = f": {self.diagnostics['error']}" if "error" in self.diagnostics else ""
        return f"{where}: '{self.check_name}' {measured}{threshold}{error}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _threshold_text(threshold: Any) -> str:
    if threshold is None:
        return ""
    parts = [
        f"{text} {getattr(threshold, attr)}" for attr, text in _COMPARISONS if getattr(threshold, attr) is not None
    ]
    return " and ".join(parts)


def _level(threshold: Any) -> str:
    level = getattr(threshold, "level", None)
    return str(getattr(level, "value", level) or "fail").lower()


def _diagnostics(values: Any) -> dict[str, Any]:
    if not values:
        return {}
    if isinstance(values, dict):
        return {str(k): v for k, v in values.items()}
    output = getattr(values, "get_logging_output", None)
    return {"detail": output() if callable(output) else str(values)}


def _measured(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, Number) else None  # type: ignore[arg-type]


def dataset_of(qualified_name: str) -> str:
    """``millpond/gold/fct_orders`` (Soda's data source/schema/table) -> ``gold.fct_orders``."""
    return ".".join(qualified_name.split("/")[1:]) or qualified_name


def records_from(contract: str, session_result: Any) -> list[CheckRecord]:
    """One record per check result of a Soda contract verification, plus one per contract-level error."""
    records = []
    for result in session_result.results:
        dataset = dataset_of(result.check_collection.soda_qualified_dataset_name)
        for check_result in result.check_results:
            check = check_result.check
            threshold = _threshold_text(check.threshold)
            if check.warn_threshold is not None:
                threshold = f"{threshold}; warn unless {_threshold_text(check.warn_threshold)}".lstrip("; ")
            records.append(
                CheckRecord(
                    contract=contract,
                    dataset=dataset,
                    check_name=check.name or check.type,
                    check_type=check.type,
                    severity=WARNING if _level(check.threshold) == "warn" else CRITICAL,
                    outcome=_OUTCOMES.get(check_result.outcome.name, "error"),
                    measured_value=_measured(check_result.threshold_value),
                    threshold=threshold,
                    column_name=check.column_name,
                    qualifier=check.qualifier,
                    diagnostics=_diagnostics(check_result.diagnostic_metric_values),
                )
            )
    for error in session_result.get_errors():
        records.append(contract_error(contract, error, dataset=records[0].dataset if records else contract))
    return records


def contract_error(contract: str, error: str, dataset: str) -> CheckRecord:
    """A contract Soda could not verify (an invalid file, an unreachable table): critical, outcome ``error``."""
    return CheckRecord(
        contract=contract,
        dataset=dataset,
        check_name="contract verification",
        check_type="contract",
        severity=CRITICAL,
        outcome="error",
        diagnostics={"error": " ".join(str(error).split())},
    )


def save(
    con: duckdb.DuckDBPyConnection, records: list[CheckRecord], run_id: str, checked_at: datetime, version: str
) -> None:
    """Append ``records`` to the quality history (one transaction with the caller's other writes)."""
    con.execute(f"create schema if not exists {META_SCHEMA}")
    con.execute(_DDL)
    if not records:
        return
    con.executemany(
        f"insert into {QUALITY_HISTORY} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                run_id,
                checked_at,
                r.contract,
                r.dataset,
                r.column_name,
                r.check_name,
                r.qualifier,
                r.check_type,
                r.severity,
                r.outcome,
                r.measured_value,
                r.threshold,
                json.dumps(r.diagnostics, default=str, sort_keys=True),
                version,
            ]
            for r in records
        ],
    )
