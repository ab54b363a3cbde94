"""What the transform stage costs: one more day against a long history, and a full build against one query.

``python -m bench.transform_cost [--orders-per-day N] [--histories 30,365] [--full-days D]``
writes docs/benchmarks/transform.md and docs/benchmarks/transform.json.

Landed (``bronze``) rows are written straight into DuckDB by SQL (a day of trade: orders with
their lines and status history, a session of clickstream events per order, a payment and a
shipment), so the measurement is the transform stage alone, with SQLMesh's real plan and run.

* **Incremental cost.** After a history of H days is built, one more day lands and
  ``run_transform`` runs (``t_incremental``). The same day's rows alone, in a fresh warehouse
  whose start date is that day, cost ``t_fresh``. The ratio should stay at or under 1.5 and be
  the same for every H: cost follows the change, not the history.
* **Full build.** ``run_transform`` on a fresh warehouse of about N landed rows (``t_build``)
  against one DuckDB query computing the same gold aggregates from bronze (``t_query``); the
  figures of both are compared.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from millpond.settings import Settings
from millpond.stages.landed import ensure_landed_tables
from millpond.stages.transform import run_transform

LANDED_PER_ORDER = 1 + 2 + 2 + 4 + 1 + 1  # order, 2 lines, 2 statuses, 4 clicks, a payment, a shipment

# One day of trade for orders n in [lo, hi): order n is placed on day (n // per_day) after the epoch.
_DAY_SQL = """
insert into bronze.mongo_orders (_id, customer_id, status, currency, total_amount, shipping_address__city,
  shipping_address__country, created_at, updated_at, _op, _source_ts, _ingested_at, _dlt_load_id, _dlt_id)
select 'o' || n, 'c' || (n % 500), case when n % 10 = 0 then 'cancelled' else 'paid' end, 'EUR', 30.00, 'Paris',
  'FR', ts, ts, 'snapshot', ts, ts, $load, 'o' || n || '-row'
