-- Counts the entities of a MongoDB staging model whose newer version is quarantined
-- (has_quarantined_version: a dead letter in bronze.dead_letter, not replayed).
-- Non-blocking: the entity is correct as of its last good version, and one bad document must not
-- stall the pipeline. It is the count for customers and products, which reach no Soda contract
-- yet; orders are counted by checks/contracts/fct_orders.yml on what is published. The models
-- it audits are FULL, so every run that rebuilds them counts every entity.
-- Usage in a MODEL block: audits (quarantined_versions)
AUDIT (
  name quarantined_versions,
  blocking FALSE
);

SELECT *
FROM @this_model
WHERE has_quarantined_version
