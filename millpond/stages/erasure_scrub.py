"""Removing one customer from a database: the tables are discovered, not listed.

What a table is decides what happens to its rows of the customer (``keys``: the id and the forms
it takes downstream):

* the customer's own records are deleted: ``bronze.mongo_customers`` (by ``_id``, with any child
  tables dlt made of it) and every table of a model in ``grain`` (the customer-grain models built
  from the customer document, :func:`millpond.stages.erasure.customer_grain_models`: silver
  ``stg_customers``, gold ``dim_customers`` with every SCD version), in every SQLMesh physical
  schema (``sqlmesh__*``) and every snapshot version;
* every other table with a ``customer_id`` column keeps its rows (their business facts) with the
  key replaced by the request's surrogate; so do Kafka rows whose JSON ``payload`` names the
  customer (``payload.customer_id``) and those keyed by the id (``message_key``), in ``bronze`` and
  in ``bronze_archive``;
* dead letters that carry the customer (``record_key`` = the id, or the id as a JSON string in
  the raw value) are deleted, in ``bronze.dead_letter`` and in the tables ``millpond kafka
  rebaseline`` archived them to: their raw bytes cannot be anonymised field by field;
* text in the stage records (``millpond_meta``: audit failure samples, ...) has the id replaced.

Every statement is idempotent (a second pass finds nothing), so a killed erasure is finished by
running it again.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from millpond import logs

log = logs.get(__name__)
CUSTOMER_COLUMN = "customer_id"
CUSTOMERS_TABLE = "mongo_customers"
DEAD_LETTER_COLUMNS = frozenset({"dead_letter_id", "record_key", "raw_value"})
LANDED_SCHEMAS = ("bronze", "bronze_staging", "bronze_archive")  # bronze_staging: dlt's merge staging
META_SCHEMA = "millpond_meta"
OWN_META_TABLES = ("erasure_requests", "erasure_reapplied", "retention_runs")
SQLMESH_SCHEMA_PREFIX = "sqlmesh__"
# SQLMesh physical table: <model schema>__<model name>__<fingerprint>[__dev|__temp...]
_PHYSICAL = re.compile(r"^(?P<schema>[A-Za-z0-9_]+?)__(?P<name>[A-Za-z0-9_]+?)__(?P<version>\d+)(?:__\w+)?$")
Counts = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Customer:
    """Whom to remove: ``keys`` (the id first, then its derived forms) and the surrogate that replaces them."""

    keys: tuple[str, ...]
    surrogate: str

    @property
    def id(self) -> str:
        return self.keys[0]


class Sql:
    """A thin portable runner: ``?`` parameters (translated for psycopg), identifiers quoted here."""

    def __init__(self, run: Callable[[str, list[Any]], int], query: Callable[[str, list[Any]], list[tuple[Any, ...]]]):
        self.run = run
        self.query = query

    @staticmethod
    def name(*parts: str) -> str:
        return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def model_of(physical_table: str) -> str | None:
    """``gold__dim_customers__123`` -> ``gold.dim_customers`` (None when it is no SQLMesh physical table)."""
    match = _PHYSICAL.match(physical_table)
    return f"{match['schema']}.{match['name']}" if match else None


def base_tables(sql: Sql, schemas: Iterable[str] | None = None) -> dict[tuple[str, str], dict[str, str]]:
    """``(schema, table)`` -> column -> type of every base table (in ``schemas``, or all)."""
    rows = sql.query(
        "select c.table_schema, c.table_name, c.column_name, c.data_type from information_schema.columns c "
        "join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name "
        "where t.table_type = 'BASE TABLE' order by c.table_schema, c.table_name, c.ordinal_position",
        [],
    )
    wanted = set(schemas) if schemas is not None else None
    out: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for schema, table, column, kind in rows:
        if wanted is None or schema in wanted:
            out[(str(schema), str(table))][str(column).lower()] = str(kind).upper()
    return dict(out)


def is_dead_letters(columns: dict[str, str]) -> bool:
    """A table of dead letters, wherever it is: ``bronze.dead_letter``, dlt's staging copy, or the tables
    ``millpond kafka rebaseline`` archives a topic's dead letters to. Told by its columns, not its name."""
    return columns.keys() >= DEAD_LETTER_COLUMNS


def _in(values: Iterable[str]) -> str:
    return f"({', '.join('?' for _ in values)})"


