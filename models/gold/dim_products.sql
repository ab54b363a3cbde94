-- Kind SCD_TYPE_2_BY_TIME on updated_at: the catalogue changes a product only in price, category
-- and active (retired), each change bumps updated_at, and a version starting at the source's own
-- updated_at lets silver.int_order_lines match an order to the product as it was at the order
-- time (by column would start versions at the run that saw them). The first build's versions
-- start at 1970-01-01, so every earlier order finds one. invalidate_hard_deletes closes the
-- current version of a product deleted at the source.
-- Not restatable (SQLMesh's default for SCD type 2, kept): silver holds only the current state,
-- so a rebuild would lose every earlier price; a restatement of silver.stg_* leaves it alone, and
-- it takes in changes with each new daily interval.
MODEL (
  name gold.dim_products,
  kind SCD_TYPE_2_BY_TIME (
    unique_key product_id,
    updated_at_name updated_at,
    invalidate_hard_deletes TRUE,
    time_data_type TIMESTAMPTZ
  ),
  grain (product_id, valid_from),
  audits (
    -- blocking: the edge requires _id, sku and a non-negative price fitting DECIMAL(18, 2) and
    -- updated_at (ingest/mongodb/contracts.py), so a failure is a modelling bug
    not_null(columns := (product_id, sku, price, updated_at, valid_from)),
    unique_combination_of_columns(columns := (product_id, valid_from)),
    assert_non_negative(column := price),
    assert_scd2_valid(key := product_id)
  ),
  description 'Product dimension, SCD type 2 on price, category and active (every change of a product at the source): one row per product and version; the current version has valid_to NULL, a product deleted at the source has none. A retired product stays with is_active FALSE.',
  column_descriptions (
    product_id = 'Product id.',
    sku = 'Stock keeping unit.',
    product_name = 'Product name.',
    category = 'Category in this version.',
    price = 'List price in this version.',
    currency = 'ISO 4217 currency code.',
    is_active = 'Whether the product was sold in this version (FALSE once retired).',
    updated_at = 'Source change time of this version (UTC).',
    valid_from = 'Start of the version (UTC): its updated_at; 1970-01-01 for the versions of the first build.',
    valid_to = 'End of the version (exclusive), NULL for the current version.'
  )
);

SELECT
  product_id::VARCHAR AS product_id,
  sku::VARCHAR AS sku,
  product_name::VARCHAR AS product_name,
  category::VARCHAR AS category,
  @money(price) AS price,
  currency::VARCHAR AS currency,
  is_active::BOOLEAN AS is_active,
  updated_at::TIMESTAMPTZ AS updated_at
FROM silver.stg_products
