-- Generic audit: referential integrity from a fact to an SCD type 2 dimension. Fails on any row
-- whose @column is set but names no version of the key in @dimension (any version: a fact keeps
-- the customer or product it had, also after the source deleted it).
-- Non-blocking: an SCD dimension takes in a change once per daily interval and is never restated,
-- so a customer who signed up today (or a key deleted before the dimension first saw it) can be
-- missing while the fact row is right; the count is for review, stopping would fix nothing.
-- The dimension must be a direct parent of the audited model (its `depends_on`): an audit resolves
-- model names through the model's parents, so @dimension is read from its physical table.
-- Usage in a MODEL block: audits (assert_in_dimension(column := customer_id, dimension := gold.dim_customers))
AUDIT (
  name assert_in_dimension,
  blocking FALSE
);

SELECT *
FROM @this_model AS fact
WHERE
  @column IS NOT NULL
  AND NOT EXISTS (
    SELECT 1
    FROM @dimension AS dimension
    WHERE dimension.@column = fact.@column
  )
