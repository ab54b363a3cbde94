"""Landed (``bronze``) rows written by hand, as dlt lands them: a tiny consistent shop for transform tests.

Each helper writes one entity the way the ingest stage would leave it after a merge (MongoDB
documents: one row per ``_id`` with child rows; Kafka events: one row per offset), so SQLMesh
builds the real models on it without MongoDB or Kafka.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import count

import duckdb

from millpond.settings import Settings
from millpond.stages.landed import ensure_landed_tables

_offsets = count()


def at(day: date, hour: int = 10, minute: int = 0) -> datetime:
    """``hour:minute`` UTC of ``day``; on today, the same fraction of the part of the day already past, so
    nothing is in the future (the models audit that) and the order of the moments is kept."""
    moment = datetime.combine(day, time(hour, minute), UTC)
    now = datetime.now(UTC)
    if day != now.date():
        return moment
    midnight = datetime.combine(day, time(0), UTC)
    return midnight + (moment - midnight) * ((now - midnight) / timedelta(days=1))


class Bronze:
    """A writer of landed rows into one warehouse; ``load(id)`` starts a dlt load the next rows belong to."""

    def __init__(self, cfg: Settings) -> None:
        ensure_landed_tables(cfg)
        self.con = duckdb.connect(str(cfg.warehouse))
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("create table if not exists bronze._dlt_loads (load_id varchar, status bigint)")
        self.load_id = "0"

    def close(self) -> None:
        self.con.close()

    def load(self, load_id: str) -> None:
        self.load_id = load_id
        self.con.execute("insert into bronze._dlt_loads values (?, 0)", [load_id])

    def customer(self, customer_id: str, signed_up: datetime) -> None:
        self.con.execute(
            "insert into bronze.mongo_customers (_id, name, email, phone, address__street, address__city, "
            "address__postcode, address__country, created_at, updated_at, _op, _source_ts, _ingested_at, "
            "_dlt_load_id, _dlt_id) values (?, 'Ada Lovelace', ?, '+44 1', '1 Main St', 'London', 'N1', 'GB', ?, ?, "
            "'snapshot', ?, ?, ?, ?)",
            [
                customer_id,
                f"{customer_id}@example.com",
                signed_up,
                signed_up,
                signed_up,
                signed_up,
                self.load_id,
                f"{customer_id}-row",
            ],
        )

    def product(self, product_id: str, sku: str, price: str, created: datetime) -> None:
        self.con.execute(
            "insert into bronze.mongo_products (_id, sku, name, category, price, currency, active, created_at, "
            "updated_at, _op, _source_ts, _ingested_at, _dlt_load_id, _dlt_id) values (?, ?, 'Thing', 'tools', ?, "
            "'EUR', true, ?, ?, 'snapshot', ?, ?, ?, ?)",
            [product_id, sku, Decimal(price), created, created, created, created, self.load_id, f"{product_id}-row"],
        )

    def order(
        self,
        order_id: str,
        placed: datetime,
        lines: list[tuple[str, str, int, str]],
        statuses: list[tuple[str, datetime]] | None = None,
        customer_id: str = "c1",
    ) -> None:
        """An order (replacing any landed version): lines are (product_id, sku, quantity, unit price)."""
        statuses = statuses or [("created", placed)]
        row_id = f"{order_id}-{self.load_id}"
        self._drop_order(order_id)
        updated = statuses[-1][1]
        self.con.execute(
            "insert into bronze.mongo_orders (_id, customer_id, status, currency, total_amount, "
            "shipping_address__city, shipping_address__country, created_at, updated_at, _op, _source_ts, "
            "_ingested_at, _dlt_load_id, _dlt_id) values (?, ?, ?, 'EUR', ?, 'London', 'GB', ?, ?, 'update', ?, ?, "
            "?, ?)",
            [
                order_id,
                customer_id,
                statuses[-1][0],
                sum(q * Decimal(p) for _, _, q, p in lines),
                placed,
                updated,
                updated,
                updated,
                self.load_id,
                row_id,
            ],
        )
        for index, (product_id, sku, quantity, price) in enumerate(lines):
            self.con.execute(
                "insert into bronze.mongo_orders__line_items (line_no, product_id, sku, quantity, unit_price, "
                "_dlt_root_id, _dlt_parent_id, _dlt_list_idx, _dlt_id) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [index + 1, product_id, sku, quantity, Decimal(price), row_id, row_id, index, f"{row_id}-l{index}"],
            )
        for index, (status, changed) in enumerate(statuses):
            self.con.execute(
                'insert into bronze.mongo_orders__status_history (status, "at", _dlt_root_id, _dlt_parent_id, '
                "_dlt_list_idx, _dlt_id) values (?, ?, ?, ?, ?, ?)",
                [status, changed, row_id, row_id, index, f"{row_id}-s{index}"],
            )

    def delete(self, order_id: str, deleted: datetime) -> None:
        """What the merge of a tombstone without pre-image leaves: the key and the delete, no child rows."""
        self._drop_order(order_id)
        self.con.execute(
            "insert into bronze.mongo_orders (_id, _op, _deleted_at, _source_ts, _ingested_at, _dlt_load_id, _dlt_id) "
            "values (?, 'delete', ?, ?, ?, ?, ?)",
            [order_id, deleted, deleted, deleted, self.load_id, f"{order_id}-tombstone"],
        )

    def _drop_order(self, order_id: str) -> None:
        rows = self.con.execute("select _dlt_id from bronze.mongo_orders where _id = ?", [order_id]).fetchall()
        for (row_id,) in rows:
            self.con.execute("delete from bronze.mongo_orders__line_items where _dlt_root_id = ?", [row_id])
            self.con.execute("delete from bronze.mongo_orders__status_history where _dlt_root_id = ?", [row_id])
        self.con.execute("delete from bronze.mongo_orders where _id = ?", [order_id])

    def event(self, stream: str, event_id: str, event_type: str, happened: datetime, **payload: object) -> None:
        """One Kafka message of ``stream`` (clickstream, payments, shipments), landed at the next offset."""
        offset = next(_offsets)
        body = {"event_id": event_id, "event_type": event_type, "event_ts": happened.isoformat(), **payload}
        self.con.execute(
            f'insert into bronze.kafka_{stream} (topic, partition, "offset", message_key, message_ts, event_id, '
            "event_type, event_ts, schema_version, payload, _ingested_at, _dlt_load_id, _dlt_id) values "
            "(?, 0, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
            [
                f"shop.{stream}",
                offset,
                event_id,
                happened,
                event_id,
                event_type,
                happened,
                json.dumps(body, default=str),
                happened,
                self.load_id,
                f"{stream}-{offset}",
            ],
        )

    def shop_day(self, day: date, tag: str) -> None:
        """A day of trade: an order of c1 for p1, its payment and shipment, and the session that placed it."""
        order_id = f"o-{tag}"
        placed = at(day, 10)
        self.order(order_id, placed, [("p1", "SKU-1", 2, "10.00")], [("created", placed), ("paid", placed)])
        session = f"s-{tag}"
        for minute, kind in enumerate(["page_view", "add_to_cart", "checkout_started", "order_placed"]):
            self.event(
                "clickstream",
                f"e-{tag}-{minute}",
                kind,
                at(day, 9, 50 + minute),
                session_id=session,
                customer_id="c1",
                product_id="p1",
                order_id=order_id if kind == "order_placed" else None,
                page_url="/p/p1",
            )
        self.event(
            "payments",
            f"pay-{tag}",
            "payment_captured",
            at(day, 10, 5),
            order_id=order_id,
            amount="20.00",
            currency="EUR",
            method="card",
        )
        self.event(
            "shipments",
            f"ship-{tag}",
            "shipment_created",
            at(day, 16),
            order_id=order_id,
            carrier="dhl",
            tracking_number=f"T{tag}",
        )


def history(cfg: Settings, first: date, days: int) -> Bronze:
    """A warehouse with a customer, a product and ``days`` days of trade from ``first``, in load ``100.5``."""
    bronze = Bronze(cfg)
    bronze.load("100.5")
    bronze.customer("c1", at(first - timedelta(days=30)))
    bronze.product("p1", "SKU-1", "10.00", at(first - timedelta(days=30)))
    for offset in range(days):
        bronze.shop_day(first + timedelta(days=offset), f"d{offset}")
    return bronze
