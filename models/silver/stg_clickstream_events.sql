-- Kind INCREMENTAL_BY_TIME_RANGE on event_ts: events are immutable and event-time partitioned, so
-- a day is rebuilt from its own bronze rows only. lookback 1 re-reads yesterday on every run: an
-- event that arrives after midnight for the day before reaches silver without a restatement;
-- later events reach it when the transform stage restates their date.
MODEL (
  name silver.stg_clickstream_events,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column event_ts,
    lookback 1
  ),
  grain event_id,
  audits (
    -- blocking: each is a rule the Kafka edge enforces on every record (ingest/kafka/schemas/clickstream:
    -- required event_id, event_type, event_ts, session_id; the event_type enum; event_ts at most
    -- max_future_skew_s ahead), so a failure is a bug in silver, never a bad source record
    not_null(columns := (event_id, event_type, event_ts, event_date, session_id)),
    unique_values(columns := (event_id)),
    accepted_values(column := event_type, is_in := @event_types(clickstream)),
    assert_not_in_future(column := event_ts)
  ),
  description 'Clickstream events from Kafka topic shop.clickstream, one row per event_id. Delivery is at-least-once, so the same event_id can sit at several offsets: the copy of the earliest load is kept, then the lowest partition and offset within it (@first_kafka_copy), so a later delivery never changes the survivor. Copies of one event carry the same event_ts, so they always fall in the same daily interval. Incremental by event_ts; each interval is recomputed from bronze.',
  column_descriptions (
    event_id = 'Event id (producer generated, unique per event).',
    event_type = 'Event type, one of EVENT_TYPES["clickstream"] in ingest/vocabulary.py.',
    event_ts = 'When the event happened (UTC).',
    event_date = 'UTC date of event_ts.',
    session_id = 'Browser session id set by the site (silver.int_sessions splits it by inactivity).',
    customer_id = 'Signed-in customer, NULL for anonymous sessions.',
    product_id = 'Product the event is about, if any.',
    order_id = 'Order placed (order_placed events only).',
    page_url = 'Page the event happened on.',
    referrer = 'Marketing channel the visit came from (google, newsletter, direct); schema version 2 onwards, NULL before.',
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
    @kafka_envelope(),  -- noqa: AL03
    @payload_text(session_id) AS session_id,
    @payload_text(customer_id) AS customer_id,
    @payload_text(product_id) AS product_id,
    @payload_text(order_id) AS order_id,
    @payload_text(page_url) AS page_url,
    LOWER(@payload_text(referrer)) AS referrer
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
  session_id::VARCHAR AS session_id,
  customer_id::VARCHAR AS customer_id,
  product_id::VARCHAR AS product_id,
  order_id::VARCHAR AS order_id,
  page_url::VARCHAR AS page_url,
  referrer::VARCHAR AS referrer,
  @delivery_columns()  -- noqa: AL03
FROM deduplicated
