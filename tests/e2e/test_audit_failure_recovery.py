"""A blocking audit failure heals when the data is fixed: the next run rebuilds what the bad batch fed.

A built warehouse takes a load that bypassed the ingest edge (an old order's status tampered to one
no audit accepts), so ``millpond transform`` fails on a blocking audit. Re-run without a fix, it
fails the same way. Then the order's real version lands, as the next ingest merges it after the
document changed at the source, and the next run rebuilds every model of the order's lineage
from the corrected bronze and passes: no model keeps the bad status, and no manual restatement is
needed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from millpond.errors import StageFailed
from millpond.settings import Settings
from millpond.stages import gold_version
from millpond.stages.transform import run_transform
from tests.support.bronze_rows import Bronze, at, history

DAYS = 3
BAD = "teleported"


def warehouse(cfg: Settings, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def status_columns(cfg: Settings) -> list[tuple[str, str]]:
    """Every silver and gold table with a ``status`` column (where a bad status could be kept)."""
    return [
        (schema, table)
        for schema, table in warehouse(
            cfg,
            "select table_schema, table_name from information_schema.columns "
            "where column_name = 'status' and table_schema in ('silver', 'gold')",
        )
    ]


def holding_bad_status(cfg: Settings) -> list[str]:
    return [
        f"{schema}.{table}"
        for schema, table in status_columns(cfg)
        if warehouse(cfg, f'select count(*) from "{schema}"."{table}" where status = ?', [BAD]) != [(0,)]
    ]


def audits_passed(cfg: Settings) -> bool:
    """Whether the latest run's blocking audits passed, as the write-audit-publish gate reads it."""
    (row,) = warehouse(cfg, f"select audits_passed from {gold_version.GOLD_AUDITS} order by recorded_at desc limit 1")
    return bool(row[0])


def test_a_failed_audit_is_rebuilt_from_fixed_data_and_passes(tmp_path: Path):
    today = datetime.now(UTC).date()
    first = today - timedelta(days=DAYS)
    cfg = Settings(data_dir=tmp_path, start_date=first - timedelta(days=1))
    history(cfg, first, DAYS).close()
    run_transform(cfg, today=today)  # every day built, today included

    with duckdb.connect(str(cfg.warehouse)) as con:  # a load that bypassed the ingest edge
        con.execute("insert into bronze._dlt_loads values ('200.5', 0)")
        con.execute("update bronze.mongo_orders set status = ?, _dlt_load_id = '200.5' where _id = 'o-d0'", [BAD])

    failures = []
    for _attempt in ("the bad batch", "the same run again, nothing fixed"):
        with pytest.raises(StageFailed) as failed:
            run_transform(cfg, today=today)
        failures.append(str(failed.value).split(" (hint: ")[0])
        assert not audits_passed(cfg)
    stopped = (
        f"[transform] SQLMesh failed: silver.stg_orders [{today}, {today + timedelta(days=1)}): audit accepted_values"
    )
    assert failures[0].startswith(stopped), failures[0]
    assert failures[1] == failures[0]  # the bad model is built again and stops the run again, before anything reads it

    bronze = Bronze(cfg)  # the next ingest merges the order's real version: it has shipped since
    bronze.load("300.5")
    placed = at(first, 10)
    bronze.order(
        "o-d0",
        placed,
        [("p1", "SKU-1", 2, "10.00")],
        [("created", placed), ("paid", placed), ("shipped", at(today, 8))],
    )
    bronze.close()

    run_transform(cfg, today=today)
    assert audits_passed(cfg)
    assert holding_bad_status(cfg) == []
    assert warehouse(cfg, "select status from silver.stg_orders where order_id = 'o-d0'") == [("shipped",)]
    assert warehouse(cfg, "select status, order_total from gold.fct_orders where order_id = 'o-d0'") == [
        ("shipped", 20)
    ]
    by_status = warehouse(
        cfg, "select status, orders from gold.agg_daily_orders_by_status where order_date = ? order by status", [first]
    )
    assert by_status == [("shipped", 1)]
