-- Kind VIEW: a UNION ALL of three tables that are already deduplicated and audited. A table would
-- store every event a second time for its one consumer, gold.agg_daily_events, which reads a day
-- at a time: the date filter reaches each branch of the view, so a view is the cheapest.
MODEL (
  name silver.int_events_unioned,
  kind VIEW,
  grain (event_source, event_id),
  audits (
    accepted_values(column := event_source, is_in := @event_streams())
  ),
  description 'The three deduplicated event streams (clickstream, payments, shipments) in one shape, one row per (event_source, event_id).',
  column_descriptions (
    event_source = 'Stream the event came from, a key of EVENT_TYPES in ingest/vocabulary.py.',
    event_id = 'Event id (unique within its stream).',
    event_type = 'Event type (stream specific).',
    event_ts = 'When the event happened (UTC).',
    event_date = 'UTC date of event_ts.',
    session_id = 'Browser session (clickstream only).',
    customer_id = 'Customer (clickstream only, NULL when anonymous).',
    order_id = 'Order the event refers to, if any.',
    amount = 'Payment amount (payments only).',
    currency = 'Payment currency (payments only).'
  )
);

WITH clickstream AS (
  SELECT
    'clickstream' AS event_source,
    event_id,
    event_type,
    event_ts,
    event_date,
    session_id,
    customer_id,
    order_id,
    NULL::DECIMAL(18, 2) AS amount,
    NULL::VARCHAR AS currency
  FROM silver.stg_clickstream_events
),

payments AS (
  SELECT
    'payments' AS event_source,
    event_id,
    event_type,
    event_ts,
    event_date,
    NULL::VARCHAR AS session_id,
    NULL::VARCHAR AS customer_id,
    order_id,
    amount,
    currency
  FROM silver.stg_payment_events
),

shipments AS (
  SELECT
    'shipments' AS event_source,
    event_id,
    event_type,
    event_ts,
    event_date,
    NULL::VARCHAR AS session_id,
    NULL::VARCHAR AS customer_id,
    order_id,
    NULL::DECIMAL(18, 2) AS amount,
    NULL::VARCHAR AS currency
  FROM silver.stg_shipment_events
),

unioned AS (
  SELECT * FROM clickstream
  UNION ALL
  SELECT * FROM payments
  UNION ALL
  SELECT * FROM shipments
)

SELECT
  event_source::VARCHAR AS event_source,
  event_id::VARCHAR AS event_id,
  event_type::VARCHAR AS event_type,
  event_ts::TIMESTAMPTZ AS event_ts,
  event_date::DATE AS event_date,
  session_id::VARCHAR AS session_id,
  customer_id::VARCHAR AS customer_id,
  order_id::VARCHAR AS order_id,
  amount::DECIMAL(18, 2) AS amount,
  currency::VARCHAR AS currency
FROM unioned
