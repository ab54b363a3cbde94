-- Kind FULL: a small dimension source (one row per customer), and bronze is merged in place (one
-- row per _id, no change log), so the current state is the whole table; a full rebuild is what
-- applies a delete (tombstone) and a quarantine flag everywhere at once. gold.dim_customers keeps
-- the history (SCD type 2).
MODEL (
  name silver.stg_customers,
  kind FULL,
  grain customer_id,
  audits (
    not_null(columns := (customer_id, created_at)),
    unique_values(columns := (customer_id)),
    number_of_rows(threshold := 0),
    quarantined_versions
  ),
  description 'Customers from MongoDB: typed, renamed, one row per customer that exists at the source (latest version); a customer whose latest landed row is a tombstone is dropped, PII included. Their orders stay (an order happened whoever placed it). No personal data in clear: e-mail and phone only as salted hashes (@pii_hash), for joins without identity; name, street and postcode stay in bronze.',
  column_descriptions (
    customer_id = 'Customer id (MongoDB _id).',
    email_hash = '[pii:hashed] Salted SHA-256 (hex) of the e-mail address, trimmed and lower-cased; NULL when there is none.',
    phone_hash = '[pii:hashed] Salted SHA-256 (hex) of the phone number, trimmed and lower-cased; NULL when there is none.',
    city = 'City of the customer address.',
    country = 'Country of the customer address (upper-cased code or name).',
    segment = 'Account segment (consumer, small_business, corporate), lower-cased; NULL when the source has none.',
    created_at = 'When the customer signed up (UTC).',
    updated_at = 'When the customer document was last changed (UTC).',
    signup_date = 'UTC date of created_at.',
    ingested_at = 'When dlt loaded the current version.',
    has_quarantined_version = 'TRUE when a newer version of the customer broke the contract and sits in bronze.dead_letter (not replayed).'
  )
);

WITH source AS (
  SELECT * FROM bronze.mongo_customers
),

renamed AS (
  SELECT
    _id AS customer_id,
    @pii_hash(email) AS email_hash,
    @pii_hash(phone) AS phone_hash,
    @clean_text(address__city) AS city,
    UPPER(@clean_text(address__country)) AS country,
    LOWER(@clean_text(segment)) AS segment,
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
  QUALIFY @latest_version(customer_id)
),

existing AS (
  -- deletes are applied after the dedup: a tombstone hides every older version of its customer
  SELECT
    *,
    @has_quarantined_version(customers, customer_id, ingested_at) AS has_quarantined_version
  FROM deduplicated
  WHERE NOT @is_deleted(deleted_at)
)

SELECT
  customer_id::VARCHAR AS customer_id,
  email_hash::VARCHAR AS email_hash,
  phone_hash::VARCHAR AS phone_hash,
  city::VARCHAR AS city,
  country::VARCHAR AS country,
  segment::VARCHAR AS segment,
  created_at::TIMESTAMPTZ AS created_at,
  updated_at::TIMESTAMPTZ AS updated_at,
  @utc_date(created_at) AS signup_date,
  ingested_at::TIMESTAMPTZ AS ingested_at,
  has_quarantined_version::BOOLEAN AS has_quarantined_version
FROM existing
