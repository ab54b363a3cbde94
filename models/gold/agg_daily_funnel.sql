-- Kind INCREMENTAL_BY_TIME_RANGE on funnel_date: a day of sessions aggregates into that day's
-- rows only (sessions never cross midnight). lookback 1, as its source silver.int_sessions.
MODEL (
  name gold.agg_daily_funnel,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column funnel_date,
    lookback 1
  ),
  grain (funnel_date, channel, visitor_type),
  audits (
    not_null(columns := (funnel_date, channel, visitor_type, sessions, page_view_sessions, add_to_cart_sessions, checkout_sessions, order_sessions)),
    unique_combination_of_columns(columns := (funnel_date, channel, visitor_type)),
    -- blocking: the funnel is strict by construction (silver.int_sessions), so a step that grows is
    -- a bug in the models, and a published funnel that grows would mislead every reader
    assert_funnel_never_grows(steps := (sessions, page_view_sessions, add_to_cart_sessions, checkout_sessions, order_sessions))
  ),
  description 'Daily conversion funnel: sessions per UTC day, channel and visitor type, and how many reached each step: page view -> add to cart -> checkout -> order. A session counts at a step only if it reached every earlier step, so the counts never grow from one step to the next. The dimensions are disjoint: summing the rows of a day gives the day.',
  column_descriptions (
    funnel_date = 'UTC date of the sessions.',
    channel = 'Referrer of the session: google, newsletter, direct, or unknown (events before schema version 2).',
    visitor_type = 'signed_in or anonymous.',
    sessions = 'Sessions.',
    page_view_sessions = 'Sessions that viewed a page.',
    add_to_cart_sessions = 'Sessions that viewed a page and added to the cart.',
    checkout_sessions = 'Sessions that reached add to cart and started a checkout.',
    order_sessions = 'Sessions that reached checkout and placed an order.'
  )
);

WITH sessions AS (
  SELECT *
  FROM silver.int_sessions
  WHERE session_date BETWEEN @start_ds AND @end_ds
)

SELECT
  session_date::DATE AS funnel_date,
  channel::VARCHAR AS channel,
  visitor_type::VARCHAR AS visitor_type,
  COUNT(*)::BIGINT AS sessions,
  SUM(CASE WHEN reached_page_view THEN 1 ELSE 0 END)::BIGINT AS page_view_sessions,
  SUM(CASE WHEN reached_add_to_cart THEN 1 ELSE 0 END)::BIGINT AS add_to_cart_sessions,
  SUM(CASE WHEN reached_checkout THEN 1 ELSE 0 END)::BIGINT AS checkout_sessions,
  SUM(CASE WHEN reached_order THEN 1 ELSE 0 END)::BIGINT AS order_sessions
FROM sessions
GROUP BY session_date, channel, visitor_type
