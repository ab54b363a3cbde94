"""Serving target: a separate DuckDB file, rebuilt beside the live one and swapped in atomically."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from millpond import logs
from millpond.errors import StageFailed
from millpond.faults import crash_point
from millpond.serving.base import PublishResult

log = logs.get(__name__)


class DuckDBServingTarget:
    """Readers open ``path`` with ``access_mode=read_only``; a failed publish leaves it untouched."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def publish(self, warehouse: Path, relations: list[str], run_id: str) -> PublishResult:
        """Copy ``relations`` (``schema.table``) from ``warehouse`` into a new file, then rename it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temp_files()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        catalog = Path(warehouse).stem  # SQLMesh views name the warehouse by its file stem
        result = PublishResult(target=str(self.path), published_at=datetime.now(UTC))
        try:
            con = duckdb.connect(str(tmp))
            try:
                con.execute("SET TimeZone = 'UTC'")
                con.execute(f"ATTACH '{warehouse}' AS \"{catalog}\" (READ_ONLY)")
                for relation in relations:
                    schema, table = relation.split(".", 1)
                    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                    con.execute(f'CREATE TABLE "{schema}"."{table}" AS SELECT * FROM "{catalog}"."{schema}"."{table}"')
                    count = con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()
                    result.tables[relation] = int(count[0]) if count else 0
                self._write_manifest(con, result, run_id)
                con.execute(f'DETACH "{catalog}"')
                con.execute("CHECKPOINT")
            finally:
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
        con.execute("CREATE SCHEMA IF NOT EXISTS meta")
        con.execute(
            "CREATE TABLE meta.publication"
            " (run_id VARCHAR, published_at TIMESTAMPTZ, relation VARCHAR, row_count BIGINT)"
        )
        con.executemany(
            "INSERT INTO meta.publication VALUES (?, ?, ?, ?)",
            [(run_id, result.published_at, rel, n) for rel, n in result.tables.items()],
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
