"""``millpond erase``: remove or irreversibly anonymise one customer everywhere Millpond holds them.

Under the pipeline lock, in this order (docs/governance/erasure.md):

1. register the request in ``millpond_meta.erasure_requests`` (salted hash of the id, never the id),
   so even a request killed half-way is re-applied to whatever lands later;
2. finish dlt's pending packages, so nothing of the customer is still on its way in;
3. the warehouse: the landed tables, the dead letters, every SQLMesh physical table of silver and
   gold in every snapshot version, the stage records (:mod:`millpond.stages.erasure_scrub`);
4. dlt's state and working dir (:mod:`millpond.stages.erasure_state`);
5. both serving targets, directly, so consumers stop seeing the customer now, not at the next publish;
6. mark the request completed. A completed request run again is a no-op that records nothing.

Each step is idempotent and adds what it changed to the request's ``affected``, so a killed
request is completed by running the command again. Later loads are scrubbed by
:func:`reapply` (``millpond/stages/landed_policies.py`` calls it after every ingest and before
every transform).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ingest.dead_letter import TABLE as DEAD_LETTERS
from millpond import logs
from millpond.errors import MillpondError
from millpond.locking import pipeline_lock
from millpond.settings import Settings
from millpond.stages import erasure_registry as registry
from millpond.stages.erasure_keys import customer_hash, pii_salt
from millpond.stages.erasure_scrub import (
    CUSTOMER_COLUMN,
    CUSTOMERS_TABLE,
    Counts,
    Customer,
    Sql,
    base_tables,
    scrub_landed,
    scrub_meta_text,
    scrub_models,
    scrub_published,
)
from millpond.stages.erasure_state import (
    delete_loaded_packages,
    scrub_local_state,
    scrub_stored_states,
)

log = logs.get(__name__)
PUBLISHED_SCHEMA = "gold"
WAREHOUSE = "warehouse"
DLT_STATE = "dlt_state"


def require_duckdb(settings: Settings, command: str) -> None:
    if settings.warehouse_engine != "duckdb":
        raise MillpondError(
            f"{command} supports the DuckDB warehouse only (MILLPOND_WAREHOUSE_ENGINE={settings.warehouse_engine})",
            stage=command,
            hint="see docs/governance/erasure.md and docs/governance/retention.md",
        )


def duckdb_sql(con: duckdb.DuckDBPyConnection) -> Sql:
    def run(statement: str, params: list[Any]) -> int:
        row = con.execute(statement, params).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def query(statement: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return con.execute(statement, params).fetchall()

    return Sql(run, query)


def customer_keys(salt: bytes, customer_id: str) -> tuple[str, ...]:
    """The values that stand for the customer: the id, then its salted hash (a pseudonymised key)."""
    return (customer_id, customer_hash(salt, customer_id))


def customer_grain_models(settings: Settings) -> set[str]:
    """``schema.name`` of the models that hold the customer's own records: models whose grain contains
    ``customer_id`` and that are built from the customer document through such models only
    (``bronze.mongo_customers`` -> ``silver.stg_customers`` -> ``gold.dim_customers``).

    A customer-grain model built from facts (``customer_rfm``, from the orders) keeps its row under
    the surrogate, as its next rebuild from the anonymised facts makes it.
    """
    from sqlglot import exp

    from millpond.stages.restatement import short_name
    from millpond.stages.transform import sqlmesh_context

    ctx = sqlmesh_context(settings)
    try:
        own = {fqn for fqn in ctx.models if short_name(fqn) == f"bronze.{CUSTOMERS_TABLE}"}
        for fqn in ctx.dag.sorted:
            model = ctx.models.get(fqn)
            if model is None or model.kind.is_external:
                continue
            parents = set(ctx.dag.graph.get(fqn, ()))
            grain = {column.name for g in model.grains for column in g.find_all(exp.Column)}
            if CUSTOMER_COLUMN in grain and parents & own:
                own.add(fqn)
        return {short_name(fqn) for fqn in own}
    finally:
        ctx.close()


def erase(settings: Settings, customer_id: str, requested_by: str, reason: str | None = None) -> dict[str, Any]:
    """Erase ``customer_id`` (see the module docstring); the request as recorded."""
    require_duckdb(settings, "erase")
    customer_id, requested_by = customer_id.strip(), requested_by.strip()
    if not customer_id or not requested_by:
        raise MillpondError("a customer id and --requested-by are required", stage="erase")
    salt = pii_salt(settings)
    key = customer_hash(salt, customer_id)
    with pipeline_lock(settings.data_dir, "erase", timeout_s=settings.lock_timeout_s):
        settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(settings.warehouse)) as con:
            registry.ensure(con)
            request = registry.find(con, key)
            if request is not None and request.completed_at is not None:
                log.info("erase.already_done", request_id=request.request_id)
                return {"already_erased": True, **request.as_dict()}
            resumed = request is not None
            request = request or registry.open_request(con, key, requested_by, reason)
        log.info("erase.start", request_id=request.request_id, resumed=resumed)
        customer = Customer(customer_keys(salt, customer_id), request.surrogate)
        _erase_everywhere(settings, request, customer)
    log.info("erase.done", request_id=request.request_id, affected=request.affected)
    return {"already_erased": False, "resumed": resumed, **request.as_dict()}


def _erase_everywhere(settings: Settings, request: registry.ErasureRequest, customer: Customer) -> None:
    from millpond.stages.ingest import finish_pending_packages, make_pipeline

    pipeline = make_pipeline(settings)
    finish_pending_packages(pipeline, settings, "erase")
    grain = customer_grain_models(settings)
    with duckdb.connect(str(settings.warehouse)) as con:
        sql = duckdb_sql(con)
        tables = base_tables(sql)
        steps: list[Callable[[], Counts]] = [
            lambda: scrub_landed(sql, customer, tables),
            lambda: scrub_models(sql, customer, tables, grain),
            lambda: scrub_meta_text(sql, customer, tables),
        ]
        for step in steps:
            con.execute("begin")
            registry.add_affected(con, request, WAREHOUSE, step())
            con.execute("commit")
    matches = set(customer.keys).__contains__
    in_state = scrub_local_state(pipeline, matches, [customer.id])
    with duckdb.connect(str(settings.warehouse)) as con:
        stored = scrub_stored_states(con, matches, [customer.id])
        packages = delete_loaded_packages(Path(pipeline.working_dir))
        registry.add_affected(
            con,
            request,
            DLT_STATE,
            {
                "pipeline state": {"anonymised": in_state},
                "bronze._dlt_pipeline_state": {"anonymised": stored},
                "loaded packages": {"deleted": packages},
            },
        )
    for name, counts in scrub_serving(settings, customer, grain).items():
        with duckdb.connect(str(settings.warehouse)) as con:
            registry.add_affected(con, request, name, counts)
    with duckdb.connect(str(settings.warehouse)) as con:
        registry.complete(con, request)


def scrub_serving(settings: Settings, customer: Customer, grain: set[str]) -> dict[str, Counts]:
    """Scrub both serving targets in place of a publish: the DuckDB file and, when configured, PostgreSQL."""
    out = {str(settings.serving): scrub_serving_file(settings.serving, customer, grain)}
    if settings.serving_postgres_uri is not None:
        from millpond.serving import PostgresServingTarget

        target = PostgresServingTarget(
            settings.serving_postgres_uri.get_secret_value(), timeout_s=settings.io_timeout_s
        )
        out[target.name] = scrub_serving_postgres(target.uri, customer, grain, settings.io_timeout_s)
    return out


def scrub_serving_file(path: Path, customer: Customer, grain: set[str]) -> Counts:
    """A scrubbed copy of the serving file renamed over it: readers see the old file or the new one, whole."""
    if not path.exists():
        return {}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.erase.tmp")  # a publish removes it if this one is killed
    shutil.copyfile(path, tmp)
    try:
        with duckdb.connect(str(tmp)) as con:
            sql = duckdb_sql(con)
            counts = scrub_published(sql, customer, PUBLISHED_SCHEMA, grain)
            _recount(sql, counts)
            con.execute("checkpoint")
        if any(n for c in counts.values() for n in c.values()):
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return counts


def scrub_serving_postgres(uri: str, customer: Customer, grain: set[str], timeout_s: float) -> Counts:
    """The PostgreSQL serving database, in one transaction."""
    import psycopg

    def run(statement: str, params: list[Any]) -> int:
        with conn.cursor() as cur:
            cur.execute(statement.replace("?", "%s"), params)
            return int(cur.rowcount)

    def query(statement: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(statement.replace("?", "%s"), params)
            return list(cur.fetchall())

    with (
        psycopg.connect(uri, connect_timeout=max(1, int(timeout_s)), options="-c TimeZone=UTC") as conn,
        conn.transaction(),
    ):
        sql = Sql(run, query)
        counts = scrub_published(sql, customer, PUBLISHED_SCHEMA, grain)
        _recount(sql, counts)
    return counts


def _recount(sql: Sql, counts: Counts) -> None:
    """Keep the publication manifest's row counts true for the tables rows were deleted from."""
    if not sql.query(
        "select 1 from information_schema.tables where table_schema = 'meta' and table_name = 'publication'", []
    ):
        return
    for relation, c in counts.items():
        if c.get("deleted"):
            schema, table = relation.split(".", 1)
            (n,) = sql.query(f"select count(*) from {Sql.name(schema, table)}", [])[0]
            sql.run("update meta.publication set row_count = ? where relation = ?", [int(n), relation])


