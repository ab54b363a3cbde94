"""Copies in the keyed landed tables (Kafka, dead letters) collapse per load, on real DuckDB and PostgreSQL warehouses.

A load job that dlt ran twice (killed after the job, before dlt recorded it) inserts its rows
twice, under one load id; here those copies are made by hand after real loads.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import duckdb
import psycopg
import pyarrow as pa
import pytest
from psycopg import sql as psql
from pydantic import SecretStr

from ingest.dead_letter import dead_letter
from ingest.kafka.rows import ARROW_SCHEMA, ROW_ID, row_ids, table_hints
from millpond.services import PostgresCluster
from millpond.settings import Settings
from millpond.stages.destination import landed_client
from millpond.stages.ingest import make_pipeline
from millpond.stages.landed import collapse_landed_copies, ensure_landed_tables

TOPIC = "shop.clickstream"
SEEN = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def _clicks(offsets: range) -> Any:
    rows = [
        {
            "topic": TOPIC,
            "partition": 0,
            "offset": n,
            "message_key": None,
            "message_ts": SEEN,
            "event_id": f"evt_{n}",
            "event_type": "page_view",
            "event_ts": SEEN,
            "schema_version": 1,
            "payload": '{"session_id": "s"}',
            "_ingested_at": SEEN,
        }
        for n in offsets
    ]
    landed = pa.Table.from_pylist(rows, schema=ARROW_SCHEMA.remove(ARROW_SCHEMA.get_field_index(ROW_ID)))
    table = landed.append_column(ARROW_SCHEMA.field(ROW_ID), row_ids(len(rows)))
    return dlt.mark.with_hints(table, table_hints("kafka_clickstream"))


def _load(cfg: Settings, offsets: range, dead_offset: int) -> str:
    """One real load of the ingest pipeline: clickstream rows and one dead letter; its load id."""

    @dlt.source(name="kafka")
    def kafka() -> Any:
        @dlt.resource(name="kafka_clickstream")
        def clicks() -> Any:
            yield _clicks(offsets)
            yield dead_letter(
                source="kafka",
                origin=TOPIC,
                record_id=f"0:{dead_offset}",
                raw_value="{",
                reason="not JSON",
                received_at=SEEN,
            )

        return clicks

    info = make_pipeline(cfg).run(kafka())
    info.raise_on_failed_jobs()
    return info.loads_ids[0]


def _copy_rows(cfg: Settings, table: str, where: str, **changes: str) -> None:
    """Insert a copy of the matching rows, as a second run of their load job would (optionally with changed columns)."""
    with landed_client(cfg) as client:
        sql = client.sql_client
        if client.config.destination_type == "postgres":  # dlt makes _dlt_id unique there
            changes.setdefault("_dlt_id", "_dlt_id || 'c'")
        [(_, stored)] = client.get_storage_tables([table])
        names = [sql.escape_column_name(c) for c in stored]
        values = [changes.get(c, sql.escape_column_name(c)) for c in stored]
        target = sql.make_qualified_table_name(table)
        sql.execute_sql(
            f"insert into {target} ({', '.join(names)}) select {', '.join(values)} from {target} where {where}"
        )


def _rows(cfg: Settings, query: str) -> list[tuple[Any, ...]]:
    with landed_client(cfg) as client:
        return [tuple(row) for row in client.sql_client.execute_sql(query) or []]


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings landing into a fresh DuckDB file, or into a fresh database of the tests' PostgreSQL cluster."""
    if request.param == "duckdb":
        yield Settings(data_dir=tmp_path)
        return
    postgres: PostgresCluster = request.getfixturevalue("postgres")
    database = f"millpond_{uuid.uuid4().hex[:8]}"
    postgres.create_database(database)
    yield Settings(
        data_dir=tmp_path,
        warehouse_engine="postgres",
        warehouse_pg_host="127.0.0.1",
        warehouse_pg_port=postgres.port,
        warehouse_pg_database=database,
        warehouse_pg_user=postgres.superuser,
        warehouse_pg_password=SecretStr("unused-with-trust-auth"),
    )
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(psql.SQL("drop database if exists {} with (force)").format(psql.Identifier(database)))


