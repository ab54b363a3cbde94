"""Serving target: a PostgreSQL database (what Cube and other network clients read).

A publish builds every relation in a staging schema and swaps it for the live one inside a
single transaction, so readers see the whole previous publication or the whole new one:

    BEGIN
      DROP SCHEMA IF EXISTS gold__incoming CASCADE;  CREATE SCHEMA gold__incoming
      CREATE TABLE gold__incoming.<t> (...);  COPY gold__incoming.<t> FROM STDIN   -- every relation
      ALTER SCHEMA gold RENAME TO gold__previous;  ALTER SCHEMA gold__incoming RENAME TO gold
      DROP SCHEMA gold__previous CASCADE
      GRANT USAGE ON SCHEMA gold, SELECT ON ALL TABLES IN SCHEMA gold TO <reader role>
      meta.publication: this run's relations, row counts and gold version
    COMMIT

PostgreSQL's DDL is transactional: a crash or an error anywhere before COMMIT rolls all of it
back and the last good publication stays. ``lock_timeout`` (the I/O timeout) bounds the wait
for readers that hold the old tables; ``statement_timeout`` (20 times that) bounds every
statement, the COPY of a large table included.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import psycopg
from psycopg import sql

from millpond import logs
from millpond.errors import StageFailed
from millpond.faults import crash_point
from millpond.serving.base import PublishResult

log = logs.get(__name__)

COPY_CHUNK_BYTES = 1 << 20
STATEMENT_TIMEOUT_FACTOR = 20
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric(38, 0)",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20, 0)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "UUID": "uuid",
    "JSON": "jsonb",
}


def postgres_type(duckdb_type: str) -> str:
    """The PostgreSQL column type for a DuckDB one; a type without a faithful mapping is an error."""
    upper = duckdb_type.upper()
    if upper in _TYPES:
        return _TYPES[upper]
    decimal = _DECIMAL.fullmatch(upper)
    if decimal:
        return f"numeric({decimal.group(1)}, {decimal.group(2)})"
    raise StageFailed(
        f"column type {duckdb_type} has no PostgreSQL serving type",
        stage="publish",
        hint="cast the column in the gold model to a scalar type (VARCHAR, BIGINT, DECIMAL, DATE, TIMESTAMPTZ, ...)",
    )


class PostgresServingTarget:
    """Publishes into the schemas of one PostgreSQL database; readers get SELECT only."""

    def __init__(self, uri: str, reader_role: str | None = None, timeout_s: float = 30.0) -> None:
        self.uri = uri
        self.reader_role = reader_role
        self.timeout_s = timeout_s

    @property
    def name(self) -> str:
        """The URI without its password, for logs and results."""
        info = psycopg.conninfo.conninfo_to_dict(self.uri)
        user, host, port, dbname = (info.get(k, "") for k in ("user", "host", "port", "dbname"))
        return f"postgresql://{user}@{host}:{port or 5432}/{dbname}"

    def _connect(self) -> psycopg.Connection[Any]:
        """Connect with bounded waits: ``timeout_s`` to connect and for locks, 20x that per statement (COPY)."""
        lock_ms = int(self.timeout_s * 1000)
        return psycopg.connect(
            self.uri,
            connect_timeout=max(1, int(self.timeout_s)),
            options=f"-c lock_timeout={lock_ms} -c statement_timeout={lock_ms * STATEMENT_TIMEOUT_FACTOR}"
            " -c TimeZone=UTC",
        )

    def publish(
        self,
        warehouse: Path,
        relations: list[str],
        run_id: str,
        gold_version: str | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> PublishResult:
        """Copy ``relations`` (``schema.table``) from ``warehouse`` and swap them in, in one transaction."""
        result = PublishResult(target=self.name, published_at=datetime.now(UTC), gold_version=gold_version)
        by_schema: dict[str, list[str]] = {}
        for relation in relations:
            schema, table = relation.split(".", 1)
            by_schema.setdefault(schema, []).append(table)
        try:
            with duckdb.connect(str(warehouse), read_only=True) as source, self._connect() as conn:
                source.execute("SET TimeZone = 'UTC'")
                with conn.transaction():
                    for schema, tables in by_schema.items():
                        incoming = f"{schema}__incoming"
                        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(incoming)))
                        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(incoming)))
                        for table in tables:
                            origin = (sources or {}).get(f"{schema}.{table}", f"{schema}.{table}")
                            rows = _copy_table(source, conn, origin, table, incoming)
                            result.tables[f"{schema}.{table}"] = rows
                            log.info("publish.postgres.copied", relation=f"{schema}.{table}", rows=rows)
                    crash_point("publish.postgres")
                    for schema in by_schema:
                        self._swap(conn, schema)
                    self._write_manifest(conn, result, run_id)
        except (psycopg.Error, duckdb.Error) as exc:
            raise StageFailed(
                f"publishing to {self.name} failed, the previous serving data stays in place: {exc}",
                stage="publish",
                hint="check that the serving database is reachable and the publishing role owns its schemas",
            ) from exc
        log.info("publish.done", target=self.name, tables=result.tables, run_id=run_id)
        return result

    def _swap(self, conn: psycopg.Connection[Any], schema: str) -> None:
        live, incoming, previous = (sql.Identifier(n) for n in (schema, f"{schema}__incoming", f"{schema}__previous"))
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(previous))
        if _schema_exists(conn, schema):
            conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(live, previous))
        conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(incoming, live))
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(previous))
        self._grant_read(conn, schema)

    def _grant_read(self, conn: psycopg.Connection[Any], schema: str) -> None:
        if not self.reader_role:
            return
        role, target = sql.Identifier(self.reader_role), sql.Identifier(schema)
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(target, role))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(target, role))

    def _write_manifest(self, conn: psycopg.Connection[Any], result: PublishResult, run_id: str) -> None:
        conn.execute("CREATE SCHEMA IF NOT EXISTS meta")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS meta.publication"
            " (run_id text NOT NULL, published_at timestamptz NOT NULL, relation text NOT NULL,"
            " row_count bigint NOT NULL, gold_version text)"
        )
        conn.execute("ALTER TABLE meta.publication ADD COLUMN IF NOT EXISTS gold_version text")
        conn.execute("DELETE FROM meta.publication")  # the manifest describes the live publication only
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO meta.publication (run_id, published_at, relation, row_count, gold_version)"
                " VALUES (%s, %s, %s, %s, %s)",
                [
                    (run_id, result.published_at, relation, rows, result.gold_version)
                    for relation, rows in result.tables.items()
                ],
            )
        self._grant_read(conn, "meta")

    def published_tables(self) -> dict[str, int]:
        """Row counts of the live publication (empty when nothing is published yet)."""
        with self._connect() as conn:
            if not _schema_exists(conn, "meta"):
                return {}
            rows = conn.execute("SELECT relation, row_count FROM meta.publication ORDER BY relation").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}


def _schema_exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [schema]).fetchone()
    return bool(row and row[0])


def _copy_table(
    source: duckdb.DuckDBPyConnection, conn: psycopg.Connection[Any], origin: str, table: str, into: str
) -> int:
    """Create ``into.table`` with the mapped column types and COPY the rows of the warehouse's ``origin`` into it."""
    schema, name = origin.split(".", 1)
    catalog_table = f'"{schema}"."{name}"'
    columns = [(str(r[0]), str(r[1])) for r in source.execute(f"DESCRIBE {catalog_table}").fetchall()]
    target = sql.Identifier(into, table)
    conn.execute(
        sql.SQL("CREATE TABLE {} ({})").format(
            target,
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(postgres_type(kind))) for name, kind in columns
            ),
        )
    )
    names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
    return copy_rows(source, conn, catalog_table, sql.SQL("{} ({})").format(target, names))


