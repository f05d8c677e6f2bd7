-- name: round_amount
-- severity: MEDIUM
-- confidence: 0.6
-- title: Round amount over the threshold
-- description: Whole-hundred amounts at or above a threshold are typical of estimates,
--   cash-like payments and fabricated receipts.
-- params: round_threshold=1000
SELECT transaction_id, amount, vendor_name, department, transaction_date,
       concat('round amount ', CAST(amount AS STRING)) AS detail
FROM gold.recent_transactions
WHERE transaction_date > :since AND amount >= :round_threshold AND amount % 100 = 0
