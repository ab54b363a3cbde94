MODEL (
  name silver.stg_products,
  kind FULL,
  grain product_id,
  audits (
    not_null(columns := (product_id, sku, price)),
    unique_values(columns := (product_id)),
    assert_non_negative(column := price),
    number_of_rows(threshold := 0)
  ),
  description 'Product catalogue from MongoDB: typed, renamed, one row per product (latest version).',
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
    ingested_at = 'When dlt loaded the current version.'
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
    _ingested_at AS ingested_at
  FROM source
  WHERE _id IS NOT NULL
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
  ingested_at::TIMESTAMPTZ AS ingested_at
FROM renamed
QUALIFY @latest_version(product_id)
