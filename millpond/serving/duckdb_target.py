"""Serving target: a separate DuckDB file, rebuilt beside the live one and swapped in atomically.

The copy runs in a read-only connection to the warehouse that attaches the new file read-write,
so it shares the database of the publish stage's own read-only connection: the warehouse stays
locked against writers for the whole copy (a second DuckDB database on the same file would
release the process's lock when it closes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from millpond import logs
from millpond.errors import StageFailed
from millpond.faults import crash_point
from millpond.serving.base import PublishResult

log = logs.get(__name__)
COPY = "millpond_serving_copy"  # the new serving file, attached to the warehouse connection


class DuckDBServingTarget:
    """Readers open ``path`` with ``access_mode=read_only``; a failed publish leaves it untouched."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def publish(
        self,
        warehouse: Path,
        relations: list[str],
        run_id: str,
        gold_version: str | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> PublishResult:
        """Copy ``relations`` (``schema.table``) from ``warehouse`` into a new file, then rename it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temp_files()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        result = PublishResult(target=str(self.path), published_at=datetime.now(UTC), gold_version=gold_version)
        try:
            con = duckdb.connect(str(warehouse), read_only=True)
            try:
                con.execute("SET TimeZone = 'UTC'")
                con.execute(f"ATTACH '{tmp}' AS {COPY} (READ_WRITE)")
                for relation in relations:
                    schema, table = relation.split(".", 1)
                    source_schema, source_table = (sources or {}).get(relation, relation).split(".", 1)
                    con.execute(f'CREATE SCHEMA IF NOT EXISTS {COPY}."{schema}"')
                    con.execute(
                        f'CREATE TABLE {COPY}."{schema}"."{table}" AS SELECT * FROM "{source_schema}"."{source_table}"'
                    )
                    count = con.execute(f'SELECT count(*) FROM {COPY}."{schema}"."{table}"').fetchone()
                    result.tables[relation] = int(count[0]) if count else 0
                self._write_manifest(con, result, run_id)
                con.execute(f"CHECKPOINT {COPY}")
            finally:
                con.execute(f"DETACH DATABASE IF EXISTS {COPY}")  # the database is shared: detach even on error
                con.close()
            _fsync(tmp)
            crash_point("publish.copy")
            os.replace(tmp, self.path)
            _fsync(self.path.parent)
        except duckdb.Error as exc:
            raise StageFailed(
                f"publishing to {self.path} failed, the previous serving data stays in place: {exc}",
                stage="publish",
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
        log.info("publish.done", target=str(self.path), tables=result.tables, run_id=run_id)
        return result

    def _remove_stale_temp_files(self) -> None:
        """Temp files a killed publish left behind (one publisher at a time: the pipeline's lock)."""
        for stale in self.path.parent.glob(f".{self.path.name}.*.tmp*"):
            log.warning("publish.removing_stale_temp_file", path=str(stale))
            stale.unlink(missing_ok=True)

    @staticmethod
    def _write_manifest(con: duckdb.DuckDBPyConnection, result: PublishResult, run_id: str) -> None:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {COPY}.meta")
        con.execute(
            f"CREATE TABLE {COPY}.meta.publication"
            " (run_id VARCHAR, published_at TIMESTAMPTZ, relation VARCHAR, row_count BIGINT, gold_version VARCHAR)"
        )
        con.executemany(
            f"INSERT INTO {COPY}.meta.publication VALUES (?, ?, ?, ?, ?)",
            [(run_id, result.published_at, rel, n, result.gold_version) for rel, n in result.tables.items()],
        )

    def published_tables(self) -> dict[str, int]:
        """Row counts of the live serving file, read-only (empty when nothing is published yet)."""
        if not self.path.exists():
            return {}
        with duckdb.connect(str(self.path), read_only=True) as con:
            rows = con.execute("SELECT relation, row_count FROM meta.publication ORDER BY relation").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
