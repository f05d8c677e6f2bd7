-- name: unknown_vendor
-- kind: llm
-- severity: INFO
-- confidence: 0.5
-- title: Unknown vendor
-- description: Transactions whose vendor is not in the vendor master: what was bought is
--   ambiguous, so the LLM stage classifies them (or, with no LLM, they go to human review).
-- labels: business, personal, suspicious
-- severity_by_label: suspicious=HIGH, personal=MEDIUM, business=LOW
-- instructions: You review corporate card transactions whose vendor is not in the vendor
--   master. Decide whether each looks like a business expense, a personal expense on a
--   company card, or suspicious (possible fraud).
SELECT transaction_id, amount, vendor_name, description, department, merchant_category_code,
       transaction_date,
       concat(vendor_name, ': ', description) AS detail
FROM gold.recent_transactions
WHERE transaction_date > :since AND vendor_id IS NULL
ORDER BY transaction_id