def test_copies_collapse_within_unverified_loads_only_and_a_rerun_is_a_no_op(engine: Settings):
    cfg = engine
    first = _load(cfg, range(0, 5), dead_offset=100)
    assert collapse_landed_copies(cfg) == {}  # records the first load as checked
    second = _load(cfg, range(5, 10), dead_offset=101)

    _copy_rows(cfg, "kafka_clickstream", f"_dlt_load_id = '{first}' and \"offset\" = 0")  # a checked load
    _copy_rows(cfg, "kafka_clickstream", f"_dlt_load_id = '{second}' and \"offset\" in (5, 6)")
    _copy_rows(cfg, "dead_letter", f"_dlt_load_id = '{second}'", first_seen_at="first_seen_at - interval '1 hour'",
               reason="'first copy'")  # fmt: skip
    _copy_rows(cfg, "kafka_clickstream", f"_dlt_load_id = '{second}' and \"offset\" = 7", _dlt_load_id="'unfinished'")
    _copy_rows(cfg, "kafka_clickstream", "_dlt_load_id = 'unfinished'")  # a load dlt has not completed

    assert collapse_landed_copies(cfg) == {"kafka_clickstream": 2, "dead_letter": 1}

    by_load = 'select _dlt_load_id, count(*), count(distinct "offset") from bronze.kafka_clickstream group by 1'
    assert sorted(_rows(cfg, by_load)) == sorted([(first, 6, 5), (second, 5, 5), ("unfinished", 2, 1)])
    dead = _rows(cfg, "select dead_letter_id, reason from bronze.dead_letter order by 1")
    assert dead == [(f"kafka:{TOPIC}:0:100", "not JSON"), (f"kafka:{TOPIC}:0:101", "first copy")]  # the first seen
    verified = _rows(cfg, "select load_id from bronze._millpond_verified_loads order by 1")
    assert verified == sorted([(first,), (second,)])

    assert collapse_landed_copies(cfg) == {}  # a re-run finds nothing to do
    assert sorted(_rows(cfg, by_load)) == sorted([(first, 6, 5), (second, 5, 5), ("unfinished", 2, 1)])

    with landed_client(cfg) as client:  # the unfinished load completes: it is checked next time
        client.sql_client.execute_sql(
            f"insert into {client.sql_client.make_qualified_table_name('_dlt_loads')} "
            "(load_id, schema_name, status, inserted_at) values ('unfinished', 'kafka', 0, now())"
        )
    assert collapse_landed_copies(cfg) == {"kafka_clickstream": 1}
    assert collapse_landed_copies(cfg) == {}


def test_the_collapse_holds_one_load_in_memory_not_every_load_it_checks(tmp_path: Path):
    """A batch ingest checks all of its packages at its end: the work must follow one package, not the run."""
    cfg = Settings(data_dir=tmp_path)
    first = _load(cfg, range(0, 1), dead_offset=100)
    assert collapse_landed_copies(cfg) == {}
    loads, rows_per_load = [f"{first}.{n}" for n in range(10)], 60_000
    with duckdb.connect(str(cfg.warehouse)) as con:  # ten loads of 60k rows each, as ten packages leave them
        con.execute(
            "insert into bronze.kafka_clickstream select c.* replace ("
            f"  1 + r.i as \"offset\", $1 || '.' || (r.i // {rows_per_load}) as _dlt_load_id, md5(r.i::varchar) as _dlt_id"
            f") from bronze.kafka_clickstream c, range({rows_per_load * len(loads)}) r(i)",
            [first],
        )
        for load_id in loads:
            con.execute(
                "insert into bronze._dlt_loads (load_id, schema_name, status, inserted_at) values ($1, 'kafka', 0, now())",
                [load_id],
            )
    # within 10MB DuckDB groups one load's 60k keys, not the 600k of all ten
    assert collapse_landed_copies(cfg.model_copy(update={"duckdb_memory_limit": "10MB"})) == {}
    verified = _rows(cfg, "select load_id from bronze._millpond_verified_loads order by 1")
    assert verified == sorted([(first,), *((load_id,) for load_id in loads)])


def test_a_warehouse_without_loads_has_nothing_to_collapse(tmp_path: Path):
    cfg = Settings(data_dir=tmp_path)
    assert collapse_landed_copies(cfg) == {}  # no warehouse yet
    ensure_landed_tables(cfg)
    assert collapse_landed_copies(cfg) == {}  # declared tables, but dlt has loaded nothing
