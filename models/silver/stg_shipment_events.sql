-- Kind INCREMENTAL_BY_TIME_RANGE on event_ts: shipment events are immutable and event-time
-- partitioned (a delivery is an event of its own day), so a day is rebuilt from its own bronze
-- rows only. lookback 1: see silver.stg_clickstream_events.
MODEL (
  name silver.stg_shipment_events,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column event_ts,
    lookback 1
  ),
  grain event_id,
  audits (
    -- blocking: each is a rule the Kafka edge enforces on every record (ingest/kafka/schemas/shipments:
    -- required event_id, event_type, event_ts and order_id, the event_type enum, event_ts at most
    -- max_future_skew_s ahead)
    not_null(columns := (event_id, event_type, event_ts, event_date, order_id)),
    unique_values(columns := (event_id)),
    accepted_values(column := event_type, is_in := @event_types(shipments)),
    assert_not_in_future(column := event_ts)
  ),
  description 'Shipment events from Kafka topic shop.shipments, one row per event_id (the first loaded copy is kept, see @first_kafka_copy). Incremental by event_ts.',
  column_descriptions (
    event_id = 'Event id (producer generated, unique per event).',
    event_type = 'Event type, one of EVENT_TYPES["shipments"] in ingest/vocabulary.py.',
    event_ts = 'When the event happened (UTC).',
    event_date = 'UTC date of event_ts.',
    order_id = 'Shipped order.',
    carrier = 'Carrier name.',
    tracking_number = 'Carrier tracking number.',
    schema_version = 'Version of the topic contract (JSON Schema) the message passed.',
    kafka_partition = 'Kafka partition of the kept copy (the copy of the earliest load; within it the lowest partition, then offset).',
    kafka_offset = 'Kafka offset of the kept copy.',
    ingested_at = 'When dlt loaded the kept copy.'
  )
);

WITH source AS (
  SELECT *
  FROM bronze.kafka_shipments
  WHERE event_ts BETWEEN @start_ts AND @end_ts
),

renamed AS (
  SELECT
    @kafka_envelope(),  -- noqa: AL03
    @payload_text(order_id) AS order_id,
    @payload_text(carrier) AS carrier,
    @payload_text(tracking_number) AS tracking_number
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
  carrier::VARCHAR AS carrier,
  tracking_number::VARCHAR AS tracking_number,
  @delivery_columns()  -- noqa: AL03
FROM deduplicated
