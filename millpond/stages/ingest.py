"""Ingest stage: the MongoDB and Kafka sources into the warehouse's ``bronze`` dataset.

Runs extract → normalize → load as separate steps so progress is visible and a crash between
them is recoverable: dlt keeps extracted/normalized packages on disk and the next run first
finishes any pending package (the crash points ``extract``, ``normalize``, ``load.job`` (one
load job done), ``load.jobs_done`` (every job done, the package not yet marked loaded) and
``load`` (loaded, Kafka positions not yet committed to the consumer group) stop there for the
tests). With ``kafka_batches_per_load`` set, a Kafka backlog is loaded in several packages of
that many batches per topic, and with ``mongo_snapshot_docs_per_load`` a MongoDB snapshot in
packages of that many documents per collection, each extracted, normalized and loaded before
the next is read.
Loads use dlt's parquet load files and uncompressed intermediate files. Only this stage writes
the landed layer: at the end of every run it also creates, empty, the declared landed tables
that dlt has not made yet, and collapses to one row per key the copies a resumed load job left
in the keyed tables (the Kafka tables and dead letters), checking only the loads not
checked before (``millpond/stages/landed.py``). Follow mode, the Kafka micro-batch loop, is in
``millpond/stages/follow.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dlt
import duckdb
from dlt.common.runtime.collector import LogCollector

from ingest.kafka import ARROW_NORMALIZER_CONFIG, KafkaCredentials, kafka_source
from ingest.kafka.helpers import KafkaSourceError, commit_offsets, offsets_of
from ingest.mongodb import COLLECTIONS, mongodb_source
from ingest.mongodb.helpers import MongoSourceError
from millpond import logs
from millpond.errors import StageFailed
from millpond.faults import crash_point
from millpond.locking import pipeline_lock
from millpond.settings import Settings
from millpond.stages.destination import landing_destination
from millpond.stages.landed import (
    DATASET,
    collapse_landed_copies,
    ensure_landed_tables,
    landed_id_batches,
    quarantined_by_load,
)
from millpond.stages.landed_policies import apply_landed_policies

log = logs.get(__name__)
PIPELINE_NAME = "millpond_ingest"
# dlt's load jobs run one at a time: concurrent jobs on the one warehouse each hold their own DuckDB
# query memory beside the others, so the load's peak would add up over the tables of a package (ADR 0019).
LOAD_WORKERS = 1
# dlt extracts one resource to its end before the next ("fifo"), not a batch of each in turn
# ("round_robin", its default): one Kafka consumer, with its prefetch queue and fetch buffers, is
# open at a time instead of one per topic (ADR 0023).
EXTRACT_ORDER = "fifo"
KAFKA_SOURCE = "kafka"
MONGO_SOURCE = "mongodb"


@dataclass
class IngestReport:
    """Rows loaded per table in this run, and the records it quarantined (by source and error class)."""

    rows: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    quarantined: dict[str, dict[str, int]] = field(default_factory=dict)
    load_ids: list[str] = field(default_factory=list)
    created_tables: list[str] = field(default_factory=list)
    committed_offsets: bool | None = None
    kafka_caught_up: bool | None = None  # every topic read to its end (False: a bounded read left a backlog)
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
    Arrow items get dlt's ``_dlt_load_id`` column and carry their own ``_dlt_id`` (the Kafka
    source's ``ARROW_NORMALIZER_CONFIG``), dlt runs one load job at a time (``LOAD_WORKERS``)
    and does not intercept SIGTERM/SIGINT: the follower handles them between batches. The
    options are set for this pipeline only (dlt config keys under its name), not for every dlt
    pipeline in the process. A DuckDB warehouse's connections are bounded by its credentials
    (:func:`millpond.stages.destination.duckdb_config`).
    """
    settings.dlt_dir.mkdir(parents=True, exist_ok=True)
    options = {
        "data_writer.disable_compression": True,
        **ARROW_NORMALIZER_CONFIG,
        "load.workers": LOAD_WORKERS,
        "extract.next_item_mode": EXTRACT_ORDER,
    }
    for key, value in options.items():
        dlt.config[f"{PIPELINE_NAME}.{key}"] = value
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=landing_destination(settings),
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


def configured_mongo_source(settings: Settings, collections: Sequence[str] | None = None) -> Any:
    """The MongoDB source (of ``collections``, None: every contracted one), given every ``MILLPOND_MONGO_*``
    setting explicitly.

    It reads the ids already landed in the warehouse (read-only, in batches) to tombstone
    documents deleted at the source: after a (re-)snapshot in CDC mode, on reconciliation in
    cursor mode.
    """
    return mongodb_source(
        collections=tuple(COLLECTIONS) if collections is None else tuple(collections),
        connection_url=settings.mongo_uri,
        database=settings.mongo_db,
        mode=settings.mongo_mode,
        timeout_ms=int(settings.io_timeout_s * 1000),
        batch_size=settings.mongo_batch_size,
        cursor_lag_s=settings.mongo_cursor_lag_s,
        reconcile_every=settings.mongo_reconcile_every,
        landed_ids=landed_id_batches(settings),
        snapshot_docs_per_run=settings.mongo_snapshot_docs_per_load or None,
    )


