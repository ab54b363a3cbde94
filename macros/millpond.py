"""Project macros shared by the Millpond SQLMesh models.

* ``@utc_date(ts)``  -> the UTC calendar date of a TIMESTAMPTZ, independent of the session time zone.
* ``@money(expr)``   -> ``expr`` cast to the warehouse money type ``DECIMAL(18, 2)``.
* ``@clean_text(expr)`` -> trimmed text with empty strings turned into NULL.
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
