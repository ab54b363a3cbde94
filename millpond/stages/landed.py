"""The landed layer (``bronze``): the tables ``external_models.yaml`` declares, and lookups of what exists.

Only the ingest stage writes the landed layer: at the end of every run it creates, empty, the
declared tables and columns that dlt has not made yet (:func:`ensure_landed_tables`), so later
stages and commands can rely on every declared table and column being there once one ingest ran.

Everything here runs through dlt's SQL client of the configured destination
(:func:`millpond.stages.destination.landed_client`), so it works on every warehouse engine:
portable SQL, ``%s`` parameters, names quoted by the client, and each declared (DuckDB) column
type created as the type dlt itself gives that kind of column on the destination.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import yaml
from dlt.destinations.job_client_impl import SqlJobClientBase

from ingest.dead_letter import KEY as DEAD_LETTER_KEY
from ingest.dead_letter import SURVIVOR_ORDER as DEAD_LETTER_SURVIVOR_ORDER
from ingest.dead_letter import TABLE as DEAD_LETTER_TABLE
from ingest.kafka.rows import PRIMARY_KEY as KAFKA_KEY
from ingest.kafka.rows import SURVIVOR_ORDER as KAFKA_SURVIVOR_ORDER
from ingest.mongodb import LandedIds
from millpond import logs
from millpond.settings import Settings
from millpond.stages.destination import DATASET, landed_client, warehouse_exists

__all__ = [
    "DATASET",
    "KeyedTable",
    "collapse_landed_copies",
    "declared_landed_tables",
    "ensure_landed_tables",
    "keyed_tables",
    "landed_id_batches",
    "landed_tables",
    "missing_landed_tables",
    "quarantined_by_load",
]

log = logs.get(__name__)
VERIFIED_LOADS = "_millpond_verified_loads"  # the loads whose keyed tables hold one row per key
# dlt's data type of each column type external_models.yaml declares (DuckDB type names).
DLT_DATA_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "BOOLEAN": "bool",
    "DOUBLE": "double",
    "DECIMAL": "decimal",
    "TIMESTAMPTZ": "timestamp",
    "DATE": "date",
    "BLOB": "binary",
    "JSON": "json",
}


def landed_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables in the landed dataset of an open DuckDB warehouse connection."""
    rows = con.execute("select table_name from information_schema.tables where table_schema = ?", [DATASET]).fetchall()
    return {r[0] for r in rows}


def declared_landed_tables(settings: Settings) -> dict[str, dict[str, str]]:
    """Table -> column types of every landed table that ``external_models.yaml`` declares."""
    declared = yaml.safe_load((settings.project_dir / "external_models.yaml").read_text())
    out = {}
    for model in declared:
        schema, table = model["name"].split(".")
        if schema == DATASET:
            out[table] = model["columns"]
    return out


def _storage_columns(client: SqlJobClientBase, tables: list[str]) -> dict[str, set[str]]:
    """Table -> its columns (case-folded as the destination stores names); an empty set when the table is missing."""
    return {table: {name.lower() for name in columns} for table, columns in client.get_storage_tables(tables)}


def _column_type(client: SqlJobClientBase, declared: str) -> str:
    """A declared column type on the destination: verbatim on DuckDB, else the type dlt gives such a column
    there (``BLOB`` is ``bytea``, ``JSON`` ``jsonb`` and ``TIMESTAMPTZ`` ``timestamp with time zone`` on PostgreSQL).

    Not sqlglot: it would load its DuckDB dialect before SQLMesh extends it, which breaks SQLMesh in this process.
    """
    if client.config.destination_type == "duckdb":
        return declared
    match = re.fullmatch(r"\s*([A-Z]+)\s*(?:\(\s*(\d+)\s*,\s*(\d+)\s*\))?\s*", declared.upper())
    if match is None or match.group(1) not in DLT_DATA_TYPES:
        raise ValueError(f"external_models.yaml declares a column type with no dlt counterpart: {declared}")
    column: dict[str, Any] = {"name": "declared", "data_type": DLT_DATA_TYPES[match.group(1)]}
    if match.group(2):
        column |= {"precision": int(match.group(2)), "scale": int(match.group(3))}
    if column["data_type"] == "timestamp":
        column["timezone"] = True
    return client.type_mapper.to_destination_type(column, {"name": "declared", "columns": {}})  # type: ignore[arg-type]


def missing_landed_tables(settings: Settings) -> list[str]:
    """The declared landed tables that are not in the warehouse (all of them when there is no warehouse)."""
    declared = declared_landed_tables(settings)
    if not warehouse_exists(settings):
        return list(declared)
    with landed_client(settings) as client:
        if not client.sql_client.has_dataset():
            return list(declared)
        existing = _storage_columns(client, list(declared))
    return [table for table in declared if not existing.get(table)]


