-- gold.agg_daily_revenue: a day cannot have more cancelled orders than orders, a day with
-- orders is never empty, and a day whose orders are all cancelled has no revenue.
AUDIT (
  name assert_cancelled_within_orders
);

SELECT *
FROM @this_model
WHERE
  cancelled_orders > orders
  OR orders <= 0
  OR (cancelled_orders = orders AND revenue <> 0)