@dataclass
class Reapplied:
    """What :func:`reapply` found: the registered customers among the new rows, and what it changed."""

    ids: list[str] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)
    affected: dict[str, Counts] = field(default_factory=dict)


def reapply(settings: Settings, con: duckdb.DuckDBPyConnection) -> Reapplied:
    """Scrub the landed rows of registered customers loaded since the last check.

    The registry holds salted hashes only: the customer values of the new rows (ids, order and
    event ``customer_id``, dead-letter keys and the ids their raw values name) are hashed and
    compared. Matched rows are scrubbed as :func:`erase` scrubs the landed layer; the caller
    scrubs dlt's state and loaded packages (:func:`reapply_to_dlt`) once this connection is closed.
    """
    found = Reapplied(hashes=registry.registered(con))
    if not found.hashes or not _has_table(con, "bronze", "_dlt_loads"):
        return found
    newest = con.execute(
        "select load_id from bronze._dlt_loads where status = 0 order by try_cast(load_id as double) desc limit 1"
    ).fetchone()
    mark = registry.reapplied_mark(con)
    if newest is None or str(newest[0]) == mark:
        return found
    salt = pii_salt(settings)
    sql = duckdb_sql(con)
    tables = base_tables(sql)
    for value in sorted(_new_customer_values(con, tables, mark or "0")):
        surrogate = found.hashes.get(customer_hash(salt, value))
        if surrogate is None:
            continue
        found.ids.append(value)
        counts = scrub_landed(sql, Customer(customer_keys(salt, value), surrogate), tables)
        found.affected[surrogate] = {t: c for t, c in counts.items() if any(c.values())}
    registry.save_reapplied_mark(con, str(newest[0]))
    if found.ids:
        log.warning("erasure.reapplied", customers=len(found.ids), affected=found.affected)
    return found


