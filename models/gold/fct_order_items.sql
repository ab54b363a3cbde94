-- Kind INCREMENTAL_BY_TIME_RANGE on order_date: a line belongs to its order's day, and
-- silver.int_order_lines rebuilds a day from the current order versions, so a restated day
-- replaces the day's lines (a deleted order's lines go with it). Not by unique key: lines of a
-- changed order can disappear, which a merge would never remove.
MODEL (
  name gold.fct_order_items,
  kind INCREMENTAL_BY_TIME_RANGE (
    time_column order_date
  ),
  grain (order_id, line_no),
  depends_on (gold.dim_products),
  audits (
    -- blocking: the edge requires the order's lines, quantities and prices (ingest/mongodb/contracts.py);
    -- product_id is not required there, so its NULLs are left to the non-blocking check below
    not_null(columns := (order_id, line_no, order_date, quantity, unit_price, line_total, is_cancelled)),
    unique_combination_of_columns(columns := (order_id, line_no)),
    assert_non_negative(column := unit_price),
    assert_non_negative(column := line_total),
    -- non-blocking: see audits/assert_in_dimension.sql (the dimension takes in changes daily)
    assert_in_dimension(column := product_id, dimension := gold.dim_products)
  ),
  description 'Order line fact: one row per line of every order that exists at the source, with the product category and list price as they were when the order was placed (SCD type 2 as-of join in silver.int_order_lines). Revenue by product or category = SUM(line_total) over the lines of orders that are not cancelled, the same definition as gold.agg_daily_revenue.',
  column_descriptions (
    order_id = 'Order (join to gold.fct_orders).',
    line_no = 'Line number within the order (1-based).',
    order_date = 'Business date: UTC date of the order creation.',
    ordered_at = 'When the order was placed (UTC).',
    customer_id = 'Customer who placed the order (join to gold.dim_customers).',
    product_id = 'Ordered product (join to gold.dim_products, version valid at ordered_at).',
    sku = 'SKU on the order line.',
    product_category = 'Category of the product when the order was placed.',
    quantity = 'Ordered units.',
    unit_price = 'Price per unit paid.',
    list_price = 'Catalogue price of the product when the order was placed.',
    line_total = 'quantity * unit_price.',
    currency = 'ISO 4217 currency code.',
    is_cancelled = 'TRUE when the order is cancelled now (its lines count no revenue).'
  )
);

SELECT
  order_id::VARCHAR AS order_id,
  line_no::BIGINT AS line_no,
  order_date::DATE AS order_date,
  ordered_at::TIMESTAMPTZ AS ordered_at,
  customer_id::VARCHAR AS customer_id,
  product_id::VARCHAR AS product_id,
  sku::VARCHAR AS sku,
  product_category::VARCHAR AS product_category,
  quantity::BIGINT AS quantity,
  @money(unit_price) AS unit_price,
  @money(list_price) AS list_price,
  @money(line_total) AS line_total,
  currency::VARCHAR AS currency,
  is_cancelled::BOOLEAN AS is_cancelled
FROM silver.int_order_lines
WHERE order_date BETWEEN @start_ds AND @end_ds
