"""Publish stage (the "publish" of write-audit-publish): an approved gold version to the serving targets.

Publish holds one read-only connection to the warehouse for its whole run, so no process can
write the warehouse between the measurement of the gold version and the last copied row (DuckDB
allows one writer or many readers, never both; the targets share that connection's database).
It measures the gold version (:mod:`millpond.stages.gold_version`) and refuses unless ``check``
approved exactly that version; then it copies every gold relation and the quality history
(as ``quality.check_results``), and each target's manifest records the gold version.

The DuckDB serving file (Superset reads it) is always published; the PostgreSQL serving
database (Cube reads it) too when ``MILLPOND_SERVING_POSTGRES_URI`` is set. Each target swaps
its publication in atomically. They are published one after the other, so a failure in the
second leaves the first one newer than the second until the next run, which re-publishes
both (a publish is idempotent).
"""

from __future__ import annotations

import duckdb

from millpond import logs
from millpond.errors import StageFailed
from millpond.locking import pipeline_lock
from millpond.serving import DuckDBServingTarget, PostgresServingTarget, PublishResult, ServingTarget
from millpond.settings import Settings
from millpond.stages import gold_version, quality
from millpond.stages.run import new_run_id

log = logs.get(__name__)


def targets_for(settings: Settings) -> list[ServingTarget]:
    """The configured serving targets, the DuckDB file first."""
    targets: list[ServingTarget] = [DuckDBServingTarget(settings.serving)]
    if settings.serving_postgres_uri is not None:
        targets.append(
            PostgresServingTarget(
                settings.serving_postgres_uri.get_secret_value(),
                reader_role=settings.serving_postgres_reader_role,
                timeout_s=settings.io_timeout_s,
            )
        )
    return targets


def run_publish(settings: Settings, run_id: str | None = None) -> list[PublishResult]:
    """Publish the approved gold version under the pipeline lock; ``run_id`` names the publication."""
    with pipeline_lock(settings.data_dir, "publish", timeout_s=settings.lock_timeout_s):
        return _publish(settings, run_id or new_run_id())


def _publish(settings: Settings, run_id: str) -> list[PublishResult]:
    if not settings.warehouse.exists():
        raise StageFailed("no warehouse yet", stage="publish", hint="run `millpond transform` first")
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        fetch = gold_version.duckdb_fetch(con)
        relations = gold_version.gold_relations(fetch)
        if not relations:
            raise StageFailed(
                "no gold relations in the warehouse", stage="publish", hint="run `millpond transform` first"
            )
        version = gold_version.fingerprint(fetch, relations)
        if not gold_version.is_approved(fetch, version):
            raise StageFailed(
                f"gold version {version} has no passing check record, nothing was published",
                stage="publish",
                hint="run `millpond check`: it approves a version only when its blocking audits and every "
                "critical Soda check passed (docs/governance/write-audit-publish.md)",
            )
        sources = {relation: relation for relation in relations}
        if gold_version.table_exists(fetch, quality.QUALITY_HISTORY):
            sources[quality.PUBLISHED_AS] = quality.QUALITY_HISTORY
        log.info("publish.start", gold_version=version, relations=len(sources), run_id=run_id)
        return [
            target.publish(settings.warehouse, list(sources), run_id, gold_version=version, sources=sources)
            for target in targets_for(settings)
        ]
