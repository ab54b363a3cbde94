MODEL (
  name gold.dim_customers,
  kind FULL,
  grain customer_id,
  audits (
    not_null(columns := (customer_id, lifetime_orders)),
    unique_values(columns := (customer_id)),
    assert_non_negative(column := lifetime_orders)
  ),
  description 'Customer dimension without PII (no name, e-mail, phone or street): where the customer lives, when they signed up and their order history. Rebuilt in full.',
  column_descriptions (
    customer_id = 'Customer id.',
    signup_date = 'UTC date the customer signed up.',
    city = 'City of the customer address.',
    country = 'Country of the customer address.',
    first_order_date = 'UTC date of the first order, NULL when the customer never ordered.',
    lifetime_orders = 'Orders placed by the customer, any status.'
  )
);

WITH customers AS (
  SELECT * FROM silver.stg_customers
),

orders AS (
  SELECT * FROM silver.stg_orders
),

customer_orders AS (
  SELECT
    customer_id,
    MIN(order_date) AS first_order_date,
    COUNT(*) AS lifetime_orders
  FROM orders
  GROUP BY customer_id
),

final AS (
  SELECT
    customers.customer_id,
    customers.signup_date,
    customers.city,
    customers.country,
    customer_orders.first_order_date,
    COALESCE(customer_orders.lifetime_orders, 0) AS lifetime_orders
  FROM customers
  LEFT JOIN customer_orders
    ON customers.customer_id = customer_orders.customer_id
)

SELECT
  customer_id::VARCHAR AS customer_id,
  signup_date::DATE AS signup_date,
  city::VARCHAR AS city,
  country::VARCHAR AS country,
  first_order_date::DATE AS first_order_date,
  lifetime_orders::BIGINT AS lifetime_orders
FROM final
