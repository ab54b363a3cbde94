-- Kind INCREMENTAL_BY_UNIQUE_KEY on order_id: orders are mutable (a status changes for days after
-- the order day), so an interval upserts orders in their current version from the FULL staging
-- models instead of rebuilding whole days: the orders changed in it (updated_at) and the orders
-- placed in it (order_date). The first makes a scheduled run take in status changes; the second
-- makes a rebuilt order day refresh every order of that day, also for a change that leaves
-- updated_at alone (a quarantined newer version flips has_quarantined_version). lookback 1: a
-- change landed after its day's interval ran is picked up the next day. A merge only inserts and
-- updates, so the post-statement removes the orders deleted at the source. SQLMesh restates this
-- kind only over its full history: restating it (or anything upstream) rebuilds it whole.
MODEL (
  name gold.fct_orders,
  kind INCREMENTAL_BY_UNIQUE_KEY (
    unique_key order_id,
    lookback 1
  ),
  grain order_id,
  depends_on (gold.dim_customers),
  audits (
    -- blocking: the edge requires customer_id, a known status and lines with positive quantities
    -- and non-negative prices (ingest/mongodb/contracts.py), so each failure is a modelling bug
    not_null(columns := (order_id, customer_id, order_date, ordered_at, status, item_count, order_total, is_cancelled, has_quarantined_version)),
    unique_values(columns := (order_id)),
    accepted_values(column := status, is_in := @order_statuses()),
    assert_non_negative(column := order_total),
    assert_order_total_matches_line_items,
    -- non-blocking: the MongoDB edge does not bound document times, and an order from a source
    -- clock ahead of ours is still an order; the count is for review
    assert_not_in_future(column := ordered_at, blocking := FALSE),
    -- non-blocking: see audits/assert_in_dimension.sql (the dimension takes in changes daily)
    assert_in_dimension(column := customer_id, dimension := gold.dim_customers)
  ),
  description 'Order fact: one row per order that exists at the source (a deleted order leaves it), with its current status and totals from the line items. No PII. Revenue definition: an order counts its order_total unless it is cancelled; a refund is issued only for a paid order that is then cancelled, so refunds never count as revenue here (the cash view with refunds on their own day is gold.fct_payments).',
  column_descriptions (
    order_id = 'Order id.',
    customer_id = 'Customer who placed the order (join to gold.dim_customers).',
    order_date = 'Business date: UTC date of the order creation.',
    ordered_at = 'When the order was placed (UTC).',
    status = 'Current status, one of ORDER_STATUSES in ingest/vocabulary.py.',
    item_count = 'Units ordered (sum of line quantities).',
    order_total = 'Sum of quantity * unit_price over the order lines.',
    currency = 'ISO 4217 currency code.',
    is_cancelled = 'TRUE when the current status is cancelled.',
    updated_at = 'When the order was last changed (UTC).',
    has_quarantined_version = 'TRUE when a newer version of the order broke the contract and was quarantined (bronze.dead_letter, not replayed): this row shows the last version that passed. checks/contracts/fct_orders.yml counts them.'
  )
);

WITH changed_orders AS (
  SELECT *
  FROM silver.stg_orders
  WHERE
    updated_at BETWEEN @start_ts AND @end_ts
    OR order_date BETWEEN @start_ds AND @end_ds
),

line_totals AS (
  SELECT
    order_lines.order_id,
    SUM(order_lines.quantity) AS item_count,
    SUM(order_lines.line_total) AS order_total
  FROM silver.stg_order_line_items AS order_lines
  INNER JOIN changed_orders
    ON order_lines.order_id = changed_orders.order_id
  GROUP BY order_lines.order_id
)

SELECT
  changed_orders.order_id::VARCHAR AS order_id,
  changed_orders.customer_id::VARCHAR AS customer_id,
  changed_orders.order_date::DATE AS order_date,
  changed_orders.created_at::TIMESTAMPTZ AS ordered_at,
  changed_orders.status::VARCHAR AS status,
  COALESCE(line_totals.item_count, 0)::BIGINT AS item_count,
  @money(COALESCE(line_totals.order_total, 0)) AS order_total,
  changed_orders.currency::VARCHAR AS currency,
  changed_orders.is_cancelled::BOOLEAN AS is_cancelled,
  changed_orders.updated_at::TIMESTAMPTZ AS updated_at,
  COALESCE(changed_orders.has_quarantined_version, FALSE)::BOOLEAN AS has_quarantined_version
FROM changed_orders
LEFT JOIN line_totals
  ON changed_orders.order_id = line_totals.order_id;

-- a deleted order is gone from silver.stg_orders: remove it here too (after every interval);
-- SQLMesh's @IF statement is not SQL a linter can parse (PRS); `sqlmesh render gold.fct_orders` shows it
@IF(  -- noqa: PRS
  @runtime_stage = 'evaluating',
  DELETE FROM @this_model
  WHERE order_id NOT IN (SELECT order_id FROM silver.stg_orders)
);
