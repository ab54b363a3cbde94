"""Settings from the environment: defaults, derived paths, and clear errors for bad values."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from millpond import settings as settings_mod
from millpond.errors import MillpondError


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("MILLPOND_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MILLPOND_DATA_DIR", str(tmp_path))
    return monkeypatch


def test_paths_derive_from_the_data_dir(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = settings_mod.load()
    assert cfg.warehouse == tmp_path / "warehouse" / "millpond.duckdb"
    assert cfg.serving == tmp_path / "serving" / "serving.duckdb"
    assert cfg.serving_postgres_uri is None


def test_a_bad_value_names_the_variable_and_the_input(env: pytest.MonkeyPatch) -> None:
    env.setenv("MILLPOND_IO_TIMEOUT_S", "soon")
    with pytest.raises(MillpondError, match=r"MILLPOND_IO_TIMEOUT_S: Input should be a valid number.*\(got 'soon'\)"):
        settings_mod.load()


def test_a_sensitive_value_is_never_echoed() -> None:
    error = {"loc": ("serving_postgres_uri",), "msg": "Value error, bad", "input": "postgresql://u:hunter2@db/x"}
    assert settings_mod._describe(error) == "MILLPOND_SERVING_POSTGRES_URI: bad"
    plain = {"loc": ("superset_port",), "msg": "Input should be a valid integer", "input": "x"}
    assert settings_mod._describe(plain) == "MILLPOND_SUPERSET_PORT: Input should be a valid integer (got 'x')"


def test_an_empty_variable_counts_as_unset(env: pytest.MonkeyPatch) -> None:
    env.setenv("MILLPOND_SERVING_POSTGRES_URI", "")  # `VAR=` in an .env file
    env.setenv("MILLPOND_IO_TIMEOUT_S", "")
    cfg = settings_mod.load()
    assert cfg.serving_postgres_uri is None
    assert cfg.io_timeout_s == 30.0


def test_a_reader_role_without_a_serving_database_is_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("MILLPOND_SERVING_POSTGRES_READER_ROLE", "cube_reader")
    with pytest.raises(MillpondError, match="MILLPOND_SERVING_POSTGRES_URI is not") as failure:
        settings_mod.load()
    assert failure.value.stage == "config"
    env.setenv("MILLPOND_SERVING_POSTGRES_URI", "postgresql://publisher:pw@db:5432/serving")
    cfg = settings_mod.load()
    assert cfg.serving_postgres_reader_role == "cube_reader"
    assert cfg.serving_postgres_uri is not None
    assert "pw@" not in repr(cfg)  # a SecretStr


def test_everything_a_stage_writes_is_under_the_data_dir(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = settings_mod.load()
    written = [cfg.warehouse, cfg.state, cfg.serving, cfg.dlt_dir, cfg.cache_dir]
    written.append(Path(cfg.sqlmesh_env()["MILLPOND_SQLMESH_CACHE_DIR"]))
    assert all(path.is_relative_to(tmp_path) for path in written), written
    assert not any(path.is_relative_to(cfg.project_dir) for path in written)


def test_service_binaries_and_the_lock_timeout_come_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("MILLPOND_MONGOD_BIN", "/opt/mongo/bin/mongod")
    env.setenv("MILLPOND_TANSU_BIN", "/opt/tansu")
    env.setenv("MILLPOND_PG_BIN", "/opt/pg/bin")
    env.setenv("MILLPOND_LOCK_TIMEOUT_S", "90")
    cfg = settings_mod.load()
    assert (cfg.mongod_bin, cfg.tansu_bin, cfg.pg_bin) == (
        Path("/opt/mongo/bin/mongod"),
        Path("/opt/tansu"),
        Path("/opt/pg/bin"),
    )
    assert cfg.lock_timeout_s == 90.0


def test_source_settings_have_safe_defaults_and_parse_from_the_environment(env: pytest.MonkeyPatch) -> None:
    cfg = settings_mod.load()
    assert cfg.mongo_mode == "cdc" and cfg.kafka_optional_topics == []
    assert cfg.earliest_event == datetime(2025, 1, 1, tzinfo=UTC)  # start_date at midnight UTC
    env.setenv("MILLPOND_MONGO_MODE", "cursor")
    env.setenv("MILLPOND_KAFKA_OPTIONAL_TOPICS", "shop.returns, shop.refunds")
    env.setenv("MILLPOND_KAFKA_MAX_BATCH_MESSAGES", "1000")
    env.setenv("MILLPOND_START_DATE", "2024-06-01")
    cfg = settings_mod.load()
    assert cfg.mongo_mode == "cursor" and cfg.kafka_max_batch_messages == 1000
    assert cfg.kafka_optional_topics == ["shop.returns", "shop.refunds"]
    assert cfg.earliest_event == datetime(2024, 6, 1, tzinfo=UTC)
    env.setenv("MILLPOND_EARLIEST_EVENT_TIME", "2024-01-01T00:00:00")  # no zone: UTC
    assert settings_mod.load().earliest_event == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MILLPOND_MONGO_MODE", "oplog", "Input should be 'cdc' or 'cursor'"),
        ("MILLPOND_KAFKA_MAX_BATCH_BYTES", "0", "Input should be greater than 0"),
        ("MILLPOND_MONGO_CURSOR_LAG_S", "-1", "Input should be greater than or equal to 0"),
    ],
)
def test_a_bad_source_setting_is_refused(env: pytest.MonkeyPatch, variable: str, value: str, message: str) -> None:
    env.setenv(variable, value)
    with pytest.raises(MillpondError, match=f"{variable}: {message}"):
        settings_mod.load()


def test_a_duckdb_data_dir_with_a_key_value_directory_is_refused(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # dlt loads parquet files with DuckDB's read_parquet, which reads `key=value` directories as hive
    # partitions: every landed table would get an extra column and its load would fail terminally.
    partitioned = tmp_path / "env=prod"
    partitioned.mkdir()
    pq.write_table(pa.table({"x": [1]}), partitioned / "t.parquet")
    assert "env" in duckdb.sql(f"select * from read_parquet('{partitioned / 't.parquet'}')").columns
    env.setenv("MILLPOND_DATA_DIR", str(partitioned / "millpond"))
    with pytest.raises(MillpondError, match=r"MILLPOND_DATA_DIR .*'env=prod'.*without '='") as failure:
        settings_mod.load()
    assert failure.value.stage == "config"
    env.setenv("MILLPOND_WAREHOUSE_ENGINE", "postgres")  # no parquet load files
    assert settings_mod.load().data_dir == partitioned / "millpond"
