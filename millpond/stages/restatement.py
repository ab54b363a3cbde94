"""What new landed data touched, and which model intervals that invalidates.

After each ingest the transform stage finds, per landed (``bronze``) table, the distinct business
dates of the rows loaded since its last successful run (:func:`touched_dates`). Each landed table
is a SQLMesh external model ``bronze.<table>`` (dlt's child tables ``<table>__*`` change with their
root row), so the models to rebuild are the ones downstream of the changed tables in SQLMesh's DAG,
and for each of them only the intervals of those dates (:func:`invalidated_intervals`). The stage
removes exactly those intervals from SQLMesh's state (:func:`remove_intervals`); ``sqlmesh run``
then backfills what is missing and records each batch as it completes, so a killed run resumes.

A tombstone (a MongoDB delete) has no business time of its own unless it carries the pre-image,
and a quarantined version lands none: their date is the one the entity was built into in gold.
Rows dated before the project start date (or after today) never invalidate anything.

Every query goes through SQLMesh's engine adapter, so this works on any gateway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlglot import exp, parse_one

from ingest.dead_letter import TABLE as DEAD_LETTERS
from millpond import logs
from millpond.stages.destination import DATASET

log = logs.get(__name__)
# landed table -> column giving the business time a new row belongs to; None: the row has none
# (customers, products), so a change to it touches today only: that re-runs the models that are
# not partitioned by time (FULL, SCD type 2) and leaves the daily history alone
BUSINESS_TIME: dict[str, str | None] = {
    "mongo_orders": "created_at",
    "kafka_clickstream": "event_ts",
    "kafka_payments": "event_ts",
    "kafka_shipments": "event_ts",
    "mongo_customers": None,
    "mongo_products": None,
}


@dataclass(frozen=True)
class BuiltDate:
    """Where the business date of an entity already built can be read back by its MongoDB ``_id``."""

    table: str
    key: str
    date: str


# landed table -> the built table holding each entity's business date: a delete or a quarantined
# version touches the day the entity is in (the tombstone's own created_at, when it has a
# pre-image, counts too). Gold is read because gold is what must lose the entity.
BUILT_DATE: dict[str, BuiltDate] = {
    "mongo_orders": BuiltDate("gold.fct_orders", "order_id", "order_date"),
}
LOADS = "_dlt_loads"


def _new_rows(watermark: str) -> str:
    """Rows of the landed table aliased ``landed`` that a load after ``watermark`` brought."""
    literal = exp.Literal.string(str(float(watermark))).sql()  # load ids are numbers: float() rejects anything else
    return f"try_cast(landed._dlt_load_id as double) > try_cast({literal} as double)"


def _fetchall(adapter: Any, sql: str) -> list[tuple[Any, ...]]:
    """Run a DuckDB-dialect query on the gateway's engine (SQLMesh renders it in the engine's dialect)."""
    return list(adapter.fetchall(parse_one(sql, dialect="duckdb")))


def _exists(adapter: Any, table: str) -> bool:
    return bool(adapter.table_exists(table))


def newest_load_id(adapter: Any) -> str | None:
    """The newest completed dlt load, or None before the first one."""
    if not _exists(adapter, f"{DATASET}.{LOADS}"):
        return None
    rows = _fetchall(
        adapter,
        f"select load_id from {DATASET}.{LOADS} where status = 0 order by try_cast(load_id as double) desc limit 1",
    )
    return str(rows[0][0]) if rows else None


def touched_dates(adapter: Any, watermark: str | None, today: date, start_date: date) -> dict[str, set[date]]:
    """Landed table -> the distinct business dates of its rows loaded after ``watermark``.

    Only tables that changed are keys; dates outside ``[start_date, today]`` are dropped.
    """
    mark = watermark or "0"
    touched: dict[str, set[date]] = defaultdict(set)
    built = {table: lookup for table, lookup in BUILT_DATE.items() if _exists(adapter, lookup.table)}
    for table, column in BUSINESS_TIME.items():
        if _exists(adapter, f"{DATASET}.{table}"):
            touched[table] |= _landed_dates(adapter, table, column, built.get(table), mark, today)
    if _exists(adapter, f"{DATASET}.{DEAD_LETTERS}"):
        for table, dates in _quarantined_dates(adapter, built, mark, today).items():
            touched[table] |= dates
    return {
        table: {day for day in dates if start_date <= day <= today}
        for table, dates in touched.items()
        if any(start_date <= day <= today for day in dates)
    }


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _landed_dates(
    adapter: Any, table: str, column: str | None, built: BuiltDate | None, watermark: str, today: date
) -> set[date]:
    """Distinct business dates among the rows of ``table`` loaded after ``watermark``."""
    if column is None:
        rows = _fetchall(adapter, f"select 1 from {DATASET}.{table} as landed where {_new_rows(watermark)} limit 1")
        return {today} if rows else set()
    dates = [f"cast(landed.{column} as date)"]
    join = ""
    if built is not None:  # a tombstone without pre-image has no created_at: it takes the built date
        dates.append(f"built.{built.date}")
        join = f"left join {built.table} as built on built.{built.key} = landed._id"
    found: set[date] = set()
    for business_date in dates:
        rows = _fetchall(
            adapter,
            f"select distinct {business_date} from {DATASET}.{table} as landed {join} "
            f"where {_new_rows(watermark)} and {business_date} is not null",
        )
        found |= {_as_date(row[0]) for row in rows}
    return found


def _quarantined_dates(
    adapter: Any, built: Mapping[str, BuiltDate], watermark: str, today: date
) -> dict[str, set[date]]:
    """Entity table -> business dates of the entities whose MongoDB dead letters were loaded after ``watermark``.

    Their ``has_quarantined_version`` flag changes. A collection without a business time touches
    today, as a changed document of it does; the dead-letter table itself changed today.
    """
    new = _new_rows(watermark)
    origins = _fetchall(
        adapter,
        f"select distinct landed.origin, landed.source from {DATASET}.{DEAD_LETTERS} as landed where {new}",
    )
    out: dict[str, set[date]] = defaultdict(set)
    if origins:
        out[DEAD_LETTERS].add(today)
    for origin, source in origins:
        table = f"mongo_{origin}"
        if source != "mongodb":
            continue
        if table in built:
            lookup = built[table]
            rows = _fetchall(
                adapter,
                f"select distinct built.{lookup.date} from {DATASET}.{DEAD_LETTERS} as landed "
                f"join {lookup.table} as built on built.{lookup.key} = landed.record_key "
                f"where landed.source = 'mongodb' and landed.origin = '{origin}' and {new}",
            )
            out[table] |= {_as_date(row[0]) for row in rows if row[0] is not None}
        elif table in BUSINESS_TIME and BUSINESS_TIME[table] is None:
            out[table].add(today)
    return out


def landed_external_models(models: Mapping[str, Any], table: str) -> list[str]:
    """Fully qualified names of the external models a landed table feeds: itself and dlt's child tables."""
    names = []
    for fqn, model in models.items():
        if not model.kind.is_external:
            continue
        parsed = exp.to_table(fqn)
        if parsed.db == DATASET and (parsed.name == table or parsed.name.startswith(f"{table}__")):
            names.append(fqn)
    return names


