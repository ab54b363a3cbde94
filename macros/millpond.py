"""Project macros shared by the Millpond SQLMesh models.

* ``@utc_date(ts)``  -> the UTC calendar date of a TIMESTAMPTZ, independent of the session time zone.
* ``@money(expr)``   -> ``expr`` cast to the warehouse money type ``DECIMAL(18, 2)``.
* ``@clean_text(expr)`` -> trimmed text with empty strings turned into NULL.
* ``QUALIFY @latest_version(key)`` -> keep the newest version of each MongoDB document (renamed
  columns); ``QUALIFY @latest_landed_version(_id)`` -> the same rule on bronze column names.
* ``@is_deleted(deleted_at)`` -> TRUE when a MongoDB row is a tombstone.
* ``@has_quarantined_version(collection, key, landed_at)`` -> TRUE when a newer version of the
  document was quarantined (``bronze.dead_letter``) and not replayed.
* ``QUALIFY @first_kafka_copy(key)`` -> keep the first delivered copy of each Kafka event.

The dedup, delete and quarantine rules live here, once, because every staging model of a source
must pick the same survivor and apply deletes the same way: the consumers join on those rows.
"""

from __future__ import annotations

from sqlglot import exp
from sqlmesh import macro
from sqlmesh.core.macros import MacroEvaluator

MONEY_TYPE = "DECIMAL(18, 2)"


@macro()
def utc_date(evaluator: MacroEvaluator, ts: exp.Expression) -> exp.Expression:
    """Return the UTC date of a timestamp with time zone (the business-date rule)."""
    return exp.cast(exp.AtTimeZone(this=ts, zone=exp.Literal.string("UTC")), "DATE")


@macro()
def money(evaluator: MacroEvaluator, value: exp.Expression) -> exp.Expression:
    """Cast an amount to the warehouse money type DECIMAL(18, 2)."""
    return exp.cast(value, exp.DataType.build(MONEY_TYPE, dialect=evaluator.dialect))


@macro()
def clean_text(evaluator: MacroEvaluator, value: exp.Expression) -> exp.Expression:
    """Trim a text value and map the empty string to NULL."""
    return exp.Nullif(this=exp.Trim(this=value), expression=exp.Literal.string(""))


def _row_number_is_first(key: exp.Expression, order: list[exp.Ordered]) -> exp.Expression:
    window = exp.Window(this=exp.RowNumber(), partition_by=[key], order=exp.Order(expressions=order))
    return exp.EQ(this=window, expression=exp.Literal.number(1))


def _newest_first(updated_at: str, deleted_at: str, source_ts: str, ingested_at: str) -> list[exp.Ordered]:
    # The change's cluster time (commit order) first; then the version time, where a tombstone
    # counts as of its delete (its updated_at is NULL, or the pre-image's); then the load.
    version_time = exp.Coalesce(this=exp.column(deleted_at), expressions=[exp.column(updated_at)])
    return [
        exp.Ordered(this=exp.column(source_ts), desc=True, nulls_first=False),
        exp.Ordered(this=version_time, desc=True, nulls_first=False),
        exp.Ordered(this=exp.column(ingested_at), desc=True, nulls_first=False),
    ]


@macro()
def latest_version(evaluator: MacroEvaluator, key: exp.Expression) -> exp.Expression:
    """True for the newest row per ``key`` over renamed columns (``source_ts``, ``updated_at``,
    ``deleted_at``, ``ingested_at``): latest change cluster time, then latest version time (the
    delete time of a tombstone, else ``updated_at``), then latest load time.
    """
    return _row_number_is_first(key, _newest_first("updated_at", "deleted_at", "source_ts", "ingested_at"))


@macro()
def latest_landed_version(evaluator: MacroEvaluator, key: exp.Expression) -> exp.Expression:
    """``@latest_version`` over the bronze column names (``_deleted_at``, ``_source_ts``, ``_ingested_at``)."""
    return _row_number_is_first(key, _newest_first("updated_at", "_deleted_at", "_source_ts", "_ingested_at"))


@macro()
def is_deleted(evaluator: MacroEvaluator, deleted_at: exp.Expression) -> exp.Expression:
    """TRUE when the row is a tombstone: the source deleted the document (``_deleted_at`` is set)."""
    return exp.Not(this=exp.Is(this=deleted_at, expression=exp.Null()))


@macro()
def has_quarantined_version(
    evaluator: MacroEvaluator, collection: exp.Expression, key: exp.Expression, landed_at: exp.Expression
) -> exp.Expression:
    """TRUE when ``bronze.dead_letter`` holds a MongoDB version of ``collection`` with record key ``key``
    that is newer than the landed version (loaded at ``landed_at``) and not replayed.

    A version that breaks the contract is not landed, so silver keeps the previous one and says so
    with this flag. "Newer" compares two times the ingest stage sets on the same clock: when the
    dead letter was first seen and when the landed version was loaded. ``key`` and ``landed_at``
    are columns of the calling query (the renamed ``<entity>_id`` and ``ingested_at``), names that
    ``bronze.dead_letter`` does not have, so they resolve to the outer row.
    """
    dead_letter = exp.to_table("bronze.dead_letter", alias="quarantined")

    def column(name: str) -> exp.Column:
        return exp.column(name, table="quarantined")

    condition = exp.and_(
        exp.EQ(this=column("source"), expression=exp.Literal.string("mongodb")),
        exp.EQ(this=column("origin"), expression=exp.Literal.string(collection.name)),
        exp.EQ(this=column("record_key"), expression=key),
        exp.Is(this=column("replayed_at"), expression=exp.Null()),
        exp.GT(this=column("first_seen_at"), expression=landed_at),
    )
    newer = exp.select(exp.Literal.number(1)).from_(dead_letter).where(condition)
    return exp.Exists(this=newer)


@macro()
def first_kafka_copy(evaluator: MacroEvaluator, key: exp.Expression) -> exp.Expression:
    """True for the first delivered copy per ``key``: earliest load, then lowest partition, then offset.

    Producers retry, so an event can arrive twice, even in two partitions. Offsets are comparable
    only within one partition, so the first load that brought a copy decides (``load_id``, dlt's
    ``_dlt_load_id``, numerically), then partition and offset within that load: a redelivered
    copy lands at a new position in a later load, so it never displaces the survivor.
    """
    load_order = exp.TryCast(this=exp.column("load_id"), to=exp.DataType.build("DOUBLE"))
    return _row_number_is_first(
        key,
        [
            exp.Ordered(this=load_order, nulls_first=False),
            exp.Ordered(this=exp.column("kafka_partition"), nulls_first=True),
            exp.Ordered(this=exp.column("kafka_offset"), nulls_first=True),
        ],
    )