def configured_kafka_source(settings: Settings, max_batches: int | None = None) -> Any:
    """The Kafka source, given every ``MILLPOND_KAFKA_*`` setting (and the event-time bounds) explicitly.

    ``max_batches``: each topic's read ends after this many batches (the follower's
    micro-batches); None reads every partition to its end.
    """
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
        max_batches_per_run=max_batches,
        schema_dir=str(settings.kafka_schema_dir) if settings.kafka_schema_dir else None,
    )


def sources(
    settings: Settings,
    *,
    mongo: bool = True,
    kafka: bool = True,
    kafka_max_batches: int | None = None,
    mongo_collections: Sequence[str] | None = None,
) -> list[Any]:
    """The configured sources (MongoDB: of ``mongo_collections``, None: every one)."""
    out: list[Any] = []
    if mongo:
        out.append(configured_mongo_source(settings, mongo_collections))
    if kafka:
        out.append(configured_kafka_source(settings, kafka_max_batches))
    return out


def run_ingest(settings: Settings, *, mongo: bool = True, kafka: bool = True) -> IngestReport:
    """Extract, normalize and load under the pipeline lock (waiting up to ``lock_timeout_s`` for it)."""
    return locked_ingest(settings, settings.lock_timeout_s, mongo=mongo, kafka=kafka)


def locked_ingest(
    settings: Settings,
    lock_timeout_s: float,
    *,
    mongo: bool,
    kafka: bool,
    kafka_max_batches: int | None = None,
) -> IngestReport:
    """:func:`run_ingest` with its own lock timeout and bound of the Kafka reads (the follower's cycle)."""
    with pipeline_lock(settings.data_dir, "ingest", timeout_s=lock_timeout_s):
        return _ingest(settings, mongo=mongo, kafka=kafka, kafka_max_batches=kafka_max_batches)


def _ingest(settings: Settings, *, mongo: bool, kafka: bool, kafka_max_batches: int | None) -> IngestReport:
    started = time.monotonic()
    pipeline = make_pipeline(settings)
    report = IngestReport()
    try:
        report.load_ids += finish_pending_packages(pipeline, settings, "ingest")
        per_load = kafka_max_batches or settings.kafka_batches_per_load or None
        _extract_normalize_load(pipeline, settings, report, mongo=mongo, kafka=kafka, kafka_max_batches=per_load)
        topics = settings.topics.as_dict()
        while kafka_max_batches is None:  # the rest of a Kafka backlog and of MongoDB snapshots, a package each
            more_kafka = bool(kafka and per_load and not kafka_caught_up(pipeline, topics))
            snapshots = unfinished_snapshots(pipeline) if mongo else []
            if not more_kafka and not snapshots:
                break
            log.info("ingest.next_package", kafka_batches_per_topic=more_kafka and per_load, snapshots=snapshots)
            _extract_normalize_load(
                pipeline,
                settings,
                report,
                mongo=bool(snapshots),
                kafka=more_kafka,
                kafka_max_batches=per_load,
                mongo_collections=snapshots,
            )
        report.created_tables = ensure_landed_tables(settings)
        collapse_landed_copies(settings)
        apply_landed_policies(settings)  # erasures and retention, to the rows just landed
    except Exception as exc:
        raise ingest_error(exc, settings) from exc
    if kafka:
        report.committed_offsets = commit_kafka_positions(settings, pipeline)
        report.kafka_caught_up = kafka_caught_up(pipeline, settings.topics.as_dict())
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


def _extract_normalize_load(
    pipeline: dlt.Pipeline,
    settings: Settings,
    report: IngestReport,
    *,
    mongo: bool,
    kafka: bool,
    kafka_max_batches: int | None,
    mongo_collections: Sequence[str] | None = None,
) -> None:
    """One load package: extract the sources (each topic's read bounded by ``kafka_max_batches``, each MongoDB
    snapshot by ``mongo_snapshot_docs_per_load``), normalize, load."""
    log.info("ingest.extract.start", mongo=mongo, kafka=kafka)
    extract = pipeline.extract(
        sources(
            settings,
            mongo=mongo,
            kafka=kafka,
            kafka_max_batches=kafka_max_batches,
            mongo_collections=mongo_collections,
        )
    )
    crash_point("extract")
    log.info("ingest.normalize.start", packages=len(extract.loads_ids))
    normalize = pipeline.normalize()
    crash_point("normalize")
    counts = normalize.row_counts if normalize is not None else {}
    rows = {t: int(n) for t, n in counts.items() if not t.startswith("_dlt")}
    log.info("ingest.load.start", rows=sum(rows.values()))
    report.load_ids += _load(pipeline)
    crash_point("load")
    for table, n in rows.items():
        report.rows[table] = report.rows.get(table, 0) + n
    report.rows = dict(sorted(report.rows.items()))


