"""Erasure end to end on the real pipeline (mongod + Kafka): one customer out of everything, for good.

A shop is run (both serving targets), customer X is erased: X's id, name and e-mail appear in no
table of the warehouse (landed, dead letters, silver, gold with every SCD version), of either
serving target, nor in dlt's state or working dir, and revenue is unchanged. Then X's document
changes at the source (CDC), both collections are re-snapshotted, and the pipeline runs again:
X still appears nowhere, and the audit table holds X's request once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pymongo
import pytest
from dlt.common.versioned_state import decompress_state
from pydantic import SecretStr

from millpond.generator import GeneratorConfig, generate
from millpond.settings import Settings
from millpond.stages import erasure_registry
from millpond.stages.erasure import erase
from millpond.stages.erasure_keys import customer_hash, pii_salt
from millpond.stages.run import run_all
from millpond.stages.source_admin import mongo_resnapshot
from tests.support.pipelines import isolated_settings

pytestmark = pytest.mark.slow
CONFIG = GeneratorConfig(customers=25, products=8, orders_per_day=15, sessions_per_day=6, days=3)
TODAY = datetime.now(UTC).date()
TEXT_TYPES = ("VARCHAR", "JSON", "TEXT", "CHARACTER VARYING", "JSONB")


def _duckdb_hits(path: Path, needles: list[str]) -> list[str]:
    """``schema.table.column`` of every text column of the DuckDB file holding one of ``needles``."""
    hits = []
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "select c.table_schema, c.table_name, c.column_name, c.data_type from information_schema.columns c "
            "join information_schema.tables t using (table_catalog, table_schema, table_name) "
            "where t.table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, table, column, kind in columns:
            if str(kind).upper() not in TEXT_TYPES:
                continue
            for needle in needles:
                (n,) = con.execute(
                    f'select count(*) from "{schema}"."{table}" where strpos("{column}"::varchar, ?) > 0', [needle]
                ).fetchone()
                if n:
                    hits.append(f"{schema}.{table}.{column}")
    return hits


def _postgres_hits(uri: str, needles: list[str]) -> list[str]:
    hits = []
    with psycopg.connect(uri) as conn:
        columns = conn.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_schema in ('gold', 'meta') and data_type in ('text', 'jsonb', 'character varying')"
        ).fetchall()
        for schema, table, column in columns:
            for needle in needles:
                row = conn.execute(
                    f'select count(*) from "{schema}"."{table}" where strpos("{column}"::text, %s) > 0', [needle]
                ).fetchone()
                if row and row[0]:
                    hits.append(f"{schema}.{table}.{column}")
    return hits


def _dlt_hits(cfg: Settings, needles: list[str]) -> list[str]:
    """Files under dlt's dir, and stored state versions, that hold a needle."""
    hits = [
        str(path)
        for path in cfg.dlt_dir.rglob("*")
        if path.is_file() and any(n.encode() in path.read_bytes() for n in needles)
    ]
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        for version, blob in con.execute("select version, state from bronze._dlt_pipeline_state").fetchall():
            text = repr(decompress_state(blob))
            hits += [f"_dlt_pipeline_state v{version}" for n in needles if n in text]
    return hits


def appears_in(cfg: Settings, uri: str, needles: list[str]) -> list[str]:
    return [
        *_duckdb_hits(cfg.warehouse, needles),
        *_duckdb_hits(cfg.serving, needles),
        *_postgres_hits(uri, needles),
        *_dlt_hits(cfg, needles),
    ]


def revenue(cfg: Settings) -> Decimal:
    with duckdb.connect(str(cfg.serving), read_only=True) as con:
        return con.execute("select sum(revenue) from gold.agg_daily_revenue").fetchone()[0]


