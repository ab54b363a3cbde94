-- Kind VIEW: a shipment changes when it is delivered, days after it shipped, so a row per
-- shipment is mutable, and a table partitioned by ship date would need its old days rebuilt. The
-- view recomputes it from the deduplicated events and the current orders when it is read.
MODEL (
  name silver.int_order_shipments,
  kind VIEW,
  grain order_id,
  audits (
    -- blocking: one row per order by the GROUP BY, and the edge requires order_id
    not_null(columns := (order_id, order_found, is_delivered)),
    unique_values(columns := (order_id)),
    -- non-blocking: compares the clocks of two events, which the edge checks one at a time; a
    -- delivery stamped before its shipment is a source-clock problem to look at, not a reason to stop
    assert_non_negative(column := hours_to_deliver, blocking := FALSE)
  ),
  description 'Shipments matched to orders: one row per order with at least one shipment event, when it shipped (shipment_created) and was delivered (shipment_delivered), the hours in between, and the order it belongs to.',
  column_descriptions (
    order_id = 'Shipped order.',
    order_found = 'TRUE when the order exists in silver.stg_orders (not deleted, already landed).',
    customer_id = 'Customer of the order (NULL when order_found is FALSE).',
    order_date = 'Business date of the order: UTC date of its creation.',
    ordered_at = 'When the order was placed (UTC).',
    shipping_country = 'Country the order ships to.',
    carrier = 'Carrier (the greatest name if several).',
    tracking_number = 'Carrier tracking number (the greatest if several).',
    shipped_at = 'First shipment_created event (UTC), NULL when only the delivery was seen.',
    delivered_at = 'First shipment_delivered event (UTC), NULL while in transit.',
    is_delivered = 'TRUE once a shipment_delivered event was seen.',
    hours_to_deliver = 'Hours from shipped_at to delivered_at, to two decimals (NULL until both are known).'
  )
);

WITH shipments AS (
  SELECT * FROM silver.stg_shipment_events
),

orders AS (
  SELECT
    order_id,
    customer_id,
    order_date,
    created_at,
    shipping_country
  FROM silver.stg_orders
),

per_order AS (
  SELECT
    order_id,
    MAX(carrier) AS carrier,
    MAX(tracking_number) AS tracking_number,
    MIN(CASE WHEN event_type = 'shipment_created' THEN event_ts END) AS shipped_at,
    MIN(CASE WHEN event_type = 'shipment_delivered' THEN event_ts END) AS delivered_at
  FROM shipments
  GROUP BY order_id
),

matched AS (
  SELECT
    per_order.*,
    orders.order_id IS NOT NULL AS order_found,
    orders.customer_id,
    orders.order_date,
    orders.created_at AS ordered_at,
    orders.shipping_country
  FROM per_order
  LEFT JOIN orders
    ON per_order.order_id = orders.order_id
)

SELECT
  order_id::VARCHAR AS order_id,
  order_found::BOOLEAN AS order_found,
  customer_id::VARCHAR AS customer_id,
  order_date::DATE AS order_date,
  ordered_at::TIMESTAMPTZ AS ordered_at,
  shipping_country::VARCHAR AS shipping_country,
  carrier::VARCHAR AS carrier,
  tracking_number::VARCHAR AS tracking_number,
  shipped_at::TIMESTAMPTZ AS shipped_at,
  delivered_at::TIMESTAMPTZ AS delivered_at,
  (delivered_at IS NOT NULL)::BOOLEAN AS is_delivered,
  @money(@seconds_between(shipped_at, delivered_at) / 3600.0) AS hours_to_deliver
FROM matched
