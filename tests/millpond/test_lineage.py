"""docs/lineage.md carries the column lineage SQLMesh derives from the models, and fails when it drifts."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from millpond import lineage
from millpond.settings import Settings
from millpond.stages.transform import sqlmesh_context


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    ctx = sqlmesh_context(Settings(data_dir=tmp_path_factory.mktemp("lineage")))
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def generated(context: Any) -> str:
    return lineage.generate(context)


def test_the_committed_lineage_matches_the_models(generated: str, tmp_path: Path) -> None:
    committed = lineage.doc_path(Settings())
    copy = tmp_path / "lineage.md"
    shutil.copy(committed, copy)
    try:
        lineage.sync(copy, generated, check=True)
    except lineage.LineageDrift as exc:
        pytest.fail(f"{exc}: docs/lineage.md is stale")


def test_a_stale_document_is_drift_and_regenerating_fixes_it(generated: str, tmp_path: Path) -> None:
    doc = tmp_path / "lineage.md"
    doc.write_text(
        "# Lineage\n\nProse.\n\n" + generated.replace("| order_date |", "| order_day |", 1) + "\nMore prose.\n"
    )
    with pytest.raises(lineage.LineageDrift):
        lineage.sync(doc, generated, check=True)
    assert lineage.sync(doc, generated) is True
    assert doc.read_text() == "# Lineage\n\nProse.\n\n" + generated + "\nMore prose.\n"  # the prose is kept
    assert lineage.sync(doc, generated, check=True) is False


def test_gold_columns_are_traced_to_their_bronze_columns(context: Any) -> None:
    trace = lineage.Lineage(context)
    revenue = context.get_model("gold.agg_daily_revenue")
    assert "bronze.mongo_orders.created_at" in trace.bronze(revenue, "order_date")
    assert "bronze.mongo_orders__line_items.unit_price" in trace.bronze(revenue, "revenue")
    parents = trace.parents(revenue, "order_date")
    assert {trace.name(p) for p in parents} == {"silver.int_order_totals"}
