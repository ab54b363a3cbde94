"""Ingest stage: the MongoDB and Kafka sources into the warehouse's ``bronze`` dataset.

Runs extract → normalize → load as separate steps so progress is visible and a crash between
them is recoverable: dlt keeps extracted/normalized packages on disk and the next run first
finishes any pending package (the crash points ``extract``, ``normalize``, ``load.job`` (one
load job done), ``load.jobs_done`` (every job done, the package not yet marked loaded) and
``load`` (loaded, Kafka positions not yet committed to the consumer group) stop there for the
tests). Loads use dlt's parquet load files and uncompressed intermediate files. Only this stage
writes the landed layer: at the end of every run it also creates, empty, the declared landed
tables that dlt has not made yet.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import dlt
import duckdb
import yaml
from dlt.common.runtime.collector import LogCollector

from ingest.kafka import KafkaCredentials, kafka_source
from ingest.kafka.helpers import KafkaSourceError, commit_offsets, offsets_of
from ingest.mongodb import mongodb_source, warehouse_ids
from ingest.mongodb.helpers import MongoSourceError
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
KAFKA_SOURCE = "kafka"
MONGO_SOURCE = "mongodb"
LOADER_FILE_FORMAT = "parquet"


@dataclass
class IngestReport:
    """Rows loaded per table in this run, and the records it quarantined (by source and error class)."""

    rows: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    quarantined: dict[str, dict[str, int]] = field(default_factory=dict)
    load_ids: list[str] = field(default_factory=list)
    created_tables: list[str] = field(default_factory=list)
    committed_offsets: bool | None = None
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """What ``millpond ingest`` prints."""
        return {
            "rows": self.rows,
            "dead_letters": self.dead_letters,
            "quarantined": self.quarantined,
            "seconds": self.seconds,
        }


class _LoadProgress(LogCollector):
    """dlt's progress log (every 10 s, through our logs) that also hosts the crash points inside the load step.

    dlt counts ``Jobs`` once per finished load job; ``expected_jobs`` is the number of jobs of the
    packages about to load, so ``load.jobs_done`` fires after the last job and before dlt marks
    the package loaded.
    """

    expected_jobs = 0
    _finished_jobs = 0

    def update(self, name: str, inc: int = 1, *args: Any, **kwargs: Any) -> None:
        super().update(name, inc, *args, **kwargs)
        label = kwargs.get("label", args[3] if len(args) > 3 else None)
        if name != "Jobs" or label is not None or inc <= 0:
            return
        self._finished_jobs += inc
        crash_point("load.job")
        if self.expected_jobs and self._finished_jobs >= self.expected_jobs:
            crash_point("load.jobs_done")

    def expect(self, jobs: int) -> None:
        self.expected_jobs, self._finished_jobs = jobs, 0


def make_pipeline(settings: Settings) -> dlt.Pipeline:
    """The dlt pipeline writing parquet load files to the DuckDB warehouse, its working dir inside the data dir.

    Intermediate files are not compressed (the disk is local and gzip costs more than it saves),
    and dlt does not intercept SIGTERM/SIGINT: the follower handles them between batches.
    """
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    settings.dlt_dir.mkdir(parents=True, exist_ok=True)
    dlt.config["data_writer.disable_compression"] = True
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=dlt.destinations.duckdb(str(settings.warehouse), preferred_loader_file_format=LOADER_FILE_FORMAT),
        dataset_name=DATASET,
        pipelines_dir=str(settings.dlt_dir / "pipelines"),
        # progress of extract/normalize/load every 10 s, through our structured logs
        progress=_LoadProgress(log_period=10, logger=logging.getLogger("millpond.progress")),
    )
    pipeline.config.runtime.intercept_signals = False
    return pipeline


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


def configured_mongo_source(settings: Settings) -> Any:
    """The MongoDB source, given every ``MILLPOND_MONGO_*`` setting explicitly.

    It reads the ids already landed in the warehouse (read-only, in batches) to tombstone
    documents deleted at the source: after a (re-)snapshot in CDC mode, on reconciliation in
    cursor mode.
    """
    return mongodb_source(
        connection_url=settings.mongo_uri,
        database=settings.mongo_db,
        mode=settings.mongo_mode,
        timeout_ms=int(settings.io_timeout_s * 1000),
        batch_size=settings.mongo_batch_size,
        cursor_lag_s=settings.mongo_cursor_lag_s,
        reconcile_every=settings.mongo_reconcile_every,
        landed_ids=warehouse_ids(settings.warehouse, DATASET),
    )


def configured_kafka_source(settings: Settings) -> Any:
    """The Kafka source, given every ``MILLPOND_KAFKA_*`` setting (and the event-time bounds) explicitly."""
    return kafka_source(
        credentials=kafka_credentials(settings),
        topics=settings.topics.as_dict(),
        timeout_s=settings.io_timeout_s,
        optional_topics=tuple(settings.kafka_optional_topics),
        max_batch_messages=settings.kafka_max_batch_messages,
        max_batch_bytes=settings.kafka_max_batch_bytes,
        max_batch_seconds=settings.kafka_max_batch_seconds,
        max_message_bytes=settings.kafka_max_message_bytes,
        earliest_event_time=settings.earliest_event,
        max_future_skew_s=settings.max_future_skew_s,
    )


def sources(settings: Settings, *, mongo: bool = True, kafka: bool = True) -> list[Any]:
    """The configured sources."""
    out: list[Any] = []
    if mongo:
        out.append(configured_mongo_source(settings))
    if kafka:
        out.append(configured_kafka_source(settings))
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
            report.load_ids += _load(pipeline)
        log.info("ingest.extract.start", mongo=mongo, kafka=kafka)
        extract = pipeline.extract(sources(settings, mongo=mongo, kafka=kafka))
        crash_point("extract")
        log.info("ingest.normalize.start", packages=len(extract.loads_ids))
        normalize = pipeline.normalize()
        crash_point("normalize")
        counts = normalize.row_counts if normalize is not None else {}
        report.rows = {t: int(n) for t, n in sorted(counts.items()) if not t.startswith("_dlt")}
        log.info("ingest.load.start", rows=sum(report.rows.values()))
        report.load_ids += _load(pipeline)
        crash_point("load")
        report.created_tables = ensure_landed_tables(settings)
    except Exception as exc:
        raise ingest_error(exc) from exc
    if kafka:
        report.committed_offsets = commit_kafka_positions(settings, pipeline)
    report.quarantined = quarantined_by_load(settings, report.load_ids)
    report.dead_letters = sum(n for classes in report.quarantined.values() for n in classes.values())
    report.seconds = round(time.monotonic() - started, 2)
    log.info("ingest.done", rows=report.rows, dead_letters=report.dead_letters, seconds=report.seconds)
    if report.dead_letters:
        log.warning(
            "ingest.dead_letters",
            count=report.dead_letters,
            by_source=report.quarantined,
            table=f"{DATASET}.dead_letter",
        )
    return report


def _load(pipeline: dlt.Pipeline) -> list[str]:
    """Load every normalized package; the ids of the loads."""
    pending = pipeline.list_normalized_load_packages()
    jobs = sum(len(pipeline.get_load_package_info(load_id).jobs["new_jobs"]) for load_id in pending)
    progress = pipeline.collector
    if isinstance(progress, _LoadProgress):
        progress.expect(jobs)
    info = pipeline.load()
    info.raise_on_failed_jobs()
    return list(info.loads_ids)


# The sources' own messages name the address and the setting to check; the hint adds the runbook.
_SOURCE_HINTS: dict[str, str] = {
    "BrokerUnreachable": "MILLPOND_IO_TIMEOUT_S is the timeout; see docs/runbooks/pipeline-failed.md",
    "TopicUnavailable": "topics that may not exist yet go in MILLPOND_KAFKA_OPTIONAL_TOPICS (docs/pipelines/kafka.md)",
    "TopicRecreated": "see docs/runbooks/kafka-rebaseline.md",
    "MongoUnreachable": "MILLPOND_IO_TIMEOUT_S is the timeout; see docs/runbooks/pipeline-failed.md",
    "ResumeTokenExpired": "see docs/runbooks/mongo-resnapshot.md",
}


def source_error(exc: BaseException) -> KafkaSourceError | MongoSourceError | None:
    """The source's own error behind ``exc`` (dlt wraps it in its step errors), if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, KafkaSourceError | MongoSourceError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def ingest_error(exc: BaseException) -> StageFailed:
    """One clear line: the source's own message and what to check, or dlt's error with the re-run hint."""
    cause = source_error(exc)
    if cause is not None:
        hint = next(
            (h for cls in type(cause).__mro__ for name, h in _SOURCE_HINTS.items() if cls.__name__ == name),
            "fix the cause named above and re-run `millpond ingest`; see docs/pipelines/README.md",
        )
        return StageFailed(f"ingestion failed: {cause}", stage="ingest", hint=hint)
    return StageFailed(
        f"ingestion failed: {exc}",
        stage="ingest",
        hint="re-run `millpond ingest`: pending packages are finished first and merges are idempotent",
    )


