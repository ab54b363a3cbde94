-- Kind FULL: a small catalogue, merged in place in bronze (one row per _id), so the current state
-- is the whole table and a full rebuild applies deletes and quarantine flags; gold.dim_products
-- keeps the history (SCD type 2).
MODEL (
  name silver.stg_products,
  kind FULL,
  grain product_id,
  audits (
    not_null(columns := (product_id, sku, price)),
    unique_values(columns := (product_id)),
    assert_non_negative(column := price),
    number_of_rows(threshold := 0),
    quarantined_versions
  ),
  description 'Product catalogue from MongoDB: typed, renamed, one row per product that exists at the source (latest version); a product whose latest landed row is a tombstone is dropped (a retired product that is kept at the source has active = FALSE).',
  column_descriptions (
    product_id = 'Product id (MongoDB _id).',
    sku = 'Stock keeping unit, trimmed and upper-cased.',
    product_name = 'Product name.',
    category = 'Product category, lower-cased.',
    price = 'List price in the product currency.',
    currency = 'ISO 4217 currency code.',
    is_active = 'Whether the product is currently sold.',
    created_at = 'When the product was created (UTC).',
    updated_at = 'When the product was last changed (UTC).',
    ingested_at = 'When dlt loaded the current version.',
    has_quarantined_version = 'TRUE when a newer version of the product broke the contract and sits in bronze.dead_letter (not replayed).'
  )
);

WITH source AS (
  SELECT * FROM bronze.mongo_products
),

renamed AS (
  SELECT
    _id AS product_id,
    UPPER(@clean_text(sku)) AS sku,
    @clean_text(name) AS product_name,
    LOWER(@clean_text(category)) AS category,
    @money(price) AS price,
    UPPER(@clean_text(currency)) AS currency,
    COALESCE(active, FALSE) AS is_active,
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
  QUALIFY @latest_version(product_id)
),

existing AS (
  -- deletes are applied after the dedup: a tombstone hides every older version of its product
  SELECT
    *,
    @has_quarantined_version(products, product_id, ingested_at) AS has_quarantined_version
  FROM deduplicated
  WHERE NOT @is_deleted(deleted_at)
)

SELECT
  product_id::VARCHAR AS product_id,
  sku::VARCHAR AS sku,
  product_name::VARCHAR AS product_name,
  category::VARCHAR AS category,
  price,
  currency::VARCHAR AS currency,
  is_active::BOOLEAN AS is_active,
  created_at::TIMESTAMPTZ AS created_at,
  updated_at::TIMESTAMPTZ AS updated_at,
  ingested_at::TIMESTAMPTZ AS ingested_at,
  has_quarantined_version::BOOLEAN AS has_quarantined_version
FROM existing
