"""The ingestion pipeline: MongoDB and Kafka sources into the warehouse's ``raw`` dataset.

Runs extract → normalize → load as separate steps so progress is visible and a crash between
them is recoverable: dlt keeps extracted/normalized packages on disk and the next run first
finishes any pending package (``MILLPOND_CRASH_AFTER`` injects such a crash for the tests).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dlt
import duckdb

from ingest.kafka import kafka_source
from ingest.mongodb import mongodb_source
from millpond import logs
from millpond.errors import MillpondError, PipelineBusy, StageFailed
from millpond.faults import crash_point
from millpond.health import Heartbeat
from millpond.locking import pipeline_lock
from millpond.settings import Settings

log = logs.get(__name__)
PIPELINE_NAME = "millpond_ingest"
DATASET = "raw"
FOLLOW_HEARTBEAT = "ingest-follow"


@dataclass
class IngestReport:
    """Rows loaded per table in this run and the dead letters it produced."""

    rows: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    load_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0


def make_pipeline(settings: Settings) -> dlt.Pipeline:
    """The dlt pipeline writing to the DuckDB warehouse, its working dir inside the data dir."""
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    settings.dlt_dir.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "pipeline_name": PIPELINE_NAME,
        "destination": dlt.destinations.duckdb(str(settings.warehouse)),
        "dataset_name": DATASET,
        "pipelines_dir": str(settings.dlt_dir / "pipelines"),
        # progress of extract/normalize/load every 10 s, through our structured logs
        "progress": dlt.progress.log(log_period=10, logger=logging.getLogger("millpond.progress")),
    }
    return dlt.pipeline(**options)


def sources(settings: Settings, *, mongo: bool = True, kafka: bool = True) -> list[Any]:
    out: list[Any] = []
    if mongo:
        out.append(
            mongodb_source(
                connection_url=settings.mongo_uri,
                database=settings.mongo_db,
                timeout_ms=int(settings.io_timeout_s * 1000),
            )
        )
    if kafka:
        out.append(
            kafka_source(
                bootstrap_servers=settings.kafka_bootstrap,
                topics=settings.topics.as_dict(),
                timeout_s=settings.io_timeout_s,
            )
        )
    return out


def run_ingest(settings: Settings, *, mongo: bool = True, kafka: bool = True) -> IngestReport:
    """Extract, normalize and load; finishes pending packages of an interrupted run first."""
    with pipeline_lock(settings.data_dir, "ingest"):
        return _ingest(settings, mongo=mongo, kafka=kafka)


def _ingest(settings: Settings, *, mongo: bool, kafka: bool) -> IngestReport:
    started = time.monotonic()
    pipeline = make_pipeline(settings)
    report = IngestReport()
    try:
        if pipeline.has_pending_data:
            log.warning("ingest.resuming_pending_packages")
            pipeline.normalize()
            info = pipeline.load()
            report.load_ids += list(info.loads_ids)
        log.info("ingest.extract.start", mongo=mongo, kafka=kafka)
        extract = pipeline.extract(sources(settings, mongo=mongo, kafka=kafka))
        crash_point("extract")
        log.info("ingest.normalize.start", packages=len(extract.loads_ids))
        normalize = pipeline.normalize()
        crash_point("normalize")
        counts = normalize.row_counts if normalize is not None else {}
        report.rows = {t: int(n) for t, n in sorted(counts.items()) if not t.startswith("_dlt")}
        log.info("ingest.load.start", rows=sum(report.rows.values()))
        info = pipeline.load()
        report.load_ids += list(info.loads_ids)
        info.raise_on_failed_jobs()
    except Exception as exc:
        raise StageFailed(
            f"ingestion failed: {exc}",
            stage="ingest",
            hint="re-run `millpond ingest`: pending packages are finished first and merges are idempotent",
        ) from exc
    report.dead_letters = report.rows.get("dead_letter", 0)
    report.seconds = round(time.monotonic() - started, 2)
    log.info(
        "ingest.done",
        rows=report.rows,
        dead_letters=report.dead_letters,
        seconds=report.seconds,
    )
    if report.dead_letters:
        log.warning("ingest.dead_letters", count=report.dead_letters, table=f"{DATASET}.dead_letter")
    return report


def follow(
    settings: Settings,
    interval_s: float = 10.0,
    max_cycles: int | None = None,
    max_consecutive_failures: int = 5,
) -> None:
    """Keep loading new Kafka messages (the long-running ingester); stops on SIGTERM/SIGINT.

    Each cycle that loads, or that finds another stage holding the pipeline lock (a long
    transform is no reason to restart the follower), beats the ``ingest-follow`` heartbeat
    that ``millpond health`` checks. Any other failure is logged and retried without a beat,
    and after ``max_consecutive_failures``
    in a row the last error is raised, so the process exits non-zero and its supervisor
    (Kubernetes, compose) restarts it with back-off.
    """
    heartbeat = Heartbeat(settings.data_dir, FOLLOW_HEARTBEAT)
    cycles = failures = 0
    while max_cycles is None or cycles < max_cycles:
        cycles += 1
        try:
            report = run_ingest(settings, mongo=False, kafka=True)
        except PipelineBusy as exc:
            log.info("ingest.follow.busy", cycle=cycles, reason=str(exc))
            heartbeat.beat(cycle=cycles, busy=True)
        except MillpondError as exc:
            failures += 1
            log.error("ingest.follow.failed", cycle=cycles, failures=failures, error=str(exc))
            if failures >= max_consecutive_failures:
                raise
        else:
            failures = 0
            heartbeat.beat(cycle=cycles, rows=sum(report.rows.values()), load_ids=report.load_ids)
        if max_cycles is None or cycles < max_cycles:
            time.sleep(interval_s)


def raw_row_counts(warehouse: Path) -> dict[str, int]:
    """Row counts of the ``raw`` tables (read-only)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ? order by 1", [DATASET]
            ).fetchall()
        ]
        return {t: int(con.execute(f'select count(*) from {DATASET}."{t}"').fetchone()[0]) for t in tables}  # type: ignore[index]
