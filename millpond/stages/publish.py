"""Publish stage (the "publish" of write-audit-publish): gold relations to the serving targets.

The DuckDB serving file (Superset reads it) is always published; the PostgreSQL serving
database (Cube reads it) too when ``MILLPOND_SERVING_POSTGRES_URI`` is set. Each target swaps
its publication in atomically. They are published one after the other, so a failure in the
second leaves the first one newer than the second until the next run, which re-publishes
both (a publish is idempotent).
"""

from __future__ import annotations

import duckdb

from millpond.errors import StageFailed
from millpond.locking import pipeline_lock
from millpond.serving import DuckDBServingTarget, PostgresServingTarget, PublishResult, ServingTarget
from millpond.settings import Settings
from millpond.stages.run import new_run_id

PUBLISHED_SCHEMAS = ("gold",)


def gold_relations(settings: Settings) -> list[str]:
    """``schema.name`` of every table or view in the published schemas of the warehouse."""
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        rows = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            f"where table_schema in ({', '.join('?' for _ in PUBLISHED_SCHEMAS)}) order by 1",
            list(PUBLISHED_SCHEMAS),
        ).fetchall()
    return [r[0] for r in rows]


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
    """Publish every gold relation under the pipeline lock; ``run_id`` names the publication (default: a new one)."""
    with pipeline_lock(settings.data_dir, "publish", timeout_s=settings.lock_timeout_s):
        return _publish(settings, run_id or new_run_id())


def _publish(settings: Settings, run_id: str) -> list[PublishResult]:
    relations = gold_relations(settings)
    if not relations:
        raise StageFailed("no gold relations in the warehouse", stage="publish", hint="run `millpond transform` first")
    return [target.publish(settings.warehouse, relations, run_id) for target in targets_for(settings)]