def ensure_landed_tables(settings: Settings) -> list[str]:
    """Create every declared landed table dlt has not made yet, and add declared columns a table lacks.

    dlt creates a table only once data arrives for it (a topic may still be empty), and a column
    only once a row carries it (a warehouse landed before a column was declared), while a SQLMesh
    plan needs every declared table and column to exist. dlt adopts a pre-created table and
    column and adds any it lacks itself. Returns ``table`` for each table created and
    ``table.column`` for each column added.
    """
    changed: list[str] = []
    declared = declared_landed_tables(settings)
    with landed_client(settings) as client:
        sql = client.sql_client
        if not sql.has_dataset():
            sql.create_dataset()
        existing = _storage_columns(client, list(declared))
        for table, columns in declared.items():
            qualified = sql.make_qualified_table_name(table)
            present = existing.get(table, set())
            if not present:
                column_list = ", ".join(
                    f"{sql.escape_column_name(name)} {_column_type(client, kind)}" for name, kind in columns.items()
                )
                sql.execute_sql(f"create table {qualified} ({column_list})")
                changed.append(table)
                continue
            for name, kind in columns.items():
                if name.lower() not in present:
                    column = f"{sql.escape_column_name(name)} {_column_type(client, kind)}"
                    sql.execute_sql(f"alter table {qualified} add column {column}")
                    changed.append(f"{table}.{name}")
    if changed:
        log.warning("ingest.created_declared_landed_objects", created=changed)
    return changed


@dataclass(frozen=True)
class KeyedTable:
    """A landed table that holds one row per key: its key, and the order that picks the copy to keep."""

    name: str
    key: tuple[str, ...]
    survivor_order: tuple[str, ...]


def keyed_tables(settings: Settings) -> list[KeyedTable]:
    """Every landed table kept at one row per key: one per Kafka stream (appended), and the dead-letter table
    (merged insert-only)."""
    kafka = [KeyedTable(f"kafka_{stream}", KAFKA_KEY, KAFKA_SURVIVOR_ORDER) for stream in settings.topics.as_dict()]
    return [*kafka, KeyedTable(DEAD_LETTER_TABLE, DEAD_LETTER_KEY, DEAD_LETTER_SURVIVOR_ORDER)]


def collapse_landed_copies(settings: Settings) -> dict[str, int]:
    """Keep one row per key in every keyed table, in the loads not checked yet; table -> copies removed.

    dlt does not make a load job idempotent: a job that ran twice (the process killed after the
    job, before dlt recorded it) inserts its rows twice, into the Kafka tables it appends to
    directly, and into the staging table of the dead letters' insert-only MERGE, which dlt does not
    truncate again when it resumes a package. Copies can only share one load id (a Kafka position is
    read once, its move in dlt state committed with the rows, ADR 0005; the MERGE inserts no
    dead letter the table already holds), so only the rows of the completed loads
    (``_dlt_loads`` status 0) not yet in ``_millpond_verified_loads`` are checked, one load at a
    time, each collapsed and recorded there in one transaction: the work and memory follow one
    load package, not the table nor the number of packages a batch ingest made (ADR 0023), and a
    crash at any point is finished by the next call (ADR 0014, ADR 0021).

    Copies may be identical rows, and not every engine has a row id, so the survivors of the
    duplicated keys are copied aside, the keys' rows of those loads deleted and the survivors
    put back.
    """
    if not warehouse_exists(settings):
        return {}
    tables = keyed_tables(settings)
    removed: dict[str, int] = {}
    with landed_client(settings) as client:
        sql = client.sql_client
        if not sql.has_dataset():
            return {}
        loads_table = client.schema.loads_table_name
        storage = dict(client.get_storage_tables([loads_table, VERIFIED_LOADS, *(t.name for t in tables)]))
        if not storage.get(loads_table):
            return {}  # nothing loaded yet
        loads = sql.make_qualified_table_name(loads_table)
        verified = sql.make_qualified_table_name(VERIFIED_LOADS)
        if not storage.get(VERIFIED_LOADS):
            sql.execute_sql(
                f"create table {verified} (load_id {_column_type(client, 'VARCHAR')} not null, "
                f"verified_at {_column_type(client, 'TIMESTAMPTZ')} not null)"
            )
        rows = sql.execute_sql(
            f"select load_id from {loads} where status = 0 "
            f"and load_id not in (select load_id from {verified}) order by load_id"
        )
        pending = [str(r[0]) for r in rows or []]
        present = [(t, list(storage[t.name])) for t in tables if "_dlt_load_id" in storage.get(t.name, {})]
        record = f"insert into {verified} (load_id, verified_at) values (%s, current_timestamp)"
        for load_id in pending:
            with sql.begin_transaction():
                for table, columns in present:
                    copies = _collapse_copies(sql, table, columns, load_id)
                    if copies:
                        removed[table.name] = removed.get(table.name, 0) + copies
                sql.execute_sql(record, load_id)
    if removed:
        log.warning("ingest.landed_copies_removed", copies=removed, loads=len(pending))
    return removed


