-- Kind FULL: a small table (months x months), and every row can change with any order: a deleted
-- or cancelled first order moves its customer to a later cohort, which changes that cohort's size
-- and every retention rate of both cohorts. It reads gold.fct_orders, the current orders.
MODEL (
  name gold.agg_monthly_cohort_retention,
  kind FULL,
  grain (cohort_month, activity_month),
  audits (
    -- blocking: each is arithmetic of this model (a failure is a modelling bug, not bad data)
    not_null(columns := (cohort_month, activity_month, months_since_first_order, active_customers, cohort_customers, retention_rate)),
    unique_combination_of_columns(columns := (cohort_month, activity_month)),
    accepted_range(column := months_since_first_order, min_v := 0),
    accepted_range(column := retention_rate, min_v := 0, max_v := 1)
  ),
  description 'Monthly cohort retention: customers grouped by the month of their first order that is not cancelled (the cohort), and for each later month with orders how many of them ordered again. Cancelled orders are not activity; a month in which nobody of a cohort ordered has no row (retention 0).',
  column_descriptions (
    cohort_month = 'First day of the month of the customers first non-cancelled order.',
    activity_month = 'First day of the month in which the cohort customers ordered.',
    months_since_first_order = 'Whole months from cohort_month to activity_month (0 = the cohort month).',
    active_customers = 'Customers of the cohort with a non-cancelled order in activity_month.',
    cohort_customers = 'Customers in the cohort.',
    retention_rate = 'active_customers / cohort_customers, rounded to 4 decimals.'
  )
);

WITH orders AS (
  SELECT
    customer_id,
    DATE_TRUNC('month', order_date)::DATE AS order_month
  FROM gold.fct_orders
  WHERE NOT is_cancelled
),

first_months AS (
  SELECT
    customer_id,
    MIN(order_month) AS cohort_month
  FROM orders
  GROUP BY customer_id
),

cohort_sizes AS (
  SELECT
    cohort_month,
    COUNT(*) AS cohort_customers
  FROM first_months
  GROUP BY cohort_month
),

activity AS (
  SELECT
    first_months.cohort_month,
    orders.order_month AS activity_month,
    COUNT(DISTINCT orders.customer_id) AS active_customers
  FROM orders
  INNER JOIN first_months
    ON orders.customer_id = first_months.customer_id
  GROUP BY first_months.cohort_month, orders.order_month
)

SELECT
  activity.cohort_month::DATE AS cohort_month,
  activity.activity_month::DATE AS activity_month,
  (
    (EXTRACT(YEAR FROM activity.activity_month) - EXTRACT(YEAR FROM activity.cohort_month)) * 12
    + EXTRACT(MONTH FROM activity.activity_month) - EXTRACT(MONTH FROM activity.cohort_month)
  )::INT AS months_since_first_order,
  activity.active_customers::BIGINT AS active_customers,
  cohort_sizes.cohort_customers::BIGINT AS cohort_customers,
  ROUND(activity.active_customers * 1.0 / cohort_sizes.cohort_customers, 4)::DECIMAL(9, 4) AS retention_rate
FROM activity
INNER JOIN cohort_sizes
  ON activity.cohort_month = cohort_sizes.cohort_month
