"""The change-review workflow on a copy of the project: a non-breaking change to a gold model is planned
into dev (only that model is backfilled, through today), then promoted to prod without recomputation."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from sqlglot import exp
from sqlmesh.core.dialect import format_model_expressions, parse

from millpond.settings import Settings
from millpond.stages.change_review import plan_environment
from millpond.stages.transform import run_transform
from tests.support.bronze_rows import history

CHANGED = "gold.agg_daily_revenue"  # a gold table serving reads; adding a column is non-breaking
PROJECT_FILES = ["config.yaml", "external_models.yaml", "models", "macros", "audits", "linter"]


def _copy_project(settings: Settings, into: Path) -> Path:
    into.mkdir()
    for name in PROJECT_FILES:
        source = settings.project_dir / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, into / name)
    return into


def _add_column(model_file: Path) -> None:
    """Append ``1 AS reviewed`` to the model's final SELECT (what a data engineer's change would be)."""
    expressions = parse(model_file.read_text(), default_dialect="duckdb")
    query = expressions[-1]
    assert isinstance(query, exp.Query)
    expressions[-1] = query.select(exp.alias_(exp.Literal.number(1), "reviewed"), copy=True)
    model_file.write_text(format_model_expressions(expressions, dialect="duckdb") + "\n")


def test_a_non_breaking_gold_change_is_reviewed_in_dev_and_promoted_by_a_view_swap(tmp_path: Path):
    today = datetime.now(UTC).date()
    first = today - timedelta(days=3)
    project = _copy_project(Settings(), tmp_path / "project")
    cfg = Settings(data_dir=tmp_path / "data", project_dir=project, start_date=first - timedelta(days=1))
    history(cfg, first, 4).close()  # through today
    run_transform(cfg, today=today)

    _add_column(project / "models" / "gold" / f"{CHANGED.split('.')[1]}.sql")
    dev = plan_environment(cfg, "dev", today=today, skip_tests=True)
    assert dev.directly_modified == {CHANGED: "NON_BREAKING"}
    assert set(dev.backfilled) == {CHANGED}  # nothing upstream or beside it is rebuilt
    assert {model for model, _, _ in dev.batches} == {CHANGED}
    # built through today: the dev view shows today's revenue with the new column
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        assert con.execute(
            f"select max(order_date), min(reviewed) from {CHANGED.replace('.', '__dev.')}"
        ).fetchone() == (
            today,
            1,
        )
        prod_before = con.execute(f"select * from {CHANGED} order by 1").fetchall()

    prod = plan_environment(cfg, "prod", today=today, skip_tests=True)
    assert prod.directly_modified == {CHANGED: "NON_BREAKING"}
    assert prod.new_snapshots == []  # the snapshots dev built are promoted as they are
    assert prod.backfilled == {} and prod.batches == []  # a virtual-layer swap: nothing is recomputed
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        prod_after = con.execute(f"select * from {CHANGED} order by 1").fetchall()
        dev_rows = con.execute(f"select * from {CHANGED.replace('.', '__dev.')} order by 1").fetchall()
    assert prod_after == dev_rows
    assert [row[:-1] for row in prod_after] == prod_before  # the same figures, plus the new column
