-- Kind VIEW: silver.int_sessions is already the session table, built per day; the gold fact is
-- its published projection, so a view costs nothing to build (publish copies it as a table).
MODEL (
  name gold.fct_sessions,
  kind VIEW,
  grain session_key,
  audits (
    not_null(columns := (session_key, session_date, channel, visitor_type))
  ),
  description 'Session fact: one row per browsing session (30 minutes of inactivity or UTC midnight ends one, see silver.int_sessions), with its channel, visitor type, length, events per funnel step, the strict funnel steps it reached and the order it placed. No PII.',
  column_descriptions (
    session_key = 'Session key: <session_id>:<session_date>:<session_number>.',
    session_id = 'Browser session id set by the site.',
    session_date = 'UTC date of the session.',
    session_start = 'First event (UTC).',
    session_end = 'Last event (UTC).',
    duration_seconds = 'Seconds from the first to the last event.',
    customer_id = 'Signed-in customer (join to gold.dim_customers), NULL when anonymous.',
    channel = 'Referrer: google, newsletter, direct, or unknown (events before schema version 2).',
    visitor_type = 'signed_in or anonymous.',
    landing_page = 'Page of the first event.',
    events = 'Events in the session.',
    page_views = 'page_view events.',
    add_to_carts = 'add_to_cart events.',
    checkouts = 'checkout_started events.',
    orders_placed = 'order_placed events.',
    order_id = 'Order placed in the session, if any (join to gold.fct_orders).',
    reached_add_to_cart = 'Viewed a page and added to the cart.',
    reached_checkout = 'Reached add to cart and started a checkout.',
    reached_order = 'Reached checkout and placed an order (the funnel conversion).',
    is_converted = 'TRUE when the session placed an order, tracked checkout or not.'
  )
);

SELECT
  session_key,
  session_id,
  session_date,
  session_start,
  session_end,
  duration_seconds,
  customer_id,
  channel,
  visitor_type,
  landing_page,
  events,
  page_views,
  add_to_carts,
  checkouts,
  orders_placed,
  order_id,
  reached_add_to_cart,
  reached_checkout,
  reached_order,
  (orders_placed > 0)::BOOLEAN AS is_converted
FROM silver.int_sessions
