"""Write-audit-publish on the real pipeline: MongoDB + Kafka → ingest → transform → check → both serving targets.

One shop, one warehouse and one pair of serving targets for the module, in three steps that run in
order: bad data that passes the audits but fails a critical Soda check, then its fix, then bad data
that fails a blocking SQLMesh audit. After each failure neither serving target changes and a manual
``millpond publish`` is refused; the fix is published with its gold version in both manifests.

The blocking audits guard what the ingest edge already refuses (ingest/mongodb/contracts.py), so the
first step tampers with a landed row as a load that bypassed the edge would. The module's project
is a copy of the repository's SQLMesh project and contracts plus one contract of its own, a critical
ceiling on an order's total that the audits do not duplicate.
"""

from __future__ import annotations

import hashlib
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pymongo
import pytest
from pydantic import SecretStr

from millpond.errors import StageFailed
from millpond.generator import GeneratorConfig, generate
from millpond.settings import Settings
from millpond.stages import gold_version
from millpond.stages.check import run_checks
from millpond.stages.publish import run_publish
from millpond.stages.run import run_all
from tests.support.pipelines import isolated_settings

pytestmark = pytest.mark.slow
SHOP = GeneratorConfig(customers=20, products=6, orders_per_day=10, sessions_per_day=4, days=2)
PROJECT_ENTRIES = ("models", "macros", "audits", "linter", "checks", "config.yaml", "external_models.yaml")
CEILING = 1_000_000
ORDER_SIZE_CONTRACT = f"""\
# A critical check of this test only: no SQLMesh audit bounds an order's total.
dataset: millpond/gold/fct_orders
columns:
  - name: order_total
checks:
  - failed_rows:
      qualifier: order_ceiling
      name: no order totals more than {CEILING}
      expression: order_total > {CEILING}
"""


def _project(source: Path, target: Path) -> Path:
    for name in PROJECT_ENTRIES:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source / name, target / name)
    (target / "checks" / "contracts" / "wap_order_ceiling.yml").write_text(ORDER_SIZE_CONTRACT)
    return target


def _rows_digest(relations: list[str], query: Any) -> str:
    rows = [sorted(map(repr, query(f"select * from {relation}"))) for relation in sorted(relations)]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def serving_state(cfg: Settings) -> tuple[str, str]:
    """A digest of every published relation and manifest row, in the DuckDB file and in PostgreSQL."""
    with duckdb.connect(str(cfg.serving), read_only=True) as con:
        relations = [r[0] for r in con.execute("select relation from meta.publication").fetchall()]
        in_file = _rows_digest([*relations, "meta.publication"], lambda q: con.execute(q).fetchall())
    assert cfg.serving_postgres_uri is not None
    with psycopg.connect(cfg.serving_postgres_uri.get_secret_value()) as conn:
        in_postgres = _rows_digest([*relations, "meta.publication"], lambda q: conn.execute(q).fetchall())
    return in_file, in_postgres


