-- Kind INCREMENTAL_BY_TIME_RANGE on event_ts: payment events are immutable and event-time
-- partitioned (a refund is an event of its own day, not a change to the capture's), so a day is
-- rebuilt from its own bronze rows only. lookback 1: see silver.stg_clickstream_events.
MODEL (
  name silver.stg_payment_events,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column event_ts,
    lookback 1
  ),
  grain event_id,
  audits (
    -- blocking: each is a rule the Kafka edge enforces on every record (ingest/kafka/schemas/payments:
    -- required event_id, event_type, event_ts, order_id and amount, amount a non-negative decimal,
    -- the event_type enum, event_ts at most max_future_skew_s ahead)
    not_null(columns := (event_id, event_type, event_ts, event_date, order_id, amount)),
    unique_values(columns := (event_id)),
    accepted_values(column := event_type, is_in := @event_types(payments)),
    assert_non_negative(column := amount),
    assert_not_in_future(column := event_ts)
  ),
  description 'Payment events from Kafka topic shop.payments, one row per event_id (the first loaded copy is kept, see @first_kafka_copy). Amounts are as sent: non-negative, a refund carries the refunded amount (gold.fct_payments gives it its sign). Incremental by event_ts.',
  column_descriptions (
    event_id = 'Event id (producer generated, unique per event).',
    event_type = 'Event type, one of EVENT_TYPES["payments"] in ingest/vocabulary.py.',
    event_ts = 'When the event happened (UTC).',
    event_date = 'UTC date of event_ts.',
    order_id = 'Order the payment belongs to.',
    amount = 'Amount (sent as a decimal string or number), DECIMAL(18, 2), never negative.',
    currency = 'ISO 4217 currency code, upper-cased.',
    payment_method = 'Payment method (card, paypal, ...), lower-cased.',
    schema_version = 'Version of the topic contract (JSON Schema) the message passed.',
    kafka_partition = 'Kafka partition of the kept copy (the copy of the earliest load; within it the lowest partition, then offset).',
    kafka_offset = 'Kafka offset of the kept copy.',
    ingested_at = 'When dlt loaded the kept copy.'
  )
);

WITH source AS (
  SELECT *
  FROM bronze.kafka_payments
  WHERE event_ts BETWEEN @start_ts AND @end_ts
),

renamed AS (
  SELECT
    @kafka_envelope(),  -- noqa: AL03
    @payload_text(order_id) AS order_id,
    TRY_CAST(@payload_text(amount) AS DECIMAL(18, 2)) AS amount,
    UPPER(@payload_text(currency)) AS currency,
    LOWER(@payload_text(method)) AS payment_method
  FROM source
),

deduplicated AS (
  SELECT *
  FROM renamed
  WHERE event_id IS NOT NULL
  QUALIFY @first_kafka_copy(event_id)
)

SELECT
  @event_columns(),  -- noqa: AL03
  order_id::VARCHAR AS order_id,
  @money(amount) AS amount,
  currency::VARCHAR AS currency,
  payment_method::VARCHAR AS payment_method,
  @delivery_columns()  -- noqa: AL03
FROM deduplicated
