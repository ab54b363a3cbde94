-- Kind INCREMENTAL_BY_TIME_RANGE on payment_ts: one row per payment event, and events never
-- change (a refund is an event of its own day), so a day is rebuilt from its own events only.
-- It reads the payments stream alone: an order change never restates it. lookback 1, as its
-- source silver.stg_payment_events.
MODEL (
  name gold.fct_payments,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column payment_ts,
    lookback 1
  ),
  grain payment_event_id,
  audits (
    -- blocking: the edge requires order_id and amount, amounts are non-negative there, and the
    -- status and sign follow from the event type the edge restricts
    not_null(columns := (payment_event_id, order_id, payment_ts, payment_date, payment_status, amount, signed_amount)),
    unique_values(columns := (payment_event_id)),
    accepted_values(column := payment_status, is_in := ('authorized', 'captured', 'failed', 'refunded')),
    assert_non_negative(column := amount),
    assert_not_in_future(column := payment_ts),
    -- non-blocking: Kafka and MongoDB land independently, so a payment can arrive before its order
    -- document, and a deleted order leaves its payments behind (the money moved); the count of
    -- orphans is for review, stopping the pipeline would not fix the source
    assert_order_exists(column := order_id)
  ),
  description 'Payment fact: one row per payment event (authorizations, captures, failures and refunds). Revenue definition: net revenue = SUM(signed_amount) = captured amounts minus refunded amounts; authorizations and failed payments count zero, and a refund counts on the day it was issued, not on the day of the capture it reverses.',
  column_descriptions (
    payment_event_id = 'Payment event id.',
    order_id = 'Order the payment belongs to (join to gold.fct_orders).',
    payment_ts = 'When the payment event happened (UTC).',
    payment_date = 'UTC date of payment_ts.',
    event_type = 'Payment event type, one of EVENT_TYPES["payments"] in ingest/vocabulary.py.',
    payment_status = 'authorized, captured, failed or refunded (from the event type).',
    amount = 'Amount of the event as sent, never negative (a refund carries the refunded amount).',
    signed_amount = 'Revenue effect: +amount for a capture, -amount for a refund, 0 otherwise.',
    is_revenue = 'TRUE for captures and refunds, the events that move revenue.',
    currency = 'ISO 4217 currency code.',
    payment_method = 'Payment method (card, paypal, ...).'
  )
);

WITH payments AS (
  SELECT *
  FROM silver.stg_payment_events
  WHERE event_ts BETWEEN @start_ts AND @end_ts
),

classified AS (
  SELECT
    *,
    CASE event_type
      WHEN 'payment_authorized' THEN 'authorized'
      WHEN 'payment_captured' THEN 'captured'
      WHEN 'payment_failed' THEN 'failed'
      WHEN 'refund_issued' THEN 'refunded'
    END AS payment_status
  FROM payments
)

SELECT
  event_id::VARCHAR AS payment_event_id,
  order_id::VARCHAR AS order_id,
  event_ts::TIMESTAMPTZ AS payment_ts,
  event_date::DATE AS payment_date,
  event_type::VARCHAR AS event_type,
  payment_status::VARCHAR AS payment_status,
  @money(amount) AS amount,
  @money(
    CASE payment_status
      WHEN 'captured' THEN amount
      WHEN 'refunded' THEN -amount
      ELSE 0
    END
  ) AS signed_amount,
  (payment_status IN ('captured', 'refunded'))::BOOLEAN AS is_revenue,
  currency::VARCHAR AS currency,
  payment_method::VARCHAR AS payment_method
FROM classified
