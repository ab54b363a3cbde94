-- Kind INCREMENTAL_BY_TIME_RANGE on session_date: a session ends after 30 minutes of inactivity
-- or at UTC midnight (the rule Google Analytics used), so a day's sessions depend on that day's
-- events only and each daily interval is exact on its own. lookback 1, as its source
-- silver.stg_clickstream_events: yesterday's late events re-cut yesterday's sessions.
MODEL (
  name silver.int_sessions,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column session_date,
    lookback 1
  ),
  grain session_key,
  audits (
    -- blocking: all four follow from the construction below, so a failure is a bug in this model
    not_null(columns := (session_key, session_id, session_number, session_date, session_start, session_end, events)),
    unique_values(columns := (session_key)),
    assert_non_negative(column := duration_seconds),
    accepted_range(column := events, min_v := 1)
  ),
  description 'Browsing sessions cut from the clickstream, one row per session: the events of one browser session id, in time order, split wherever 30 minutes pass without an event (@session_timeout) and at UTC midnight. Carries the funnel steps the session reached; a step counts only when every earlier step was reached too (a strict funnel).',
  column_descriptions (
    session_key = 'Session key: <session_id>:<session_date>:<session_number>.',
    session_id = 'Browser session id set by the site.',
    session_number = 'Position of the session among the sessions cut from this browser session id that day (1-based).',
    session_date = 'UTC date of the session (a session never crosses midnight).',
    session_start = 'First event of the session (UTC).',
    session_end = 'Last event of the session (UTC).',
    duration_seconds = 'Seconds from the first to the last event (0 for a single-event session).',
    customer_id = 'Signed-in customer, NULL when every event was anonymous (the greatest id if several signed in).',
    channel = 'Referrer of the session (google, newsletter, direct; the greatest if several), unknown for events before schema version 2.',
    visitor_type = 'signed_in when any event carried a customer id, else anonymous.',
    landing_page = 'Page of the first event.',
    events = 'Events in the session.',
    page_views = 'page_view events.',
    add_to_carts = 'add_to_cart events.',
    checkouts = 'checkout_started events.',
    orders_placed = 'order_placed events.',
    order_id = 'Order placed in the session, if any (the greatest id if several).',
    reached_page_view = 'The session viewed a page.',
    reached_add_to_cart = 'The session viewed a page and added to the cart.',
    reached_checkout = 'The session reached add to cart and started a checkout.',
    reached_order = 'The session reached checkout and placed an order.'
  )
);

WITH events AS (
  SELECT
    session_id,
    event_id,
    event_type,
    event_ts,
    event_date,
    customer_id,
    order_id,
    page_url,
    referrer
  FROM silver.stg_clickstream_events
  WHERE event_date BETWEEN @start_ds AND @end_ds
),

gaps AS (
  SELECT
    *,
    LAG(event_ts) OVER (PARTITION BY session_id, event_date ORDER BY event_ts, event_id) AS previous_ts
  FROM events
),

starts AS (
  SELECT
    *,
    CASE
      WHEN previous_ts IS NULL OR event_ts > previous_ts + @session_timeout() THEN 1
      ELSE 0
    END AS starts_session
  FROM gaps
),

numbered AS (
  SELECT
    *,
    SUM(starts_session) OVER (
      PARTITION BY session_id, event_date
      -- both keys are never NULL here; NULLS FIRST is BigQuery's only order in a framed window
      ORDER BY event_ts NULLS FIRST, event_id NULLS FIRST
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS session_number
  FROM starts
),

ordered AS (
  SELECT
    *,
    ROW_NUMBER() OVER (PARTITION BY session_id, event_date, session_number ORDER BY event_ts, event_id) AS event_seq
  FROM numbered
),

sessions AS (
  SELECT
    session_id,
    event_date AS session_date,
    session_number,
    MIN(event_ts) AS session_start,
    MAX(event_ts) AS session_end,
    MAX(customer_id) AS customer_id,
    MAX(referrer) AS referrer,
    MAX(CASE WHEN event_seq = 1 THEN page_url END) AS landing_page,
    COUNT(*) AS events,
    SUM(CASE WHEN event_type = 'page_view' THEN 1 ELSE 0 END) AS page_views,
    SUM(CASE WHEN event_type = 'add_to_cart' THEN 1 ELSE 0 END) AS add_to_carts,
    SUM(CASE WHEN event_type = 'checkout_started' THEN 1 ELSE 0 END) AS checkouts,
    SUM(CASE WHEN event_type = 'order_placed' THEN 1 ELSE 0 END) AS orders_placed,
    MAX(order_id) AS order_id
  FROM ordered
  GROUP BY session_id, event_date, session_number
),

funnel AS (
  SELECT
    *,
    page_views > 0 AS reached_page_view,
    page_views > 0 AND add_to_carts > 0 AS reached_add_to_cart,
    page_views > 0 AND add_to_carts > 0 AND checkouts > 0 AS reached_checkout,
    page_views > 0 AND add_to_carts > 0 AND checkouts > 0 AND orders_placed > 0 AS reached_order
  FROM sessions
)

SELECT
  CONCAT(session_id, ':', session_date::VARCHAR, ':', session_number::VARCHAR)::VARCHAR AS session_key,
  session_id::VARCHAR AS session_id,
  session_number::INT AS session_number,
  session_date::DATE AS session_date,
  session_start::TIMESTAMPTZ AS session_start,
  session_end::TIMESTAMPTZ AS session_end,
  @seconds_between(session_start, session_end)::BIGINT AS duration_seconds,
  customer_id::VARCHAR AS customer_id,
  COALESCE(referrer, 'unknown')::VARCHAR AS channel,
  CASE WHEN customer_id IS NULL THEN 'anonymous' ELSE 'signed_in' END::VARCHAR AS visitor_type,
  landing_page::VARCHAR AS landing_page,
  events::BIGINT AS events,
  page_views::BIGINT AS page_views,
  add_to_carts::BIGINT AS add_to_carts,
  checkouts::BIGINT AS checkouts,
  orders_placed::BIGINT AS orders_placed,
  order_id::VARCHAR AS order_id,
  reached_page_view::BOOLEAN AS reached_page_view,
  reached_add_to_cart::BOOLEAN AS reached_add_to_cart,
  reached_checkout::BOOLEAN AS reached_checkout,
  reached_order::BOOLEAN AS reached_order
FROM funnel