def _collapse_copies(sql: Any, table: KeyedTable, columns: list[str], load_id: str) -> int:
    """Collapse the copies of one key among the rows of ``load_id`` in ``table`` to its survivor; copies removed."""
    target = sql.make_qualified_table_name(table.name)
    copies = sql.make_qualified_table_name("_millpond_copies")
    keep = sql.make_qualified_table_name("_millpond_copies_keep")
    key = [sql.escape_column_name(c) for c in table.key]
    in_load = "_dlt_load_id = %s"
    sql.execute_sql(f"drop table if exists {copies}")
    sql.execute_sql(
        f"create table {copies} as select {', '.join(key)} from {target} "
        f"where {in_load} group by {', '.join(key)} having count(*) > 1",
        load_id,
    )
    if not _count(sql, f"select count(*) from {copies}"):
        sql.execute_sql(f"drop table {copies}")
        return 0
    matched = f"{in_load} and exists (select 1 from {copies} d where {' and '.join(f'd.{k} = c.{k}' for k in key)})"
    with_copies = _count(sql, f"select count(*) from {target} c where {matched}", load_id)
    names = ", ".join(sql.escape_column_name(c) for c in columns)
    order = ", ".join(
        f"c.{sql.escape_column_name(c)} nulls last" for c in (*table.survivor_order, "_dlt_id") if c in columns
    )
    sql.execute_sql(f"drop table if exists {keep}")
    sql.execute_sql(
        f"create table {keep} as select {names} from ("
        f"  select c.*, row_number() over (partition by {', '.join(f'c.{k}' for k in key)} order by {order})"
        f"  as millpond_copy from {target} c where {matched}"
        f") as candidates where millpond_copy = 1",
        load_id,
    )
    sql.execute_sql(f"delete from {target} as c where {matched}", load_id)
    sql.execute_sql(f"insert into {target} ({names}) select {names} from {keep}")
    kept = _count(sql, f"select count(*) from {keep}")
    sql.execute_sql(f"drop table {keep}")
    sql.execute_sql(f"drop table {copies}")
    return with_copies - kept


def _count(sql: Any, query: str, *args: Any) -> int:
    rows = sql.execute_sql(query, *args)
    return int(rows[0][0]) if rows else 0


def landed_id_batches(settings: Settings, batch_size: int = 10_000) -> LandedIds:
    """The MongoDB source's ``landed_ids`` for any warehouse engine: the ``_id`` of every row of
    ``bronze.mongo_<collection>`` that is not a tombstone, in batches (nothing when the table does not exist yet)."""

    def landed(collection: str) -> Iterator[list[str]]:
        if not warehouse_exists(settings):
            return
        table = f"mongo_{collection}"
        with landed_client(settings) as client:
            sql = client.sql_client
            if not sql.has_dataset():
                return
            columns = _storage_columns(client, [table])[table]
            if not columns:
                return
            live = "where _deleted_at is null" if "_deleted_at" in columns else ""
            with sql.execute_query(
                f"select distinct _id from {sql.make_qualified_table_name(table)} {live} order by _id"
            ) as cursor:
                while rows := cursor.fetchmany(batch_size):
                    yield [str(r[0]) for r in rows]

    return landed


def quarantined_by_load(settings: Settings, load_ids: list[str]) -> dict[str, dict[str, int]]:
    """Source -> error class -> dead letters written by these loads (any warehouse engine)."""
    if not load_ids or not warehouse_exists(settings):
        return {}
    with landed_client(settings) as client:
        sql = client.sql_client
        table = sql.make_qualified_table_name(DEAD_LETTER_TABLE)  # ensure_landed_tables made the table
        marks = ", ".join(["%s"] * len(load_ids))
        rows = sql.execute_sql(
            f"select source, coalesce(error_class, 'unclassified'), count(*) from {table} "
            f"where _dlt_load_id in ({marks}) group by source, coalesce(error_class, 'unclassified')",
            *load_ids,
        )
    out: dict[str, dict[str, int]] = {}
    for source, klass, n in rows or []:
        out.setdefault(source, {})[klass] = int(n)
    return out