def reapply_to_dlt(settings: Settings, found: Reapplied) -> None:
    """After :func:`reapply` matched new rows: the same customers out of dlt's state, stored states and packages."""
    if not found.ids:
        return
    from millpond.stages.ingest import make_pipeline

    salt = pii_salt(settings)
    hashes = found.hashes

    def matches(value: str) -> bool:
        return customer_hash(salt, value) in hashes

    pipeline = make_pipeline(settings)
    scrub_local_state(pipeline, matches, found.ids)
    with duckdb.connect(str(settings.warehouse)) as con:
        scrub_stored_states(con, matches, found.ids)
    delete_loaded_packages(Path(pipeline.working_dir))


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
    ).fetchone()
    return bool(row and row[0])


_RAW_IDS = r'"(?:_id|customer_id)"\s*:\s*"([^"]*)"'


def _new_customer_values(
    con: duckdb.DuckDBPyConnection, tables: dict[tuple[str, str], dict[str, str]], mark: str
) -> set[str]:
    """Every value that may be a customer id in the landed rows of loads after ``mark``."""
    values: set[str] = set()
    new = "try_cast(_dlt_load_id as double) > try_cast(? as double)"
    for (schema, table), columns in tables.items():
        if schema != "bronze" or "_dlt_load_id" not in columns:
            continue
        expressions = []
        if table == CUSTOMERS_TABLE:
            expressions.append("_id")
        if CUSTOMER_COLUMN in columns:
            expressions.append(CUSTOMER_COLUMN)
        if "payload" in columns:
            expressions.append("json_extract_string(payload, '$.customer_id')")
        if "message_key" in columns:
            expressions.append("message_key")
        if table == DEAD_LETTERS:
            expressions += ["record_key", f"unnest(regexp_extract_all(raw_value, '{_RAW_IDS}', 1))"]
        for expression in expressions:
            rows = con.execute(f"select distinct {expression} from {Sql.name(schema, table)} where {new}", [mark])
            values |= {str(r[0]) for r in rows.fetchall() if r[0] is not None}
    return values
