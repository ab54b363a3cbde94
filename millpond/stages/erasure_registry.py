"""The erasure registry and audit trail: ``millpond_meta.erasure_requests`` in the warehouse.

One row per erased customer: ``request_id`` (random), ``customer_hash`` (salted hash, never the
id), ``surrogate`` (the key their facts keep), who asked and why, when it was asked and when it
was completed (NULL while a request is half done), and ``affected``: JSON ``{target: {table:
{"deleted": n, "anonymised": n}}}``, accumulated step by step so a resumed request adds to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from millpond.stages.erasure_keys import new_request_id, surrogate_for

META_SCHEMA = "millpond_meta"
REQUESTS = f"{META_SCHEMA}.erasure_requests"
REAPPLIED = f"{META_SCHEMA}.erasure_reapplied"  # the newest load whose rows the re-apply step has checked
_DDL = (
    f"create table if not exists {REQUESTS} (request_id varchar primary key, customer_hash varchar not null unique, "
    "surrogate varchar not null, requested_by varchar not null, reason varchar, requested_at timestamptz not null, "
    "completed_at timestamptz, affected varchar not null)"
)
_REAPPLIED_DDL = f"create table if not exists {REAPPLIED} (load_id varchar, checked_at timestamptz)"


@dataclass
class ErasureRequest:
    request_id: str
    customer_hash: str
    surrogate: str
    requested_by: str
    reason: str | None
    requested_at: datetime
    completed_at: datetime | None
    affected: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "surrogate": self.surrogate,
            "requested_by": self.requested_by,
            "reason": self.reason,
            "requested_at": self.requested_at.isoformat(),
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "affected": self.affected,
        }


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {META_SCHEMA}")
    con.execute(_DDL)
    con.execute(_REAPPLIED_DDL)


def exists(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = 'erasure_requests'",
        [META_SCHEMA],
    ).fetchone()
    return bool(row and row[0])


_COLUMNS = "request_id, customer_hash, surrogate, requested_by, reason, requested_at, completed_at, affected"


def _request(row: tuple[Any, ...]) -> ErasureRequest:
    request_id, key, surrogate, requested_by, reason, requested_at, completed_at, affected = row
    return ErasureRequest(
        request_id, key, surrogate, requested_by, reason, requested_at, completed_at, json.loads(affected)
    )


def find(con: duckdb.DuckDBPyConnection, customer_hash: str) -> ErasureRequest | None:
    row = con.execute(f"select {_COLUMNS} from {REQUESTS} where customer_hash = ?", [customer_hash]).fetchone()
    return _request(row) if row else None


def registered(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Customer hash -> surrogate of every registered request (done or not)."""
    if not exists(con):
        return {}
    return {str(h): str(s) for h, s in con.execute(f"select customer_hash, surrogate from {REQUESTS}").fetchall()}


def open_request(
    con: duckdb.DuckDBPyConnection, customer_hash: str, requested_by: str, reason: str | None
) -> ErasureRequest:
    """Register the request (before anything is scrubbed, so a kill leaves it registered) and return it."""
    request_id = new_request_id()
    request = ErasureRequest(
        request_id, customer_hash, surrogate_for(request_id), requested_by, reason, datetime.now(UTC), None
    )
    con.execute(
        f"insert into {REQUESTS} values (?, ?, ?, ?, ?, ?, null, '{{}}')",
        [request_id, customer_hash, request.surrogate, requested_by, reason, request.requested_at],
    )
    return request


def add_affected(
    con: duckdb.DuckDBPyConnection, request: ErasureRequest, target: str, counts: dict[str, dict[str, int]]
) -> None:
    """Add one step's counts to the request's ``affected`` (only tables where something changed)."""
    changed = {table: c for table, c in counts.items() if any(c.values())}
    if not changed:
        return
    into = request.affected.setdefault(target, {})
    for table, c in changed.items():
        slot = into.setdefault(table, {})
        for kind, n in c.items():
            slot[kind] = slot.get(kind, 0) + n
    con.execute(
        f"update {REQUESTS} set affected = ? where request_id = ?",
        [json.dumps(request.affected, sort_keys=True), request.request_id],
    )


def complete(con: duckdb.DuckDBPyConnection, request: ErasureRequest) -> None:
    request.completed_at = datetime.now(UTC)
    con.execute(
        f"update {REQUESTS} set completed_at = ? where request_id = ?", [request.completed_at, request.request_id]
    )


def reapplied_mark(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute(f"select load_id from {REAPPLIED} limit 1").fetchone()
    return str(row[0]) if row and row[0] is not None else None


def save_reapplied_mark(con: duckdb.DuckDBPyConnection, load_id: str) -> None:
    con.execute(f"delete from {REAPPLIED}")
    con.execute(f"insert into {REAPPLIED} values (?, current_timestamp)", [load_id])
