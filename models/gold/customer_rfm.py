"""gold.customer_rfm: recency, frequency and monetary value per customer, scored and segmented with polars.

Kind FULL: every score is a rank among all customers, so one new order can move everyone's scores
and the whole table changes; it is one row per customer, small. A Python model because the
scoring (quintile ranks, segment rules) reads more plainly as dataframe code than as SQL; polars
computes it and the model returns pandas, which SQLMesh (and ``sqlmesh test``) take in.
"""

from __future__ import annotations

import typing as t
from datetime import date, datetime

import pandas as pd
import polars as pl
from sqlglot import exp
from sqlmesh import ExecutionContext, model

SCORES = 5  # quintiles: 5 is the best score
OTHER_SEGMENT = "needs_attention"

COLUMNS = {
    "customer_id": "VARCHAR",
    "first_order_date": "DATE",
    "last_order_date": "DATE",
    "recency_days": "INT",
    "frequency": "BIGINT",
    "monetary": "DECIMAL(18, 2)",
    "r_score": "INT",
    "f_score": "INT",
    "m_score": "INT",
    "rfm_segment": "VARCHAR",
    "as_of_date": "DATE",
}


def segment_rules() -> list[tuple[str, pl.Expr]]:
    """(segment, rule over the scores), first match wins: the classic RFM grid reduced to six segments.

    A function, not a constant: SQLMesh stores a Python model's code with the globals it uses, and
    polars expressions are not literals it can store.
    """
    r, f = pl.col("r_score"), pl.col("f_score")
    return [
        ("champions", (r >= 4) & (f >= 4)),
        ("loyal", (r >= 3) & (f >= 3)),
        ("new", (r >= 4) & (pl.col("frequency") == 1)),
        ("at_risk", (r <= 2) & (f >= 3)),
        ("hibernating", r <= 2),
    ]


def _score(column: str, *, descending: bool = False) -> pl.Expr:
    """Quintile 1..5 of ``column`` among all customers, ties sharing the lower score.

    5 goes to the highest values, or to the lowest when ``descending``.
    """
    rank = pl.col(column).rank(method="min", descending=descending)
    return (((rank - 1) * SCORES) // pl.len() + 1).clip(1, SCORES).cast(pl.Int32)


def rfm(orders: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Score kept (non-cancelled) orders per customer as of ``as_of`` (recency counts from that day)."""
    per_customer = orders.group_by("customer_id").agg(
        pl.col("order_date").min().alias("first_order_date"),
        pl.col("order_date").max().alias("last_order_date"),
        pl.len().cast(pl.Int64).alias("frequency"),
        pl.col("order_total_cents").sum().alias("monetary_cents"),
    )
    scored = per_customer.with_columns(
        (pl.lit(as_of) - pl.col("last_order_date")).dt.total_days().cast(pl.Int32).alias("recency_days"),
    ).with_columns(
        _score("recency_days", descending=True).alias("r_score"),
        _score("frequency").alias("f_score"),
        _score("monetary_cents").alias("m_score"),
    )
    segment = pl.lit(OTHER_SEGMENT)
    for name, rule in reversed(segment_rules()):
        segment = pl.when(rule).then(pl.lit(name)).otherwise(segment)
    return (
        scored.with_columns(
            segment.alias("rfm_segment"),
            (pl.col("monetary_cents") / 100).round(2).alias("monetary"),
            pl.lit(as_of).alias("as_of_date"),
        )
        .select(list(COLUMNS))
        .sort("customer_id")
    )


@model(
    "gold.customer_rfm",
    kind="FULL",
    grains=["customer_id"],
    depends_on=["gold.fct_orders"],
    columns=COLUMNS,
    audits=[
        # blocking: arithmetic of this model (a failure is a modelling bug, not bad data)
        ("not_null", {"columns": [exp.column(c) for c in COLUMNS]}),
        ("unique_values", {"columns": [exp.column("customer_id")]}),
        ("accepted_range", {"column": exp.column("r_score"), "min_v": 1, "max_v": SCORES}),
        ("accepted_range", {"column": exp.column("f_score"), "min_v": 1, "max_v": SCORES}),
        ("accepted_range", {"column": exp.column("m_score"), "min_v": 1, "max_v": SCORES}),
        ("accepted_range", {"column": exp.column("frequency"), "min_v": 1}),
        ("assert_non_negative", {"column": exp.column("monetary")}),
    ],
    description=(
        "Customer RFM segmentation: one row per customer with at least one order that is not cancelled."
        " Recency = days from the last such order to as_of_date (the run's execution date), frequency ="
        " those orders, monetary = their order_total summed (cancelled orders, and so refunds, count"
        " nothing). Each is scored 1..5 by quintile among all customers (5 = most recent, most orders,"
        " most spent; ties share the lower score), and r/f scores give the segment: champions (r>=4, f>=4),"
        " loyal (r>=3, f>=3), new (r>=4, one order), at_risk (r<=2, f>=3), hibernating (r<=2), else"
        " needs_attention. Computed with polars."
    ),
    column_descriptions={
        "customer_id": "Customer (join to gold.dim_customers).",
        "first_order_date": "UTC date of the first non-cancelled order.",
        "last_order_date": "UTC date of the last non-cancelled order.",
        "recency_days": "Days from last_order_date to as_of_date.",
        "frequency": "Non-cancelled orders.",
        "monetary": "Sum of order_total over the non-cancelled orders.",
        "r_score": "Recency quintile, 5 = most recent.",
        "f_score": "Frequency quintile, 5 = most orders.",
        "m_score": "Monetary quintile, 5 = most spent.",
        "rfm_segment": "champions, loyal, new, at_risk, hibernating or needs_attention (see the description).",
        "as_of_date": "The day recency is counted to: the run's execution date (UTC).",
    },
)
def execute(context: ExecutionContext, execution_time: datetime, **kwargs: t.Any) -> t.Iterator[pd.DataFrame]:
    # order_total in cents, as an integer: sums stay exact whatever the engine's decimal mapping
    query = (
        exp.select(
            exp.column("customer_id"),
            exp.column("order_date"),
            exp.cast(exp.Round(this=exp.column("order_total") * 100), "BIGINT").as_("order_total_cents"),
        )
        .from_(context.resolve_table("gold.fct_orders"), dialect=context.engine_adapter.dialect)
        .where(exp.not_(exp.column("is_cancelled")))
    )
    frame = context.fetchdf(query, quote_identifiers=True)
    if frame.empty:
        yield from ()  # no orders yet: SQLMesh takes no frame as an empty table, an empty frame it cannot type
        return
    orders = pl.from_pandas(frame).with_columns(
        pl.col("order_date").cast(pl.Date), pl.col("order_total_cents").cast(pl.Int64)
    )
    as_of = execution_time.date()
    yield rfm(orders, as_of).to_pandas()
