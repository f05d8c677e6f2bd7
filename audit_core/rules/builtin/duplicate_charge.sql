-- name: duplicate_charge
-- severity: HIGH
-- confidence: 0.95
-- title: Duplicate charge within 24 hours
-- description: The same card charged the same amount by the same vendor twice within
--   24 hours: a double submission or a merchant error.
-- params: window_s=86400
WITH t AS (
  SELECT transaction_id, amount, transaction_date, vendor_name, department,
         lag(transaction_id) OVER (PARTITION BY card_id, vendor_name, amount
                                   ORDER BY transaction_date) AS prev_id,
         lag(transaction_date) OVER (PARTITION BY card_id, vendor_name, amount
                                     ORDER BY transaction_date) AS prev_at
  FROM gold.recent_transactions
  WHERE transaction_date > :since AND amount > 0
)
SELECT transaction_id, amount, vendor_name, department, transaction_date,
       concat('same card, vendor and amount as ', prev_id, ', ',
              CAST(round((unix_timestamp(transaction_date) - unix_timestamp(prev_at)) / 60) AS INT),
              ' min earlier') AS detail
FROM t
WHERE prev_at IS NOT NULL
  AND unix_timestamp(transaction_date) - unix_timestamp(prev_at) < :window_s