def finish_pending_packages(pipeline: dlt.Pipeline, settings: Settings, command: str) -> list[str]:
    """Load what an earlier run left pending, before ``command`` extracts anything; the ids of the loads.

    dlt commits an extract's load packages, whose state carries the sources' new positions, before
    it saves that state to the working directory. A run killed in between leaves extracted packages
    ahead of the local state: loading them and then reading on from the local state would read
    their records again (and, on a first run, dlt cannot even normalize them: no schema was saved).
    Extracted packages have not touched the warehouse, so those are aborted (dlt restores the local
    state and schemas they started from) and the records are read again. Other pending packages
    are normalized and loaded, and the copies a resumed load job left are collapsed.
    """
    if not pipeline.has_pending_data:
        return []
    unsaved = unsaved_extract(pipeline)
    if unsaved:
        log.warning("pending_packages.unsaved_extract_aborted", command=command, packages=unsaved)
        pipeline.abort_packages()
        if not pipeline.has_pending_data:
            return []
    log.warning("pending_packages.resuming", command=command)
    pipeline.normalize()
    load_ids = _load(pipeline)
    collapse_landed_copies(settings)
    return load_ids


def unsaved_extract(pipeline: dlt.Pipeline) -> list[str]:
    """The extracted packages whose pipeline state is newer than the local one (its save was lost)."""
    local = pipeline.state.get("_state_version", 0)
    extracted = pipeline.list_extracted_load_packages()
    # dlt 1.31's Pipeline.get_load_package_state reads normalized packages only
    packages = pipeline._get_normalize_storage().extracted_packages
    ahead = any(
        (packages.get_load_package_state(load_id).get("pipeline_state") or {}).get("version", 0) > local
        for load_id in extracted
    )
    return list(extracted) if ahead else []


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


def _in_chain(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """The first error of one of ``kinds`` behind ``exc`` (dlt wraps errors in its step errors), if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def source_error(exc: BaseException) -> KafkaSourceError | MongoSourceError | None:
    """The source's own error behind ``exc``, if there is one."""
    cause = _in_chain(exc, (KafkaSourceError, MongoSourceError))
    return cause if isinstance(cause, KafkaSourceError | MongoSourceError) else None


def ingest_error(exc: BaseException, settings: Settings) -> StageFailed:
    """One clear line: the source's own message and what to check, DuckDB's memory limit, or dlt's error."""
    cause = source_error(exc)
    if cause is not None:
        hint = next(
            (h for cls in type(cause).__mro__ for name, h in _SOURCE_HINTS.items() if cls.__name__ == name),
            "fix the cause named above and re-run `millpond ingest`; see docs/pipelines/README.md",
        )
        return StageFailed(f"ingestion failed: {cause}", stage="ingest", hint=hint)
    out_of_memory = _in_chain(exc, (duckdb.OutOfMemoryException,))
    if out_of_memory is not None:
        first_line = str(out_of_memory).strip().splitlines()[0]
        return StageFailed(
            f"ingestion failed: DuckDB ran out of memory in the warehouse: {first_line}",
            stage="ingest",
            hint=(
                f"raise MILLPOND_DUCKDB_MEMORY_LIMIT (this run: {settings.duckdb_memory_limit}) and re-run"
                " `millpond ingest`: it finishes the pending package or step first, once; lower"
                " MILLPOND_KAFKA_BATCHES_PER_LOAD / MILLPOND_MONGO_SNAPSHOT_DOCS_PER_LOAD to bound later packages"
            ),
        )
    return StageFailed(
        f"ingestion failed: {exc}",
        stage="ingest",
        hint="re-run `millpond ingest`: pending packages are finished first and merges are idempotent",
    )


def _kafka_states(pipeline: dlt.Pipeline, topics: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Topic -> the Kafka source's resource state of its stream (empty before the first read)."""
    resources = pipeline.state.get("sources", {}).get(KAFKA_SOURCE, {}).get("resources", {})
    return {topic: resources.get(f"kafka_{stream}", {}) for stream, topic in topics.items()}


def kafka_positions(pipeline: dlt.Pipeline, topics: Mapping[str, str]) -> dict[str, dict[int, int]]:
    """Topic -> partition -> next offset, as the Kafka source's resource state holds them (the loaded positions)."""
    states = _kafka_states(pipeline, topics)
    return {topic: offsets_of(state["positions"]) for topic, state in states.items() if state.get("positions")}


def unfinished_snapshots(pipeline: dlt.Pipeline) -> list[str]:
    """The collections whose CDC snapshot a bounded read left unfinished (``snapshot_done`` false in its state)."""
    resources = pipeline.state.get("sources", {}).get(MONGO_SOURCE, {}).get("resources", {})
    return [
        name.removeprefix("mongo_")
        for name, state in resources.items()
        if isinstance(state, Mapping) and "snapshot_done" in state and not state["snapshot_done"]
    ]


def kafka_caught_up(pipeline: dlt.Pipeline, topics: Mapping[str, str]) -> bool:
    """Whether the last read of every topic reached the end of its partitions (not stopped at its batch bound)."""
    return all(state.get("caught_up", True) for state in _kafka_states(pipeline, topics).values())


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
