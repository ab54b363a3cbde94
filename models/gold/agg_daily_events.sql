-- Kind INCREMENTAL_BY_TIME_RANGE on event_date: a day of events aggregates into that day's rows
-- only. lookback 1, as its sources (the stg_*_events models). Superset reads it: the name and
-- columns are a published contract.
MODEL (
  name gold.agg_daily_events,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column event_date,
    lookback 1
  ),
  grain (event_date, event_type),
  audits (
    not_null(columns := (event_date, event_type, events, sessions)),
    unique_combination_of_columns(columns := (event_date, event_type)),
    accepted_values(column := event_type, is_in := @event_types()),
    accepted_range(column := events, min_v := 1)
  ),
  description 'Events per UTC event date and event type over the clickstream, payment and shipment streams, counted distinct by event_id (Kafka redeliveries are not double counted).',
  column_descriptions (
    event_date = 'UTC date of event_ts.',
    event_type = 'Event type.',
    events = 'Distinct events (by event_id).',
    sessions = 'Distinct browser sessions with such an event (0 for payment and shipment events, which carry no session).'
  )
);

WITH events AS (
  SELECT *
  FROM silver.int_events_unioned
  WHERE event_date BETWEEN @start_ds AND @end_ds
)

SELECT
  event_date::DATE AS event_date,
  event_type::VARCHAR AS event_type,
  COUNT(DISTINCT event_id)::BIGINT AS events,
  COUNT(DISTINCT session_id)::BIGINT AS sessions
FROM events
GROUP BY event_date, event_type
