"""A real Superset (own venv, gunicorn) serving the committed dashboard bundle.

One session: build a serving DuckDB file with the gold tables and the quality history,
bootstrap Superset in a temporary data dir, start it on a free port, then check the API,
the numbers of both dashboards and a headless-Chromium rendering of each (saved to
``artifacts/superset-dashboard.png`` and ``artifacts/superset-data-quality.png``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from millpond.superset import server
from millpond.superset.bundle import SERVING_OPTIONS
from tests.support.superset import PROJECT_DIR, Instance

pytestmark = pytest.mark.superset

SLUG = "millpond-shop-overview"
CHARTS = {"Daily revenue", "Orders by status", "Events per day by type", "Total revenue"}
QUALITY_SLUG = "millpond-data-quality"
QUALITY_CHARTS = {"Checks not passing per run", "Latest outcome per check", "Row count per table"}
NOT_PASSING = {"fail", "warn", "error"}
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
ARTIFACT = PROJECT_DIR / "artifacts" / "superset-dashboard.png"
QUALITY_ARTIFACT = PROJECT_DIR / "artifacts" / "superset-data-quality.png"


def _charts(api: requests.Session, url: str, slug: str = SLUG) -> dict[str, dict[str, Any]]:
    resp = api.get(f"{url}/api/v1/dashboard/{slug}/charts", timeout=30)
    resp.raise_for_status()
    return {c["slice_name"]: c for c in resp.json()["result"]}


def _chart_data(api: requests.Session, url: str, chart_id: int) -> list[dict[str, Any]]:
    resp = api.get(f"{url}/api/v1/chart/{chart_id}/data/", timeout=60)
    assert resp.status_code == 200, resp.text[:500]
    (result,) = resp.json()["result"]
    assert result["status"] == "success", result
    return list(result["data"])


def test_bootstrap_is_idempotent_and_fast_when_warm(superset: Instance) -> None:
    log_file = superset.data_dir / "superset" / "bootstrap.log"
    before = log_file.read_text()
    started = time.monotonic()
    server.bootstrap(superset.settings)
    superset.timings["bootstrap_warm_s"] = time.monotonic() - started
    assert superset.timings["bootstrap_warm_s"] < 5
    assert log_file.read_text() == before  # no Superset command ran


def test_server_is_running_and_start_is_idempotent(superset: Instance) -> None:
    assert server.status(superset.settings) is True
    assert server.serve(superset.settings) == superset.url
    assert requests.get(f"{superset.url}/health", timeout=10).text == "OK"


def test_login_rejects_a_wrong_password(superset: Instance) -> None:
    resp = requests.post(
        f"{superset.url}/api/v1/security/login",
        json={"username": "analyst", "password": "wrong", "provider": "db", "refresh": False},
        timeout=30,
    )
    assert resp.status_code == 401


def test_dashboard_is_imported_with_its_charts(superset: Instance, api: requests.Session) -> None:
    resp = api.get(f"{superset.url}/api/v1/dashboard/{SLUG}", timeout=30)
    resp.raise_for_status()
    dashboard = resp.json()["result"]
    assert dashboard["dashboard_title"] == "Millpond — Shop overview"
    assert dashboard["published"] is True
    assert set(_charts(api, superset.url)) == CHARTS


def test_data_quality_dashboard_is_imported_with_its_charts(superset: Instance, api: requests.Session) -> None:
    resp = api.get(f"{superset.url}/api/v1/dashboard/{QUALITY_SLUG}", timeout=30)
    resp.raise_for_status()
    dashboard = resp.json()["result"]
    assert dashboard["dashboard_title"] == "Millpond — Data quality"
    assert dashboard["published"] is True
    assert set(_charts(api, superset.url, QUALITY_SLUG)) == QUALITY_CHARTS


def test_serving_database_is_read_only(superset: Instance, api: requests.Session) -> None:
    resp = api.get(f"{superset.url}/api/v1/database/", timeout=30)
    resp.raise_for_status()
    (database,) = [d for d in resp.json()["result"] if d["database_name"] == "serving"]
    assert database["allow_dml"] is False
    detail = api.get(f"{superset.url}/api/v1/database/{database['id']}/connection", timeout=30).json()
    assert detail["result"]["sqlalchemy_uri"] == f"duckdb:///{superset.serving}?{SERVING_OPTIONS}"

    def sql_lab(sql: str) -> requests.Response:
        return api.post(
            f"{superset.url}/api/v1/sqllab/execute/",
            json={"database_id": database["id"], "sql": sql, "runAsync": False, "schema": "gold"},
            timeout=60,
        )

    ok = sql_lab("SELECT sum(revenue) AS total FROM gold.agg_daily_revenue")
    assert ok.status_code == 200, ok.text[:500]
    assert Decimal(str(ok.json()["data"][0]["total"])) == superset.total_revenue
    refused = sql_lab("DELETE FROM gold.agg_daily_revenue")
    assert refused.status_code >= 400
    with duckdb.connect(str(superset.serving), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM gold.agg_daily_revenue").fetchone() == (7,)


def test_chart_data_matches_the_serving_file(superset: Instance, api: requests.Session, gold_serving: Any) -> None:
    charts = _charts(api, superset.url)
    expected_daily = gold_serving.daily_revenue(superset.serving)

    rows = _chart_data(api, superset.url, charts["Daily revenue"]["id"])
    got = {
        time.strftime("%Y-%m-%d", time.gmtime(row["order_date"] / 1000)): Decimal(str(row["Revenue"])) for row in rows
    }
    assert got == expected_daily

    (total,) = _chart_data(api, superset.url, charts["Total revenue"]["id"])
    assert Decimal(str(total["Revenue"])) == superset.total_revenue == sum(expected_daily.values())

    with duckdb.connect(str(superset.serving), read_only=True) as con:
        orders, events, event_types = con.execute(
            "SELECT (SELECT count(*) FROM gold.fct_orders), (SELECT sum(events) FROM gold.agg_daily_events),"
            " (SELECT count(DISTINCT event_type) FROM gold.agg_daily_events)"
        ).fetchone()  # type: ignore[misc]
    status_rows = _chart_data(api, superset.url, charts["Orders by status"]["id"])
    assert len(status_rows) == len(expected_daily)
    assert sum(v for row in status_rows for k, v in row.items() if k != "order_date" and v) == orders
    event_rows = _chart_data(api, superset.url, charts["Events per day by type"]["id"])
    assert len(event_rows[0]) == event_types + 1  # one series per event type + the date
    assert sum(v for row in event_rows for k, v in row.items() if k != "event_date" and v) == events


def _epoch_ms(value: Any) -> int:
    return int(value.timestamp() * 1000)


def test_quality_chart_data_matches_the_check_results(
    superset: Instance, api: requests.Session, gold_serving: Any
) -> None:
    charts = _charts(api, superset.url, QUALITY_SLUG)
    results = gold_serving.check_results(superset.serving)
    runs = sorted({_epoch_ms(r["checked_at"]) for r in results})
    assert len(runs) == 3

    not_passing: dict[int, dict[str, int]] = defaultdict(lambda: {"critical": 0, "warning": 0})
    row_counts: dict[int, dict[str, float]] = defaultdict(dict)
    for r in results:
        at = _epoch_ms(r["checked_at"])
        not_passing[at][r["severity"]] += r["outcome"] in NOT_PASSING
        if r["check_type"] == "row_count":
            row_counts[at][r["dataset"]] = r["measured_value"]
    assert [sum(not_passing[at].values()) for at in runs] == [0, 2, 1]  # the fixture is not trivial

    rows = _chart_data(api, superset.url, charts["Checks not passing per run"]["id"])
    assert {row.pop("checked_at"): row for row in rows} == not_passing

    rows = _chart_data(api, superset.url, charts["Row count per table"]["id"])
    assert {row.pop("checked_at"): row for row in rows} == row_counts

    latest = {}
    for r in results:  # ordered by checked_at: the last row of a check is its latest
        latest[(r["dataset"], r["check_name"], r["column_name"], r["severity"])] = (r["outcome"], r["measured_value"])
    rows = _chart_data(api, superset.url, charts["Latest outcome per check"]["id"])
    got = {
        (row["dataset"], row["check_name"], row["column_name"], row["severity"]): (
            row["latest_outcome"],
            row["latest_measured_value"],
        )
        for row in rows
    }
    assert got == latest
    assert rows[0]["latest_outcome"] == "warn"  # checks that did not pass come first
    assert {row["last_checked"] for row in rows} == {time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(runs[-1] / 1000))}


@contextmanager
def _logged_in_page(superset: Instance) -> Iterator[Any]:
    """A headless-Chromium page logged in as the admin."""
    if not CHROMIUM.exists():
        pytest.fail("chromium missing: run `make setup-browser`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1100})
            page.goto(f"{superset.url}/login/")
            page.fill("#username", superset.user)
            page.fill("#password", superset.password)
            page.click("button:has-text('Sign in')")
            # Wait for the redirect to commit, not for its "load": Chromium 156 reports no
            # lifecycle events to Playwright for a navigation started by a form POST.
            page.wait_for_url("**/superset/welcome/**", timeout=60_000, wait_until="commit")
            yield page
        finally:
            browser.close()


def _assert_png(path: Path, min_bytes: int) -> None:
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width >= 1600 and height >= 800
    assert len(png) > min_bytes  # charts with data, not a blank or error page


def test_dashboard_renders_in_headless_chromium(superset: Instance) -> None:
    started = time.monotonic()
    with _logged_in_page(superset) as page:
        page.goto(f"{superset.url}/superset/dashboard/{SLUG}/")
        # Three ECharts canvases plus the big number must be drawn, nothing still loading.
        page.wait_for_function(
            """() => {
                const holders = '.dashboard-component-chart-holder';
                return document.querySelectorAll(`${holders} .chart-container canvas`).length === 3
                    && document.querySelector(`${holders} .header-line`) !== null
                    && document.querySelectorAll(`${holders} .loading`).length === 0;
            }""",
            timeout=90_000,
        )
        page.wait_for_timeout(1500)  # let the chart animations finish before the screenshot
        big_number = page.inner_text(".dashboard-component-chart-holder .header-line")
        errors = page.locator(".dashboard-component-chart-holder [role='alert']").count()
        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACT), full_page=True)
    superset.timings["browser_s"] = time.monotonic() - started

    assert big_number.replace(",", "") == f"{superset.total_revenue:.2f}"
    assert errors == 0
    _assert_png(ARTIFACT, 60_000)


def test_data_quality_dashboard_renders_in_headless_chromium(superset: Instance, gold_serving: Any) -> None:
    checks = {(r["dataset"], r["check_name"], r["column_name"]) for r in gold_serving.check_results(superset.serving)}
    started = time.monotonic()
    with _logged_in_page(superset) as page:
        page.goto(f"{superset.url}/superset/dashboard/{QUALITY_SLUG}/")
        # Two ECharts canvases and the table with one row per check, nothing still loading.
        page.wait_for_function(
            """(checks) => {
                const holders = '.dashboard-component-chart-holder';
                return document.querySelectorAll(`${holders} .chart-container canvas`).length === 2
                    && document.querySelectorAll(`${holders} table tbody tr`).length === checks
                    && document.querySelectorAll(`${holders} .loading`).length === 0;
            }""",
            arg=len(checks),
            timeout=90_000,
        )
        page.wait_for_timeout(1500)  # let the chart animations finish before the screenshot
        first_row = page.inner_text(".dashboard-component-chart-holder table tbody tr")
        errors = page.locator(".dashboard-component-chart-holder [role='alert']").count()
        QUALITY_ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(QUALITY_ARTIFACT), full_page=True)
    superset.timings["browser_quality_s"] = time.monotonic() - started

    assert errors == 0
    assert "newest order_date is less than 48 hours old" in first_row and "warn" in first_row
    _assert_png(QUALITY_ARTIFACT, 40_000)
