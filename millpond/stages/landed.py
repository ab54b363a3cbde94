"""The landed layer (``bronze``): the tables ``external_models.yaml`` declares, and lookups of what exists.

Only the ingest stage writes the landed layer: at the end of every run it creates, empty, the
declared tables and columns that dlt has not made yet (:func:`ensure_landed_tables`), so later
stages and commands can rely on every declared table and column being there once one ingest ran.
"""

from __future__ import annotations

import duckdb
import yaml

from millpond import logs
from millpond.settings import Settings

log = logs.get(__name__)
DATASET = "bronze"


def landed_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables in the landed dataset."""
    rows = con.execute("select table_name from information_schema.tables where table_schema = ?", [DATASET]).fetchall()
    return {r[0] for r in rows}


def declared_landed_tables(settings: Settings) -> dict[str, dict[str, str]]:
    """Table -> column types of every landed table that ``external_models.yaml`` declares."""
    declared = yaml.safe_load((settings.project_dir / "external_models.yaml").read_text())
    out = {}
    for model in declared:
        schema, table = model["name"].split(".")
        if schema == DATASET:
            out[table] = model["columns"]
    return out


def missing_landed_tables(settings: Settings) -> list[str]:
    """The declared landed tables that are not in the warehouse (all of them when there is no warehouse)."""
    declared = declared_landed_tables(settings)
    if not settings.warehouse.exists():
        return list(declared)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        existing = landed_tables(con)
    return [table for table in declared if table not in existing]


def ensure_landed_tables(settings: Settings) -> list[str]:
    """Create every declared landed table dlt has not made yet, and add declared columns a table lacks.

    dlt creates a table only once data arrives for it (a topic may still be empty), and a column
    only once a row carries it (a warehouse landed before a column was declared), while a SQLMesh
    plan needs every declared table and column to exist. dlt adopts a pre-created table and
    column and adds any it lacks itself. Returns ``table`` for each table created and
    ``table.column`` for each column added.
    """
    changed: list[str] = []
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute(f"create schema if not exists {DATASET}")
        existing = landed_tables(con)
        for table, columns in declared_landed_tables(settings).items():
            if table not in existing:
                column_list = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
                con.execute(f'create table {DATASET}."{table}" ({column_list})')
                changed.append(table)
                continue
            present = {
                row[0]
                for row in con.execute(
                    "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
                    [DATASET, table],
                ).fetchall()
            }
            for name, kind in columns.items():
                if name not in present:
                    con.execute(f'alter table {DATASET}."{table}" add column "{name}" {kind}')
                    changed.append(f"{table}.{name}")
    if changed:
        log.warning("ingest.created_declared_landed_objects", created=changed)
    return changed


def collapse_dead_letter_copies(settings: Settings) -> int:
    """Keep one row per ``dead_letter_id`` in the dead-letter table: the first seen; returns the copies removed.

    The table merges insert-only (a re-delivered record must keep its ``first_seen_at``), and
    dlt's insert-only MERGE does not deduplicate its staging table: a load job that ran twice
    (the process killed after the job, before dlt recorded it) inserts its rows twice. Every
    ingest run ends by collapsing such copies, so a crash at any point converges on the next run.
    """
    if not settings.warehouse.exists():
        return 0
    with duckdb.connect(str(settings.warehouse)) as con:
        if "dead_letter" not in landed_tables(con):
            return 0
        row = con.execute(
            f"""
            delete from {DATASET}.dead_letter where rowid in (
              select rowid from {DATASET}.dead_letter
              qualify row_number() over (
                partition by dead_letter_id order by first_seen_at nulls last, received_at nulls last, rowid
              ) > 1
            )
            """
        ).fetchone()
    removed = int(row[0]) if row else 0
    if removed:
        log.warning("ingest.dead_letter_copies_removed", copies=removed)
    return removed