def kafka_positions(pipeline: dlt.Pipeline, topics: Mapping[str, str]) -> dict[str, dict[int, int]]:
    """Topic -> partition -> next offset, as the Kafka source's resource state holds them (the loaded positions)."""
    resources = pipeline.state.get("sources", {}).get(KAFKA_SOURCE, {}).get("resources", {})
    out: dict[str, dict[int, int]] = {}
    for stream, topic in topics.items():
        positions = resources.get(f"kafka_{stream}", {}).get("positions", {})
        if positions:
            out[topic] = offsets_of(positions)
    return out


def commit_kafka_positions(settings: Settings, pipeline: dlt.Pipeline) -> bool:
    """Commit the loaded positions to ``kafka_consumer_group`` (for lag in standard tooling).

    dlt state stays the truth: a failure here is a warning, never a failed run, and the next
    successful load commits again.
    """
    positions = kafka_positions(pipeline, settings.topics.as_dict())
    if not positions:
        return False
    try:
        commit_offsets(kafka_credentials(settings), settings.kafka_consumer_group, positions, settings.io_timeout_s)
    except Exception as exc:
        log.warning(
            "ingest.kafka.commit_failed", group=settings.kafka_consumer_group, error=str(exc), positions=positions
        )
        return False
    log.info("ingest.kafka.committed", group=settings.kafka_consumer_group, positions=positions)
    return True


