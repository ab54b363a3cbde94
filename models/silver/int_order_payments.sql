-- Kind VIEW: an order's payment state changes for days (captured, later refunded), so a row per
-- order is mutable, and a table partitioned by event date would need its old days rebuilt. The
-- view recomputes it from the deduplicated events and the current orders when it is read: never
-- stale, nothing to build, and it joins the orders lineage without making gold.fct_payments
-- (events only) restate when an order changes.
MODEL (
  name silver.int_order_payments,
  kind VIEW,
  grain order_id,
  audits (
    -- blocking: sums of amounts the edge guarantees non-negative, and one row per order by the GROUP BY
    not_null(columns := (order_id, payment_status, captured_amount, refunded_amount, order_found)),
    unique_values(columns := (order_id)),
    accepted_values(column := payment_status, is_in := ('authorized', 'captured', 'failed', 'refunded')),
    assert_non_negative(column := captured_amount),
    assert_non_negative(column := refunded_amount)
  ),
  description 'Payments matched to orders: one row per order that has at least one payment event, with when it was authorized, captured and refunded, how many attempts failed, the amounts, and the order it belongs to (order_found is FALSE while the order is not, or no longer, at the source).',
  column_descriptions (
    order_id = 'Order the payments belong to.',
    order_found = 'TRUE when the order exists in silver.stg_orders (not deleted, already landed).',
    customer_id = 'Customer of the order (NULL when order_found is FALSE).',
    order_date = 'Business date of the order: UTC date of its creation (NULL when order_found is FALSE).',
    ordered_at = 'When the order was placed (UTC).',
    authorized_at = 'First payment_authorized event (UTC), NULL if none.',
    captured_at = 'First payment_captured event (UTC), NULL if none.',
    refunded_at = 'Last refund_issued event (UTC), NULL if none.',
    failed_attempts = 'payment_failed events.',
    captured_amount = 'Sum of the captured amounts.',
    refunded_amount = 'Sum of the refunded amounts.',
    net_amount = 'captured_amount - refunded_amount: what the order earns (the revenue definition of gold.fct_payments).',
    currency = 'ISO 4217 currency code of the payments (the greatest if several).',
    payment_status = 'Furthest payment state: refunded, captured, authorized, else failed.',
    seconds_to_capture = 'Seconds from placing the order to the first capture (NULL until both are known).'
  )
);

WITH payments AS (
  SELECT * FROM silver.stg_payment_events
),

orders AS (
  SELECT
    order_id,
    customer_id,
    order_date,
    created_at
  FROM silver.stg_orders
),

per_order AS (
  SELECT
    order_id,
    MIN(CASE WHEN event_type = 'payment_authorized' THEN event_ts END) AS authorized_at,
    MIN(CASE WHEN event_type = 'payment_captured' THEN event_ts END) AS captured_at,
    MAX(CASE WHEN event_type = 'refund_issued' THEN event_ts END) AS refunded_at,
    SUM(CASE WHEN event_type = 'payment_failed' THEN 1 ELSE 0 END) AS failed_attempts,
    SUM(CASE WHEN event_type = 'payment_captured' THEN amount ELSE 0 END) AS captured_amount,
    SUM(CASE WHEN event_type = 'refund_issued' THEN amount ELSE 0 END) AS refunded_amount,
    MAX(currency) AS currency
  FROM payments
  GROUP BY order_id
),

matched AS (
  SELECT
    per_order.*,
    orders.order_id IS NOT NULL AS order_found,
    orders.customer_id,
    orders.order_date,
    orders.created_at AS ordered_at
  FROM per_order
  LEFT JOIN orders
    ON per_order.order_id = orders.order_id
)

SELECT
  order_id::VARCHAR AS order_id,
  order_found::BOOLEAN AS order_found,
  customer_id::VARCHAR AS customer_id,
  order_date::DATE AS order_date,
  ordered_at::TIMESTAMPTZ AS ordered_at,
  authorized_at::TIMESTAMPTZ AS authorized_at,
  captured_at::TIMESTAMPTZ AS captured_at,
  refunded_at::TIMESTAMPTZ AS refunded_at,
  failed_attempts::BIGINT AS failed_attempts,
  @money(captured_amount) AS captured_amount,
  @money(refunded_amount) AS refunded_amount,
  @money(captured_amount - refunded_amount) AS net_amount,
  currency::VARCHAR AS currency,
  CASE
    WHEN refunded_at IS NOT NULL THEN 'refunded'
    WHEN captured_at IS NOT NULL THEN 'captured'
    WHEN authorized_at IS NOT NULL THEN 'authorized'
    ELSE 'failed'
  END::VARCHAR AS payment_status,
  @seconds_between(ordered_at, captured_at)::BIGINT AS seconds_to_capture
FROM matched
