MODEL (
  name gold.fct_orders,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column order_date
  ),
  grain order_id,
  audits (
    not_null(columns := (order_id, customer_id, order_date, ordered_at, status, item_count, order_total, is_cancelled, has_quarantined_version)),
    unique_values(columns := (order_id)),
    accepted_values(column := status, is_in := @order_statuses()),
    assert_non_negative(column := order_total),
    assert_order_total_matches_line_items
  ),
  description 'Order fact: one row per order that exists at the source (a deleted order leaves it, and with it the revenue and counts of the daily aggregates), with its current status and totals from the line items. Partitioned by order_date (UTC date of created_at). No PII.',
  column_descriptions (
    order_id = 'Order id.',
    customer_id = 'Customer who placed the order (join to gold.dim_customers).',
    order_date = 'Business date: UTC date of the order creation.',
    ordered_at = 'When the order was placed (UTC).',
    status = 'Current status, one of ORDER_STATUSES in ingest/vocabulary.py.',
    item_count = 'Units ordered (sum of line quantities).',
    order_total = 'Sum of quantity * unit_price over the order lines.',
    currency = 'ISO 4217 currency code.',
    is_cancelled = 'TRUE when the current status is cancelled.',
    updated_at = 'When the order was last changed (UTC).',
    has_quarantined_version = 'TRUE when a newer version of the order broke the contract and was quarantined (bronze.dead_letter, not replayed): this row shows the last version that passed. checks/contracts/fct_orders.yml counts them.'
  )
);

WITH orders AS (
  SELECT *
  FROM silver.int_order_totals
  WHERE order_date BETWEEN @start_ds AND @end_ds
)

SELECT
  order_id::VARCHAR AS order_id,
  customer_id::VARCHAR AS customer_id,
  order_date::DATE AS order_date,
  ordered_at::TIMESTAMPTZ AS ordered_at,
  status::VARCHAR AS status,
  item_count::BIGINT AS item_count,
  @money(order_total) AS order_total,
  currency::VARCHAR AS currency,
  is_cancelled::BOOLEAN AS is_cancelled,
  updated_at::TIMESTAMPTZ AS updated_at,
  has_quarantined_version::BOOLEAN AS has_quarantined_version
FROM orders
