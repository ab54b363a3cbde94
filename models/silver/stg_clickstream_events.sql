MODEL (
  name silver.stg_clickstream_events,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column event_ts
  ),
  grain event_id,
  audits (
    not_null(columns := (event_id, event_type, event_ts, event_date, session_id)),
    unique_values(columns := (event_id)),
    accepted_values(column := event_type, is_in := @event_types(clickstream))
  ),
  description 'Clickstream events from Kafka topic shop.clickstream. Delivery is at-least-once, so the same event_id can sit at several offsets: one row per event_id is kept: the copy of the earliest load, then the lowest partition and offset within it (@first_kafka_copy), so a later delivery never changes the survivor. Incremental by event_ts; each daily interval is recomputed from bronze on restatement.',
  column_descriptions (
    event_id = 'Event id (producer generated, unique per event).',
    event_type = 'Event type, one of EVENT_TYPES["clickstream"] in ingest/vocabulary.py.',
    event_ts = 'When the event happened (UTC).',
    event_date = 'UTC date of event_ts.',
    session_id = 'Browser session.',
    customer_id = 'Signed-in customer, NULL for anonymous sessions.',
    product_id = 'Product the event is about, if any.',
    order_id = 'Order placed (order_placed events only).',
    page_url = 'Page the event happened on.',
    schema_version = 'Version of the topic contract (JSON Schema) the message passed.',
    kafka_partition = 'Kafka partition of the kept copy (the copy of the earliest load; within it the lowest partition, then offset).',
    kafka_offset = 'Kafka offset of the kept copy.',
    ingested_at = 'When dlt loaded the kept copy.'
  )
);

WITH source AS (
  SELECT *
  FROM bronze.kafka_clickstream
  WHERE event_ts BETWEEN @start_ts AND @end_ts
),

renamed AS (
  SELECT
    @clean_text(event_id) AS event_id,
    LOWER(@clean_text(event_type)) AS event_type,
    event_ts,
    @clean_text(payload ->> '$.session_id') AS session_id,
    @clean_text(payload ->> '$.customer_id') AS customer_id,
    @clean_text(payload ->> '$.product_id') AS product_id,
    @clean_text(payload ->> '$.order_id') AS order_id,
    @clean_text(payload ->> '$.page_url') AS page_url,
    -- the landed column names the contract the message passed; older rows carry it in the payload only
    COALESCE(schema_version, TRY_CAST(payload ->> '$.schema_version' AS INT)) AS schema_version,
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
  session_id::VARCHAR AS session_id,
  customer_id::VARCHAR AS customer_id,
  product_id::VARCHAR AS product_id,
  order_id::VARCHAR AS order_id,
  page_url::VARCHAR AS page_url,
  schema_version::INT AS schema_version,
  kafka_partition::BIGINT AS kafka_partition,
  kafka_offset::BIGINT AS kafka_offset,
  ingested_at::TIMESTAMPTZ AS ingested_at
FROM deduplicated
