"""The check stage: real Soda contracts on a DuckDB warehouse whose gold tables have the models' schema.

The gold tables are created with the column types SQLMesh derives from ``models/gold`` and filled
by hand, so each test controls exactly which values the contracts see. The stage runs against a
project copy whose ``checks/contracts`` holds two small contracts of this test
(``tests/millpond/stages/contracts``), since the project's own contracts also read bronze and every
gold table (tests/checks verifies those on a real pipeline run).
"""

from __future__ import annotations

import re
import shutil
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml
from sqlmesh import Context
from sqlmesh.core.engine_adapter import DuckDBEngineAdapter

from ingest.vocabulary import EVENT_TYPES, ORDER_STATUSES
from millpond.envutil import scoped_env
from millpond.errors import StageFailed
from millpond.settings import Settings
from millpond.stages import gold_version
from millpond.stages.check import contract_files, contract_variables, run_checks, verify
from millpond.stages.transform_record import record_gold_version

DAY = date(2025, 1, 1)
VARIABLE_REFERENCE = re.compile(r"\$\{ *var\.(\w+) *\}")
VOCABULARY = {*ORDER_STATUSES, *EVENT_TYPES, *(t for types in EVENT_TYPES.values() for t in types)}


@pytest.fixture(scope="module")
def gold_columns(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """Column name -> DuckDB type of each gold table the contracts cover, from the SQLMesh models."""
    cfg = Settings(data_dir=tmp_path_factory.mktemp("sqlmesh"))
    with scoped_env(cfg.sqlmesh_env()):
        context = Context(paths=cfg.project_dir)
        columns = {}
        for table in ("fct_orders", "agg_daily_revenue"):
            types = context.get_model(f"gold.{table}", raise_if_missing=True).columns_to_types
            assert types, f"SQLMesh cannot infer the columns of gold.{table}"
            columns[table] = {name: kind.sql("duckdb") for name, kind in types.items()}
        return columns


def _build_gold(cfg: Settings, columns: dict[str, dict[str, str]], statuses: list[str], quarantined: int = 0) -> None:
    """gold.fct_orders with one order per status (one day each), and its gold.agg_daily_revenue."""
    cfg.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(cfg.warehouse)) as con:
        con.execute("create schema gold")
        for table, types in columns.items():
            con.execute(f"create table gold.{table} ({', '.join(f'{n} {t}' for n, t in types.items())})")
        for position, status in enumerate(statuses):
            day = DAY + timedelta(days=position)
            ordered_at = f"{day.isoformat()} 12:00:00+00"
            cancelled = status == "cancelled"
            con.execute(
                "insert into gold.fct_orders values"
                " (?, 'c1', ?, ?::timestamptz, ?, 2, 20.50, 'EUR', ?, ?::timestamptz, ?)",
                [f"o{position}", day, ordered_at, status, cancelled, ordered_at, position < quarantined],
            )
            revenue = Decimal("0.00") if cancelled else Decimal("20.50")
            con.execute(
                "insert into gold.agg_daily_revenue values (?, 1, ?, ?, ?)", [day, int(cancelled), revenue, revenue]
            )
    record_audits(cfg, passed=True)


def record_audits(cfg: Settings, passed: bool) -> str | None:
    """What ``transform`` records at its end: the gold version it left, and whether its blocking audits passed."""
    with duckdb.connect(str(cfg.warehouse)) as con:
        return record_gold_version(DuckDBEngineAdapter(lambda: con), audits_passed=passed)


TEST_CONTRACTS = Path(__file__).parent / "contracts"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose project holds the real data source file and this test's two contracts."""
    project = Settings().project_dir
    checks = tmp_path / "project" / "checks"
    (checks / "contracts").mkdir(parents=True)
    shutil.copy(project / "checks" / "datasource.yml", checks / "datasource.yml")
    for contract in TEST_CONTRACTS.glob("*.yml"):
        shutil.copy(contract, checks / "contracts" / contract.name)
    return Settings(data_dir=tmp_path / "data", project_dir=tmp_path / "project")


def _contract(cfg: Settings, name: str) -> Path:
    return next(path for path in contract_files(cfg) if path.stem == name)


def test_contracts_pass_when_gold_holds_every_status_of_the_vocabulary(settings, gold_columns):
    _build_gold(settings, gold_columns, list(ORDER_STATUSES))
    report = run_checks(settings)
    assert report.ok
    assert {o.contract for o in report.outcomes} == {"fct_orders", "agg_daily_revenue"}
    assert all(o.checks > 0 and o.passed == o.checks for o in report.outcomes)


def test_a_status_outside_the_vocabulary_fails_only_the_status_check(settings, gold_columns):
    assert "returned" not in ORDER_STATUSES
    _build_gold(settings, gold_columns, [*ORDER_STATUSES, "returned"])
    outcome = verify(settings, _contract(settings, "fct_orders"))
    assert (outcome.failed, outcome.errors) == (1, [])
    with pytest.raises(StageFailed, match="fct_orders: 1 failed"):
        run_checks(settings)


