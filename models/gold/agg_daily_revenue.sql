-- Kind INCREMENTAL_BY_TIME_RANGE on order_date: one row per order day, computed from that day's
-- orders only (silver.int_order_totals), so a restated day replaces exactly its own row.
MODEL (
  name gold.agg_daily_revenue,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column order_date
  ),
  grain order_date,
  audits (
    not_null(columns := (order_date, orders, cancelled_orders, revenue, avg_order_value)),
    unique_values(columns := (order_date)),
    assert_non_negative(column := revenue),
    assert_non_negative(column := avg_order_value),
    assert_cancelled_within_orders
  ),
  description 'Daily revenue: orders placed per UTC order date, how many are cancelled, and revenue = sum of the line totals of orders that are not cancelled. Amounts are summed as they are (the shop sells in one currency). Refunds do not count: a refund is issued only for a paid order that is then cancelled, and cancelled orders count no revenue, so revenue is net of refunds by order date; the cash view (captures minus refunds on the day the money moved) is SUM(signed_amount) in gold.fct_payments.',
  column_descriptions (
    order_date = 'Business date: UTC date of the order creation.',
    orders = 'Orders placed that day, any status.',
    cancelled_orders = 'Orders placed that day whose current status is cancelled.',
    revenue = 'Sum of quantity * unit_price over the lines of the non-cancelled orders.',
    avg_order_value = 'revenue / non-cancelled orders, rounded to cents; 0.00 when every order was cancelled.'
  )
);

WITH orders AS (
  SELECT *
  FROM silver.int_order_totals
  WHERE order_date BETWEEN @start_ds AND @end_ds
),

daily AS (
  SELECT
    order_date,
    COUNT(*) AS orders,
    COUNT(*) FILTER (WHERE is_cancelled) AS cancelled_orders,
    COUNT(*) FILTER (WHERE NOT is_cancelled) AS kept_orders,
    COALESCE(SUM(order_total) FILTER (WHERE NOT is_cancelled), 0) AS revenue
  FROM orders
  GROUP BY order_date
)

SELECT
  order_date::DATE AS order_date,
  orders::BIGINT AS orders,
  cancelled_orders::BIGINT AS cancelled_orders,
  @money(revenue) AS revenue,
  @money(COALESCE(ROUND(revenue / NULLIF(kept_orders, 0), 2), 0)) AS avg_order_value
FROM daily
