"""SQL Lab on the ``serving`` database reaches the serving file and nothing else.

Through the running Superset's SQL Lab API, as an analyst would type them: reading a file of the
data dir, attaching the warehouse, listing the data dir, switching external access back on,
writing a file and installing or loading an extension are all refused by DuckDB itself, while a
query on a gold table answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from tests.support.superset import Instance

pytestmark = pytest.mark.superset

SECRET = "sql-lab-must-not-read-this"
# DuckDB's own refusals: external access disabled, configuration locked.
REFUSED = re.compile(r"disabled (by|through) configuration|configuration has been locked")


@dataclass
class Bait:
    """Files beside the serving data that SQL Lab must not reach."""

    data_dir: Path
    env_file: Path
    warehouse: Path
    extension: Path
    written: Path


@pytest.fixture(scope="session")
def bait(superset: Instance) -> Bait:
    data_dir = superset.data_dir
    env_file = data_dir / "demo.env"
    env_file.write_text(f"MILLPOND_SUPERSET_ADMIN_PASSWORD={SECRET}\n", encoding="utf-8")
    warehouse = data_dir / "warehouse" / "millpond.duckdb"
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA bronze; CREATE TABLE bronze.mongo_customers AS SELECT ? AS email", [SECRET])
    extension = data_dir / "evil.duckdb_extension"
    extension.write_bytes(b"\0" * 512)
    return Bait(data_dir, env_file, warehouse, extension, data_dir / "written-by-sql-lab.csv")


def _serving_id(api: requests.Session, url: str) -> int:
    resp = api.get(f"{url}/api/v1/database/", timeout=30)
    resp.raise_for_status()
    (database,) = [d for d in resp.json()["result"] if d["database_name"] == "serving"]
    return int(database["id"])


def _sql_lab(superset: Instance, api: requests.Session, sql: str) -> requests.Response:
    return api.post(
        f"{superset.url}/api/v1/sqllab/execute/",
        json={"database_id": _serving_id(api, superset.url), "sql": sql, "runAsync": False, "schema": "gold"},
        timeout=60,
    )


def _error(resp: requests.Response) -> str:
    body: dict[str, Any] = resp.json()
    return " | ".join(str(e.get("message", e)) for e in body.get("errors", [])) or str(body.get("message", body))


ATTEMPTS = {
    "read_text": "SELECT content FROM read_text('{env_file}')",
    "read_csv": "SELECT * FROM read_csv('{env_file}')",
    "attach": "ATTACH '{warehouse}' AS wh (READ_ONLY)",
    "glob": "SELECT * FROM glob('{data_dir}/**')",
    "set": "SET enable_external_access = true",
    "allowed_directories": "SET allowed_directories = ['/']",
    "copy": "COPY (SELECT 1) TO '{written}'",
    "install": "INSTALL httpfs",
    "load": "LOAD '{extension}'",
}


@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_sql_lab_cannot_reach_files(superset: Instance, api: requests.Session, bait: Bait, attempt: str) -> None:
    sql = ATTEMPTS[attempt].format(**vars(bait))
    resp = _sql_lab(superset, api, sql)
    assert resp.status_code != 200, f"{sql!r} succeeded: {resp.text[:500]}"
    assert SECRET not in resp.text
    assert REFUSED.search(_error(resp)), f"{sql!r} failed, but not by DuckDB's refusal: {_error(resp)[:500]}"
    assert not bait.written.exists()


def test_sql_lab_still_queries_the_gold_tables(superset: Instance, api: requests.Session) -> None:
    resp = _sql_lab(superset, api, "SELECT sum(revenue) AS total FROM gold.agg_daily_revenue")
    assert resp.status_code == 200, resp.text[:500]
    assert Decimal(str(resp.json()["data"][0]["total"])) == superset.total_revenue
    settings = _sql_lab(
        superset,
        api,
        "SELECT current_setting('enable_external_access') AS external, current_setting('lock_configuration') AS locked",
    )
    assert settings.status_code == 200, settings.text[:500]
    assert settings.json()["data"] == [{"external": False, "locked": True}]


def test_a_duckdb_connection_without_the_locks_cannot_be_added(superset: Instance, api: requests.Session) -> None:
    resp = api.post(
        f"{superset.url}/api/v1/database/",
        json={"database_name": "unlocked", "sqlalchemy_uri": "duckdb:///:memory:", "expose_in_sqllab": True},
        timeout=60,
    )
    names = [d["database_name"] for d in api.get(f"{superset.url}/api/v1/database/", timeout=30).json()["result"]]
    assert resp.status_code >= 400, resp.text[:500]
    assert "enable_external_access=false" in resp.text, resp.text[:500]
    assert names == ["serving"]
