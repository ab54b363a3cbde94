"""Reading the warehouse in tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import duckdb

from millpond.stages.landed import DATASET


def landed_row_counts(warehouse: Path) -> dict[str, int]:
    """Row counts of the landed (``bronze``) tables, read-only."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ? order by 1", [DATASET]
            ).fetchall()
        ]
        counts = {}
        for table in tables:
            row = con.execute(f'select count(*) from {DATASET}."{table}"').fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts
