"""Publish stage (the "publish" of write-audit-publish): gold relations to the serving target."""

from __future__ import annotations

import duckdb

from millpond.errors import StageFailed
from millpond.locking import pipeline_lock
from millpond.serving import DuckDBServingTarget, PublishResult, ServingTarget
from millpond.settings import Settings

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


def target_for(settings: Settings) -> ServingTarget:
    return DuckDBServingTarget(settings.serving)


def run_publish(settings: Settings, run_id: str) -> PublishResult:
    """Publish every gold relation under the pipeline lock."""
    with pipeline_lock(settings.data_dir, "publish"):
        return _publish(settings, run_id)


def _publish(settings: Settings, run_id: str) -> PublishResult:
    relations = gold_relations(settings)
    if not relations:
        raise StageFailed("no gold relations in the warehouse", stage="publish", hint="run `millpond transform` first")
    return target_for(settings).publish(settings.warehouse, relations, run_id)
