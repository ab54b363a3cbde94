-- Kind VIEW: a shipment is delivered days after it shipped, so its row changes after its ship
-- date; the view over silver.int_order_shipments is always current and costs nothing to build
-- (publish copies it into the serving database as a table).
MODEL (
  name gold.fct_shipments,
  kind VIEW,
  grain order_id,
  audits (
    unique_values(columns := (order_id)),
    -- non-blocking: see gold.fct_payments (the streams and MongoDB land independently)
    assert_order_exists(column := order_id)
  ),
  description 'Shipment fact: one row per shipped order (the shop ships an order in one parcel): carrier, when it shipped and was delivered, and the hours in between. No PII.',
  column_descriptions (
    order_id = 'Shipped order (join to gold.fct_orders).',
    customer_id = 'Customer of the order (NULL while the order is not at the source).',
    order_date = 'Business date of the order: UTC date of its creation.',
    shipping_country = 'Country the order ships to.',
    carrier = 'Carrier.',
    tracking_number = 'Carrier tracking number.',
    shipped_at = 'When the parcel was handed to the carrier (UTC).',
    shipped_date = 'UTC date of shipped_at.',
    delivered_at = 'When it was delivered (UTC), NULL while in transit.',
    delivered_date = 'UTC date of delivered_at.',
    is_delivered = 'TRUE once delivered.',
    hours_to_deliver = 'Hours from shipped to delivered, to two decimals (NULL while in transit).',
    hours_order_to_ship = 'Hours from placing the order to shipping it, to two decimals.'
  )
);

SELECT
  order_id::VARCHAR AS order_id,
  customer_id::VARCHAR AS customer_id,
  order_date::DATE AS order_date,
  shipping_country::VARCHAR AS shipping_country,
  carrier::VARCHAR AS carrier,
  tracking_number::VARCHAR AS tracking_number,
  shipped_at::TIMESTAMPTZ AS shipped_at,
  @utc_date(shipped_at) AS shipped_date,
  delivered_at::TIMESTAMPTZ AS delivered_at,
  @utc_date(delivered_at) AS delivered_date,
  is_delivered::BOOLEAN AS is_delivered,
  hours_to_deliver,
  @money(@seconds_between(ordered_at, shipped_at) / 3600.0) AS hours_order_to_ship
FROM silver.int_order_shipments
