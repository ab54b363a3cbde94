"""The gold version: a content fingerprint of every gold relation, and the gate's records about it.

Write-audit-publish keys everything on this one value (docs/governance/write-audit-publish.md):

* ``transform`` records, per run, the gold version it left and whether its blocking SQLMesh audits
  passed (``millpond_meta.gold_audits``);
* ``check`` runs the Soda contracts only on a version whose audits passed, and approves the version
  when no critical check failed (``millpond_meta.publish_approvals``);
* ``publish`` copies gold only when the version it is about to copy is approved.

The fingerprint is SHA-256 over, for every relation of the ``gold`` schema sorted by name: its name,
its column names and types in order, its row count and the sum of DuckDB's ``hash`` of every row, an
order-independent digest of the rows (a multiset: a duplicated row counts twice). One scan per
relation. ``hash`` is DuckDB's, so the gate works on a DuckDB warehouse only, as publish does; a
DuckDB upgrade that changes ``hash`` changes every version, and the next ``transform`` records it.

The functions take ``fetch``: a callable that runs one SQL statement and returns its rows (a DuckDB
connection's ``execute(...).fetchall()``, or a SQLMesh engine adapter's ``fetchall``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

GOLD_SCHEMA = "gold"
META_SCHEMA = "millpond_meta"
GOLD_AUDITS = f"{META_SCHEMA}.gold_audits"
APPROVALS = f"{META_SCHEMA}.publish_approvals"
GOLD_AUDITS_DDL = (
    f"create table if not exists {GOLD_AUDITS} "
    "(recorded_at timestamptz, run_id varchar, gold_version varchar, audits_passed boolean)"
)
APPROVALS_DDL = (
    f"create table if not exists {APPROVALS} (gold_version varchar, run_id varchar, approved_at timestamptz)"
)

Fetch = Callable[[str], Sequence[tuple[Any, ...]]]


def duckdb_fetch(con: duckdb.DuckDBPyConnection) -> Fetch:
    return lambda sql: con.execute(sql).fetchall()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def gold_relations(fetch: Fetch) -> list[str]:
    """``gold.name`` of every table and view of the gold schema of the current database, sorted."""
    rows = fetch(
        "select table_name from information_schema.tables "
        f"where table_catalog = current_database() and table_schema = {_string(GOLD_SCHEMA)} order by table_name"
    )
    return [f"{GOLD_SCHEMA}.{row[0]}" for row in rows]


def fingerprint(fetch: Fetch, relations: Sequence[str] | None = None) -> str:
    """The gold version of ``relations`` (default: every gold relation) as 64 hex digits."""
    relations = sorted(gold_relations(fetch) if relations is None else relations)
    digest = hashlib.sha256()
    for relation in relations:
        schema, name = relation.split(".", 1)
        columns = fetch(
            "select column_name, data_type from information_schema.columns "
            f"where table_catalog = current_database() and table_schema = {_string(schema)} "
            f"and table_name = {_string(name)} order by ordinal_position"
        )
        count, row_hash = fetch(f"select count(*), coalesce(sum(hash(t)), 0) from {_quote(schema)}.{_quote(name)} t")[0]
        entry = {"relation": relation, "columns": [list(c) for c in columns], "rows": int(count), "hash": str(row_hash)}
        digest.update(json.dumps(entry, sort_keys=True).encode() + b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """What the latest transform run recorded: the gold version it left, and whether its blocking audits passed."""

    gold_version: str | None
    audits_passed: bool
    recorded_at: datetime | None
    run_id: str | None


def table_exists(fetch: Fetch, table: str) -> bool:
    schema, name = table.split(".", 1)
    rows = fetch(
        "select count(*) from information_schema.tables where table_catalog = current_database() "
        f"and table_schema = {_string(schema)} and table_name = {_string(name)}"
    )
    return bool(rows and rows[0][0])


def latest_audit(fetch: Fetch) -> AuditRecord | None:
    """The record of the latest transform run, or None when no run recorded one."""
    if not table_exists(fetch, GOLD_AUDITS):
        return None
    rows = fetch(
        f"select gold_version, audits_passed, recorded_at, run_id from {GOLD_AUDITS} order by recorded_at desc limit 1"
    )
    if not rows:
        return None
    version, passed, recorded_at, run_id = rows[0]
    return AuditRecord(version, bool(passed), recorded_at, run_id)


def is_approved(fetch: Fetch, version: str) -> bool:
    """True when ``check`` approved exactly ``version`` for publishing (and no later failure revoked it)."""
    if not table_exists(fetch, APPROVALS):
        return False
    rows = fetch(f"select count(*) from {APPROVALS} where gold_version = {_string(version)}")
    return bool(rows and rows[0][0])


def approve(con: duckdb.DuckDBPyConnection, version: str, run_id: str, at: datetime) -> None:
    con.execute(f"create schema if not exists {META_SCHEMA}")
    con.execute(APPROVALS_DDL)
    con.execute(f"insert into {APPROVALS} values (?, ?, ?)", [version, run_id, at])


def revoke_sql(version: str) -> str:
    """The statement that withdraws every approval of ``version`` (a later audit or check failed on it)."""
    return f"delete from {APPROVALS} where gold_version = {_string(version)}"


def revoke(con: duckdb.DuckDBPyConnection, version: str) -> None:
    if table_exists(duckdb_fetch(con), APPROVALS):
        con.execute(revoke_sql(version))
