-- name: weekend_spend
-- severity: LOW
-- confidence: 0.5
-- title: Weekend spend
-- description: Card spend on a Saturday or Sunday, worth a look in most expense policies.
SELECT transaction_id, amount, vendor_name, department, transaction_date,
       concat('charged on a ', date_format(transaction_date, 'EEEE')) AS detail
FROM gold.recent_transactions
WHERE transaction_date > :since AND dayofweek(transaction_date) IN (1, 7)