def test_an_order_with_a_quarantined_version_warns_and_does_not_fail(settings, gold_columns):
    _build_gold(settings, gold_columns, list(ORDER_STATUSES), quarantined=1)
    report = run_checks(settings)
    assert report.ok
    fct_orders = report.as_dict()["contracts"]["fct_orders"]
    assert (fct_orders["failed"], fct_orders["warned"]) == (0, 1)
    assert fct_orders["passed"] == fct_orders["checks"] - 1


def test_contract_variables_are_the_vocabulary_as_sql_lists():
    variables = contract_variables()
    expected = {
        "ORDER_STATUSES": ORDER_STATUSES,
        "EVENT_TYPES": tuple(t for types in EVENT_TYPES.values() for t in types),
        **{f"{stream.upper()}_EVENT_TYPES": types for stream, types in EVENT_TYPES.items()},
    }
    assert set(variables) == set(expected)
    with duckdb.connect() as con:
        for name, values in expected.items():
            assert tuple(con.execute(f"select unnest([{variables[name]}])").fetchall()) == tuple((v,) for v in values)


def test_contracts_take_vocabularies_only_from_the_check_stage(tmp_path):
    """Each variable a project contract uses is declared without a default and given by the stage, and
    no contract spells out a vocabulary value list of its own."""
    given = contract_variables()
    for path in contract_files(Settings(data_dir=tmp_path)):
        text = path.read_text()
        contract = yaml.safe_load(text)
        used = set(VARIABLE_REFERENCE.findall(text))
        declared = contract.get("variables") or {}
        assert used <= set(declared), f"{path.name}: undeclared variables {used - set(declared)}"
        assert used <= set(given), f"{path.name}: variables the check stage does not pass {used - set(given)}"
        assert all(not (spec or {}).get("default") for spec in declared.values()), (
            f"{path.name}: a default copies the list"
        )
        for column in contract.get("columns", []):
            for check in column.get("checks") or []:
                for spec in (check or {}).values():
                    values = set((spec or {}).get("valid_values") or []) | set((spec or {}).get("invalid_values") or [])
                    assert not values & VOCABULARY, f"{path.name}: {column['name']} lists {values & VOCABULARY}"


def test_check_refuses_a_gold_version_whose_audits_did_not_pass(settings, gold_columns):
    _build_gold(settings, gold_columns, list(ORDER_STATUSES))
    record_audits(settings, passed=False)
    with pytest.raises(StageFailed, match=r"has no passing audit record .*failed its blocking audits"):
        run_checks(settings)
    record_audits(settings, passed=True)
    with duckdb.connect(str(settings.warehouse)) as con:  # a write after the transform's record
        con.execute("update gold.fct_orders set customer_id = 'c2' where order_id = 'o0'")
    with pytest.raises(StageFailed, match=r"has no passing audit record .*gold changed since"):
        run_checks(settings)


def test_every_result_is_recorded_and_a_critical_failure_revokes_the_approval(settings, gold_columns):
    _build_gold(settings, gold_columns, list(ORDER_STATUSES), quarantined=1)
    passed = run_checks(settings, run_id="good")
    version = passed.gold_version
    assert [record.line() for record in passed.warnings] == [
        "gold.fct_orders: 'orders with a newer version in quarantine (bronze.dead_letter, not replayed)' "
        "measured 1 (must be 0)"
    ]
    with duckdb.connect(str(settings.warehouse)) as con:
        fetch = gold_version.duckdb_fetch(con)
        assert gold_version.is_approved(fetch, version)
        con.execute("update gold.fct_orders set status = 'returned' where order_id = 'o0'")
    record_audits(settings, passed=True)  # the audits do not see this one: only the contract does
    with pytest.raises(StageFailed) as failed:
        run_checks(settings, run_id="bad")
    assert "(fct_orders: 1 failed)" in str(failed.value)
    assert "gold.fct_orders.status: 'status is a known order status' measured 1 (must be 0)" in str(failed.value)
    with duckdb.connect(str(settings.warehouse)) as con:
        rows = con.execute(
            "select run_id, count(*), count(*) filter (outcome = 'pass'), "
            "list(severity || ' ' || outcome || ' ' || measured_value) filter (outcome <> 'pass') "
            "from millpond_meta.quality_history group by run_id order by run_id"
        ).fetchall()
        bad_version = con.execute("select distinct gold_version from millpond_meta.quality_history "
                                  "where run_id = 'bad'").fetchall()  # fmt: skip
        approved = con.execute("select gold_version, run_id from millpond_meta.publish_approvals").fetchall()
    checks = passed.outcomes[0].checks + passed.outcomes[1].checks
    assert rows == [
        ("bad", checks, checks - 2, ["critical fail 1.0", "warning warn 1.0"]),
        ("good", checks, checks - 1, ["warning warn 1.0"]),
    ]
    assert bad_version != [(version,)]
    assert approved == [(version, "good")]  # the failing version was never approved
