"""No customer's personal data reaches a serving target, and the reader role reaches nothing else.

The real pipeline (generate → ``run_all``) publishes to the DuckDB serving file and to PostgreSQL;
then every column of every table in both targets, cast to text, is scanned for a value equal to
or containing a source customer's e-mail, phone, name or street (read from MongoDB). The scanner
itself is shown to find a leak (a table holding an e-mail), so a clean scan means something.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import psycopg
import pymongo
import pytest
from psycopg import sql
from pydantic import SecretStr

from millpond.generator import GeneratorConfig, generate
from millpond.services import PostgresCluster
from millpond.settings import Settings
from millpond.stages.run import run_all
from tests.support.pipelines import isolated_settings

CONFIG = GeneratorConfig(customers=40, products=10, orders_per_day=15, sessions_per_day=8, days=2)
RESTRICTED_SCHEMAS = ("bronze", "silver")  # the landed layer, and the warehouse's own layer
PG_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
PII_FIELDS = (("name",), ("email",), ("phone",), ("address", "street"))


class Match(NamedTuple):
    relation: str
    column: str
    value: str
    needle: str


def source_pii(cfg: Settings) -> set[str]:
    """Every customer's name, e-mail, phone and street at the source, lower-cased."""
    needles = set()
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        for customer in client[cfg.mongo_db].customers.find():
            for path in PII_FIELDS:
                value: Any = customer
                for key in path:
                    value = value.get(key) if isinstance(value, dict) else None
                if isinstance(value, str) and value.strip():
                    needles.add(value.strip().lower())
    return needles


def find_pii(columns: Iterator[tuple[str, str, list[str]]], needles: set[str]) -> tuple[list[Match], int]:
    """Matches of any needle in the text values of ``(relation, column, values)``; and how many columns were read."""
    matches, scanned = [], 0
    for relation, column, values in columns:
        scanned += 1
        for value in values:
            text = value.lower()
            matches.extend(Match(relation, column, value, n) for n in needles if n in text)
    return matches, scanned


def duckdb_columns(path: Path) -> Iterator[tuple[str, str, list[str]]]:
    """Every column of every table in the DuckDB file, its distinct values cast to text."""
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns"
            " where table_catalog = current_database() order by all"
        ).fetchall()
        for schema, table, column in columns:
            values = con.execute(
                f'select distinct cast("{column}" as varchar) from "{schema}"."{table}" where "{column}" is not null'
            ).fetchall()
            yield f"{schema}.{table}", column, [v for (v,) in values]


def postgres_columns(uri: str) -> Iterator[tuple[str, str, list[str]]]:
    """Every column of every table or view in the PostgreSQL database (system schemas aside), cast to text."""
    with psycopg.connect(uri) as conn:
        columns = conn.execute(
            "select n.nspname, c.relname, a.attname from pg_class c"
            " join pg_namespace n on n.oid = c.relnamespace"
            " join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped"
            " where c.relkind in ('r', 'v', 'm', 'p', 'f') and n.nspname <> all(%s) order by 1, 2, 3",
            [list(PG_SYSTEM_SCHEMAS)],
        ).fetchall()
        for schema, table, column in columns:
            query = sql.SQL("select distinct {col}::text from {rel} where {col} is not null").format(
                col=sql.Identifier(column), rel=sql.Identifier(schema, table)
            )
            yield f"{schema}.{table}", column, [v for (v,) in conn.execute(query).fetchall()]


def readable_outside(uri: str, role: str, published: set[str]) -> list[str]:
    """Relations outside the ``published`` schemas that ``role`` may SELECT from."""
    with psycopg.connect(uri) as conn:
        rows = conn.execute(
            "select n.nspname || '.' || c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
            " where c.relkind in ('r', 'v', 'm', 'p', 'f') and n.nspname <> all(%s)"
            " and has_table_privilege(%s, c.oid, 'SELECT') order by 1",
            [[*PG_SYSTEM_SCHEMAS, *published], role],
        ).fetchall()
    return [r[0] for r in rows]


def published_schemas(cfg: Settings) -> set[str]:
    """The schemas of the serving file: what a publish puts in front of readers."""
    with duckdb.connect(str(cfg.serving), read_only=True) as con:
        return {s for (s,) in con.execute("select distinct table_schema from information_schema.tables").fetchall()}


