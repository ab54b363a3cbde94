-- Kind FULL: the lines of the current version of every order; dlt replaces an order's child rows
-- when the order changes, so only the whole table is consistent with silver.stg_orders.
MODEL (
  name silver.stg_order_line_items,
  kind FULL,
  grain (order_id, line_no),
  audits (
    not_null(columns := (order_id, line_no, quantity, unit_price, line_total)),
    unique_combination_of_columns(columns := (order_id, line_no)),
    assert_non_negative(column := quantity),
    assert_non_negative(column := unit_price)
  ),
  description 'Order line items (embedded list in MongoDB orders): one row per order line of the current order version; the lines of a deleted order (tombstone in bronze) are dropped with it.',
  column_descriptions (
    order_id = 'Order the line belongs to.',
    line_no = 'Line number within the order (1-based).',
    product_id = 'Ordered product.',
    sku = 'SKU of the ordered product, upper-cased.',
    quantity = 'Ordered units.',
    unit_price = 'Price per unit in the order currency.',
    line_total = 'quantity * unit_price.'
  )
);

WITH orders AS (
  -- the current version of each order; dlt links child rows to it via _dlt_root_id
  SELECT
    _id AS order_id,
    _dlt_id AS order_row_id,
    _deleted_at
  FROM bronze.mongo_orders
  WHERE _id IS NOT NULL
  QUALIFY @latest_landed_version(_id)
),

existing_orders AS (
  -- a deleted order takes its child rows with it, even where a tombstone's pre-image carried some
  SELECT *
  FROM orders
  WHERE NOT @is_deleted(_deleted_at)
),

line_items AS (
  SELECT * FROM bronze.mongo_orders__line_items
),

renamed AS (
  SELECT
    existing_orders.order_id,
    COALESCE(line_items.line_no, line_items._dlt_list_idx + 1) AS line_no,
    @clean_text(line_items.product_id) AS product_id,
    UPPER(@clean_text(line_items.sku)) AS sku,
    line_items.quantity,
    @money(line_items.unit_price) AS unit_price,
    line_items._dlt_list_idx AS list_idx
  FROM line_items
  INNER JOIN existing_orders
    ON line_items._dlt_root_id = existing_orders.order_row_id
)

SELECT
  order_id::VARCHAR AS order_id,
  line_no::BIGINT AS line_no,
  product_id::VARCHAR AS product_id,
  sku::VARCHAR AS sku,
  quantity::BIGINT AS quantity,
  unit_price,
  @money(quantity * unit_price) AS line_total
FROM renamed
QUALIFY ROW_NUMBER() OVER (PARTITION BY order_id, line_no ORDER BY list_idx) = 1
