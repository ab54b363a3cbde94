"""The PostgreSQL serving target against a real PostgreSQL 15 cluster."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest

from millpond.errors import StageFailed
from millpond.services import PostgresCluster
from millpond.serving import PostgresServingTarget
from millpond.serving.postgres_target import postgres_type

READER = "serving_reader"


def _warehouse(path: Path, revenue: str) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE SCHEMA IF NOT EXISTS gold")
        con.execute(
            "CREATE OR REPLACE TABLE gold.agg_daily_revenue AS SELECT * FROM (VALUES"
            " (DATE '2026-03-01', 3::BIGINT, CAST(? AS DECIMAL(18, 2)), TRUE, 'EUR',"
            "  TIMESTAMPTZ '2026-03-01 10:00:00.123456+00', 'a,\"b\"\nc'),"
            " (DATE '2026-03-02', 0::BIGINT, NULL, FALSE, NULL, NULL, ''))"
            " AS t(order_date, orders, revenue, has_orders, currency, first_order_at, note)",
            [revenue],
        )
        con.execute("CREATE OR REPLACE VIEW gold.v_revenue AS SELECT order_date, revenue FROM gold.agg_daily_revenue")
    return path


@pytest.fixture
def database(postgres: PostgresCluster) -> Iterator[str]:
    """A fresh database (and the reader role) per test; the URI of the publishing superuser."""
    name = f"serving_{uuid.uuid4().hex[:8]}"
    uri = postgres.create_database(name)
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        if conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [READER]).fetchone() == (0,):
            conn.execute(f"CREATE ROLE {READER} LOGIN")
    yield uri
    with psycopg.connect(postgres.uri, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _reader_uri(uri: str) -> str:
    return psycopg.conninfo.make_conninfo(uri, user=READER)


def test_publish_copies_types_values_and_the_manifest(tmp_path: Path, database: str) -> None:
    wh = _warehouse(tmp_path / "millpond.duckdb", "12.34")
    target = PostgresServingTarget(database, reader_role=READER)
    result = target.publish(wh, ["gold.agg_daily_revenue", "gold.v_revenue"], run_id="r1")
    assert result.tables == {"gold.agg_daily_revenue": 2, "gold.v_revenue": 2}
    assert result.target.startswith("postgresql://postgres@127.0.0.1:") and "serving_" in result.target
    assert target.published_tables() == result.tables
    with psycopg.connect(database) as conn:
        rows = conn.execute("SELECT * FROM gold.agg_daily_revenue ORDER BY order_date").fetchall()
        types = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'gold' AND table_name = 'agg_daily_revenue'"
            ).fetchall()
        )
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}
    assert rows == [  # NULL stays NULL, '' stays '', quotes, commas and newlines survive the CSV hop
        (
            date(2026, 3, 1),
            3,
            Decimal("12.34"),
            True,
            "EUR",
            datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC),
            'a,"b"\nc',
        ),
        (date(2026, 3, 2), 0, None, False, None, None, ""),
    ]
    assert types["revenue"] == "numeric" and types["first_order_at"] == "timestamp with time zone"
    assert {"gold", "meta"} <= schemas
    assert not {"gold__incoming", "gold__previous"} & schemas


def test_a_new_publication_replaces_the_old_one_whole(tmp_path: Path, database: str) -> None:
    wh = _warehouse(tmp_path / "millpond.duckdb", "10")
    target = PostgresServingTarget(database)
    target.publish(wh, ["gold.agg_daily_revenue", "gold.v_revenue"], run_id="r1")
    _warehouse(wh, "20")
    target.publish(wh, ["gold.agg_daily_revenue"], run_id="r2")  # v_revenue is no longer published
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT max(revenue) FROM gold.agg_daily_revenue").fetchone() == (Decimal("20.00"),)
        assert conn.execute("SELECT to_regclass('gold.v_revenue')").fetchone() == (None,)
        assert conn.execute("SELECT DISTINCT run_id FROM meta.publication").fetchall() == [("r2",)]


def test_a_failed_publish_rolls_back_to_the_last_good_one(tmp_path: Path, database: str) -> None:
    wh = _warehouse(tmp_path / "millpond.duckdb", "10")
    target = PostgresServingTarget(database)
    target.publish(wh, ["gold.agg_daily_revenue"], run_id="good")
    with pytest.raises(StageFailed, match="previous serving data stays in place"):
        target.publish(wh, ["gold.agg_daily_revenue", "gold.missing_table"], run_id="bad")
    assert target.published_tables() == {"gold.agg_daily_revenue": 2}
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT to_regnamespace('gold__incoming')").fetchone() == (None,)


def test_a_reader_in_a_long_transaction_times_the_publish_out_cleanly(tmp_path: Path, database: str) -> None:
    wh = _warehouse(tmp_path / "millpond.duckdb", "10")
    target = PostgresServingTarget(database, timeout_s=1)
    target.publish(wh, ["gold.agg_daily_revenue"], run_id="r1")
    _warehouse(wh, "20")
    with psycopg.connect(database) as reader:  # holds a lock on the live table until it ends
        assert reader.execute("SELECT max(revenue) FROM gold.agg_daily_revenue").fetchone() == (Decimal("10.00"),)
        with pytest.raises(StageFailed, match="lock timeout"):
            target.publish(wh, ["gold.agg_daily_revenue"], run_id="r2")
        assert reader.execute("SELECT max(revenue) FROM gold.agg_daily_revenue").fetchone() == (Decimal("10.00"),)
    target.publish(wh, ["gold.agg_daily_revenue"], run_id="r2")  # the reader is gone: goes through
    assert target.published_tables() == {"gold.agg_daily_revenue": 2}


def test_the_reader_role_can_read_but_not_write(tmp_path: Path, database: str) -> None:
    wh = _warehouse(tmp_path / "millpond.duckdb", "10")
    PostgresServingTarget(database, reader_role=READER).publish(wh, ["gold.agg_daily_revenue"], run_id="r1")
    with psycopg.connect(_reader_uri(database), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM gold.agg_daily_revenue").fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM meta.publication").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM gold.agg_daily_revenue")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE gold.mine (x int)")


def test_a_publish_killed_mid_transaction_leaves_the_last_good_one(tmp_path: Path, database: str) -> None:
    wh = _warehouse(tmp_path / "millpond.duckdb", "10")
    target = PostgresServingTarget(database)
    target.publish(wh, ["gold.agg_daily_revenue"], run_id="good")
    _warehouse(wh, "20")
    script = (
        "import sys; from pathlib import Path; from millpond import faults;"
        "from millpond.serving import PostgresServingTarget; faults.arm('publish.postgres');"
        "PostgresServingTarget(sys.argv[1]).publish(Path(sys.argv[2]), ['gold.agg_daily_revenue'], 'killed')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, database, str(wh)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 137, proc.stderr[-2000:]
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT DISTINCT run_id FROM meta.publication").fetchall() == [("good",)]
        assert conn.execute("SELECT max(revenue) FROM gold.agg_daily_revenue").fetchone() == (Decimal("10.00"),)
    target.publish(wh, ["gold.agg_daily_revenue"], run_id="after-crash")  # leftovers do not block the next run
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT max(revenue) FROM gold.agg_daily_revenue").fetchone() == (Decimal("20.00"),)


def test_unreachable_database_is_a_clear_stage_failure(tmp_path: Path) -> None:
    from tests.support.ports import free_port

    wh = _warehouse(tmp_path / "millpond.duckdb", "10")
    target = PostgresServingTarget(f"postgresql://u:secret@127.0.0.1:{free_port()}/serving", timeout_s=2)
    with pytest.raises(StageFailed) as failure:
        target.publish(wh, ["gold.agg_daily_revenue"], run_id="r1")
    assert "publishing to postgresql://u@127.0.0.1:" in str(failure.value)
    assert "secret" not in str(failure.value)


@pytest.mark.parametrize(
    ("duckdb_type", "expected"),
    [("DECIMAL(18,2)", "numeric(18, 2)"), ("TIMESTAMP WITH TIME ZONE", "timestamptz"), ("varchar", "text")],
)
def test_type_mapping(duckdb_type: str, expected: str) -> None:
    assert postgres_type(duckdb_type) == expected


def test_a_nested_type_is_refused_with_a_hint() -> None:
    with pytest.raises(StageFailed, match="INTEGER\\[\\] has no PostgreSQL serving type") as failure:
        postgres_type("INTEGER[]")
    assert failure.value.hint is not None and "cast the column" in failure.value.hint
