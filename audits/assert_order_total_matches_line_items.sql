-- gold.fct_orders, end-to-end reconciliation with bronze: every order's order_total equals the
-- sum of quantity * unit_price over the line items of the order's current bronze version (the
-- same survivor and delete rules as silver, from macros/millpond.py), and
-- item_count the sum of their quantities. Catches fan-out joins, lost or duplicated lines and
-- rounding drift anywhere between bronze and gold.
-- It reads bronze directly: an audit runs against physical tables, where the other models' views
-- may not exist yet, while the external bronze tables always do.
AUDIT (
  name assert_order_total_matches_line_items
);

WITH latest_orders AS (
  SELECT
    _id AS order_id,
    _dlt_id AS order_row_id,
    _deleted_at
  FROM bronze.mongo_orders
  QUALIFY @latest_landed_version(_id)
),

current_orders AS (
  SELECT
    order_id,
    order_row_id
  FROM latest_orders
  WHERE NOT @is_deleted(_deleted_at)
),

line_totals AS (
  SELECT
    current_orders.order_id,
    SUM(line_items.quantity) AS item_count,
    SUM(line_items.quantity * line_items.unit_price) AS order_total
  FROM bronze.mongo_orders__line_items AS line_items
  INNER JOIN current_orders
    ON line_items._dlt_root_id = current_orders.order_row_id
  GROUP BY current_orders.order_id
)

SELECT
  fct.order_id,
  fct.item_count,
  fct.order_total,
  line_totals.item_count AS expected_item_count,
  line_totals.order_total AS expected_order_total
FROM @this_model AS fct
LEFT JOIN line_totals
  ON fct.order_id = line_totals.order_id
WHERE
  fct.order_total <> COALESCE(line_totals.order_total, 0)
  OR fct.item_count <> COALESCE(line_totals.item_count, 0)
