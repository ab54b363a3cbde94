"""The Soda contracts of checks/contracts on a warehouse built by the real pipeline.

One module-scoped build (generate -> ingest -> transform, twice: yesterday, then today with late
events, poison and deletes). Every contract must pass on it; then each kind of check is shown to
fail on a copy of that warehouse with one corruption, with the value Soda measured.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pymongo
import pytest
import yaml
from soda_core.contracts import verify_contract_locally
from sqlmesh import Context

from millpond.envutil import scoped_env
from millpond.generator import GeneratorConfig, generate
from millpond.services import KafkaBroker, MongoReplicaSet
from millpond.settings import Settings
from millpond.stages.check import contract_files, contract_variables
from millpond.stages.ingest import run_ingest
from millpond.stages.transform import run_transform
from tests.support.pipelines import isolated_settings

pytestmark = pytest.mark.slow
SHOP = GeneratorConfig(
    customers=40, products=12, orders_per_day=20, sessions_per_day=8, days=4,
    late_rate=0.3, mongo_poison_rate=0.05, delete_rate=0.05,
)  # fmt: skip
VIEW_TARGET = re.compile(r"FROM\s+(?:\"?\w+\"?\.)?\"?(sqlmesh__\w+)\"?\.\"?(\w+)\"?", re.IGNORECASE)


@dataclass(frozen=True)
class Result:
    """One check's outcome, as Soda reported it."""

    column: str | None
    type: str
    qualifier: str | None
    name: str | None
    outcome: str
    value: Any
    level: str


def verify(warehouse: Path, contract: Path) -> tuple[list[Result], list[str]]:
    """Verify one contract on ``warehouse`` with the check stage's variables: its results and errors."""
    with scoped_env({"MILLPOND_WAREHOUSE_PATH": str(warehouse), "SODA_CORE_TELEMETRY_ENABLED": "false"}):
        session = verify_contract_locally(
            data_source_file_path=str(contract.parent.parent / "datasource.yml"),
            contract_file_path=str(contract),
            variables=contract_variables(),
        )
    results = [
        Result(
            column=r.check.column_name,
            type=r.check.type,
            qualifier=r.check.qualifier,
            name=r.check.name,
            outcome=r.outcome.name,
            value=r.threshold_value,
            level=str(getattr(r.check.threshold, "level", None) or "fail").lower(),
        )
        for contract_result in session.results
        for r in contract_result.check_results
    ]
    return results, list(session.get_errors())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, mongo: MongoReplicaSet, kafka: KafkaBroker) -> Settings:
    cfg = isolated_settings(tmp_path_factory.mktemp("contracts") / "data", mongo, kafka, "contracts")
    today = datetime.now(UTC).date()
    client: pymongo.MongoClient[dict[str, Any]]
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        for day in (today - timedelta(days=1), today):
            generate(SHOP, day, client[cfg.mongo_db], cfg.kafka_bootstrap, cfg.topics.as_dict())
            run_ingest(cfg)
            run_transform(cfg)
    return cfg


@pytest.fixture(scope="module")
def baseline(built: Settings) -> dict[str, tuple[list[Result], list[str]]]:
    return {path.stem: verify(built.warehouse, path) for path in contract_files(built)}


@pytest.fixture
def copy(built: Settings, tmp_path: Path) -> Iterator[Path]:
    """A copy of the built warehouse, same file name (its stem is the catalog the gold views name)."""
    target = tmp_path / built.warehouse.name
    shutil.copy(built.warehouse, target)
    yield target


def contract_datasets(cfg: Settings) -> dict[str, Path]:
    """``schema.table`` -> contract file, from each contract's ``dataset``."""
    datasets = {}
    for path in contract_files(cfg):
        _source, schema, table = yaml.safe_load(path.read_text())["dataset"].split("/")
        datasets[f"{schema}.{table}"] = path
    return datasets


@pytest.fixture(scope="module")
def model_columns(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """``schema.table`` -> column names of every landed table (external_models.yaml) and gold model."""
    cfg = Settings(data_dir=tmp_path_factory.mktemp("sqlmesh"))
    landed = yaml.safe_load((cfg.project_dir / "external_models.yaml").read_text())
    columns = {model["name"]: list(model["columns"]) for model in landed}
    with scoped_env(cfg.sqlmesh_env()):
        context = Context(paths=cfg.project_dir)
        for model in context.models.values():
            schema, table = model.fully_qualified_table.db, model.fully_qualified_table.name
            if schema == "gold":
                assert model.columns_to_types, f"SQLMesh cannot infer the columns of {model.name}"
                columns[f"gold.{table}"] = list(model.columns_to_types)
    return columns


def test_every_landed_and_gold_relation_has_a_contract_with_its_columns(model_columns):
    cfg = Settings()
    datasets = contract_datasets(cfg)
    assert len([t for t in model_columns if t.startswith("gold.")]) == len(
        list((cfg.project_dir / "models" / "gold").iterdir())
    )
    assert set(datasets) == set(model_columns)
    for table, path in datasets.items():
        declared = [column["name"] for column in yaml.safe_load(path.read_text())["columns"]]
        assert declared == model_columns[table], f"{path.name}: columns differ from {table}"


def test_every_contract_passes_on_a_real_pipeline_run(baseline):
    for contract, (results, errors) in baseline.items():
        assert errors == [], f"{contract}: {errors}"
        assert results, contract
        blocking = [r for r in results if r.level == "fail" and r.outcome != "PASSED"]
        assert blocking == [], f"{contract}: {blocking}"
        assert all(r.outcome in {"PASSED", "WARN"} for r in results), contract
    # the shop's faults are real, so the warn-level checks describing them do measure something
    warned = {(c, r.qualifier) for c, (results, _) in baseline.items() for r in results if r.outcome == "WARN"}
    assert ("bronze_dead_letter", "not_replayed") in warned


def test_every_warning_level_check_says_why_beside_it():
    for path in contract_files(Settings()):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines):
            if line.strip() == "level: warn":
                above = lines[max(0, number - 20) : number]
                assert any(text.lstrip().startswith("# warn:") for text in above), (
                    f"{path.name}:{number + 1}: a warn-level check without its reason beside it"
                )


def physical(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    """The SQLMesh table behind a gold view (the virtual layer), as ``schema.table``."""
    schema, name = relation.split(".")
    row = con.execute(
        "select sql from duckdb_views() where schema_name = ? and view_name = ?", [schema, name]
    ).fetchone()
    if row is None:
        return relation
    match = VIEW_TARGET.search(row[0])
    assert match, row[0]
    return f'{match[1]}."{match[2]}"'


def corrupt(warehouse: Path, statement: str) -> None:
    """Run one statement on the warehouse; ``{gold.x}`` names the physical table of a gold view."""
    with duckdb.connect(str(warehouse)) as con:
        sql = re.sub(r"\{(gold\.\w+)\}", lambda m: physical(con, m[1]), statement)
        changed = con.execute(sql).fetchall()
        assert changed and changed[0][0] > 0, f"the corruption changed nothing: {sql}"


FIRST_DAY = "(select min(order_date) from {gold.agg_daily_revenue})"
# (contract, corruption, the check that must fail: (column, type, qualifier), measured value)
CORRUPTIONS = {
    "negative revenue": (
        "agg_daily_revenue",
        f"update {{gold.agg_daily_revenue}} set revenue = -1 where order_date = {FIRST_DAY}",
        ("revenue", "invalid", None),
        1,
    ),
    "daily revenue differs from the orders": (
        "agg_daily_revenue",
        f"update {{gold.agg_daily_revenue}} set revenue = revenue + 1 where order_date = {FIRST_DAY}",
        (None, "failed_rows", "reconciles_with_fct_orders"),
        1,
    ),
    "dangling order key": (
        "fct_order_items",
        "update {gold.fct_order_items} set order_id = 'no-such-order'"
        " where (order_id, line_no) in (select order_id, line_no from {gold.fct_order_items} order by all limit 1)",
        (None, "failed_rows", "order_in_fct_orders"),
        1,
    ),
    "duplicate grain": (
        "fct_orders",
        "insert into {gold.fct_orders} select * from {gold.fct_orders} order by order_id limit 1",
        ("order_id", "duplicate", None),
        1,
    ),
    "an order lost against bronze": (
        "fct_orders",
        "delete from {gold.fct_orders} where order_id = (select max(order_id) from {gold.fct_orders})",
        (None, "metric", "reconciles_with_bronze"),
        -1,
    ),
    "a current dimension version lost": (
        "dim_customers",
        "delete from {gold.dim_customers}"
        " where customer_id = (select max(customer_id) from {gold.dim_customers}) and valid_to is null",
        (None, "metric", "reconciles_with_bronze"),
        -1,
    ),
    "a funnel step grows": (
        "agg_daily_funnel",
        "update {gold.agg_daily_funnel} set order_sessions = checkout_sessions + 1"
        " where (funnel_date, channel, visitor_type) in"
        " (select funnel_date, channel, visitor_type from {gold.agg_daily_funnel} order by all limit 1)",
        (None, "failed_rows", "never_grows"),
        1,
    ),
    "a landed Kafka position twice": (
        "bronze_kafka_payments",
        "insert into bronze.kafka_payments select * from bronze.kafka_payments order by all limit 1",
        (None, "duplicate", "position"),
        1,
    ),
    "an unknown landed order status": (
        "bronze_mongo_orders",
        "update bronze.mongo_orders set status = 'returned'"
        " where _id = (select max(_id) from bronze.mongo_orders where _deleted_at is null)",
        ("status", "failed_rows", "known_status"),
        1,
    ),
    "line items of an order that is gone": (
        "bronze_mongo_orders__line_items",
        "delete from bronze.mongo_orders where _dlt_id ="
        " (select max(_dlt_root_id) from bronze.mongo_orders__line_items)",
        (None, "failed_rows", "orphans"),
        None,
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS), ids=list(CORRUPTIONS))
def test_each_kind_of_check_fails_on_corrupted_data(built: Settings, baseline, copy: Path, case: str):
    contract, statement, (column, kind, qualifier), value = CORRUPTIONS[case]
    before = {(r.column, r.type, r.qualifier): r for r in baseline[contract][0]}
    assert before[(column, kind, qualifier)].outcome == "PASSED"
    corrupt(copy, statement)
    results, errors = verify(copy, contract_files(built)[0].parent / f"{contract}.yml")
    assert errors == []
    check = next(r for r in results if (r.column, r.type, r.qualifier) == (column, kind, qualifier))
    assert check.outcome == "FAILED", check
    assert check.level == "fail"  # critical: it stops the publish
    if value is None:
        assert check.value and check.value > 0, check
    else:
        assert check.value == value, check


def test_a_stale_table_warns_with_its_age_and_does_not_block(built: Settings, baseline, copy: Path):
    before = next(r for r in baseline["fct_payments"][0] if r.type == "freshness")
    assert before.outcome == "PASSED"
    corrupt(copy, "update {gold.fct_payments} set payment_ts = payment_ts - interval 10 days")
    results, errors = verify(copy, contract_files(built)[0].parent / "fct_payments.yml")
    assert errors == []
    freshness = next(r for r in results if r.type == "freshness")
    assert (freshness.outcome, freshness.level) == ("WARN", "warn")
    assert freshness.value > 10 * 24 > before.value  # hours since the newest payment, past the SLA of 48
