MODEL (
  name silver.stg_payment_events,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column event_ts
  ),
  grain event_id,
  audits (
    not_null(columns := (event_id, event_type, event_ts, event_date, order_id)),
    unique_values(columns := (event_id)),
    accepted_values(column := event_type, is_in := @event_types(payments))
  ),
  description 'Payment events from Kafka topic shop.payments, one row per event_id (the first loaded copy is kept, see @first_kafka_copy). Incremental by event_ts.',
  column_descriptions (
    event_id = 'Event id (producer generated, unique per event).',
    event_type = 'Event type, one of EVENT_TYPES["payments"] in ingest/vocabulary.py.',
    event_ts = 'When the event happened (UTC).',
    event_date = 'UTC date of event_ts.',
    order_id = 'Order the payment belongs to.',
    amount = 'Amount (sent as a decimal string), NULL when it is not a number.',
    currency = 'ISO 4217 currency code.',
    payment_method = 'Payment method (card, paypal, ...).',
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
    @clean_text(event_id) AS event_id,
    LOWER(@clean_text(event_type)) AS event_type,
    event_ts,
    @clean_text(payload ->> '$.order_id') AS order_id,
    TRY_CAST(payload ->> '$.amount' AS DECIMAL(18, 2)) AS amount,
    UPPER(@clean_text(payload ->> '$.currency')) AS currency,
    LOWER(@clean_text(payload ->> '$.method')) AS payment_method,
    schema_version,
    "partition" AS kafka_partition,  -- noqa: RF06
    "offset" AS kafka_offset,
    _dlt_load_id AS load_id,
    _ingested_at AS ingested_at
  FROM source
),

deduplicated AS (
  SELECT *
  FROM renamed
  WHERE event_id IS NOT NULL
  QUALIFY @first_kafka_copy(event_id)
)

SELECT
  event_id::VARCHAR AS event_id,
  event_type::VARCHAR AS event_type,
  event_ts::TIMESTAMPTZ AS event_ts,
  @utc_date(event_ts) AS event_date,
  order_id::VARCHAR AS order_id,
  amount,
  currency::VARCHAR AS currency,
  payment_method::VARCHAR AS payment_method,
  schema_version::INT AS schema_version,
  kafka_partition::BIGINT AS kafka_partition,
  kafka_offset::BIGINT AS kafka_offset,
  ingested_at::TIMESTAMPTZ AS ingested_at
FROM deduplicated
