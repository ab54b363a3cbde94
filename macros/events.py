"""Macros of the event streams: the Kafka staging models and the session and funnel models.

* ``@kafka_envelope()``   -> the envelope of a landed Kafka row, renamed and cleaned (the
  ``renamed`` CTE of every ``stg_*_events`` model): event_id, event_type, event_ts,
  schema_version, kafka_partition, kafka_offset, load_id, ingested_at.
* ``@payload_text(field)`` -> a text field of the message payload, trimmed, NULL when empty.
* ``@event_columns()``    -> the typed leading output columns: event_id, event_type, event_ts, event_date.
* ``@delivery_columns()`` -> the typed trailing output columns: schema_version, kafka_partition,
  kafka_offset, ingested_at.
* ``@session_timeout()``  -> the inactivity that ends a session (30 minutes).
* ``@seconds_between(start, end)`` -> whole seconds from ``start`` to ``end``.
* ``@future_limit()``     -> the latest plausible event time: now plus the Kafka edge's future skew.
* ``@funnel_grows(steps)`` -> TRUE when a funnel step counts more than the step before it.

The three Kafka streams share one envelope (external_models.yaml, ``&kafka_envelope``), so the
three staging models read, clean, type and deduplicate it with the same expressions: a consumer
that joins two streams on event_id, or a change to the survivor rule, sees one definition.
Deduplication itself is ``QUALIFY @first_kafka_copy(event_id)`` (macros/millpond.py) over the
columns ``@kafka_envelope()`` names.
"""

from __future__ import annotations

from itertools import pairwise

from sqlglot import exp
from sqlmesh import macro
from sqlmesh.core.macros import MacroEvaluator

from ingest.kafka.contracts import DEFAULT_MAX_FUTURE_SKEW_S
from macros.millpond import clean_text, utc_date

SESSION_TIMEOUT_MINUTES = 30

# The landed envelope, renamed: a row landed before the schema_version column existed carries the
# version in its payload only.
_ENVELOPE = """
SELECT
  MP_CLEAN_TEXT(event_id) AS event_id,
  LOWER(MP_CLEAN_TEXT(event_type)) AS event_type,
  event_ts AS event_ts,
  COALESCE(schema_version, TRY_CAST(CAST(payload AS JSON) ->> '$.schema_version' AS INT)) AS schema_version,
  "partition" AS kafka_partition,
  "offset" AS kafka_offset,
  _dlt_load_id AS load_id,
  _ingested_at AS ingested_at
"""

_EVENT_COLUMNS = """
SELECT
  event_id::VARCHAR AS event_id,
  event_type::VARCHAR AS event_type,
  event_ts::TIMESTAMPTZ AS event_ts,
  MP_UTC_DATE(event_ts) AS event_date
"""

_DELIVERY_COLUMNS = """
SELECT
  schema_version::INT AS schema_version,
  kafka_partition::BIGINT AS kafka_partition,
  kafka_offset::BIGINT AS kafka_offset,
  ingested_at::TIMESTAMPTZ AS ingested_at
"""


def _projections(evaluator: MacroEvaluator, select_sql: str) -> list[exp.Expr]:
    """The projections of ``select_sql``, with ``@clean_text``/``@utc_date`` expanded (macros/millpond.py)."""
    select = evaluator.parse_one(select_sql)
    expanded = select.transform(lambda node: _expand_project_macro(evaluator, node))
    assert isinstance(expanded, exp.Select)
    return list(expanded.expressions)


def _expand_project_macro(evaluator: MacroEvaluator, node: exp.Expr) -> exp.Expr:
    # This module's macros are evaluated with only the macros a model names, so the project
    # macros they build on are called as functions here.
    if isinstance(node, exp.Anonymous) and node.name.lower() == "mp_clean_text":
        return clean_text(evaluator, *node.expressions)
    if isinstance(node, exp.Anonymous) and node.name.lower() == "mp_utc_date":
        return utc_date(evaluator, *node.expressions)
    return node


@macro()
def kafka_envelope(evaluator: MacroEvaluator) -> list[exp.Expr]:
    """The renamed, cleaned envelope columns of a landed Kafka row (bronze.kafka_*)."""
    return _projections(evaluator, _ENVELOPE)


@macro()
def payload_text(evaluator: MacroEvaluator, field: exp.Expr) -> exp.Expr:
    """``payload.<field>`` as trimmed text, NULL when absent or empty (``field`` quoted or bare)."""
    path = exp.Literal.string(f"$.{field.name}")
    return clean_text(evaluator, evaluator.parse_one(f"CAST(payload AS JSON) ->> {path.sql()}"))


@macro()
def event_columns(evaluator: MacroEvaluator) -> list[exp.Expr]:
    """The typed leading output columns of a staging event model."""
    return _projections(evaluator, _EVENT_COLUMNS)


@macro()
def delivery_columns(evaluator: MacroEvaluator) -> list[exp.Expr]:
    """The typed trailing output columns of a staging event model: its contract version and Kafka position."""
    return _projections(evaluator, _DELIVERY_COLUMNS)


@macro()
def session_timeout(evaluator: MacroEvaluator) -> exp.Expr:
    """The inactivity after which the next event of a browser starts a new session."""
    return exp.Interval(this=exp.Literal.string(str(SESSION_TIMEOUT_MINUTES)), unit=exp.var("MINUTE"))


@macro()
def seconds_between(evaluator: MacroEvaluator, start: exp.Expr, end: exp.Expr) -> exp.Expr:
    """Whole seconds from ``start`` to ``end`` (a timestamp difference every engine can render)."""
    return exp.TimestampDiff(this=end, expression=start, unit=exp.var("SECOND"))


@macro()
def future_limit(evaluator: MacroEvaluator) -> exp.Expr:
    """Now plus the future skew the Kafka edge allows (variable ``max_future_skew_s``, default the edge's).

    The edge quarantines an event_ts later than its own now plus this skew, and an audit runs after
    the ingest that landed the event, so an event past this limit cannot have passed the edge.
    """
    skew = float(evaluator.var("max_future_skew_s", DEFAULT_MAX_FUTURE_SKEW_S) or 0)
    interval = exp.Interval(this=exp.Literal.string(str(int(skew))), unit=exp.var("SECOND"))
    return exp.Add(this=exp.CurrentTimestamp(), expression=interval)


@macro()
def funnel_grows(evaluator: MacroEvaluator, steps: exp.Expr) -> exp.Expr:
    """TRUE when any step of ``steps`` (a tuple of columns, first step first) exceeds the step before."""
    columns = list(steps.expressions) if isinstance(steps, (exp.Tuple, exp.Array)) else [steps]
    if len(columns) < 2:
        raise ValueError("@funnel_grows: give at least two funnel steps, first step first")
    growths = [exp.GT(this=later.copy(), expression=earlier.copy()) for earlier, later in pairwise(columns)]
    return exp.or_(*growths)