def scrub_landed(sql: Sql, customer: Customer, tables: dict[tuple[str, str], dict[str, str]]) -> Counts:
    """The landed schemas (``bronze``, ``bronze_archive``) of a DuckDB warehouse."""
    counts: Counts = {}
    keys = list(customer.keys)
    landed = {key: cols for key, cols in tables.items() if key[0] in LANDED_SCHEMAS}
    parents = [key for key in landed if key[1] == CUSTOMERS_TABLE]
    for schema, table in sorted(landed, key=lambda k: (k[1] == CUSTOMERS_TABLE, k)):  # children before parents
        name, columns = Sql.name(schema, table), landed[(schema, table)]
        label = f"{schema}.{table}"
        if (
            table.startswith(f"{CUSTOMERS_TABLE}__")
            and "_dlt_root_id" in columns
            and (schema, CUSTOMERS_TABLE) in parents
        ):
            parent = Sql.name(schema, CUSTOMERS_TABLE)
            n = sql.run(
                f"delete from {name} where _dlt_root_id in (select _dlt_id from {parent} where _id in {_in(keys)})",
                keys,
            )
            counts[label] = {"deleted": n}
        elif table == CUSTOMERS_TABLE:
            counts[label] = {"deleted": sql.run(f"delete from {name} where _id in {_in(keys)}", keys)}
        elif is_dead_letters(columns):
            quoted = f'"{customer.id}"'
            n = sql.run(
                f"delete from {name} where record_key in {_in(keys)} or strpos(coalesce(raw_value, ''), ?) > 0",
                [*keys, quoted],
            )
            counts[label] = {"deleted": n}
        else:
            n = 0
            if CUSTOMER_COLUMN in columns:
                n += sql.run(
                    f"update {name} set customer_id = ? where customer_id in {_in(keys)}", [customer.surrogate, *keys]
                )
            if "payload" in columns:
                n += sql.run(
                    f"update {name} set payload = json_merge_patch(payload, json_object('customer_id', ?::varchar)) "
                    f"where json_extract_string(payload, '$.customer_id') in {_in(keys)}",
                    [customer.surrogate, *keys],
                )
            if "message_key" in columns:
                n += sql.run(
                    f"update {name} set message_key = ? where message_key in {_in(keys)}", [customer.surrogate, *keys]
                )
            if n:
                counts[label] = {"anonymised": n}
    return counts


def scrub_models(
    sql: Sql, customer: Customer, tables: dict[tuple[str, str], dict[str, str]], grain: set[str]
) -> Counts:
    """Every SQLMesh physical table (all snapshot versions) with a ``customer_id`` column."""
    counts: Counts = {}
    keys = list(customer.keys)
    for (schema, table), columns in sorted(tables.items()):
        if not schema.startswith(SQLMESH_SCHEMA_PREFIX) or CUSTOMER_COLUMN not in columns:
            continue
        counts[f"{schema}.{table}"] = _scrub_keyed(
            sql, Sql.name(schema, table), model_of(table) in grain, customer, keys
        )
    return counts


def scrub_published(sql: Sql, customer: Customer, schema: str, grain: set[str]) -> Counts:
    """A serving database: every table of ``schema`` (``gold``) with a ``customer_id`` column."""
    counts: Counts = {}
    keys = list(customer.keys)
    for (table_schema, table), columns in sorted(base_tables(sql, [schema]).items()):
        if CUSTOMER_COLUMN in columns:
            is_own = f"{table_schema}.{table}" in grain
            counts[f"{table_schema}.{table}"] = _scrub_keyed(sql, Sql.name(table_schema, table), is_own, customer, keys)
    return counts


def _scrub_keyed(sql: Sql, name: str, customer_grain: bool, customer: Customer, keys: list[str]) -> dict[str, int]:
    if customer_grain:
        return {"deleted": sql.run(f"delete from {name} where customer_id in {_in(keys)}", keys)}
    n = sql.run(f"update {name} set customer_id = ? where customer_id in {_in(keys)}", [customer.surrogate, *keys])
    return {"anonymised": n}


def scrub_meta_text(sql: Sql, customer: Customer, tables: dict[tuple[str, str], dict[str, str]]) -> Counts:
    """Text columns of the stage records in ``millpond_meta`` that mention the id (audit samples, ...)."""
    counts: Counts = {}
    for (schema, table), columns in sorted(tables.items()):
        if schema != META_SCHEMA or table in OWN_META_TABLES:
            continue
        n = 0
        for column, kind in columns.items():
            if kind in ("VARCHAR", "TEXT", "CHARACTER VARYING"):
                col = Sql.name(column)
                n += sql.run(
                    f"update {Sql.name(schema, table)} set {col} = replace({col}, ?, ?) where strpos({col}, ?) > 0",
                    [customer.id, customer.surrogate, customer.id],
                )
        if n:
            counts[f"{schema}.{table}"] = {"anonymised": n}
    return counts
