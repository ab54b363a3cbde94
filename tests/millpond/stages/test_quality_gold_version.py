"""The gold version: a content fingerprint that changes with any value and with nothing else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from millpond.stages import gold_version, quality

ROWS = [(1, "a", 10.5), (2, "b", None), (3, "c", 0.0)]


def _warehouse(path: Path, rows: list[tuple] = ROWS, column_type: str = "double") -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema gold; create schema millpond_meta")
        con.execute(f"create table gold.facts (id integer, name varchar, amount {column_type})")
        con.executemany("insert into gold.facts values (?, ?, ?)", rows)
        con.execute("create view gold.big_facts as select * from gold.facts where amount > 1")
        con.execute("create table millpond_meta.notes as select 1 as n")
    return path


def _version(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        return gold_version.fingerprint(gold_version.duckdb_fetch(con))


@pytest.fixture
def reference(tmp_path: Path) -> str:
    return _version(_warehouse(tmp_path / "reference.duckdb"))


def test_the_same_content_has_the_same_version_whatever_the_row_order_or_file(tmp_path: Path, reference: str):
    assert len(reference) == 64
    assert _version(_warehouse(tmp_path / "shuffled.duckdb", ROWS[::-1])) == reference
    with duckdb.connect(str(tmp_path / "reference.duckdb")) as con:  # outside gold: not part of the version
        con.execute("insert into millpond_meta.notes values (2)")
    assert _version(tmp_path / "reference.duckdb") == reference


@pytest.mark.parametrize(
    "change",
    [
        "update gold.facts set name = 'B' where id = 2",
        "update gold.facts set amount = null where id = 3",
        "insert into gold.facts values (1, 'a', 10.5)",  # a duplicated row counts
        "delete from gold.facts where id = 3",
        "create table gold.more as select 1 as x",
        "alter table gold.facts rename column name to label",
        "alter table gold.facts alter amount type decimal(18, 2)",
        "create or replace view gold.big_facts as select * from gold.facts where amount >= 0",
    ],
)
def test_any_change_of_gold_changes_the_version(tmp_path: Path, reference: str, change: str):
    path = _warehouse(tmp_path / "changed.duckdb")
    with duckdb.connect(str(path)) as con:
        con.execute(change)
    assert _version(path) != reference


def test_approvals_are_for_exactly_one_version(tmp_path: Path, reference: str):
    from datetime import UTC, datetime

    path = tmp_path / "reference.duckdb"
    with duckdb.connect(str(path)) as con:
        fetch = gold_version.duckdb_fetch(con)
        assert not gold_version.is_approved(fetch, reference)
        gold_version.approve(con, reference, "r1", datetime.now(UTC))
        assert gold_version.is_approved(fetch, reference)
        assert not gold_version.is_approved(fetch, "0" * 64)
        gold_version.revoke(con, reference)
        assert not gold_version.is_approved(fetch, reference)


def test_saving_no_results_creates_the_history_and_records_nothing(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        quality.save(con, [], run_id="r1", checked_at=datetime.now(UTC), version="v1")
        assert con.execute(f"select count(*) from {quality.QUALITY_HISTORY}").fetchone() == (0,)