def short_name(fqn: str) -> str:
    """``schema.table`` of a fully qualified SQLMesh name (the catalog is the warehouse file)."""
    table = exp.to_table(fqn)
    return f"{table.db}.{table.name}"


def downstream_of(dag: Any, models: Mapping[str, Any], tables: Iterable[str]) -> dict[str, set[str]]:
    """Model fqn -> the changed landed tables it is downstream of (in SQLMesh's DAG)."""
    out: dict[str, set[str]] = defaultdict(set)
    for table in tables:
        for external in landed_external_models(models, table):
            for fqn in dag.downstream(external):
                out[fqn].add(table)
    return dict(out)


Interval = tuple[int, int]


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _built(snapshot: Any, intervals: Iterable[Interval]) -> list[Interval]:
    """The parts of ``intervals`` the snapshot has built (removing anything else changes nothing)."""
    out = []
    for start, end in intervals:
        for built_start, built_end in snapshot.intervals:
            low, high = max(start, built_start), min(end, built_end)
            if low < high:
                out.append((low, high))
    return _merge(out)


def intervals_for(snapshot: Any, dates: Iterable[date], today: date) -> list[Interval]:
    """The built intervals of ``snapshot`` to rebuild for new data on ``dates``.

    * partitioned by time (INCREMENTAL_BY_TIME_RANGE): the interval holding each date; a model that
      reads itself also every later interval, since those were built on the old ones;
    * not partitioned by time (FULL, SCD type 2, INCREMENTAL_BY_UNIQUE_KEY, ...): today's interval,
      which re-runs the model once over the current upstream (when today is not built yet the run
      builds it anyway); INCREMENTAL_BY_UNIQUE_KEY also the dates' intervals, since its query may
      bound its source by them;
    * a view, an external or a seed model: nothing (they are not built per interval).
    """
    kind = snapshot.model.kind
    if not snapshot.intervals or kind.is_view or kind.is_symbolic or kind.is_seed:
        return []
    per_day = [snapshot.inclusive_exclusive(day, day, strict=False) for day in sorted(set(dates))]
    current = [snapshot.inclusive_exclusive(today, today, strict=False)]
    if kind.is_incremental_by_time_range:
        if snapshot.depends_on_self and per_day:
            return _built(snapshot, [(per_day[0][0], snapshot.intervals[-1][1])])
        return _built(snapshot, per_day)
    if kind.is_incremental_by_unique_key:
        return _built(snapshot, per_day + current)
    return _built(snapshot, current)


