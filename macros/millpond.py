"""Project macros shared by the Millpond SQLMesh models.

* ``@utc_date(ts)``  -> the UTC calendar date of a TIMESTAMPTZ, independent of the session time zone.
* ``@money(expr)``   -> ``expr`` cast to the warehouse money type ``DECIMAL(18, 2)``.
* ``@clean_text(expr)`` -> trimmed text with empty strings turned into NULL.
* ``QUALIFY @latest_version(key)`` -> keep the newest version of each MongoDB document.
* ``QUALIFY @first_kafka_copy(key)`` -> keep the first delivered copy of each Kafka event.

The two dedup rules live here, once, because every staging model of a source must pick the
same survivor: the consumers join on those rows.
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


@macro()
def latest_version(
    evaluator: MacroEvaluator, key: exp.Expression, ingested_at: exp.Expression | None = None
) -> exp.Expression:
    """True for the newest row per ``key``: latest ``updated_at``, then latest load time.

    ``ingested_at`` names the load-time column where it is not renamed yet (``_ingested_at`` on bronze).
    """
    return _row_number_is_first(
        key,
        [
            exp.Ordered(this=exp.column("updated_at"), desc=True, nulls_first=False),
            exp.Ordered(this=ingested_at or exp.column("ingested_at"), desc=True, nulls_first=False),
        ],
    )


@macro()
def first_kafka_copy(evaluator: MacroEvaluator, key: exp.Expression) -> exp.Expression:
    """True for the first delivered copy per ``key``: lowest offset, then partition, then load time.

    Producers retry, so an event can arrive twice with different offsets; the earliest copy is kept
    so that re-ingesting later duplicates never changes which row survives.
    """
    return _row_number_is_first(
        key,
        [
            exp.Ordered(this=exp.column("kafka_offset"), nulls_first=True),
            exp.Ordered(this=exp.column("kafka_partition"), nulls_first=True),
            exp.Ordered(this=exp.column("ingested_at"), nulls_first=True),
        ],
    )
