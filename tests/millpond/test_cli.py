"""The command line, in-process (click's runner) against real services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from millpond.cli import cli
from millpond.errors import MillpondError
from tests.support.pipelines import pipeline_env
from tests.support.ports import free_port


def invoke(env: dict[str, str], *args: str):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_services_up_status_down(tmp_path: Path):
    env = {
        "MILLPOND_DATA_DIR": str(tmp_path),
        "MILLPOND_MONGO_PORT": str(free_port()),
        "MILLPOND_KAFKA_PORT": str(free_port()),
    }
    try:
        up = invoke(env, "services", "up")
        assert up.exit_code == 0, up.output
        assert set(json.loads(up.stdout)) == {"mongodb", "kafka"}
        assert json.loads(invoke(env, "services", "status").stdout) == {"mongodb": True, "kafka": True}
    finally:
        down_result = invoke(env, "services", "down")
    assert json.loads(down_result.stdout) == {"mongodb": "stopped", "kafka": "stopped"}
    down = invoke(env, "services", "status")
    assert down.exit_code == 1
    assert json.loads(down.stdout) == {"mongodb": False, "kafka": False}


def test_generate_ingest_and_increment_through_the_cli(make_settings):
    cfg = make_settings("cli")
    env = pipeline_env(cfg)
    knobs = ["--customers", "20", "--products", "5", "--orders-per-day", "5", "--sessions-per-day", "2", "--days", "2"]
    first = invoke(env, "generate", *knobs, "--end-date", "2026-03-02")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["as_of"] == "2026-03-02"
    inc = invoke(env, "generate", *knobs, "--increment")
    assert json.loads(inc.stdout)["as_of"] == "2026-03-03"
    loaded = invoke(env, "ingest")
    assert loaded.exit_code == 0, loaded.output
    rows = json.loads(loaded.stdout)["rows"]
    assert rows["mongo_customers"] >= 20 and rows["kafka_clickstream"] > 0
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        assert con.execute("select count(*) from bronze.mongo_orders").fetchone()[0] == rows["mongo_orders"]


def test_increment_without_history_is_a_clear_error(make_settings):
    result = CliRunner().invoke(cli, ["generate", "--increment"], env=pipeline_env(make_settings("empty")))
    assert isinstance(result.exception, MillpondError)
    assert result.exception.stage == "generate"
    assert "needs a first generation step" in str(result.exception)


def test_serve_requires_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MILLPOND_SUPERSET_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("MILLPOND_SUPERSET_SECRET_KEY", raising=False)
    result = CliRunner().invoke(cli, ["serve"], env={"MILLPOND_DATA_DIR": str(tmp_path)})
    assert result.exit_code != 0
    assert "MILLPOND_SUPERSET_ADMIN_PASSWORD and MILLPOND_SUPERSET_SECRET_KEY must be set" in str(result.exception)


def test_a_missing_superset_install_is_one_clear_line_and_exit_1(tmp_path: Path):
    env = {
        **os.environ,
        "MILLPOND_DATA_DIR": str(tmp_path),
        "MILLPOND_SUPERSET_VENV": str(tmp_path / "no-venv"),
        "MILLPOND_SUPERSET_ADMIN_PASSWORD": "pw-for-the-test",
        "MILLPOND_SUPERSET_SECRET_KEY": "k" * 32,
        "MILLPOND_LOG_FORMAT": "json",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "millpond", "serve"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        f"error: [serve] Superset is not installed in {tmp_path / 'no-venv'}; run `make setup-superset`"
    )


def test_a_data_dir_that_cannot_be_created_is_one_clear_line_and_exit_1(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = {**os.environ, "MILLPOND_DATA_DIR": str(blocker / "data"), "MILLPOND_LOG_FORMAT": "json"}
    proc = subprocess.run(
        [sys.executable, "-m", "millpond", "publish"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.splitlines()[-1]
    assert last.startswith("error: [io] Not a directory: ")
    assert str(blocker) in last
    assert "MILLPOND_DATA_DIR" in last


def _produce_poison(cfg) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": cfg.kafka_bootstrap})
    producer.produce(cfg.topics.payments, value=b"{not json")
    assert producer.flush(30) == 0


def test_ingest_exits_3_on_dead_letters_only_when_asked(make_settings):
    cfg = make_settings("exit")
    env = pipeline_env(cfg)
    knobs = ["--customers", "20", "--products", "5", "--orders-per-day", "5", "--sessions-per-day", "2", "--days", "2"]
    assert invoke(env, "generate", *knobs, "--end-date", "2026-03-02").exit_code == 0
    _produce_poison(cfg)
    first = CliRunner().invoke(cli, ["ingest"], env=env)
    assert first.exit_code == 0, first.output  # quarantined records do not fail the run by default
    summary = json.loads(first.stdout)
    assert summary["dead_letters"] == sum(n for c in summary["quarantined"].values() for n in c.values()) > 0
    assert invoke(env, "generate", *knobs, "--increment").exit_code == 0
    _produce_poison(cfg)
    second = CliRunner().invoke(cli, ["ingest", "--fail-on-dead-letters"], env=env)
    assert second.exit_code == 3, second.output
    assert "quarantined in bronze.dead_letter" in second.stderr
    assert json.loads(second.stdout)["dead_letters"] > 0  # the summary is still printed
    third = CliRunner().invoke(cli, ["ingest", "--fail-on-dead-letters"], env=env)
    assert third.exit_code == 0  # nothing new, nothing quarantined by this run


def test_source_admin_commands(make_settings):
    cfg = make_settings("admin")
    env = pipeline_env(cfg)
    assert invoke(env, "generate", "--customers", "5", "--products", "3", "--days", "1").exit_code == 0
    setup = invoke(env, "mongo", "setup")
    assert setup.exit_code == 0, setup.output
    assert invoke(env, "mongo", "setup").stdout == setup.stdout  # idempotent
    assert invoke(env, "ingest").exit_code == 0
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        (first_load,) = con.execute("select max(_dlt_load_id) from bronze.mongo_orders").fetchone()
        (orders,) = con.execute("select count(*) from bronze.mongo_orders").fetchone()
    resnapshot = invoke(env, "mongo", "resnapshot", "orders")
    assert json.loads(resnapshot.stdout)["cleared"] is True
    assert invoke(env, "ingest").exit_code == 0
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        reloaded = con.execute("select count(*), min(_dlt_load_id) from bronze.mongo_orders").fetchone()
    assert reloaded[0] == orders and reloaded[1] > first_load  # every order re-read, none doubled
    unknown = CliRunner().invoke(cli, ["kafka", "rebaseline", "no.such.topic"], env=env)
    assert isinstance(unknown.exception, MillpondError) and "not one of the configured topics" in str(unknown.exception)
    wrong = CliRunner().invoke(cli, ["mongo", "resnapshot", "invoices"], env=env)
    assert isinstance(wrong.exception, MillpondError) and "unknown collection" in str(wrong.exception)
