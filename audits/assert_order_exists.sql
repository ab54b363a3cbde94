-- Generic audit: referential integrity from a fact to the orders. Fails on any row whose order
-- column names an order that does not exist at the source: not landed, or whose current version
-- is a tombstone. Same survivor and delete rules as silver (macros/millpond.py).
-- Non-blocking: the Kafka streams and MongoDB land independently (an event can arrive before its
-- order document), and a deleted order leaves its events behind; the count is for review.
-- It reads bronze directly: an audit runs against physical tables, where the other models' views
-- may not exist yet, while the external bronze tables always do.
-- Usage in a MODEL block: audits (assert_order_exists(column := order_id))
AUDIT (
  name assert_order_exists,
  blocking FALSE
);

WITH latest_orders AS (
  SELECT
    _id AS existing_order_id,
    _deleted_at
  FROM bronze.mongo_orders
  WHERE _id IS NOT NULL
  QUALIFY @latest_landed_version(_id)
),

existing_orders AS (
  SELECT existing_order_id
  FROM latest_orders
  WHERE NOT @is_deleted(_deleted_at)
)

SELECT *
FROM @this_model
WHERE
  @column IS NOT NULL
  AND @column NOT IN (SELECT existing_orders.existing_order_id FROM existing_orders)
