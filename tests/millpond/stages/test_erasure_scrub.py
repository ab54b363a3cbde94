"""The landed-table rules of an erasure (millpond.stages.erasure_scrub), on a DuckDB warehouse built by hand."""

from __future__ import annotations

import duckdb

from millpond.stages.erasure import duckdb_sql
from millpond.stages.erasure_scrub import Customer, base_tables, scrub_landed

CUSTOMER = Customer(keys=("cus_000042",), surrogate="erased_0f3a")
DEAD_LETTER_COLUMNS = "dead_letter_id varchar, source varchar, record_key varchar, raw_value varchar, raw_bytes blob"


def _dead_letters(con: duckdb.DuckDBPyConnection, name: str) -> None:
    con.execute(f"create table {name} ({DEAD_LETTER_COLUMNS})")
    con.execute(
        f"insert into {name} values "
        "('kafka:t:0:1', 'kafka', 'cus_000042', '{\"order_id\": \"ord_1\"}', 'x'), "
        "('kafka:t:0:2', 'kafka', null, '{\"customer_id\": \"cus_000042\", \"amount\": \"x\"}', 'x'), "
        "('kafka:t:0:3', 'kafka', 'cus_000007', '{\"customer_id\": \"cus_000007\"}', 'x')"
    )


def test_dead_letters_naming_the_customer_are_deleted_also_where_rebaseline_archived_them():
    """``millpond kafka rebaseline`` moves a topic's dead letters to ``bronze_archive.dead_letter__<stream>__<time>``:
    their raw bytes hold the customer just as ``bronze.dead_letter``'s do."""
    con = duckdb.connect()
    con.execute("create schema bronze; create schema bronze_archive")
    _dead_letters(con, "bronze.dead_letter")
    _dead_letters(con, "bronze_archive.dead_letter__payments__20261202T101500Z")
    sql = duckdb_sql(con)

    counts = scrub_landed(sql, CUSTOMER, base_tables(sql))

    for table in ("bronze.dead_letter", "bronze_archive.dead_letter__payments__20261202T101500Z"):
        assert con.execute(f"select dead_letter_id from {table}").fetchall() == [("kafka:t:0:3",)], table
        assert counts[table] == {"deleted": 2}
    again = scrub_landed(sql, CUSTOMER, base_tables(sql))
    assert all(n == 0 for table_counts in again.values() for n in table_counts.values())
