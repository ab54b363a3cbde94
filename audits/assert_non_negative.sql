-- Generic audit: fails on any row where the given numeric column is negative.
-- Usage in a MODEL block: audits (assert_non_negative(column := revenue))
AUDIT (
  name assert_non_negative
);

SELECT *
FROM @this_model
WHERE @column < 0
