"""Helpers of the MongoDB source tests: documents, a source database with a dlt pipeline into DuckDB, page hooks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import duckdb
from pymongo.database import Database

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def customer(n: int | str, updated_at: datetime = NOW, **extra: Any) -> dict[str, Any]:
    key = n if isinstance(n, str) else f"cus_{n}"
    return {"_id": key, "email": f"{key}@example.com", "created_at": NOW, "updated_at": updated_at, **extra}


def order(n: int, status: str = "created", lines: int = 2, updated_at: datetime = NOW) -> dict[str, Any]:
    return {
        "_id": f"ord_{n}",
        "customer_id": "cus_1",
        "status": status,
        "line_items": [{"line_no": i + 1, "sku": f"sku-{i}", "quantity": 1, "unit_price": 2.5} for i in range(lines)],
        "status_history": [{"status": "created", "at": NOW}],
        "created_at": NOW,
        "updated_at": updated_at,
    }


@dataclass
class Lake:
    """One test's source database and warehouse, and a dlt pipeline between them."""

    uri: str
    db: Database[dict[str, Any]]
    warehouse: Path
    pipeline: dlt.Pipeline

    def source(self, collections: tuple[str, ...] = ("customers",), **kwargs: Any) -> Any:
        from ingest.mongodb import mongodb_source

        kwargs.setdefault("timeout_ms", 10_000)
        kwargs.setdefault("await_ms", 200)
        return mongodb_source(connection_url=self.uri, database=self.db.name, collections=collections, **kwargs)

    def run(self, source: Any) -> dict[str, int]:
        """Extract, normalize and load ``source``; the rows per table of this run."""
        self.pipeline.extract(source)
        counts = self.pipeline.normalize()
        self.pipeline.load().raise_on_failed_jobs()
        rows = counts.row_counts if counts is not None else {}
        return {t: int(n) for t, n in rows.items() if not t.startswith("_dlt")}

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def live(self, table: str = "mongo_customers", column: str = "email") -> dict[str, Any]:
        """``_id -> column`` of the rows of ``bronze.<table>`` that are not tombstones."""
        return dict(self.query(f"select _id, {column} from bronze.{table} where _deleted_at is null"))

    def source_state(self, collection: str = "customers") -> dict[str, Any]:
        return dict(self.pipeline.state["sources"]["mongodb"]["resources"][f"mongo_{collection}"])

    def forget(self, collection: str) -> None:
        """Clear the collection's state as ``millpond mongo resnapshot`` does, and persist it."""
        with self.pipeline.managed_state(extract_state=True) as state:
            state["sources"]["mongodb"]["resources"].pop(f"mongo_{collection}")
        self.pipeline.normalize()
        self.pipeline.load().raise_on_failed_jobs()


def on_page(source: Any, resource: str, hook: Callable[[int], None]) -> Any:
    """Call ``hook(n)`` as the ``n``-th item (page or dead letter) of ``resource`` is extracted, mid-read."""
    seen = {"n": 0}

    def step(item: Any) -> Any:
        seen["n"] += 1
        hook(seen["n"])
        return item

    source.resources[resource].add_map(step)
    return source
