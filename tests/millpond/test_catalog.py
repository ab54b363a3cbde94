"""docs/catalog/ lists every table and column the models define, and `millpond catalog --check` fails when it drifts."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from millpond import catalog, classification
from millpond.settings import Settings
from millpond.stages.transform import sqlmesh_context
from tests.support.pipelines import pipeline_env

SALT = "catalog-test-salt-7f3a9c"  # a PII salt no page may show
# what SQLMesh loads from a project dir, and what the catalog reads besides the models
PROJECT_PARTS = ("config.yaml", "external_models.yaml", "models", "macros", "audits", "linter", "checks", "semantic")


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    ctx = sqlmesh_context(Settings(data_dir=tmp_path_factory.mktemp("catalog"), pii_salt=SALT))
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def pages(context: Any) -> dict[str, str]:
    return catalog.generate(context, Settings().project_dir)


def section(page: str, table: str) -> str:
    """The part of a layer page about ``table``: from its heading to the next one."""
    match = re.search(rf"^## {re.escape(table)}\n(.*?)(?=^## |\Z)", page, flags=re.M | re.S)
    assert match is not None, f"{table} has no section"
    return match.group(1)


def test_the_committed_catalog_matches_the_models(pages: dict[str, str], tmp_path: Path) -> None:
    committed = Settings().project_dir / catalog.DIR
    copy = tmp_path / "catalog"
    shutil.copytree(committed, copy)
    try:
        catalog.sync(copy, pages, check=True, shown_as="docs/catalog")
    except catalog.CatalogDrift as exc:
        pytest.fail(f"{exc}: docs/catalog/ is stale")


def test_every_column_of_every_model_is_catalogued_with_its_type_and_classification(
    context: Any, pages: dict[str, str]
) -> None:
    assert {"bronze", "silver", "gold"} <= {m.name.split(".")[0] for m in context.models.values()}
    for model in context.models.values():
        layer = model.name.split(".")[0]
        entry = section(pages[f"{layer}.md"], model.name)
        assert model.name in pages[catalog.INDEX]
        assert model.columns_to_types, f"{model.name} declares no columns"
        for column, dtype in model.columns_to_types.items():
            tag = classification.parse(model.column_descriptions.get(column))
            row = f"| `{column}` | {dtype.sql(dialect=model.dialect)} | {tag.classification} |"
            assert row in entry, f"{model.name}.{column}: no row starting {row!r}"
        assert f"| owner | {model.owner} |" in entry


def test_contracts_and_serving_readers_are_read_from_the_project(pages: dict[str, str]) -> None:
    gold = pages["gold.md"]
    assert "[checks/contracts/fct_orders.yml](../../checks/contracts/fct_orders.yml)" in section(
        gold, "gold.fct_orders"
    )
    revenue = section(gold, "gold.agg_daily_revenue")
    assert "Cube cube `daily_revenue`" in revenue
    assert "Superset dataset `agg_daily_revenue`" in revenue
    assert "restricted" in section(pages["bronze.md"], "bronze.mongo_customers")


def test_column_lineage_and_table_upstream_are_catalogued(pages: dict[str, str]) -> None:
    revenue = section(pages["gold.md"], "gold.agg_daily_revenue")
    assert "| upstream tables | [silver.int_order_totals](silver.md#silverint_order_totals) |" in revenue
    assert re.search(r"^\| `order_date` \|.*\| `silver\.int_order_totals\.order_date` \|$", revenue, flags=re.M)
    orders = section(pages["silver.md"], "silver.stg_orders")
    assert "[gold.fct_orders](gold.md#goldfct_orders)" in orders  # read by


def test_the_catalog_never_shows_the_pii_salt(pages: dict[str, str]) -> None:
    for name, text in pages.items():
        assert SALT not in text, name


def test_a_changed_column_description_fails_the_check_until_regenerated(tmp_path: Path) -> None:
    source = Settings().project_dir
    project = tmp_path / "project"
    project.mkdir()
    for part in PROJECT_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source / part, project / part)
    cfg = Settings(project_dir=project, data_dir=tmp_path / "data")
    assert catalog.write(cfg)["changed"] == ["README.md", "bronze.md", "gold.md", "silver.md"]
    model = project / "models" / "gold" / "fct_orders.sql"
    text, edits = re.subn(r"(\border_id = '(?:\[[a-z:_]+\] )?)", r"\1Renamed by the test: ", model.read_text(), count=1)
    assert edits == 1
    model.write_text(text)

    env = pipeline_env(cfg) | {"MILLPOND_PROJECT_DIR": str(project)}
    checked = subprocess.run(
        [sys.executable, "-m", "millpond", "catalog", "--check"], env=env, capture_output=True, text=True, check=False
    )
    assert checked.returncode != 0
    errors = [line for line in checked.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: [catalog] docs/catalog/gold.md does not match the models "
        "(hint: run `millpond catalog` and commit docs/catalog/)"
    ], checked.stderr
    gold = project / catalog.DIR / "gold.md"
    assert "Renamed by the test" not in gold.read_text()  # --check writes nothing

    assert catalog.write(cfg)["changed"] == ["gold.md"]
    assert re.search(r"^\| `order_id` \|.*\| Renamed by the test: ", section(gold.read_text(), "gold.fct_orders"), re.M)
