-- Kind INCREMENTAL_BY_TIME_RANGE on order_date: an order belongs to the day it was placed, and a
-- day is rebuilt from the current (FULL) staging models, so restating a day picks up every status
-- change and delete of that day's orders. The daily aggregates read it day by day.
MODEL (
  name silver.int_order_totals,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column order_date
  ),
  grain order_id,
  audits (
    not_null(columns := (order_id, order_date, status, is_cancelled, item_count, order_total)),
    unique_values(columns := (order_id)),
    assert_non_negative(column := order_total),
    assert_non_negative(column := item_count)
  ),
  description 'One row per order that exists at the source (deleted orders are gone from silver.stg_orders) with its totals computed from the line items (item_count = units, order_total = sum(quantity * unit_price)). Partitioned by order_date (UTC date of created_at); a restated day is rebuilt from the current order versions.',
  column_descriptions (
    order_id = 'Order id.',
    customer_id = 'Customer who placed the order.',
    order_date = 'Business date: UTC date of the order creation.',
    ordered_at = 'When the order was placed (UTC).',
    status = 'Current status.',
    is_cancelled = 'TRUE when the current status is cancelled.',
    currency = 'ISO 4217 currency code.',
    line_count = 'Number of order lines.',
    item_count = 'Units ordered: sum of line quantities (0 for an order without lines).',
    order_total = 'Sum of quantity * unit_price over the lines (0.00 for an order without lines).',
    source_total_amount = 'total_amount stored on the order document, kept for reconciliation.',
    updated_at = 'When the order was last changed (UTC).',
    has_quarantined_version = 'TRUE when a newer version of the order was quarantined (see silver.stg_orders).'
  )
);

WITH orders AS (
  SELECT *
  FROM silver.stg_orders
  WHERE order_date BETWEEN @start_ds AND @end_ds
),

line_items AS (
  SELECT * FROM silver.stg_order_line_items
),

line_totals AS (
  SELECT
    line_items.order_id,
    COUNT(*) AS line_count,
    SUM(line_items.quantity) AS item_count,
    SUM(line_items.line_total) AS order_total
  FROM line_items
  INNER JOIN orders
    ON line_items.order_id = orders.order_id
  GROUP BY line_items.order_id
),

final AS (
  SELECT
    orders.order_id,
    orders.customer_id,
    orders.order_date,
    orders.created_at AS ordered_at,
    orders.status,
    orders.is_cancelled,
    orders.currency,
    COALESCE(line_totals.line_count, 0) AS line_count,
    COALESCE(line_totals.item_count, 0) AS item_count,
    COALESCE(line_totals.order_total, 0) AS order_total,
    orders.source_total_amount,
    orders.updated_at,
    orders.has_quarantined_version
  FROM orders
  LEFT JOIN line_totals
    ON orders.order_id = line_totals.order_id
)

SELECT
  order_id::VARCHAR AS order_id,
  customer_id::VARCHAR AS customer_id,
  order_date::DATE AS order_date,
  ordered_at::TIMESTAMPTZ AS ordered_at,
  status::VARCHAR AS status,
  is_cancelled::BOOLEAN AS is_cancelled,
  currency::VARCHAR AS currency,
  line_count::BIGINT AS line_count,
  item_count::BIGINT AS item_count,
  @money(order_total) AS order_total,
  source_total_amount,
  updated_at::TIMESTAMPTZ AS updated_at,
  COALESCE(has_quarantined_version, FALSE)::BOOLEAN AS has_quarantined_version
FROM final