@pytest.fixture(scope="module")
def shop(tmp_path_factory, mongo, kafka, postgres):
    base = isolated_settings(tmp_path_factory.mktemp("erasure") / "data", mongo, kafka, "erasure")
    uri = postgres.create_database(f"serving_erasure_{uuid.uuid4().hex[:8]}")
    cfg = base.model_copy(update={"serving_postgres_uri": SecretStr(uri), "pii_salt": SecretStr("erasure-test-salt")})
    client = pymongo.MongoClient(cfg.mongo_uri, tz_aware=True)
    db = client[cfg.mongo_db]
    generate(CONFIG, TODAY - timedelta(days=1), db, cfg.kafka_bootstrap, cfg.topics.as_dict())
    run_all(cfg)
    yield cfg, uri, db
    client.close()


def _customer_with_orders_and_clicks(cfg: Settings) -> str:
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        return con.execute(
            "select o.customer_id from bronze.mongo_orders o join bronze.kafka_clickstream k "
            "on json_extract_string(k.payload, '$.customer_id') = o.customer_id "
            "group by 1 order by count(*) desc, 1 limit 1"
        ).fetchone()[0]


def test_an_erased_customer_is_nowhere_and_never_comes_back(shop):
    cfg, uri, db = shop
    customer_id = _customer_with_orders_and_clicks(cfg)
    doc = db.customers.find_one({"_id": customer_id})
    needles = [customer_id, doc["name"], doc["email"]]
    assert _duckdb_hits(cfg.warehouse, [customer_id]), "the customer must be there before the erasure"
    total = revenue(cfg)

    result = erase(cfg, customer_id, requested_by="dpo@example.com", reason="GDPR art. 17")
    assert result["already_erased"] is False and result["completed_at"]
    surrogate = result["surrogate"]
    assert surrogate.startswith("erased-") and customer_id not in surrogate
    assert result["affected"]["warehouse"]["bronze.mongo_customers"] == {"deleted": 1}
    assert result["affected"]["warehouse"]["bronze.mongo_orders"]["anonymised"] > 0
    own = {
        t.split(".")[1].rsplit("__", 1)[0]: c
        for t, c in result["affected"]["warehouse"].items()
        if t.startswith("sqlmesh__")
    }
    assert set(own["silver__stg_customers"]) == set(own["gold__dim_customers"]) == {"deleted"}  # all SCD versions
    assert own["gold__fct_orders"]["anonymised"] > 0
    assert appears_in(cfg, uri, needles) == []
    assert revenue(cfg) == total  # the facts stay, under the surrogate
    with duckdb.connect(str(cfg.serving), read_only=True) as con:
        assert con.execute("select count(*) from gold.fct_orders where customer_id = ?", [surrogate]).fetchone()[0]

    # the customer changes at the source (a change event), both collections are re-snapshotted
    db.customers.update_one({"_id": customer_id}, {"$set": {"segment": "corporate", "updated_at": datetime.now(UTC)}})
    run_all(cfg)
    mongo_resnapshot(cfg, "customers")
    mongo_resnapshot(cfg, "orders")
    run_all(cfg)
    assert appears_in(cfg, uri, needles) == []
    assert revenue(cfg) == total

    again = erase(cfg, customer_id, requested_by="dpo@example.com")
    assert again["already_erased"] is True and again["request_id"] == result["request_id"]
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        rows = con.execute(f"select customer_hash, requested_by from {erasure_registry.REQUESTS}").fetchall()
    assert rows == [(customer_hash(pii_salt(cfg), customer_id), "dpo@example.com")]
    assert all(customer_id not in str(value) for row in rows for value in row)


def test_a_request_killed_after_registering_is_completed_by_the_next_run(shop):
    cfg, uri, db = shop
    other = next(c["_id"] for c in db.customers.find().sort("_id", 1) if _duckdb_hits(cfg.warehouse, [c["_id"]]))
    with duckdb.connect(str(cfg.warehouse)) as con:  # the request registered, nothing scrubbed yet
        erasure_registry.open_request(con, customer_hash(pii_salt(cfg), other), "dpo@example.com", None)
    run_all(cfg)  # even before the operator re-runs it, new loads of the customer are scrubbed
    result = erase(cfg, other, requested_by="dpo@example.com")
    assert result["resumed"] is True and result["completed_at"]
    assert appears_in(cfg, uri, [other]) == []