def quarantined_by_load(settings: Settings, load_ids: list[str]) -> dict[str, dict[str, int]]:
    """Source -> error class -> dead letters written by these loads."""
    if not load_ids or not settings.warehouse.exists():
        return {}
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        if "dead_letter" not in landed_tables(con):
            return {}
        columns = {r[0] for r in con.execute(f"describe {DATASET}.dead_letter").fetchall()}
        error_class = "coalesce(error_class, 'unclassified')" if "error_class" in columns else "'unclassified'"
        rows = con.execute(
            f"select source, {error_class}, count(*) from {DATASET}.dead_letter "
            "where _dlt_load_id in (select unnest(?)) group by all order by all",
            [load_ids],
        ).fetchall()
    out: dict[str, dict[str, int]] = {}
    for source, klass, n in rows:
        out.setdefault(source, {})[klass] = int(n)
    return out


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
    """Create every declared landed table dlt has not made yet, and add declared columns a table lacks.

    dlt creates a table only once data arrives for it (a topic may still be empty), and a column
    only once a row carries it (a warehouse landed before a column was declared), while a SQLMesh
    plan needs every declared table and column to exist. dlt adopts a pre-created table and
    column and adds any it lacks itself. Returns ``table`` for each table created and
    ``table.column`` for each column added.
    """
    changed: list[str] = []
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute(f"create schema if not exists {DATASET}")
        existing = landed_tables(con)
        for table, columns in declared_landed_tables(settings).items():
            if table not in existing:
                column_list = ", ".join(f'"{name}" {kind}' for name, kind in columns.items())
                con.execute(f'create table {DATASET}."{table}" ({column_list})')
                changed.append(table)
                continue
            present = {
                row[0]
                for row in con.execute(
                    "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
                    [DATASET, table],
                ).fetchall()
            }
            for name, kind in columns.items():
                if name not in present:
                    con.execute(f'alter table {DATASET}."{table}" add column "{name}" {kind}')
                    changed.append(f"{table}.{name}")
    if changed:
        log.warning("ingest.created_declared_landed_objects", created=changed)
    return changed


class StopRequest:
    """Set by SIGTERM/SIGINT while installed: the follower finishes the batch it is in, then stops."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal: str | None = None

    def __bool__(self) -> bool:
        return self._event.is_set()

    def set(self, signum: int, _frame: FrameType | None = None) -> None:
        self.signal = signal.Signals(signum).name
        self._event.set()

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking at once on a stop request."""
        self._event.wait(seconds)

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        """Handle SIGTERM and SIGINT with this request (main thread only; elsewhere, nothing changes)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self.set) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def follow(
    settings: Settings,
    interval_s: float = 10.0,
    max_cycles: int | None = None,
    max_consecutive_failures: int = 5,
) -> int:
    """Keep loading new Kafka messages in micro-batches (the long-running ingester); returns the cycles run.

    Each cycle is one bounded ingest (the source's batch bounds: ``MILLPOND_KAFKA_MAX_BATCH_*``)
    that loads, commits the positions with the load in dlt state and then to the consumer
    group. SIGTERM or SIGINT lets the current cycle finish and commit, then the loop ends (the
    command exits 0); a wait between cycles is cut short.

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
    with StopRequest().installed() as stop:
        while not stop and (max_cycles is None or cycles < max_cycles):
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
                heartbeat.beat(
                    cycle=cycles,
                    rows=sum(report.rows.values()),
                    dead_letters=report.dead_letters,
                    load_ids=report.load_ids,
                )
                log.info("ingest.follow.cycle", cycle=cycles, rows=report.rows, dead_letters=report.dead_letters)
            if not stop and (max_cycles is None or cycles < max_cycles):
                stop.wait(interval_s)
        if stop:
            log.info("ingest.follow.stopped", signal=stop.signal, cycles=cycles)
    return cycles
