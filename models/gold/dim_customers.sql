-- Kind SCD_TYPE_2_BY_COLUMN on (city, country, segment): a new version only when one of these
-- changes. By column, not by time: the customer document also changes for PII (name, e-mail,
-- phone, street) that never reaches gold, and by time each such change would add a version
-- identical in every gold column. updated_at_name makes a version start at the source's
-- updated_at of the change, not at the run that saw it (1970-01-01 for the versions of the first
-- build). invalidate_hard_deletes closes the current version of a customer deleted at the source,
-- so facts keep their customer and nobody deleted is current.
-- Not restatable (SQLMesh's default for SCD type 2, kept): silver holds only the current state,
-- so a rebuild would collapse the history into one version per customer. A restatement of
-- silver.stg_* leaves this model alone; it takes in changes whenever SQLMesh runs its intervals.
MODEL (
  name gold.dim_customers,
  kind SCD_TYPE_2_BY_COLUMN (
    unique_key customer_id,
    columns (city, country, segment),
    updated_at_name updated_at,
    invalidate_hard_deletes TRUE,
    time_data_type TIMESTAMPTZ
  ),
  grain (customer_id, valid_from),
  audits (
    -- blocking: the edge requires _id, and a missing or doubled key would be a modelling bug
    not_null(columns := (customer_id, updated_at, valid_from)),
    unique_combination_of_columns(columns := (customer_id, valid_from)),
    assert_scd2_valid(key := customer_id)
  ),
  description 'Customer dimension without PII (no name, e-mail, phone or street), SCD type 2 on city, country and segment: one row per customer and version; the current version has valid_to NULL, a customer deleted at the source has none. Order statistics per customer are in gold.customer_rfm.',
  column_descriptions (
    customer_id = 'Customer id.',
    signup_date = 'UTC date the customer signed up.',
    city = 'City of the customer address in this version.',
    country = 'Country of the customer address in this version.',
    segment = 'Account segment in this version (consumer, small_business, corporate).',
    updated_at = 'Source change time (UTC) of the document when this version was taken in.',
    valid_from = 'Start of the version (UTC): the source updated_at of the change; 1970-01-01 for the versions of the first build.',
    valid_to = 'End of the version (exclusive), NULL for the current version.'
  )
);

SELECT
  customer_id::VARCHAR AS customer_id,
  signup_date::DATE AS signup_date,
  city::VARCHAR AS city,
  country::VARCHAR AS country,
  segment::VARCHAR AS segment,
  updated_at::TIMESTAMPTZ AS updated_at
FROM silver.stg_customers
