-- name: split_purchase
-- severity: HIGH
-- confidence: 0.85
-- title: Split purchase under the approval limit
-- description: Two or more charges at one vendor on one day, each just under the card's
--   approval limit but together over it: a purchase split to avoid approval.
-- params: near_limit_ratio=0.9
WITH near AS (
  SELECT t.transaction_id, t.card_id, t.vendor_name, t.amount, t.department,
         t.transaction_date,
         to_date(t.transaction_date) AS day, c.approval_limit
  FROM gold.recent_transactions t
  JOIN gold.credit_cards c ON t.card_id = c.card_id
  WHERE t.transaction_date > :since
    AND t.amount < c.approval_limit AND t.amount >= c.approval_limit * :near_limit_ratio
),
grp AS (
  SELECT card_id, vendor_name, day, count(*) AS n, sum(amount) AS total,
         max(approval_limit) AS lim
  FROM near
  GROUP BY card_id, vendor_name, day
  HAVING count(*) >= 2 AND sum(amount) > max(approval_limit)
)
SELECT n.transaction_id, n.amount, n.vendor_name, n.department, n.transaction_date,
       concat(CAST(g.n AS STRING), ' charges on one day totalling ', CAST(g.total AS STRING),
              ', each under the ', CAST(g.lim AS STRING), ' approval limit') AS detail
FROM near n
JOIN grp g ON n.card_id = g.card_id AND n.vendor_name = g.vendor_name AND n.day = g.day