def warehouse(cfg: Settings, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def assert_publish_refused(cfg: Settings) -> None:
    with pytest.raises(StageFailed, match=r"gold version [0-9a-f]{64} has no passing check record"):
        run_publish(cfg, "manual")


@pytest.fixture(scope="module")
def shop(tmp_path_factory, mongo, kafka, postgres):
    root = tmp_path_factory.mktemp("wap")
    cfg = isolated_settings(root / "data", mongo, kafka, "wap").model_copy(
        update={
            "project_dir": _project(Settings().project_dir, root / "project"),
            "serving_postgres_uri": SecretStr(postgres.create_database(f"serving_wap_{uuid.uuid4().hex[:8]}")),
        }
    )
    client = pymongo.MongoClient(cfg.mongo_uri, tz_aware=True)
    generate(SHOP, datetime.now(UTC).date() - timedelta(days=1), client[cfg.mongo_db], cfg.kafka_bootstrap,
             cfg.topics.as_dict())  # fmt: skip
    run_all(cfg)
    orders = client[cfg.mongo_db].orders
    yield cfg, orders, [o["_id"] for o in orders.find({"status": "paid"}).sort("_id").limit(2)]
    client.close()


def test_bad_data_that_fails_a_critical_soda_check_reaches_no_serving_target(shop):
    cfg, orders, (_tampered, big) = shop
    before = serving_state(cfg)
    orders.update_one({"_id": big}, {"$set": {"line_items.0.quantity": 500_000, "updated_at": datetime.now(UTC)}})

    with pytest.raises(StageFailed) as failed:
        run_all(cfg)
    message = str(failed.value)
    assert message.startswith("[check] critical checks failed on gold version")
    assert f"gold.fct_orders: 'no order totals more than {CEILING}' measured 1 (must be 0)" in message
    assert serving_state(cfg) == before
    assert_publish_refused(cfg)
    version = gold_version.fingerprint(lambda sql: warehouse(cfg, sql))
    failing = warehouse(
        cfg,
        "select contract, dataset, check_type, severity, outcome, measured_value, threshold from "
        "millpond_meta.quality_history where outcome <> 'pass' and gold_version = ?",
        [version],
    )
    assert failing == [("wap_order_ceiling", "gold.fct_orders", "failed_rows", "critical", "fail", 1.0, "must be 0")]
    (checked,) = warehouse(cfg, "select count(*) from millpond_meta.quality_history where gold_version = ?", [version])
    assert checked[0] > 10  # every check of every contract is kept, not only the failure


def test_fixed_data_passes_and_is_published_with_its_gold_version(shop):
    cfg, orders, (_tampered, big) = shop
    orders.update_one({"_id": big}, {"$set": {"line_items.0.quantity": 1, "updated_at": datetime.now(UTC)}})

    report = run_all(cfg)
    assert list(report.stages) == ["ingest", "transform", "check", "publish"]
    version = gold_version.fingerprint(lambda sql: warehouse(cfg, sql))
    assert report.stages["check"].gold_version == version
    assert {result.gold_version for result in report.stages["publish"]} == {version}
    with duckdb.connect(str(cfg.serving), read_only=True) as con:
        assert con.execute("select distinct gold_version, run_id from meta.publication").fetchall() == [
            (version, report.run_id)
        ]
        in_file = con.execute(
            "select count(*), count(distinct run_id) from quality.check_results where gold_version = ?", [version]
        ).fetchone()
        assert con.execute("select count(*) from gold.fct_orders where order_total > ?", [CEILING]).fetchone() == (0,)
    assert cfg.serving_postgres_uri is not None
    with psycopg.connect(cfg.serving_postgres_uri.get_secret_value()) as conn:
        assert conn.execute("select distinct gold_version from meta.publication").fetchall() == [(version,)]
        in_postgres = conn.execute(
            "select count(*), count(distinct run_id) from quality.check_results where gold_version = %s", [version]
        ).fetchone()
    assert in_file == in_postgres and in_file is not None and in_file[0] > 10


def test_bad_data_that_fails_a_blocking_audit_reaches_no_serving_target(shop):
    cfg, _orders, (tampered, _big) = shop
    before = serving_state(cfg)
    load_id = f"{time.time():.6f}"
    with duckdb.connect(str(cfg.warehouse)) as con:  # a load that bypassed the ingest edge
        con.execute(
            "insert into bronze._dlt_loads select * replace (? as load_id) from bronze._dlt_loads "
            "order by inserted_at desc limit 1",
            [load_id],
        )
        con.execute(
            "update bronze.mongo_orders set status = 'teleported', _dlt_load_id = ? where _id = ?",
            [load_id, str(tampered)],
        )

    with pytest.raises(StageFailed, match=r"\[transform\] SQLMesh failed: .*audit accepted_values"):
        run_all(cfg)
    assert serving_state(cfg) == before
    record = warehouse(cfg, f"select audits_passed from {gold_version.GOLD_AUDITS} order by recorded_at desc limit 1")
    assert record == [(False,)]
    assert_publish_refused(cfg)
    with pytest.raises(StageFailed, match="has no passing audit record"):
        run_checks(cfg)
    assert_publish_refused(cfg)
    assert serving_state(cfg) == before