from (select n, $epoch::timestamptz + (n // $per_day) * interval 1 day + (n % $per_day) * interval 17 second as ts
      from range($lo, $hi) t(n));
insert into bronze.mongo_orders__line_items (line_no, product_id, sku, quantity, unit_price, _dlt_root_id,
  _dlt_parent_id, _dlt_list_idx, _dlt_id)
select l, 'p' || ((n + l) % 50), 'SKU-' || ((n + l) % 50), l, 10.00, 'o' || n || '-row', 'o' || n || '-row', l - 1,
  'o' || n || '-l' || l
from range($lo, $hi) t(n), range(1, 3) s(l);
insert into bronze.mongo_orders__status_history (status, "at", _dlt_root_id, _dlt_parent_id, _dlt_list_idx, _dlt_id)
select s, $epoch::timestamptz + (n // $per_day) * interval 1 day, 'o' || n || '-row', 'o' || n || '-row', i,
  'o' || n || '-s' || i
from range($lo, $hi) t(n), (values (0, 'created'), (1, 'paid')) v(i, s);
insert into bronze.kafka_clickstream (topic, partition, "offset", message_key, message_ts, event_id, event_type,
  event_ts, schema_version, payload, _ingested_at, _dlt_load_id, _dlt_id)
select 'shop.clickstream', 0, n * 4 + k, 'e' || n || '-' || k, ts, 'e' || n || '-' || k, kind, ts, 1,
  json_object('session_id', 's' || n, 'customer_id', 'c' || (n % 500), 'product_id', 'p' || (n % 50),
              'order_id', case when kind = 'order_placed' then 'o' || n end, 'page_url', '/p'),
  ts, $load, 'e' || n || '-' || k
from (select n, k, kind, $epoch::timestamptz + (n // $per_day) * interval 1 day + (n % $per_day) * interval 17 second
        + k * interval 1 minute as ts
      from range($lo, $hi) t(n),
           (values (0, 'page_view'), (1, 'add_to_cart'), (2, 'checkout_started'), (3, 'order_placed')) v(k, kind));
insert into bronze.kafka_payments (topic, partition, "offset", message_key, message_ts, event_id, event_type, event_ts,
  schema_version, payload, _ingested_at, _dlt_load_id, _dlt_id)
select 'shop.payments', 0, n, 'pay' || n, ts, 'pay' || n, 'payment_captured', ts, 1,
  json_object('order_id', 'o' || n, 'amount', '30.00', 'currency', 'EUR', 'method', 'card'), ts, $load, 'pay' || n
from (select n, $epoch::timestamptz + (n // $per_day) * interval 1 day + interval 2 hour as ts from range($lo, $hi) t(n));
insert into bronze.kafka_shipments (topic, partition, "offset", message_key, message_ts, event_id, event_type,
  event_ts, schema_version, payload, _ingested_at, _dlt_load_id, _dlt_id)
select 'shop.shipments', 0, n, 'ship' || n, ts, 'ship' || n, 'shipment_created', ts, 1,
  json_object('order_id', 'o' || n, 'carrier', 'dhl', 'tracking_number', 'T' || n), ts, $load, 'ship' || n
from (select n, $epoch::timestamptz + (n // $per_day) * interval 1 day + interval 5 hour as ts from range($lo, $hi) t(n));
"""

# The customers and products every order refers to, landed once per warehouse.
_DIMENSIONS_SQL = """
insert into bronze.mongo_customers (_id, name, email, phone, address__street, address__city, address__postcode,
  address__country, created_at, updated_at, _op, _source_ts, _ingested_at, _dlt_load_id, _dlt_id)
select 'c' || n, 'Name ' || n, 'c' || n || '@example.com', '+33 1', '1 rue', 'Paris', '75001', 'FR',
  $epoch::timestamptz - interval 30 day, $epoch::timestamptz - interval 30 day, 'snapshot',
  $epoch::timestamptz - interval 30 day, $epoch::timestamptz - interval 30 day, $load, 'c' || n || '-row'
from range(500) t(n);
insert into bronze.mongo_products (_id, sku, name, category, price, currency, active, created_at, updated_at, _op,
  _source_ts, _ingested_at, _dlt_load_id, _dlt_id)
select 'p' || n, 'SKU-' || n, 'Product ' || n, 'tools', 10.00, 'EUR', true, $epoch::timestamptz - interval 30 day,
  $epoch::timestamptz - interval 30 day, 'snapshot', $epoch::timestamptz - interval 30 day,
  $epoch::timestamptz - interval 30 day, $load, 'p' || n || '-row'
from range(50) t(n);
"""

# The gold aggregates serving reads, in one pass over bronze (latest versions, no deletes, events by event_id).
ONE_PASS = """
with orders as (
  select _id, _dlt_id, status, cast(created_at as date) as order_date from bronze.mongo_orders
  where _deleted_at is null qualify row_number() over (partition by _id order by _source_ts desc) = 1
), totals as (
  select o.order_date, o.status, coalesce(sum(l.quantity * l.unit_price), 0) as total
  from orders o left join bronze.mongo_orders__line_items l on l._dlt_root_id = o._dlt_id
  group by o._id, o.order_date, o.status
), revenue as (
  select order_date, count(*) as orders, count(*) filter (where status = 'cancelled') as cancelled_orders,
    sum(total) filter (where status <> 'cancelled') as revenue from totals group by 1
), by_status as (
  select order_date, status, count(*) as orders from totals group by 1, 2
), events as (
  select event_id, event_type, cast(event_ts as date) as event_date, payload ->> 'session_id' as session_id
  from bronze.kafka_clickstream
  union all select event_id, event_type, cast(event_ts as date), null from bronze.kafka_payments
  union all select event_id, event_type, cast(event_ts as date), null from bronze.kafka_shipments
), daily_events as (
  select event_date, event_type, count(distinct event_id) as events, count(distinct session_id) as sessions
  from events group by 1, 2
)
select (select count(*) from revenue), (select sum(revenue) from revenue), (select count(*) from by_status),
  (select sum(events) from daily_events)
"""
GOLD = """
select (select count(*) from gold.agg_daily_revenue), (select sum(revenue) from gold.agg_daily_revenue),
  (select count(*) from gold.agg_daily_orders_by_status), (select sum(events) from gold.agg_daily_events)
"""


def land(
    cfg: Settings, epoch: date, per_day: int, first_day: int, days: int, load_id: str, dimensions: bool = True
) -> int:
    """Land ``days`` days of trade from day ``first_day`` after ``epoch`` (with the customers and products
    unless ``dimensions`` is false); returns the landed row count."""
    ensure_landed_tables(cfg)
    lo, hi = first_day * per_day, (first_day + days) * per_day
    with duckdb.connect(str(cfg.warehouse)) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("create table if not exists bronze._dlt_loads (load_id varchar, status bigint)")
        con.execute("insert into bronze._dlt_loads values (?, 0)", [load_id])
        sql = (
            ((_DIMENSIONS_SQL if dimensions else "") + _DAY_SQL)
            .replace("$epoch", f"'{epoch.isoformat()}'")
            .replace("$per_day", str(per_day))
            .replace("$lo", str(lo))
            .replace("$hi", str(hi))
            .replace("$load", f"'{load_id}'")
        )
        con.execute(sql)
    return (hi - lo) * LANDED_PER_ORDER


def warm_cache(source: Settings, target: Settings) -> None:
    """Give ``target`` the SQLMesh project cache ``source`` has, as a deployed data dir keeps it between runs."""
    if source.cache_dir.exists():
        shutil.copytree(source.cache_dir, target.cache_dir, dirs_exist_ok=True)


def _timed_transform(cfg: Settings, today: date) -> tuple[float, int]:
    started = time.perf_counter()
    report = run_transform(cfg, today=today)
    return time.perf_counter() - started, len(report.batches)


@dataclass
class Incremental:
    history_days: int
    history_rows: int
    history_build_s: float
    incremental_s: float
    incremental_batches: int
    fresh_day_s: float
    ratio: float


def incremental(root: Path, history_days: int, per_day: int, today: date) -> Incremental:
    epoch = today - timedelta(days=history_days)
    cfg = Settings(data_dir=root / f"h{history_days}", start_date=epoch)
    rows = land(cfg, epoch, per_day, 0, history_days, "100.5")
    build_s, _ = _timed_transform(cfg, today - timedelta(days=1))
    land(cfg, epoch, per_day, history_days, 1, "200.5", dimensions=False)
    incremental_s, batches = _timed_transform(cfg, today)
    fresh = Settings(data_dir=root / f"fresh{history_days}", start_date=today)
    land(fresh, epoch, per_day, history_days, 1, "100.5")
    warm_cache(cfg, fresh)
    fresh_s, _ = _timed_transform(fresh, today)
    return Incremental(
        history_days,
        rows,
        round(build_s, 2),
        round(incremental_s, 2),
        batches,
        round(fresh_s, 2),
        round(incremental_s / fresh_s, 2),
    )


@dataclass
class FullBuild:
    landed_rows: int
    days: int
    build_s: float
    one_pass_query_s: float
    ratio: float
    same_figures: bool


def full_build(root: Path, days: int, per_day: int, today: date) -> FullBuild:
    epoch = today - timedelta(days=days - 1)
    cfg = Settings(data_dir=root / "full", start_date=epoch)
    rows = land(cfg, epoch, per_day, 0, days, "100.5")
    for built in sorted(root.glob("h*"))[:1]:  # a warehouse of the incremental measurement
        warm_cache(Settings(data_dir=built), cfg)
    build_s, _ = _timed_transform(cfg, today)
    with duckdb.connect(str(cfg.warehouse), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        gold = con.execute(GOLD).fetchone()
        started = time.perf_counter()
        one_pass = con.execute(ONE_PASS).fetchone()
        query_s = time.perf_counter() - started
    return FullBuild(rows, days, round(build_s, 2), round(query_s, 3), round(build_s / query_s, 1), gold == one_pass)


def render(results: dict[str, Any]) -> str:
    lines = [
        "# Transform cost",
        "",
        "Measured by `python -m bench.transform_cost` (bench/transform_cost.py) on "
        f"{results['machine']}, {results['measured_at']}, {results['orders_per_day']} orders/day "
        f"({results['orders_per_day'] * LANDED_PER_ORDER} landed rows/day). Landed rows are written into DuckDB "
        "directly, so this is the transform stage alone (SQLMesh context load, janitor, plan, run), "
        "every build with a warm SQLMesh project cache, as a deployed data dir keeps it.",
        "",
        "## One more day after a history",
        "",
        "| history (days) | history rows | history build (s) | one more day (s) | batches | that day alone (s) "
        "| ratio (target ≤ 1.5) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for item in results["incremental"]:
        lines.append(
            f"| {item['history_days']} | {item['history_rows']:,} | {item['history_build_s']} | "
            f"{item['incremental_s']} | {item['incremental_batches']} | {item['fresh_day_s']} | {item['ratio']} |"
        )
    full = results["full_build"]
    lines += [
        "",
        "## Full build against one query",
        "",
        "| landed rows | days | full build (s) | one-pass DuckDB query (s) | ratio (target ≤ 3) | same figures |",
        "|---:|---:|---:|---:|---:|:---:|",
        f"| {full['landed_rows']:,} | {full['days']} | {full['build_s']} | {full['one_pass_query_s']} | "
        f"{full['ratio']} | {'yes' if full['same_figures'] else 'no'} |",
        "",
        "The one-pass query computes the three gold aggregates serving reads (daily revenue, orders by status, "
        "daily events) from bronze with the same deduplication; the build also writes every silver and gold model, "
        "runs every audit and records its intervals.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders-per-day", type=int, default=300)
    parser.add_argument("--histories", default="30,365")
    parser.add_argument("--full-days", type=int, default=300, help="days of the full build (rows = days x per day)")
    parser.add_argument("--out", type=Path, default=Settings().project_dir / "docs" / "benchmarks")
    args = parser.parse_args(argv)
    today = datetime.now(UTC).date() - timedelta(days=1)  # the newest day is complete: no event in the future
    root = Path(tempfile.mkdtemp(prefix="millpond-transform-bench-"))
    try:
        results: dict[str, Any] = {
            "machine": f"{platform.machine()}, {_cores()} cores",
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "orders_per_day": args.orders_per_day,
            "incremental": [
                asdict(incremental(root, int(days), args.orders_per_day, today)) for days in args.histories.split(",")
            ],
            "full_build": asdict(full_build(root, args.full_days, args.orders_per_day, today)),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transform.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "transform.md").write_text(render(results))
    print(json.dumps(results, indent=2))
    return results


def _cores() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    main()
