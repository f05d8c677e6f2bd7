-- name: card_bank_mismatch
-- severity: HIGH
-- confidence: 0.9
-- title: Charge settled to another bank account
-- description: A card charge settled to a bank account other than the one the card is
--   tied to.
SELECT t.transaction_id, t.amount, t.vendor_name, t.department, t.transaction_date,
       concat('charged to ', t.account_id, ', card ', t.card_id, ' settles to ', c.account_id) AS detail
FROM gold.recent_transactions t
JOIN gold.credit_cards c ON t.card_id = c.card_id
WHERE t.transaction_date > :since AND t.account_id <> c.account_id