def copy_rows(
    source: duckdb.DuckDBPyConnection, conn: psycopg.Connection[Any], relation: str, target: sql.Composable
) -> int:
    """COPY every row of the DuckDB ``relation`` into the PostgreSQL ``target`` (a table, optionally with columns).

    DuckDB writes the rows as CSV (in C++, to a temp file) and PostgreSQL parses them with
    ``COPY ... FROM STDIN (FORMAT csv)``: no Python object per value. The two agree on the
    format: NULL is an unquoted empty field, an empty string is ``""``, timestamps carry
    their offset (the session is UTC). The row counts of both sides must match.
    """
    with tempfile.TemporaryDirectory(prefix="millpond-publish-") as tmp:
        csv_file = Path(tmp) / "rows.csv"
        written = source.execute(
            f"COPY (SELECT * FROM {relation}) TO '{csv_file}' (FORMAT csv, HEADER false)"
        ).fetchone()
        with conn.cursor() as cur:
            copy_sql = sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(target)
            with csv_file.open("rb") as rows, cur.copy(copy_sql) as copy:
                while chunk := rows.read(COPY_CHUNK_BYTES):
                    copy.write(chunk)
            loaded = cur.rowcount
    expected = int(written[0]) if written else 0
    if loaded != expected:
        raise StageFailed(f"{relation}: DuckDB wrote {expected} rows, PostgreSQL loaded {loaded}", stage="publish")
    return loaded
