"""Ingest stage: the MongoDB and Kafka sources into the warehouse's ``bronze`` dataset.

Runs extract → normalize → load as separate steps so progress is visible and a crash between
them is recoverable: dlt keeps extracted/normalized packages on disk and the next run first
finishes any pending package (the ``extract`` and ``normalize`` crash points stop there for the
tests). Only this stage writes the landed layer: at the end of every run it also creates, empty,
the declared landed tables that dlt has not made yet.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import dlt
import duckdb
import yaml

from ingest.kafka import KafkaCredentials, kafka_source
from ingest.mongodb import mongodb_source
from millpond import logs
from millpond.errors import MillpondError, PipelineBusy, StageFailed
from millpond.faults import crash_point
from millpond.health import Heartbeat
from millpond.locking import pipeline_lock
from millpond.settings import Settings

log = logs.get(__name__)
PIPELINE_NAME = "millpond_ingest"
DATASET = "bronze"
FOLLOW_HEARTBEAT = "ingest-follow"


@dataclass
class IngestReport:
    """Rows loaded per table in this run and the dead letters it produced."""

    rows: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    load_ids: list[str] = field(default_factory=list)
    created_tables: list[str] = field(default_factory=list)
    seconds: float = 0.0


def make_pipeline(settings: Settings) -> dlt.Pipeline:
    """The dlt pipeline writing to the DuckDB warehouse, its working dir inside the data dir."""
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    settings.dlt_dir.mkdir(parents=True, exist_ok=True)
    return dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=dlt.destinations.duckdb(str(settings.warehouse)),
        dataset_name=DATASET,
        pipelines_dir=str(settings.dlt_dir / "pipelines"),
        # progress of extract/normalize/load every 10 s, through our structured logs
        progress=dlt.progress.log(log_period=10, logger=logging.getLogger("millpond.progress")),
    )


def kafka_credentials(settings: Settings) -> KafkaCredentials:
    """The Kafka source's credentials from the ``MILLPOND_KAFKA_*`` settings."""
    password = settings.kafka_sasl_password
    return KafkaCredentials(
        bootstrap_servers=settings.kafka_bootstrap,
        security_protocol=settings.kafka_security_protocol,
        sasl_mechanisms=settings.kafka_sasl_mechanism,
        sasl_username=settings.kafka_sasl_username,
        sasl_password=password.get_secret_value() if password is not None else None,
        ssl_ca_location=str(settings.kafka_ssl_ca_location) if settings.kafka_ssl_ca_location else None,
    )


def sources(settings: Settings, *, mongo: bool = True, kafka: bool = True) -> list[Any]:
    """The configured sources, each given every setting explicitly."""
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
                credentials=kafka_credentials(settings),
                topics=settings.topics.as_dict(),
                timeout_s=settings.io_timeout_s,
            )
        )
    return out


def run_ingest(settings: Settings, *, mongo: bool = True, kafka: bool = True) -> IngestReport:
    """Extract, normalize and load under the pipeline lock (waiting up to ``lock_timeout_s`` for it)."""
    return _locked_ingest(settings, settings.lock_timeout_s, mongo=mongo, kafka=kafka)


def _locked_ingest(settings: Settings, lock_timeout_s: float, *, mongo: bool, kafka: bool) -> IngestReport:
    with pipeline_lock(settings.data_dir, "ingest", timeout_s=lock_timeout_s):
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
        report.created_tables = ensure_landed_tables(settings)
    except Exception as exc:
        raise StageFailed(
            f"ingestion failed: {exc}",
            stage="ingest",
            hint="re-run `millpond ingest`: pending packages are finished first and merges are idempotent",
        ) from exc
    report.dead_letters = report.rows.get("dead_letter", 0)
    report.seconds = round(time.monotonic() - started, 2)
    log.info("ingest.done", rows=report.rows, dead_letters=report.dead_letters, seconds=report.seconds)
    if report.dead_letters:
        log.warning("ingest.dead_letters", count=report.dead_letters, table=f"{DATASET}.dead_letter")
    return report


def landed_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables in the landed dataset."""
    rows = con.execute("select table_name from information_schema.tables where table_schema = ?", [DATASET]).fetchall()
    return {r[0] for r in rows}


def declared_landed_tables(settings: Settings) -> dict[str, dict[str, str]]:
    """Table -> column types of every landed table that ``external_models.yaml`` declares."""
    declared = yaml.safe_load((settings.project_dir / "external_models.yaml").read_text())
    out = {}
    for model in declared:
        schema, table = model["name"].split(".")
        if schema == DATASET:
            out[table] = model["columns"]
    return out


def missing_landed_tables(settings: Settings) -> list[str]:
    """The declared landed tables that are not in the warehouse (all of them when there is no warehouse)."""
    declared = declared_landed_tables(settings)
    if not settings.warehouse.exists():
        return list(declared)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        existing = landed_tables(con)
    return [table for table in declared if table not in existing]


def ensure_landed_tables(settings: Settings) -> list[str]:
    """Create, empty, every declared landed table that dlt has not made yet; returns the tables created.

    dlt creates a table only once data arrives for it (a topic may still be empty), while a
    SQLMesh plan needs every external table to exist. dlt adopts a pre-created table and adds
    any column it lacks.
    """
    created = []
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute(f"create schema if not exists {DATASET}")
        existing = landed_tables(con)
        for table, columns in declared_landed_tables(settings).items():
            if table in existing:
                continue
            column_list = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
            con.execute(f'create table {DATASET}."{table}" ({column_list})')
            created.append(table)
    if created:
        log.warning("ingest.created_empty_landed_tables", tables=created)
    return created


def follow(
    settings: Settings,
    interval_s: float = 10.0,
    max_cycles: int | None = None,
    max_consecutive_failures: int = 5,
) -> None:
    """Keep loading new Kafka messages (the long-running ingester) until the process is stopped.

    Each cycle that loads, or that finds another stage holding the pipeline lock (a long
    transform is no reason to restart the follower), beats the ``ingest-follow`` heartbeat
    that ``millpond health`` checks. A busy lock is never waited for: the cycle is skipped.
    Any other failure is logged and retried without a beat, and after
    ``max_consecutive_failures`` in a row the last error is raised, so the process exits
    non-zero and its supervisor (Kubernetes, compose) restarts it with back-off. A cycle killed
    midway is finished by the next one (see :func:`run_ingest`).
    """
    heartbeat = Heartbeat(settings.data_dir, FOLLOW_HEARTBEAT)
    cycles = failures = 0
    while max_cycles is None or cycles < max_cycles:
        cycles += 1
        try:
            report = _locked_ingest(settings, 0.0, mongo=False, kafka=True)
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
