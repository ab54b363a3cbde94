-- Kind INCREMENTAL_BY_TIME_RANGE on order_date: a line belongs to the day its order was placed,
-- and a day is rebuilt from the current (FULL) staging models, so a restated day picks up changed
-- and deleted orders. Product attributes as of the order time come from the history in
-- gold.dim_products (SCD type 2): bronze keeps only the current version of a product (dlt merges
-- on _id), so that history is the only record of what a product looked like when it was ordered.
MODEL (
  name silver.int_order_lines,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column order_date
  ),
  grain (order_id, line_no),
  audits (
    -- blocking: the edge rejects orders without lines, with a non-positive quantity or a negative
    -- unit_price (ingest/mongodb/contracts.py), so a failure here is a modelling bug
    not_null(columns := (order_id, line_no, order_date, ordered_at, quantity, unit_price, line_total)),
    unique_combination_of_columns(columns := (order_id, line_no)),
    assert_non_negative(column := quantity),
    assert_non_negative(column := line_total)
  ),
  description 'Order lines of the orders that exist at the source, one row per line of the current order version, with the order context (customer, time, status) and the product as it was when the order was placed: the gold.dim_products version valid at ordered_at (NULL product attributes when no version covers that time, e.g. a product deleted before SQLMesh saw it). Partitioned by order_date.',
  column_descriptions (
    order_id = 'Order the line belongs to.',
    line_no = 'Line number within the order (1-based).',
    order_date = 'Business date: UTC date of the order creation.',
    ordered_at = 'When the order was placed (UTC).',
    customer_id = 'Customer who placed the order.',
    status = 'Current status of the order.',
    is_cancelled = 'TRUE when the order is cancelled now.',
    currency = 'ISO 4217 currency code of the order.',
    product_id = 'Ordered product.',
    sku = 'SKU on the order line, upper-cased.',
    quantity = 'Ordered units.',
    unit_price = 'Price per unit paid, as stored on the order line.',
    line_total = 'quantity * unit_price.',
    product_category = 'Category of the product at ordered_at (gold.dim_products version valid then).',
    list_price = 'Catalogue price of the product at ordered_at.',
    product_was_active = 'Whether the product was on sale at ordered_at.',
    product_valid_from = 'valid_from of the gold.dim_products version matched (NULL when none matched).'
  )
);

WITH orders AS (
  SELECT
    order_id,
    customer_id,
    order_date,
    created_at,
    status,
    is_cancelled,
    currency
  FROM silver.stg_orders
  WHERE order_date BETWEEN @start_ds AND @end_ds
),

lines AS (
  SELECT * FROM silver.stg_order_line_items
),

product_versions AS (
  SELECT
    product_id,
    category,
    price,
    is_active,
    valid_from,
    valid_to
  FROM gold.dim_products
),

joined AS (
  SELECT
    lines.order_id,
    lines.line_no,
    orders.order_date,
    orders.created_at AS ordered_at,
    orders.customer_id,
    orders.status,
    orders.is_cancelled,
    orders.currency,
    lines.product_id,
    lines.sku,
    lines.quantity,
    lines.unit_price,
    lines.line_total,
    product_versions.category AS product_category,
    product_versions.price AS list_price,
    product_versions.is_active AS product_was_active,
    product_versions.valid_from AS product_valid_from
  FROM lines
  INNER JOIN orders
    ON lines.order_id = orders.order_id
  LEFT JOIN product_versions
    ON
      lines.product_id = product_versions.product_id
      AND orders.created_at >= product_versions.valid_from
      AND (product_versions.valid_to IS NULL OR orders.created_at < product_versions.valid_to)
)

SELECT
  order_id::VARCHAR AS order_id,
  line_no::BIGINT AS line_no,
  order_date::DATE AS order_date,
  ordered_at::TIMESTAMPTZ AS ordered_at,
  customer_id::VARCHAR AS customer_id,
  status::VARCHAR AS status,
  is_cancelled::BOOLEAN AS is_cancelled,
  currency::VARCHAR AS currency,
  product_id::VARCHAR AS product_id,
  sku::VARCHAR AS sku,
  quantity::BIGINT AS quantity,
  @money(unit_price) AS unit_price,
  @money(line_total) AS line_total,
  product_category::VARCHAR AS product_category,
  @money(list_price) AS list_price,
  product_was_active::BOOLEAN AS product_was_active,
  product_valid_from::TIMESTAMPTZ AS product_valid_from
FROM joined
