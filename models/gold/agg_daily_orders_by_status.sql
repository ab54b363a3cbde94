-- Kind INCREMENTAL_BY_TIME_RANGE on order_date: one row per order day and current status, from that
-- day's orders only (silver.int_order_totals); a status change restates the day of its order.
MODEL (
  name gold.agg_daily_orders_by_status,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column order_date
  ),
  grain (order_date, status),
  audits (
    not_null(columns := (order_date, status, orders)),
    unique_combination_of_columns(columns := (order_date, status)),
    accepted_values(column := status, is_in := @order_statuses()),
    accepted_range(column := orders, min_v := 1)
  ),
  description 'Orders placed per UTC order date and current status.',
  column_descriptions (
    order_date = 'Business date: UTC date of the order creation.',
    status = 'Current order status.',
    orders = 'Orders placed that day that are now in this status.'
  )
);

WITH orders AS (
  SELECT *
  FROM silver.int_order_totals
  WHERE order_date BETWEEN @start_ds AND @end_ds
)

SELECT
  order_date::DATE AS order_date,
  status::VARCHAR AS status,
  COUNT(*)::BIGINT AS orders
FROM orders
GROUP BY order_date, status
