"""The shop's closed vocabularies as SQL literals, read from ``ingest.vocabulary``.

* ``@order_statuses()``      -> ``('created', 'paid', ...)``, every order status.
* ``@event_types(stream)``   -> the event types of one Kafka stream (``clickstream``, ``payments``,
  ``shipments``); ``@event_types()`` -> the event types of every stream.
* ``@event_streams()``       -> the stream names.

Audits take them as arguments, e.g. ``accepted_values(column := status, is_in := @order_statuses())``,
so the models accept exactly the values the sources, the generator and the Soda contracts use.
"""

from __future__ import annotations

from sqlglot import exp
from sqlmesh import macro
from sqlmesh.core.macros import MacroEvaluator

from ingest.vocabulary import EVENT_TYPES, ORDER_STATUSES


def _string_tuple(values: tuple[str, ...] | list[str]) -> exp.Tuple:
    return exp.Tuple(expressions=[exp.Literal.string(value) for value in values])


@macro()
def order_statuses(evaluator: MacroEvaluator) -> exp.Tuple:
    """Every order status, in the order an order moves through them."""
    return _string_tuple(ORDER_STATUSES)


@macro()
def event_types(evaluator: MacroEvaluator, stream: exp.Expression | None = None) -> exp.Tuple:
    """The event types of ``stream`` (a stream name, quoted or bare), or of every stream when omitted."""
    if stream is None:
        return _string_tuple([event_type for types in EVENT_TYPES.values() for event_type in types])
    name = stream.name
    if name not in EVENT_TYPES:
        raise ValueError(f"@event_types: unknown stream {name!r}, expected one of {sorted(EVENT_TYPES)}")
    return _string_tuple(EVENT_TYPES[name])


@macro()
def event_streams(evaluator: MacroEvaluator) -> exp.Tuple:
    """The Kafka stream names (the values of ``event_source`` in silver.int_events_unioned)."""
    return _string_tuple(list(EVENT_TYPES))