@dataclass(frozen=True)
class Invalidation:
    """Intervals of one snapshot to rebuild, and why."""

    model: str
    snapshot: Any
    intervals: list[Interval]
    sources: list[str]


def invalidated_intervals(
    snapshots: Iterable[Any], dag: Any, models: Mapping[str, Any], touched: Mapping[str, set[date]], today: date
) -> list[Invalidation]:
    """For each snapshot downstream of a changed landed table, the intervals its new rows touch.

    A model downstream of several changed tables rebuilds the dates of all of them.
    """
    affected = downstream_of(dag, models, touched)
    out = []
    for snapshot in snapshots:
        if not snapshot.is_model or snapshot.name not in affected:
            continue
        sources = sorted(affected[snapshot.name])
        dates = set().union(*(touched[table] for table in sources))
        intervals = intervals_for(snapshot, dates, today)
        if intervals:
            out.append(Invalidation(snapshot.name, snapshot, intervals, sources))
    return out


def remove_intervals(state_sync: Any, invalidations: Iterable[Invalidation]) -> None:
    """Mark the invalidated intervals as missing in SQLMesh's state (for every snapshot sharing the table).

    SQLMesh removes one interval per table version per call, so each interval is its own round.
    """
    rounds: dict[int, list[tuple[Any, Interval]]] = defaultdict(list)
    for invalidation in invalidations:
        for position, interval in enumerate(invalidation.intervals):
            rounds[position].append((invalidation.snapshot, interval))
    for _, pairs in sorted(rounds.items()):
        state_sync.remove_intervals(pairs, remove_shared_versions=True)


def describe(invalidations: Iterable[Invalidation]) -> dict[str, list[str]]:
    """Model -> its invalidated intervals as ``start/end`` UTC dates (end exclusive), for logs and reports."""
    from sqlmesh.utils.date import to_ds

    return {
        short_name(item.model): [f"{to_ds(start)}/{to_ds(end)}" for start, end in item.intervals]
        for item in invalidations
    }
