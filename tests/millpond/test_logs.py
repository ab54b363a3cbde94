"""One JSON line per record, with its context, from structlog and from stdlib loggers alike."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from millpond import logs


@pytest.fixture
def json_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Configure JSON logs on the captured stderr; a function returning the records logged so far."""
    logs.configure("json", "INFO")

    def records() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]

    yield records
    logs.configure("console", "WARNING")  # what tests/conftest.py sets for the other tests


def test_a_structlog_event_carries_its_context_and_the_bound_context(json_lines: Any) -> None:
    structlog.contextvars.bind_contextvars(run_id="r-1")
    try:
        logs.get("millpond.test").info("test.done", rows=3, table="bronze.mongo_orders")
    finally:
        structlog.contextvars.unbind_contextvars("run_id")
    (record,) = json_lines()
    assert record["event"] == "test.done"
    assert record["rows"] == 3 and record["table"] == "bronze.mongo_orders"
    assert record["run_id"] == "r-1"
    assert record["level"] == "info" and record["logger"] == "millpond.test"
    assert record["timestamp"].endswith("Z")


def test_a_stdlib_record_keeps_its_extra_context(json_lines: Any) -> None:
    """Libraries (and ``logging.getLogger`` callers) pass context with ``extra=``; it must reach the line."""
    logging.getLogger("some.library").warning("library.retry", extra={"attempt": 2, "url": "http://x"})
    (record,) = json_lines()
    assert record["event"] == "library.retry"
    assert record["attempt"] == 2 and record["url"] == "http://x"
    assert record["level"] == "warning" and record["logger"] == "some.library"


def test_an_exception_is_rendered_into_the_line(json_lines: Any) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logs.get("millpond.test").exception("test.failed", stage="publish")
    (record,) = json_lines()
    assert record["stage"] == "publish"
    assert "ValueError: boom" in record["exception"]


# dlt installs its own stderr handler and format when a pipeline initializes its runtime; run in a
# fresh interpreter, since that happens once per process
DLT_SCRIPT = """
import sys, dlt, pyarrow as pa
from millpond import logs
from ingest.kafka.rows import ARROW_SCHEMA, table_hints
logs.configure("json", "INFO")
pipeline = dlt.pipeline(pipeline_name="logs_probe", destination=dlt.destinations.duckdb(sys.argv[1] + "/w.duckdb"),
                        pipelines_dir=sys.argv[1] + "/p")
row = {"topic": "t", "partition": 0, "offset": 0, "event_id": "e", "event_type": "x", "payload": "{}"}
batch = pa.Table.from_pylist([{name: None for name in ARROW_SCHEMA.names} | row | {"_dlt_id": "a"}], schema=ARROW_SCHEMA)
pipeline.extract(dlt.resource([dlt.mark.with_hints(batch, table_hints("kafka_probe"))], name="kafka_probe"))
from dlt.common import logger
logger.warning("dlt.own_warning")
"""


def test_dlt_records_are_json_lines_and_its_expected_kafka_payload_warning_is_dropped(tmp_path: Any) -> None:
    import subprocess
    import sys
    from pathlib import Path

    proc = subprocess.run(
        [sys.executable, "-c", DLT_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert [r["event"] for r in records if r["logger"] == "dlt"] == ["dlt.own_warning"]
    assert not [r for r in records if "several column hints" in r["event"]]
