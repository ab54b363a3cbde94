-- Generic audit: fails on any row where a funnel step counts more than the step before it.
-- steps is a tuple of count columns, first step first (@funnel_grows, macros/events.py).
-- Blocking where it is used on a funnel that is strict by construction (gold.agg_daily_funnel):
-- a failure there is a bug in the models, never a bad source record.
-- Usage in a MODEL block: audits (assert_funnel_never_grows(steps := (viewed, carted, ordered)))
AUDIT (
  name assert_funnel_never_grows
);

SELECT *
FROM @this_model
WHERE @funnel_grows(@steps)
