"""Every model renders for the distributed warehouses a gateway may point at, through SQLMesh's own rendering.

Each SQL model is rendered by SQLMesh (``Context.render``: macros expanded, ``select *`` expanded
from the upstream schemas, for one daily interval) in its own dialect, then generated in each
target dialect with sqlglot's unsupported-feature check raising, and the result is parsed back
in that dialect. A construct the target cannot express fails here, named by model, and so does
a function sqlglot does not know (it would be passed through untranslated: a DuckDB-only name).
Python models are not SQL: they run wherever SQLMesh fetches a dataframe.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

from millpond.envutil import scoped_env
from millpond.settings import Settings

DIALECTS = ("snowflake", "bigquery", "databricks", "spark")
START, END, EXECUTION_TIME = "2026-03-01", "2026-03-01", "2026-03-02"


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sqlmesh import Context

    cfg = Settings(data_dir=tmp_path_factory.mktemp("dialects"))
    cfg.warehouse.parent.mkdir(parents=True)  # SQLMesh opens its (empty) state file to build the snapshots
    with scoped_env(cfg.sqlmesh_env()):
        ctx = Context(paths=[str(cfg.project_dir)])
    yield ctx
    ctx.close()


def sql_models(ctx: Any) -> list[Any]:
    return sorted((m for m in ctx.models.values() if m.is_sql and not m.kind.is_external), key=lambda m: m.name)


def render_failures(ctx: Any, dialect: str) -> list[str]:
    """``model: error`` for every SQL model that does not render, generate and parse back in ``dialect``."""
    failures = []
    for model in sql_models(ctx):
        try:
            query = ctx.render(model, start=START, end=END, execution_time=EXECUTION_TIME)
            unknown = sorted({f.name for f in query.find_all(exp.Anonymous)})
            if unknown:
                failures.append(f"{model.name}: functions without a translation: {', '.join(unknown)}")
                continue
            text = query.sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
            sqlglot.parse_one(text, read=dialect)
        except Exception as exc:
            failures.append(f"{model.name}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    return failures


def test_the_project_has_sql_models_to_render(context: Any) -> None:
    names = {m.name for m in sql_models(context)}
    assert {"gold.agg_daily_revenue", "gold.fct_orders"} <= names
    assert len(names) >= 10


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_model_renders_for(context: Any, dialect: str) -> None:
    failures = render_failures(context, dialect)
    assert not failures, f"{len(failures)} model(s) do not render for {dialect}:\n" + "\n".join(failures)


def test_a_construct_the_target_cannot_express_fails_the_check() -> None:
    """The check can fail: BigQuery has no NULLS LAST in a window's ORDER BY; sqlglot refuses it, not drops it."""
    query = sqlglot.parse_one("select sum(a) over (order by b nulls last) as s from t", read="duckdb")
    with pytest.raises(sqlglot.errors.UnsupportedError):
        query.sql(dialect="bigquery", unsupported_level=ErrorLevel.RAISE)
    assert list(sqlglot.parse_one("select my_duckdb_only_function(xs) from t", read="duckdb").find_all(exp.Anonymous))
