-- Generic audit for an SCD type 2 model: every version of a key is a non-empty interval
-- [valid_from, valid_to), the versions of one key never overlap, and a key has at most one
-- current row (valid_to NULL). A key with no current row was deleted at the source
-- (invalidate_hard_deletes closes its last version); every key that exists has exactly one.
-- Blocking: overlapping or doubled versions make every as-of join fan out (silver.int_order_lines
-- would count a line twice), and it is a rule across rows, which no edge rule can check. The
-- SCD models are not restatable, so a failure needs a look, not a re-run (docs/runbooks).
-- Usage in a MODEL block: audits (assert_scd2_valid(key := customer_id))
AUDIT (
  name assert_scd2_valid
);

WITH versions AS (
  SELECT
    @key AS scd_key,
    valid_from,
    valid_to
  FROM @this_model
),

empty_versions AS (
  SELECT
    scd_key,
    valid_from,
    valid_to,
    'empty interval' AS problem
  FROM versions
  WHERE valid_to IS NOT NULL AND valid_to <= valid_from
),

overlapping AS (
  SELECT
    earlier.scd_key,
    later.valid_from,
    earlier.valid_to,
    'overlapping versions' AS problem
  FROM versions AS earlier
  INNER JOIN versions AS later
    ON
      earlier.scd_key = later.scd_key
      AND earlier.valid_from < later.valid_from
      AND (earlier.valid_to IS NULL OR earlier.valid_to > later.valid_from)
),

doubly_current AS (
  SELECT
    scd_key,
    MIN(valid_from) AS valid_from,
    MAX(valid_to) AS valid_to,  -- NULL: typed like valid_to, so the UNION is typed on every engine
    'more than one current row' AS problem
  FROM versions
  WHERE valid_to IS NULL
  GROUP BY scd_key
  HAVING COUNT(*) > 1
)

SELECT * FROM empty_versions
UNION ALL
SELECT * FROM overlapping
UNION ALL
SELECT * FROM doubly_current