# -- the scanner can fail ----------------------------------------------------------------
def test_the_scanner_finds_an_email_in_a_duckdb_and_a_postgresql_table(tmp_path: Path, postgres) -> None:
    needles = {"ann.lee@example.com", "ann lee"}
    leaked = tmp_path / "leak.duckdb"
    with duckdb.connect(str(leaked)) as con:  # as if silver.stg_customers.email were published
        con.execute("create schema gold; create table gold.leak (customer_id varchar, email varchar, n int)")
        con.execute("insert into gold.leak values ('c1', ' Ann.Lee@Example.com ', 1), ('c2', null, 2)")
    matches, _ = find_pii(duckdb_columns(leaked), needles)
    assert [(m.relation, m.column, m.needle) for m in matches] == [("gold.leak", "email", "ann.lee@example.com")]

    uri = postgres.create_database(f"pii_scan_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(uri) as conn:
        conn.execute("create schema gold; create table gold.leak (note text, tags jsonb)")
        conn.execute("""insert into gold.leak values ('ok', '{"who": "Ann Lee"}')""")
    matches, _ = find_pii(postgres_columns(uri), needles)
    assert [(m.relation, m.column, m.needle) for m in matches] == [("gold.leak", "tags", "ann lee")]


# -- the real pipeline, both serving targets ---------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory, mongo, kafka, postgres: PostgresCluster):
    reader = f"pii_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(reader)))
    uri = postgres.create_database(f"serving_pii_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(uri, autocommit=True) as conn:  # a restricted table beside what publish will put there
        conn.execute("create schema bronze")
        conn.execute("create table bronze.mongo_customers as select 'landed@example.invalid'::text as email")
    cfg = isolated_settings(tmp_path_factory.mktemp("pii") / "data", mongo, kafka, "pii").model_copy(
        update={"serving_postgres_uri": SecretStr(uri), "serving_postgres_reader_role": reader}
    )
    with pymongo.MongoClient(cfg.mongo_uri, tz_aware=True) as client:
        generate(CONFIG, datetime.now(UTC).date() - timedelta(days=1), client[cfg.mongo_db], cfg.kafka_bootstrap,
                 cfg.topics.as_dict())  # fmt: skip
    run_all(cfg)
    return cfg, uri, reader


@pytest.mark.slow
def test_neither_serving_target_holds_a_customers_personal_data(served) -> None:
    cfg, uri, _reader = served
    needles = source_pii(cfg)
    assert len(needles) > 3 * CONFIG.customers  # names, e-mails, streets and most phones
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:  # the landed layer does hold them
        (landed,) = con.execute("select count(*) from bronze.mongo_customers where email is not null").fetchone()
    assert landed > 0

    for target, columns in (("serving file", duckdb_columns(cfg.serving)), ("PostgreSQL", postgres_columns(uri))):
        matches, scanned = find_pii(columns, needles)
        assert scanned > 20, f"{target}: only {scanned} columns scanned"
        assert not matches, f"{target} serves personal data: {matches[:5]}"

    assert "gold" in published_schemas(cfg)
    assert not published_schemas(cfg) & set(RESTRICTED_SCHEMAS), "the serving file holds no warehouse layer"


@pytest.mark.slow
def test_the_reader_role_reads_the_serving_schemas_and_nothing_else(served) -> None:
    cfg, uri, reader = served
    reader_uri = psycopg.conninfo.make_conninfo(uri, user=reader)
    with psycopg.connect(reader_uri) as conn:
        (orders,) = conn.execute("select count(*) from gold.fct_orders").fetchone()
    assert orders > 0

    # the restricted table that sat beside the publication stays out of reach
    assert readable_outside(uri, reader, published_schemas(cfg)) == []
    with psycopg.connect(reader_uri) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("select email from bronze.mongo_customers")

    # and the check can fail: a grant on it is reported
    with psycopg.connect(uri, autocommit=True) as conn:
        grant = sql.SQL("GRANT USAGE ON SCHEMA bronze TO {r}; GRANT SELECT ON bronze.mongo_customers TO {r}")
        conn.execute(grant.format(r=sql.Identifier(reader)))
        try:
            assert readable_outside(uri, reader, published_schemas(cfg)) == ["bronze.mongo_customers"]
        finally:
            conn.execute(sql.SQL("REVOKE ALL ON SCHEMA bronze FROM {r}").format(r=sql.Identifier(reader)))
            conn.execute(sql.SQL("REVOKE ALL ON bronze.mongo_customers FROM {r}").format(r=sql.Identifier(reader)))
