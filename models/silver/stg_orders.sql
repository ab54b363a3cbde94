-- Kind FULL: orders are mutable (status changes for days) and bronze is merged in place, so the
-- current version of every order is the whole table; it is read by five models, so it is
-- materialized once per run instead of re-deduplicating in each (a VIEW would repeat the window
-- and the dead-letter lookup in every reader).
MODEL (
  name silver.stg_orders,
  kind FULL,
  grain order_id,
  audits (
    not_null(columns := (order_id, customer_id, status, created_at, order_date)),
    unique_values(columns := (order_id)),
    accepted_values(column := status, is_in := @order_statuses())
  ),
  description 'Orders from MongoDB: one row per order that exists at the source (its latest version), typed and renamed. An order whose latest landed row is a tombstone (deleted at the source) is dropped, and with it its lines and status history (stg_order_line_items, stg_order_status_history). Orders are mutable (status changes), so this model is rebuilt in full on every run.',
  column_descriptions (
    order_id = 'Order id (MongoDB _id).',
    customer_id = 'Customer who placed the order.',
    status = 'Current status, one of ORDER_STATUSES in ingest/vocabulary.py.',
    is_cancelled = 'TRUE when the current status is cancelled.',
    currency = 'ISO 4217 currency code of the order.',
    source_total_amount = 'total_amount as stored on the MongoDB document (not trusted: gold recomputes totals from line items).',
    shipping_city = 'Shipping city.',
    shipping_country = 'Shipping country.',
    created_at = 'When the order was placed (UTC).',
    order_date = 'Business date: UTC date of created_at.',
    updated_at = 'When the order document was last changed (UTC).',
    ingested_at = 'When dlt loaded the current version.',
    has_quarantined_version = 'TRUE when a newer version of the order broke the contract and sits in bronze.dead_letter (not replayed): this row is the last version that passed, not the current one.'
  )
);

WITH source AS (
  SELECT * FROM bronze.mongo_orders
),

renamed AS (
  SELECT
    _id AS order_id,
    @clean_text(customer_id) AS customer_id,
    LOWER(@clean_text(status)) AS status,
    UPPER(@clean_text(currency)) AS currency,
    @money(total_amount) AS source_total_amount,
    @clean_text(shipping_address__city) AS shipping_city,
    UPPER(@clean_text(shipping_address__country)) AS shipping_country,
    created_at,
    updated_at,
    _deleted_at AS deleted_at,
    _source_ts AS source_ts,
    _ingested_at AS ingested_at
  FROM source
  WHERE _id IS NOT NULL
),

deduplicated AS (
  SELECT *
  FROM renamed
  QUALIFY @latest_version(order_id)
),

existing AS (
  -- deletes are applied after the dedup: a tombstone hides every older version of its order
  SELECT
    *,
    @has_quarantined_version(orders, order_id, ingested_at) AS has_quarantined_version
  FROM deduplicated
  WHERE NOT @is_deleted(deleted_at)
)

SELECT
  order_id::VARCHAR AS order_id,
  customer_id::VARCHAR AS customer_id,
  status::VARCHAR AS status,
  (status = 'cancelled')::BOOLEAN AS is_cancelled,
  currency::VARCHAR AS currency,
  source_total_amount,
  shipping_city::VARCHAR AS shipping_city,
  shipping_country::VARCHAR AS shipping_country,
  created_at::TIMESTAMPTZ AS created_at,
  @utc_date(created_at) AS order_date,
  updated_at::TIMESTAMPTZ AS updated_at,
  ingested_at::TIMESTAMPTZ AS ingested_at,
  has_quarantined_version::BOOLEAN AS has_quarantined_version
FROM existing
