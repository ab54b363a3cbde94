-- Kind FULL: the history of the current version of every order, consistent with
-- silver.stg_orders (dlt replaces an order's child rows when the order changes).
MODEL (
  name silver.stg_order_status_history,
  kind FULL,
  grain (order_id, status_seq),
  audits (
    not_null(columns := (order_id, status_seq, status)),
    unique_combination_of_columns(columns := (order_id, status_seq)),
    accepted_values(column := status, is_in := @order_statuses())
  ),
  description 'Status transitions of each order (embedded list in MongoDB orders), in list order, for the current version of each order that exists at the source (a deleted order takes its history with it).',
  column_descriptions (
    order_id = 'Order whose status changed.',
    status_seq = 'Position of the transition in the order history (1-based).',
    status = 'Status the order moved to.',
    changed_at = 'When the transition happened (UTC).',
    changed_date = 'UTC date of changed_at.'
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

history AS (
  SELECT * FROM bronze.mongo_orders__status_history
),

renamed AS (
  SELECT
    existing_orders.order_id,
    history._dlt_list_idx + 1 AS status_seq,
    LOWER(@clean_text(history.status)) AS status,
    history.at AS changed_at
  FROM history
  INNER JOIN existing_orders
    ON history._dlt_root_id = existing_orders.order_row_id
)

SELECT
  order_id::VARCHAR AS order_id,
  status_seq::BIGINT AS status_seq,
  status::VARCHAR AS status,
  changed_at::TIMESTAMPTZ AS changed_at,
  @utc_date(changed_at) AS changed_date
FROM renamed
QUALIFY ROW_NUMBER() OVER (PARTITION BY order_id, status_seq ORDER BY changed_at) = 1
