-- The parity corpus: Databricks-dialect queries run on Apache Spark (ANSI on, UTC) and on
-- the local DuckDB backend, compared value by value and type by type.
--
-- Each query starts with `-- id: <name>`; optional headers:
--   -- params: {"name": value}   named parameters (JSON), bound as :name
--   -- expect: error             Spark raises (an ANSI error); the local backend must too
-- Queries end with `;`.

-- id: select_star_tx
SELECT * FROM gold.recent_transactions ORDER BY transaction_id;

-- id: select_star_cards
SELECT * FROM gold.credit_cards ORDER BY card_id;

-- id: select_star_accounts
SELECT * FROM gold.bank_accounts ORDER BY account_id;

-- id: select_star_emails
SELECT * FROM gold.emails ORDER BY email_id;

-- id: select_star_workflow
SELECT * FROM workflow_state ORDER BY audit_run_id;

-- id: where_decimal_gt_int
SELECT transaction_id, amount FROM gold.recent_transactions WHERE amount > 1000 ORDER BY transaction_id;

-- id: where_between_dates
SELECT transaction_id FROM gold.recent_transactions
WHERE posted_date BETWEEN DATE'2025-02-10' AND DATE'2025-02-20' ORDER BY 1;

-- id: where_in_list
SELECT transaction_id, vendor_name FROM gold.recent_transactions
WHERE vendor_id IN ('V-AWS', 'V-SLK') ORDER BY 1;

-- id: where_like
SELECT vendor_name FROM gold.recent_transactions WHERE vendor_name LIKE '%Air%' ORDER BY 1;

-- id: where_ilike
SELECT DISTINCT vendor_name FROM gold.recent_transactions WHERE vendor_name ILIKE 'sq *%' ORDER BY 1;

-- id: where_rlike
SELECT DISTINCT vendor_name FROM gold.recent_transactions WHERE vendor_name RLIKE '^[A-Z]{2} \\*' ORDER BY 1;

-- id: where_is_null
SELECT transaction_id FROM gold.recent_transactions WHERE vendor_id IS NULL ORDER BY 1;

-- id: where_ts_literal_string
SELECT transaction_id FROM gold.recent_transactions WHERE transaction_date >= '2025-02-27' ORDER BY 1;

-- id: distinct_departments
SELECT DISTINCT department FROM gold.recent_transactions ORDER BY department;

-- id: limit_offset
SELECT transaction_id FROM gold.recent_transactions ORDER BY amount DESC, transaction_id LIMIT 5 OFFSET 2;

-- id: order_nulls_default
SELECT transaction_id, vendor_id FROM gold.recent_transactions ORDER BY vendor_id, transaction_id;

-- id: order_desc_nulls_default
SELECT transaction_id, vendor_id FROM gold.recent_transactions ORDER BY vendor_id DESC, transaction_id;

-- id: order_nulls_last
SELECT transaction_id, merchant_category_code FROM gold.recent_transactions
ORDER BY merchant_category_code NULLS LAST, transaction_id;

-- id: count_star
SELECT count(*) AS n FROM gold.recent_transactions;

-- id: count_col_nulls
SELECT count(vendor_id) AS n, count(DISTINCT vendor_id) AS d FROM gold.recent_transactions;

-- id: sum_decimal
SELECT sum(amount) AS total FROM gold.recent_transactions;

-- id: avg_decimal
SELECT avg(amount) AS mean FROM gold.recent_transactions;

-- id: avg_decimal_group
SELECT card_id, avg(amount) AS mean FROM gold.recent_transactions GROUP BY card_id ORDER BY card_id;

-- id: min_max_decimal
SELECT min(amount) AS lo, max(amount) AS hi FROM gold.recent_transactions;

-- id: sum_group_having
SELECT department, sum(amount) AS total FROM gold.recent_transactions
GROUP BY department HAVING sum(amount) > 3000 ORDER BY department;

-- id: count_if
SELECT count_if(amount > 1000) AS big FROM gold.recent_transactions;

-- id: group_by_ordinal
SELECT vendor_name, count(*) AS n FROM gold.recent_transactions GROUP BY 1 ORDER BY 2 DESC, 1;

-- id: group_by_all
SELECT department, card_id, count(*) AS n FROM gold.recent_transactions GROUP BY ALL ORDER BY 1, 2;

-- id: avg_int
SELECT avg(x) AS a FROM VALUES (1), (2), (4) AS t(x);

-- id: sum_int_type
SELECT sum(x) AS s FROM VALUES (1), (2), (4) AS t(x);

-- id: stddev_decimal
SELECT stddev(amount) AS s, variance(amount) AS v FROM gold.recent_transactions;

-- id: stddev_pop_samp
SELECT stddev_pop(x) AS p, stddev_samp(x) AS s FROM VALUES (1.0D), (2.0D), (4.0D) AS t(x);

-- id: any_value_bool_and
SELECT bool_and(amount > 0) AS all_pos, bool_or(amount > 5000) AS any_big FROM gold.recent_transactions;

-- id: every_some
SELECT every(has_attachment) AS e, some(has_attachment) AS s FROM gold.emails;

-- id: collect_list_sorted
SELECT card_id, sort_array(collect_list(transaction_id)) AS ids FROM gold.recent_transactions
GROUP BY card_id ORDER BY card_id;

-- id: collect_set_sorted
SELECT department, array_sort(collect_set(vendor_name)) AS vendors FROM gold.recent_transactions
GROUP BY department ORDER BY department;

-- id: first_last_ordered
SELECT max_by(transaction_id, amount) AS biggest, min_by(transaction_id, amount) AS smallest
FROM gold.recent_transactions;

-- id: percentile_interpolates
SELECT percentile(amount, 0.5) AS median FROM gold.recent_transactions;

-- id: percentile_int
SELECT percentile(x, 0.25) AS q FROM VALUES (1), (2), (3), (10) AS t(x);

-- id: percentile_cont
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY amount) AS median FROM gold.recent_transactions;

-- id: percentile_disc
SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY amount) AS median FROM gold.recent_transactions;

-- id: median_fn
SELECT median(x) AS m FROM VALUES (1), (2), (3), (10) AS t(x);

-- id: percentile_array
SELECT percentile(x, array(0.25, 0.75)) AS qs FROM VALUES (1), (2), (3), (10) AS t(x);

-- id: approx_count_distinct
SELECT approx_count_distinct(card_id) AS n FROM gold.recent_transactions;

-- id: decimal_div_decimal
SELECT amount / 3 AS third FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: decimal_div_decimal2
SELECT amount / approval_limit AS ratio FROM gold.recent_transactions t
JOIN gold.credit_cards c USING (card_id) WHERE transaction_id = 'TXN003';

-- id: decimal_mul
SELECT amount * 1.1 AS up FROM gold.recent_transactions WHERE transaction_id = 'TXN003';

-- id: decimal_add_literal
SELECT amount + 0.005 AS x FROM gold.recent_transactions WHERE transaction_id = 'TXN003';

-- id: decimal_literal_type
SELECT 1.5 AS a, 0.125 AS b, 123.0 AS c, typeof(1.5) AS t;

-- id: decimal_literal_div
SELECT 10.0 / 4 AS a, 1 / 3 AS b;

-- id: int_div_is_double
SELECT 7 / 2 AS a, typeof(7 / 2) AS t;

-- id: div_operator
SELECT 7 div 2 AS a, -7 div 2 AS b;

-- id: mod_negative
SELECT -7 % 3 AS a, 7 % -3 AS b, mod(-7, 3) AS c;

-- id: pmod_fn
SELECT pmod(-7, 3) AS a, pmod(7, -3) AS b, pmod(10, 4) AS c;

-- id: pmod_decimal
SELECT pmod(amount, 100) AS r FROM gold.recent_transactions WHERE transaction_id IN ('TXN001', 'TXN026') ORDER BY transaction_id;

-- id: round_half_up
SELECT round(2.5) AS a, round(-2.5) AS b, round(1.235, 2) AS c;

-- id: round_double
SELECT round(2.5D) AS a, round(3.5D) AS b;

-- id: round_decimal_col
SELECT round(amount, 0) AS r FROM gold.recent_transactions WHERE transaction_id = 'TXN003';

-- id: round_negative_scale
SELECT round(amount, -2) AS r FROM gold.recent_transactions WHERE transaction_id = 'TXN007';

-- id: bround_fn
SELECT bround(2.5) AS a, bround(3.5) AS b, bround(1.225, 2) AS c;

-- id: bround_double
SELECT bround(2.5D) AS a, bround(-0.5D) AS b;

-- id: floor_ceil_decimal
SELECT floor(amount) AS f, ceil(amount) AS c FROM gold.recent_transactions WHERE transaction_id = 'TXN026';

-- id: floor_ceil_double
SELECT floor(2.7D) AS f, ceil(2.1D) AS c, typeof(floor(2.7D)) AS t;

-- id: abs_sign
SELECT abs(amount) AS a, sign(amount) AS s FROM gold.recent_transactions WHERE transaction_id = 'TXN026';

-- id: power_sqrt
SELECT power(2, 10) AS p, sqrt(16) AS s, exp(0) AS e;

-- id: ln_log
SELECT ln(1) AS a, log10(1000) AS b, log2(8) AS c, log(2, 8) AS d;

-- id: greatest_least
SELECT greatest(1, 5, 3) AS g, least(1, 5, 3) AS l, greatest(1, NULL, 3) AS gn;

-- id: greatest_decimal
SELECT greatest(approval_limit, monthly_limit / 10) AS g FROM gold.credit_cards ORDER BY card_id;

-- id: format_number_fn
SELECT format_number(1234567.891, 2) AS a, format_number(0.5, 0) AS b;

-- id: format_number_col
SELECT format_number(amount, 2) AS a FROM gold.recent_transactions WHERE transaction_id IN ('TXN016', 'TXN026') ORDER BY transaction_id;

-- id: format_number_pattern
SELECT format_number(1234.5, '#,###.00') AS a;

-- id: int_overflow
-- expect: error
SELECT 2147483647 + 1 AS x;

-- id: bigint_overflow
-- expect: error
SELECT 9223372036854775807L + 1L AS x;

-- id: int_overflow_mul
-- expect: error
SELECT CAST(100000 AS INT) * CAST(100000 AS INT) AS x;

-- id: division_by_zero
-- expect: error
SELECT 1 / 0 AS x;

-- id: division_by_zero_decimal
-- expect: error
SELECT amount / 0 AS x FROM gold.recent_transactions;

-- id: mod_by_zero
-- expect: error
SELECT 5 % 0 AS x;

-- id: try_divide_zero
SELECT try_divide(1, 0) AS x;

-- id: div_by_zero_double
-- expect: error
SELECT 1.0D / 0 AS x;

-- id: nullif_division
SELECT amount / nullif(0, 0) AS x FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: cast_double_to_int_truncates
SELECT CAST(2.7D AS INT) AS a, CAST(-2.7D AS INT) AS b;

-- id: cast_decimal_to_int_truncates
SELECT CAST(amount AS INT) AS a FROM gold.recent_transactions WHERE transaction_id IN ('TXN003', 'TXN026') ORDER BY transaction_id;

-- id: cast_colon_int
SELECT amount::INT AS a FROM gold.recent_transactions WHERE transaction_id = 'TXN007';

-- id: cast_decimal_to_bigint
SELECT CAST(12.99 AS BIGINT) AS a, CAST(-12.99 AS BIGINT) AS b;

-- id: cast_string_to_int
SELECT CAST('42' AS INT) AS a, CAST(' 42 ' AS INT) AS b;

-- id: cast_invalid_string_int
-- expect: error
SELECT CAST('abc' AS INT) AS a;

-- id: cast_decimal_string_int
-- expect: error
SELECT CAST('4.5' AS INT) AS a;

-- id: try_cast_invalid
SELECT try_cast('abc' AS INT) AS a, try_cast('12' AS INT) AS b;

-- id: cast_overflow_int
-- expect: error
SELECT CAST(3000000000 AS INT) AS a;

-- id: cast_overflow_tinyint
-- expect: error
SELECT CAST(300 AS TINYINT) AS a;

-- id: cast_string_to_decimal
SELECT CAST('123.456' AS DECIMAL(10, 2)) AS a;

-- id: cast_decimal_overflow
-- expect: error
SELECT CAST(12345.6 AS DECIMAL(4, 1)) AS a;

-- id: cast_to_decimal_default
SELECT CAST(amount AS DECIMAL) AS a FROM gold.recent_transactions WHERE transaction_id = 'TXN003';

-- id: cast_int_to_string
SELECT CAST(42 AS STRING) AS a, CAST(-1 AS STRING) AS b;

-- id: cast_double_to_string
SELECT CAST(1.5D AS STRING) AS a, CAST(100.0D AS STRING) AS b;

-- id: cast_decimal_to_string
SELECT CAST(amount AS STRING) AS s FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: cast_bool_to_string
SELECT CAST(true AS STRING) AS a, CAST(false AS STRING) AS b;

-- id: cast_string_to_bool
SELECT CAST('true' AS BOOLEAN) AS a, CAST('false' AS BOOLEAN) AS b;

-- id: cast_invalid_bool
-- expect: error
SELECT CAST('maybe' AS BOOLEAN) AS a;

-- id: cast_timestamp_to_string
SELECT CAST(transaction_date AS STRING) AS s FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: cast_date_to_string
SELECT CAST(posted_date AS STRING) AS s FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: cast_string_to_date
SELECT CAST('2025-02-03' AS DATE) AS d;

-- id: cast_string_to_timestamp
SELECT CAST('2025-02-03 10:15:00' AS TIMESTAMP) AS t;

-- id: cast_invalid_date
-- expect: error
SELECT CAST('2025-13-45' AS DATE) AS d;

-- id: cast_timestamp_to_date
SELECT CAST(transaction_date AS DATE) AS d FROM gold.recent_transactions WHERE transaction_id = 'TXN008';

-- id: cast_date_to_timestamp
SELECT CAST(posted_date AS TIMESTAMP) AS t FROM gold.recent_transactions WHERE transaction_id = 'TXN008';

-- id: cast_int_to_double
SELECT CAST(3 AS DOUBLE) AS a, CAST(amount AS DOUBLE) AS b FROM gold.recent_transactions WHERE transaction_id = 'TXN003';

-- id: cast_string_code_to_int
SELECT CAST(merchant_category_code AS INT) AS mcc FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: typeof_types
SELECT typeof(1) AS a, typeof(1L) AS b, typeof(1.0D) AS c, typeof('x') AS d, typeof(true) AS e,
       typeof(DATE'2025-01-01') AS f, typeof(TIMESTAMP'2025-01-01 00:00:00') AS g;

-- id: typeof_columns
SELECT typeof(amount) AS a, typeof(transaction_date) AS b, typeof(posted_date) AS c
FROM gold.recent_transactions LIMIT 1;

-- id: typeof_complex
SELECT typeof(array(1, 2)) AS a, typeof(map('a', 1)) AS b, typeof(named_struct('x', 1)) AS c;

-- id: typeof_smallint
SELECT typeof(CAST(1 AS SMALLINT)) AS a, typeof(CAST(1 AS TINYINT)) AS b, typeof(CAST(1 AS FLOAT)) AS c;

-- id: implicit_string_eq_int
SELECT transaction_id FROM gold.recent_transactions WHERE merchant_category_code = 4816 ORDER BY 1;

-- id: implicit_string_gt_int
SELECT count(*) AS n FROM gold.recent_transactions WHERE merchant_category_code > 5000;

-- id: implicit_string_literal_cmp
SELECT '10' > 9 AS a, '10' = 10 AS b, '9' < 10 AS c;

-- id: implicit_string_fraction_cmp_int
-- expect: error
SELECT '1.5' < 2 AS c;

-- id: implicit_string_cmp_decimal
SELECT '1.5' < 2.0 AS a, '1250.00' = 1250.00 AS b;

-- id: implicit_string_plus_int
SELECT '5' + 3 AS a, typeof('5' + 3) AS t;

-- id: implicit_string_cmp_invalid
-- expect: error
SELECT 'abc' = 1 AS a;

-- id: string_concat_pipes
SELECT card_id || '-' || transaction_id AS k FROM gold.recent_transactions ORDER BY 1 LIMIT 3;

-- id: concat_null
SELECT concat('a', NULL, 'b') AS a, concat_ws('-', 'a', NULL, 'b') AS b;

-- id: upper_lower_initcap
SELECT upper(vendor_name) AS u, lower(vendor_name) AS l, initcap('hello WORLD') AS i
FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: length_char_len
SELECT length('héllo') AS a, char_length('abc') AS b, octet_length('héllo') AS c;

-- id: substr_fn
SELECT substr('Databricks', 2, 4) AS a, substring('Databricks', -3) AS b, substr('abc', 0, 2) AS c;

-- id: substring_index_fn
SELECT substring_index('a.b.c.d', '.', 2) AS a, substring_index('a.b.c.d', '.', -2) AS b,
       substring_index('a.b', '.', 0) AS c;

-- id: substring_index_col
SELECT substring_index(from_address, '@', -1) AS domain FROM gold.emails ORDER BY email_id;

-- id: instr_locate
SELECT instr('databricks', 'br') AS a, locate('a', 'banana') AS b, locate('a', 'banana', 3) AS c;

-- id: replace_translate
SELECT replace('a-b-c', '-', '') AS a, translate('abc', 'ab', 'xy') AS b;

-- id: trim_fns
SELECT trim('  x  ') AS a, ltrim('  x') AS b, rtrim('x  ') AS c, trim(BOTH 'x' FROM 'xxaxx') AS d;

-- id: lpad_rpad
SELECT lpad('42', 5, '0') AS a, rpad('ab', 4, '*') AS b, lpad('abcdef', 3, '0') AS c;

-- id: left_right
SELECT left('Databricks', 4) AS a, right('Databricks', 5) AS b;

-- id: split_fn
SELECT split('a,b,c', ',') AS a, split('a1b22c', '[0-9]+') AS b;

-- id: split_part_fn
SELECT split_part('a.b.c', '.', 2) AS a, split_part('a.b.c', '.', -1) AS b;

-- id: regexp_extract_fn
SELECT regexp_extract(invoice_number, '([A-Z]+)-([0-9]+)', 2) AS n FROM gold.emails ORDER BY email_id;

-- id: regexp_replace_fn
SELECT regexp_replace(vendor_name, '[^A-Za-z]', '') AS v FROM gold.recent_transactions ORDER BY transaction_id LIMIT 3;

-- id: regexp_like_fn
SELECT regexp_like('TXN001', '^TXN[0-9]+$') AS a, 'abc' REGEXP 'b' AS b;

-- id: repeat_reverse
SELECT repeat('ab', 3) AS a, reverse('abc') AS b;

-- id: startswith_endswith
SELECT startswith('Databricks', 'Data') AS a, endswith('Databricks', 'ks') AS b, contains('Databricks', 'bri') AS c;

-- id: ascii_chr
SELECT ascii('A') AS a, chr(66) AS b;

-- id: md5_sha
SELECT md5('abc') AS a, sha2('abc', 256) AS b, sha1('abc') AS c;

-- id: crc32_fn
SELECT crc32('abc') AS a, crc32('TXN001') AS b;

-- id: hex_unhex
SELECT hex(255) AS a, hex('AB') AS b;

-- id: base64_fn
SELECT base64('abc') AS a;

-- id: levenshtein_fn
SELECT levenshtein('kitten', 'sitting') AS a;

-- id: soundex_fn
SELECT soundex('Robert') AS a;

-- id: string_repeat_null
SELECT upper(NULL) AS a, length(NULL) AS b;

-- id: format_string_fn
SELECT format_string('%s has %d', 'x', 3) AS a;

-- id: datediff_days
SELECT datediff(posted_date, CAST(transaction_date AS DATE)) AS d FROM gold.recent_transactions ORDER BY transaction_id LIMIT 5;

-- id: datediff_literal
SELECT datediff(DATE'2025-03-01', DATE'2025-02-01') AS d, datediff('2025-03-01', '2025-02-01') AS s;

-- id: datediff_unit_hour
SELECT datediff(HOUR, TIMESTAMP'2025-01-01 10:59:00', TIMESTAMP'2025-01-02 10:29:00') AS h;

-- id: timestampdiff_hour
SELECT timestampdiff(HOUR, TIMESTAMP'2025-01-01 10:59:00', TIMESTAMP'2025-01-02 10:29:00') AS h;

-- id: timestampdiff_minute_negative
SELECT timestampdiff(MINUTE, TIMESTAMP'2025-01-01 10:59:30', TIMESTAMP'2025-01-01 10:00:00') AS m;

-- id: timestampdiff_day
SELECT timestampdiff(DAY, TIMESTAMP'2025-01-01 23:00:00', TIMESTAMP'2025-01-02 01:00:00') AS d;

-- id: timestampdiff_month
SELECT timestampdiff(MONTH, DATE'2025-01-31', DATE'2025-02-28') AS a,
       timestampdiff(MONTH, TIMESTAMP'2025-01-15 10:00:00', TIMESTAMP'2025-03-15 09:00:00') AS b;

-- id: timestampdiff_year
SELECT timestampdiff(YEAR, DATE'2024-02-29', DATE'2025-02-28') AS a;

-- id: timestampdiff_second
SELECT timestampdiff(SECOND, TIMESTAMP'2025-01-01 00:00:00', TIMESTAMP'2025-01-01 00:01:01.9') AS s;

-- id: timestampdiff_week
SELECT timestampdiff(WEEK, DATE'2025-01-01', DATE'2025-01-14') AS w;

-- id: timestampdiff_cols
SELECT a.transaction_id, b.transaction_id AS other,
       timestampdiff(MINUTE, a.transaction_date, b.transaction_date) AS mins
FROM gold.recent_transactions a JOIN gold.recent_transactions b
  ON a.vendor_id = b.vendor_id AND a.transaction_id < b.transaction_id
WHERE timestampdiff(HOUR, a.transaction_date, b.transaction_date) < 24
ORDER BY 1, 2;

-- id: timestampdiff_email_lag
SELECT e.email_id, timestampdiff(HOUR, t.transaction_date, e.received_at) AS lag_h
FROM gold.emails e JOIN gold.recent_transactions t USING (transaction_id) ORDER BY e.email_id;

-- id: months_between_fn
SELECT months_between(DATE'2025-03-31', DATE'2025-02-28') AS a,
       months_between(DATE'2025-03-15', DATE'2025-02-01') AS b;

-- id: months_between_ts
SELECT months_between(TIMESTAMP'1997-02-28 10:30:00', TIMESTAMP'1996-10-30 00:00:00') AS a,
       months_between(TIMESTAMP'1997-02-28 10:30:00', TIMESTAMP'1996-10-30 00:00:00', false) AS b;

-- id: add_months_fn
SELECT add_months(DATE'2025-01-31', 1) AS a, add_months(posted_date, -1) AS b
FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: add_months_type
SELECT typeof(add_months(DATE'2025-01-31', 1)) AS t;

-- id: date_add_sub
SELECT date_add(posted_date, 30) AS a, date_sub(posted_date, 1) AS b
FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: date_add_ts
SELECT date_add(transaction_date, 1) AS a FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: date_add_unit
SELECT dateadd(HOUR, 5, TIMESTAMP'2025-01-01 22:00:00') AS a, timestampadd(DAY, -1, DATE'2025-03-01') AS b;

-- id: date_arith_interval
SELECT posted_date + INTERVAL 1 DAY AS a, transaction_date - INTERVAL 2 HOURS AS b
FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: date_plus_int
SELECT DATE'2025-01-31' + 1 AS a;

-- id: trunc_date
SELECT trunc(posted_date, 'MM') AS m, trunc(posted_date, 'YEAR') AS y, trunc(posted_date, 'Q') AS q
FROM gold.recent_transactions WHERE transaction_id = 'TXN008';

-- id: trunc_string
SELECT trunc('2025-02-14', 'MM') AS m, trunc('2025-02-14', 'WEEK') AS w;

-- id: trunc_type
SELECT typeof(trunc(DATE'2025-02-14', 'MM')) AS t;

-- id: date_trunc_ts
SELECT date_trunc('HOUR', transaction_date) AS h, date_trunc('MONTH', transaction_date) AS m
FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: date_trunc_string
SELECT date_trunc('DAY', '2025-02-03 14:32:00') AS d;

-- id: date_trunc_week
SELECT date_trunc('WEEK', TIMESTAMP'2025-02-06 12:00:00') AS w, date_trunc('QUARTER', DATE'2025-02-06') AS q;

-- id: last_day_fn
SELECT last_day(posted_date) AS l FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: last_day_string
SELECT last_day('2024-02-10') AS l, typeof(last_day('2024-02-10')) AS t;

-- id: next_day_fn
SELECT next_day(DATE'2025-02-03', 'MON') AS a, next_day(DATE'2025-02-03', 'Friday') AS b, next_day('2025-02-08', 'SU') AS c;

-- id: extract_fields
SELECT extract(YEAR FROM transaction_date) AS y, extract(MONTH FROM transaction_date) AS m,
       extract(DAY FROM transaction_date) AS d, extract(HOUR FROM transaction_date) AS h
FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: extract_dayofweek
SELECT extract(DAYOFWEEK FROM DATE'2025-02-02') AS sun, extract(DAYOFWEEK FROM DATE'2025-02-08') AS sat;

-- id: extract_dow
SELECT extract(DOW FROM DATE'2025-02-02') AS sun, extract(DOW FROM DATE'2025-02-03') AS mon;

-- id: extract_dow_iso
SELECT extract(DAYOFWEEK_ISO FROM DATE'2025-02-02') AS sun, extract(DOY FROM DATE'2025-02-02') AS doy;

-- id: extract_second
SELECT extract(SECOND FROM TIMESTAMP'2025-01-01 10:11:12.5') AS s;

-- id: extract_quarter_week
SELECT extract(QUARTER FROM DATE'2025-05-02') AS q, extract(WEEK FROM DATE'2025-01-01') AS w;

-- id: date_part_fn
SELECT date_part('YEAR', posted_date) AS y, date_part('dayofweek', posted_date) AS dw
FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: dayofweek_fns
SELECT dayofweek(DATE'2025-02-02') AS a, weekday(DATE'2025-02-02') AS b, dayofmonth(DATE'2025-02-02') AS c,
       dayofyear(DATE'2025-02-02') AS d;

-- id: year_month_day_fns
SELECT year(transaction_date) AS y, month(transaction_date) AS m, day(transaction_date) AS d,
       hour(transaction_date) AS h, minute(transaction_date) AS mi, second(transaction_date) AS s
FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: quarter_weekofyear
SELECT quarter(DATE'2025-08-01') AS q, weekofyear(DATE'2025-01-01') AS w, weekofyear(DATE'2024-12-30') AS w2;

-- id: from_utc_timestamp_fn
SELECT from_utc_timestamp(TIMESTAMP'2025-01-01 12:00:00', 'America/New_York') AS ny,
       from_utc_timestamp(TIMESTAMP'2025-07-01 12:00:00', 'Asia/Tokyo') AS tk;

-- id: to_utc_timestamp_fn
SELECT to_utc_timestamp(TIMESTAMP'2025-01-01 12:00:00', 'America/New_York') AS a;

-- id: from_utc_timestamp_col
SELECT from_utc_timestamp(transaction_date, 'Europe/Paris') AS p FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: date_format_fn
SELECT date_format(transaction_date, 'yyyy-MM-dd HH:mm') AS a, date_format(posted_date, 'yyyy/MM') AS b
FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: date_format_names
SELECT date_format(DATE'2025-02-03', 'EEE MMM d') AS a, date_format(DATE'2025-02-03', 'EEEE') AS b;

-- id: to_date_fmt
SELECT to_date('03/02/2025', 'dd/MM/yyyy') AS a, to_date('2025-02-03') AS b;

-- id: to_timestamp_fmt
SELECT to_timestamp('2025-02-03 14:32', 'yyyy-MM-dd HH:mm') AS a, to_timestamp('2025-02-03T14:32:00Z') AS b;

-- id: to_date_invalid
-- expect: error
SELECT to_date('not a date') AS a;

-- id: unix_timestamp_fn
SELECT unix_timestamp(transaction_date) AS u FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: from_unixtime_fn
SELECT from_unixtime(1738593120) AS a, from_unixtime(0, 'yyyy-MM-dd') AS b;

-- id: timestamp_seconds_fn
SELECT timestamp_seconds(1738593120) AS a, unix_seconds(TIMESTAMP'2025-02-03 14:32:00') AS b;

-- id: make_date_fn
SELECT make_date(2025, 2, 28) AS a, make_timestamp(2025, 2, 28, 10, 30, 0) AS b;

-- id: make_date_invalid
-- expect: error
SELECT make_date(2025, 2, 30) AS a;

-- id: date_literal_compare
SELECT DATE'2025-02-01' < TIMESTAMP'2025-02-01 00:00:01' AS a, DATE'2025-02-01' = '2025-02-01' AS b;

-- id: ts_minus_ts
SELECT unix_timestamp(TIMESTAMP'2025-01-02 00:00:00') - unix_timestamp(TIMESTAMP'2025-01-01 12:00:00') AS s;

-- id: ts_group_by_day
SELECT CAST(transaction_date AS DATE) AS d, count(*) AS n FROM gold.recent_transactions
GROUP BY 1 ORDER BY 1 LIMIT 5;

-- id: ts_group_by_month
SELECT date_trunc('MONTH', transaction_date) AS m, sum(amount) AS total FROM gold.recent_transactions
GROUP BY 1 ORDER BY 1;

-- id: weekend_filter
SELECT transaction_id FROM gold.recent_transactions WHERE dayofweek(transaction_date) IN (1, 7) ORDER BY 1;

-- id: after_hours
SELECT transaction_id FROM gold.recent_transactions WHERE hour(transaction_date) >= 18 OR hour(transaction_date) < 8 ORDER BY 1;

-- id: current_date_type
SELECT typeof(current_date()) AS a, typeof(current_timestamp()) AS b, typeof(now()) AS c;

-- id: inner_join
SELECT t.transaction_id, c.cardholder_name FROM gold.recent_transactions t
JOIN gold.credit_cards c ON t.card_id = c.card_id WHERE t.amount > 3000 ORDER BY 1;

-- id: left_join_nulls
SELECT t.transaction_id, e.email_id FROM gold.recent_transactions t
LEFT JOIN gold.emails e ON e.transaction_id = t.transaction_id ORDER BY 1;

-- id: right_join
SELECT e.email_id, t.amount FROM gold.recent_transactions t
RIGHT JOIN gold.emails e ON e.transaction_id = t.transaction_id ORDER BY 1;

-- id: full_outer_join
SELECT c.account_id AS card_acct, a.account_id AS acct FROM gold.credit_cards c
FULL OUTER JOIN gold.bank_accounts a ON c.account_id = a.account_id ORDER BY 2, 1;

-- id: cross_join_count
SELECT count(*) AS n FROM gold.credit_cards CROSS JOIN gold.bank_accounts;

-- id: left_semi_join
SELECT card_id FROM gold.credit_cards c LEFT SEMI JOIN gold.recent_transactions t ON c.card_id = t.card_id ORDER BY 1;

-- id: left_anti_join
SELECT account_id FROM gold.bank_accounts a LEFT ANTI JOIN gold.credit_cards c ON a.account_id = c.account_id ORDER BY 1;

-- id: join_using
SELECT card_id, count(*) AS n FROM gold.recent_transactions JOIN gold.credit_cards USING (card_id)
GROUP BY card_id ORDER BY card_id;

-- id: join_over_limit
SELECT t.transaction_id, t.amount, c.approval_limit FROM gold.recent_transactions t
JOIN gold.credit_cards c ON t.card_id = c.card_id WHERE t.amount > c.approval_limit ORDER BY 1;

-- id: self_join_duplicates
SELECT a.transaction_id, b.transaction_id AS dup FROM gold.recent_transactions a
JOIN gold.recent_transactions b ON a.amount = b.amount AND a.vendor_name = b.vendor_name
 AND a.transaction_id < b.transaction_id ORDER BY 1;

-- id: join_three_tables
SELECT t.transaction_id, c.cardholder_name, a.bank_name FROM gold.recent_transactions t
JOIN gold.credit_cards c ON t.card_id = c.card_id JOIN gold.bank_accounts a ON a.account_id = t.account_id
WHERE t.amount >= 3000 ORDER BY 1;

-- id: join_null_safe_eq
SELECT count(*) AS n FROM gold.recent_transactions a JOIN gold.recent_transactions b
ON a.vendor_id <=> b.vendor_id AND a.transaction_id = b.transaction_id;

-- id: subquery_in
SELECT transaction_id FROM gold.recent_transactions
WHERE card_id IN (SELECT card_id FROM gold.credit_cards WHERE status = 'frozen') ORDER BY 1;

-- id: subquery_not_in_null
SELECT account_id FROM gold.bank_accounts WHERE account_id NOT IN (SELECT account_id FROM gold.credit_cards) ORDER BY 1;

-- id: subquery_exists
SELECT email_id FROM gold.emails e WHERE EXISTS (SELECT 1 FROM gold.recent_transactions t
  WHERE t.transaction_id = e.transaction_id AND t.amount <> e.invoice_amount) ORDER BY 1;

-- id: subquery_not_exists
SELECT transaction_id FROM gold.recent_transactions t
WHERE NOT EXISTS (SELECT 1 FROM gold.emails e WHERE e.transaction_id = t.transaction_id) AND amount > 2000 ORDER BY 1;

-- id: scalar_subquery
SELECT transaction_id, amount - (SELECT avg(amount) FROM gold.recent_transactions) AS diff
FROM gold.recent_transactions WHERE transaction_id IN ('TXN001', 'TXN002') ORDER BY 1;

-- id: correlated_scalar
SELECT c.card_id, (SELECT count(*) FROM gold.recent_transactions t WHERE t.card_id = c.card_id) AS n
FROM gold.credit_cards c ORDER BY 1;

-- id: cte_basic
WITH big AS (SELECT * FROM gold.recent_transactions WHERE amount > 1000)
SELECT department, count(*) AS n FROM big GROUP BY department ORDER BY department;

-- id: cte_two
WITH a AS (SELECT card_id, sum(amount) AS s FROM gold.recent_transactions GROUP BY card_id),
     b AS (SELECT card_id, monthly_limit FROM gold.credit_cards)
SELECT a.card_id, a.s, b.monthly_limit, a.s > b.monthly_limit AS over FROM a JOIN b USING (card_id) ORDER BY 1;

-- id: union_all
SELECT card_id AS id FROM gold.credit_cards UNION ALL SELECT account_id FROM gold.bank_accounts ORDER BY 1;

-- id: union_distinct
SELECT department FROM gold.recent_transactions UNION SELECT department FROM gold.credit_cards ORDER BY 1;

-- id: intersect_except
SELECT card_id FROM gold.credit_cards EXCEPT SELECT card_id FROM gold.recent_transactions WHERE amount > 1000 ORDER BY 1;

-- id: intersect_fn
SELECT account_id FROM gold.credit_cards INTERSECT SELECT account_id FROM gold.bank_accounts ORDER BY 1;

-- id: union_type_widening
SELECT 1 AS x UNION ALL SELECT 2.5 AS x ORDER BY 1;

-- id: window_row_number
SELECT transaction_id, row_number() OVER (PARTITION BY card_id ORDER BY transaction_date) AS rn
FROM gold.recent_transactions ORDER BY 1;

-- id: window_rank_dense
SELECT transaction_id, rank() OVER (ORDER BY amount DESC) AS r, dense_rank() OVER (ORDER BY amount DESC) AS dr
FROM gold.recent_transactions ORDER BY 1;

-- id: window_running_sum
SELECT transaction_id, sum(amount) OVER (PARTITION BY card_id ORDER BY transaction_date) AS running
FROM gold.recent_transactions ORDER BY 1;

-- id: window_rows_frame
SELECT transaction_id, avg(amount) OVER (PARTITION BY card_id ORDER BY transaction_date
  ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS moving FROM gold.recent_transactions ORDER BY 1;

-- id: window_lag_lead
SELECT transaction_id, lag(amount) OVER (PARTITION BY card_id ORDER BY transaction_date) AS prev,
       lead(transaction_id, 1, 'none') OVER (PARTITION BY card_id ORDER BY transaction_date) AS nxt
FROM gold.recent_transactions ORDER BY 1;

-- id: window_lag_gap_minutes
SELECT transaction_id, timestampdiff(MINUTE, lag(transaction_date) OVER (PARTITION BY vendor_name ORDER BY transaction_date),
  transaction_date) AS gap FROM gold.recent_transactions ORDER BY 1;

-- id: window_first_last_value
SELECT transaction_id, first_value(amount) OVER w AS f, last_value(amount) OVER w AS l
FROM gold.recent_transactions WINDOW w AS (PARTITION BY card_id ORDER BY transaction_date
  ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) ORDER BY 1;

-- id: window_ntile_percent_rank
SELECT transaction_id, ntile(4) OVER (ORDER BY amount, transaction_id) AS q,
       percent_rank() OVER (ORDER BY amount, transaction_id) AS pr, cume_dist() OVER (ORDER BY amount, transaction_id) AS cd
FROM gold.recent_transactions ORDER BY 1;

-- id: window_count_partition
SELECT transaction_id, count(*) OVER (PARTITION BY vendor_name) AS n FROM gold.recent_transactions ORDER BY 1;

-- id: window_share_of_total
SELECT transaction_id, amount / sum(amount) OVER (PARTITION BY card_id) AS share
FROM gold.recent_transactions WHERE amount > 0 ORDER BY 1;

-- id: window_range_interval
SELECT transaction_id, count(*) OVER (PARTITION BY card_id ORDER BY transaction_date
  RANGE BETWEEN INTERVAL 7 DAYS PRECEDING AND CURRENT ROW) AS n7 FROM gold.recent_transactions ORDER BY 1;

-- id: window_nth_value
SELECT transaction_id, nth_value(transaction_id, 2) OVER (PARTITION BY card_id ORDER BY transaction_date
  ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS second FROM gold.recent_transactions ORDER BY 1;

-- id: qualify_latest
SELECT card_id, transaction_id FROM gold.recent_transactions
QUALIFY row_number() OVER (PARTITION BY card_id ORDER BY transaction_date DESC) = 1 ORDER BY 1;

-- id: qualify_top_amount
SELECT department, transaction_id, amount FROM gold.recent_transactions
QUALIFY rank() OVER (PARTITION BY department ORDER BY amount DESC) <= 2 ORDER BY 1, 3 DESC, 2;

-- id: qualify_with_where
SELECT vendor_name, transaction_id FROM gold.recent_transactions WHERE vendor_id IS NOT NULL
QUALIFY count(*) OVER (PARTITION BY vendor_name) > 2 ORDER BY 1, 2;

-- id: pivot_department
SELECT * FROM (SELECT department, status, amount FROM gold.recent_transactions)
PIVOT (sum(amount) FOR status IN ('posted' AS posted, 'pending' AS pending)) ORDER BY department;

-- id: pivot_count
SELECT * FROM (SELECT card_id, source FROM gold.recent_transactions)
PIVOT (count(*) FOR source IN ('credit_card')) ORDER BY card_id;

-- id: unpivot_fn
SELECT * FROM (SELECT card_id, approval_limit, monthly_limit FROM gold.credit_cards)
UNPIVOT (limit_value FOR limit_kind IN (approval_limit, monthly_limit)) ORDER BY card_id, limit_kind;

-- id: grouping_sets
SELECT department, card_id, sum(amount) AS total FROM gold.recent_transactions
GROUP BY GROUPING SETS ((department), (card_id), ()) ORDER BY department NULLS LAST, card_id NULLS LAST;

-- id: rollup
SELECT department, status, count(*) AS n FROM gold.recent_transactions
GROUP BY ROLLUP (department, status) ORDER BY department NULLS LAST, status NULLS LAST;

-- id: cube
SELECT department, status, count(*) AS n FROM gold.recent_transactions
GROUP BY CUBE (department, status) ORDER BY department NULLS LAST, status NULLS LAST;

-- id: grouping_fn
SELECT department, grouping(department) AS g, count(*) AS n FROM gold.recent_transactions
GROUP BY ROLLUP (department) ORDER BY g, department;

-- id: grouping_id_fn
SELECT department, status, grouping_id() AS gid, count(*) AS n FROM gold.recent_transactions
GROUP BY CUBE (department, status) ORDER BY gid, department, status;

-- id: array_literal
SELECT array(1, 2, 3) AS a, array('x', NULL) AS b, array(1.5, 2) AS c;

-- id: array_index_zero_based
SELECT array(10, 20, 30)[0] AS a, array(10, 20, 30)[2] AS b;

-- id: array_index_out_of_range
-- expect: error
SELECT array(10, 20, 30)[5] AS a;

-- id: element_at_fn
SELECT element_at(array(10, 20, 30), 1) AS a, element_at(array(10, 20, 30), -1) AS b;

-- id: element_at_out_of_range
-- expect: error
SELECT element_at(array(10, 20, 30), 4) AS a;

-- id: try_element_at_fn
SELECT try_element_at(array(10, 20, 30), 4) AS a;

-- id: get_fn
SELECT get(array(10, 20, 30), 5) AS a, get(array(10, 20, 30), 0) AS b;

-- id: array_size_fns
SELECT size(array(1, 2, 3)) AS a, array_size(array(1, 2)) AS b, cardinality(array()) AS c;

-- id: size_null
SELECT size(CAST(NULL AS ARRAY<INT>)) AS a;

-- id: array_contains_fn
SELECT array_contains(array('a', 'b'), 'b') AS a, array_contains(array(1, NULL), 2) AS b;

-- id: array_position_fn
SELECT array_position(array(3, 2, 1), 1) AS a, array_position(array(3, 2, 1), 5) AS b;

-- id: array_distinct_union
SELECT array_distinct(array(1, 2, 2, 3)) AS a, array_union(array(1, 2), array(2, 3)) AS b;

-- id: array_intersect_except
SELECT array_intersect(array(1, 2, 3), array(2, 3, 4)) AS a, array_except(array(1, 2, 3), array(2)) AS b;

-- id: array_join_fn
SELECT array_join(array('a', 'b', NULL), ',') AS a, array_join(array('a', NULL), ',', '?') AS b;

-- id: array_max_min
SELECT array_max(array(1, 5, 3)) AS a, array_min(array(1, 5, 3)) AS b;

-- id: array_remove_fn
SELECT array_remove(array(1, 2, 1, 3), 1) AS a;

-- id: array_repeat_fn
SELECT array_repeat('x', 3) AS a;

-- id: slice_fn
SELECT slice(array(1, 2, 3, 4), 2, 2) AS a, slice(array(1, 2, 3, 4), -2, 2) AS b;

-- id: sequence_fn
SELECT sequence(1, 5) AS a, sequence(5, 1) AS b, sequence(1, 10, 3) AS c;

-- id: sequence_dates
SELECT sequence(DATE'2025-01-01', DATE'2025-01-03', INTERVAL 1 DAY) AS a;

-- id: flatten_fn
SELECT flatten(array(array(1, 2), array(3))) AS a;

-- id: arrays_zip_fn
SELECT arrays_zip(array(1, 2), array('a', 'b')) AS a;

-- id: sort_array_desc
SELECT sort_array(array(3, 1, 2), false) AS a, sort_array(array(3, NULL, 1)) AS b;

-- id: array_sort_nulls
SELECT array_sort(array(3, NULL, 1)) AS a;

-- id: concat_arrays
SELECT concat(array(1, 2), array(3)) AS a;

-- id: array_append_prepend
SELECT array_append(array(1, 2), 3) AS a, array_prepend(array(1, 2), 0) AS b;

-- id: array_compact_fn
SELECT array_compact(array(1, NULL, 2)) AS a;

-- id: explode_array
SELECT explode(array(1, 2, 3)) AS x ORDER BY x;

-- id: explode_lateral_view
SELECT card_id, d FROM gold.credit_cards LATERAL VIEW explode(array(department, status)) t AS d ORDER BY 1, 2;

-- id: posexplode_fn
SELECT posexplode(array('a', 'b')) AS (pos, val) ORDER BY pos;

-- id: explode_outer_empty
SELECT card_id, x FROM gold.credit_cards LATERAL VIEW OUTER explode(array()) t AS x ORDER BY 1;

-- id: explode_split
SELECT audit_run_id, part FROM workflow_state LATERAL VIEW explode(split(audit_run_id, '-')) t AS part
WHERE audit_run_id = 'audit-2025-01-15' ORDER BY part;

-- id: inline_fn
SELECT inline(array(named_struct('a', 1, 'b', 'x'), named_struct('a', 2, 'b', 'y'))) ORDER BY a;

-- id: transform_hof
SELECT transform(array(1, 2, 3), x -> x * 10) AS a, transform(array(1, 2), (x, i) -> x + i) AS b;

-- id: filter_hof
SELECT filter(array(1, 2, 3, 4), x -> x % 2 = 0) AS a;

-- id: exists_hof
SELECT exists(array(1, 2, 3), x -> x > 2) AS a, exists(array(1, 2), x -> x > 5) AS b;

-- id: exists_hof_null
SELECT exists(array(1, NULL), x -> x > 5) AS a;

-- id: forall_hof
SELECT forall(array(1, 2, 3), x -> x > 0) AS a, forall(array(1, 2), x -> x > 1) AS b;

-- id: aggregate_hof
SELECT aggregate(array(1, 2, 3), 0, (acc, x) -> acc + x) AS a;

-- id: aggregate_finish_hof
SELECT aggregate(array(1, 2, 3), 0, (acc, x) -> acc + x, acc -> acc * 10) AS a;

-- id: reduce_hof
SELECT reduce(array(1, 2, 3, 4), 1, (acc, x) -> acc * x) AS a;

-- id: zip_with_hof
SELECT zip_with(array(1, 2), array(10, 20), (a, b) -> a + b) AS a;

-- id: array_sort_lambda
SELECT array_sort(array(3, 1, 2), (l, r) -> CASE WHEN l < r THEN 1 WHEN l > r THEN -1 ELSE 0 END) AS a;

-- id: hof_over_collect
SELECT card_id, filter(collect_list(amount), a -> a > 1000) AS big FROM gold.recent_transactions
GROUP BY card_id ORDER BY card_id;

-- id: hof_transform_strings
SELECT transform(split('a,b', ','), s -> upper(s)) AS a;

-- id: map_literal
SELECT map('a', 1, 'b', 2) AS m;

-- id: map_access
SELECT map('a', 1, 'b', 2)['b'] AS a, element_at(map('a', 1), 'a') AS b;

-- id: map_missing_key
SELECT map('a', 1)['z'] AS a;

-- id: element_at_map_missing
SELECT element_at(map('a', 1), 'z') AS a;

-- id: map_keys_values
SELECT map_keys(map('a', 1, 'b', 2)) AS k, map_values(map('a', 1, 'b', 2)) AS v;

-- id: map_from_arrays_fn
SELECT map_from_arrays(array('x', 'y'), array(1, 2)) AS m;

-- id: map_contains_key_fn
SELECT map_contains_key(map('a', 1), 'a') AS a, map_contains_key(map('a', 1), 'b') AS b;

-- id: map_size
SELECT size(map('a', 1, 'b', 2)) AS n;

-- id: str_to_map_fn
SELECT str_to_map('a:1,b:2') AS m;

-- id: map_filter_hof
SELECT map_filter(map('a', 1, 'b', 5), (k, v) -> v > 2) AS m;

-- id: explode_map
SELECT explode(map('a', 1, 'b', 2)) AS (k, v) ORDER BY k;

-- id: map_agg_by_card
SELECT map_from_entries(array(struct('x', 1), struct('y', 2))) AS m;

-- id: struct_literal
SELECT named_struct('a', 1, 'b', 'x') AS s, struct(1 AS a, 'y' AS b) AS t;

-- id: struct_field_access
SELECT named_struct('a', 1, 'b', 'x').b AS b, s.a AS a FROM (SELECT named_struct('a', 7) AS s);

-- id: struct_from_columns
SELECT struct(card_id, approval_limit) AS s FROM gold.credit_cards ORDER BY card_id LIMIT 2;

-- id: struct_star
SELECT s.* FROM (SELECT named_struct('x', 1, 'y', 'z') AS s);

-- id: struct_compare
SELECT named_struct('a', 1, 'b', 2) = named_struct('a', 1, 'b', 2) AS eq;

-- id: array_of_structs
SELECT array(named_struct('k', 'a', 'v', 1), named_struct('k', 'b', 'v', 2))[1].v AS v;

-- id: json_path_flags
SELECT audit_run_id, get_json_object(intermediate_results, '$.flags') AS flags FROM workflow_state ORDER BY audit_run_id;

-- id: json_path_array_index
SELECT audit_run_id, get_json_object(intermediate_results, '$.checks_done[0]') AS first_check FROM workflow_state ORDER BY audit_run_id;

-- id: json_path_cast
SELECT audit_run_id, CAST(get_json_object(intermediate_results, '$.rows_scanned') AS INT) AS n FROM workflow_state ORDER BY audit_run_id;

-- id: json_path_wildcard
SELECT get_json_object('{"a":[{"b":1},{"b":2}]}', '$.a[*].b') AS b, get_json_object('{"a b":1}', '$[\'a b\']') AS q;

-- id: json_path_missing
SELECT get_json_object('{"a":1}', '$.z') AS z, get_json_object('not json', '$.a') AS bad;

-- id: get_json_object_fn
SELECT get_json_object(intermediate_results, '$.flags') AS f, get_json_object('{"a":{"b":[1,2]}}', '$.a.b[1]') AS b
FROM workflow_state ORDER BY audit_run_id;

-- id: get_json_object_string
SELECT get_json_object('{"a":"x y"}', '$.a') AS a, get_json_object('{"a":{"b":1}}', '$.a') AS obj;

-- id: json_tuple_fn
SELECT json_tuple('{"a":1,"b":"x"}', 'a', 'b') AS (a, b);

-- id: from_json_ddl
SELECT from_json('{"a":1,"b":"x"}', 'a INT, b STRING') AS s;

-- id: from_json_field
SELECT from_json(intermediate_results, 'flags INT, rows_scanned BIGINT').rows_scanned AS n FROM workflow_state ORDER BY audit_run_id;

-- id: from_json_array
SELECT from_json('[1,2,3]', 'ARRAY<INT>') AS a;

-- id: from_json_map
SELECT from_json('{"a":1}', 'MAP<STRING, INT>') AS m;

-- id: from_json_nested
SELECT from_json(intermediate_results, 'checks_done ARRAY<STRING>').checks_done AS c FROM workflow_state ORDER BY audit_run_id;

-- id: to_json_fn
SELECT to_json(named_struct('a', 1, 'b', 'x')) AS j, to_json(array(1, 2)) AS k;

-- id: schema_of_json_fn
SELECT schema_of_json('{"a":1,"b":"x"}') AS s;

-- id: json_array_length_fn
SELECT json_array_length('[1,2,3]') AS n, json_array_length(get_json_object(intermediate_results, '$.checks_done')) AS m
FROM workflow_state ORDER BY audit_run_id;

-- id: json_object_keys_fn
SELECT json_object_keys(intermediate_results) AS k FROM workflow_state ORDER BY audit_run_id;

-- id: null_arith
SELECT NULL + 1 AS a, 1 + CAST(NULL AS INT) AS b;

-- id: null_comparison
SELECT NULL = NULL AS a, NULL <=> NULL AS b, 1 <=> NULL AS c;

-- id: null_in_list
SELECT 1 IN (1, NULL) AS a, 2 IN (1, NULL) AS b, 2 NOT IN (1, NULL) AS c;

-- id: null_and_or
SELECT NULL AND false AS a, NULL OR true AS b, NULL AND true AS c;

-- id: coalesce_nvl
SELECT coalesce(vendor_id, 'n/a') AS a, nvl(merchant_category_code, '0000') AS b, ifnull(vendor_id, '?') AS c
FROM gold.recent_transactions ORDER BY transaction_id LIMIT 3;

-- id: nvl2_nullif
SELECT nvl2(vendor_id, 'known', 'unknown') AS a, nullif(status, 'posted') AS b
FROM gold.recent_transactions ORDER BY transaction_id LIMIT 3;

-- id: case_when
SELECT transaction_id, CASE WHEN amount >= 5000 THEN 'high' WHEN amount >= 1000 THEN 'medium' ELSE 'low' END AS tier
FROM gold.recent_transactions ORDER BY 1;

-- id: case_simple
SELECT CASE status WHEN 'posted' THEN 1 WHEN 'pending' THEN 2 END AS code, count(*) AS n
FROM gold.recent_transactions GROUP BY 1 ORDER BY 1;

-- id: if_iff
SELECT if(amount > 1000, 'big', 'small') AS a, if(amount < 0, 'refund', 'charge') AS b
FROM gold.recent_transactions WHERE transaction_id IN ('TXN001', 'TXN026') ORDER BY transaction_id;

-- id: case_type_mix
SELECT CASE WHEN true THEN 1 ELSE 2.5 END AS a;

-- id: null_sum_empty
SELECT sum(amount) AS s, avg(amount) AS a, count(*) AS n FROM gold.recent_transactions WHERE 1 = 0;

-- id: null_max_group
SELECT vendor_id, max(merchant_category_code) AS m FROM gold.recent_transactions GROUP BY vendor_id ORDER BY vendor_id NULLS FIRST;

-- id: is_distinct_from
SELECT count(*) AS n FROM gold.recent_transactions WHERE vendor_id IS DISTINCT FROM 'V-AWS';

-- id: isnull_isnotnull
SELECT isnull(vendor_id) AS a, isnotnull(vendor_id) AS b FROM gold.recent_transactions ORDER BY transaction_id LIMIT 2;

-- id: nanvl_isnan
SELECT isnan(CAST('NaN' AS DOUBLE)) AS a, nanvl(CAST('NaN' AS DOUBLE), 0D) AS b;

-- id: zeroifnull
SELECT zeroifnull(CAST(NULL AS INT)) AS a, nullifzero(0) AS b;

-- id: param_int
-- params: {"min": 1000}
SELECT transaction_id FROM gold.recent_transactions WHERE amount > :min ORDER BY 1;

-- id: param_string
-- params: {"card": "CARD-002"}
SELECT count(*) AS n FROM gold.recent_transactions WHERE card_id = :card;

-- id: param_float
-- params: {"ratio": 0.5}
SELECT card_id, monthly_limit * :ratio AS half FROM gold.credit_cards ORDER BY card_id;

-- id: param_in_select
-- params: {"tag": "audit"}
SELECT :tag AS tag, count(*) AS n FROM gold.emails;

-- id: param_date_string
-- params: {"since": "2025-02-20"}
SELECT transaction_id FROM gold.recent_transactions WHERE posted_date >= :since ORDER BY 1;

-- id: param_twice
-- params: {"v": "V-ODP"}
SELECT count(*) AS n FROM gold.recent_transactions WHERE vendor_id = :v OR vendor_name = :v;

-- id: param_bool
-- params: {"att": true}
SELECT email_id FROM gold.emails WHERE has_attachment = :att ORDER BY 1;

-- id: param_null
-- params: {"x": null}
SELECT count(*) AS n FROM gold.recent_transactions WHERE vendor_id = :x;

-- id: param_limit_arith
-- params: {"n": 3}
SELECT :n * 2 AS doubled, :n + 0.5 AS plus;

-- id: show_tables_in
SHOW TABLES IN gold;

-- id: values_inline
SELECT * FROM VALUES (1, 'a'), (2, 'b') AS t(id, name) ORDER BY id;

-- id: values_mixed_types
SELECT * FROM VALUES (1, 1.5), (2, 2) AS t(a, b) ORDER BY a;

-- id: having_alias
SELECT card_id, count(*) AS n FROM gold.recent_transactions GROUP BY card_id HAVING n > 5 ORDER BY card_id;

-- id: order_by_alias_expr
SELECT transaction_id, amount * 2 AS doubled FROM gold.recent_transactions ORDER BY doubled DESC, transaction_id LIMIT 3;

-- id: nested_subquery_from
SELECT department, max(total) AS top FROM (SELECT department, card_id, sum(amount) AS total
  FROM gold.recent_transactions GROUP BY 1, 2) GROUP BY department ORDER BY 1;

-- id: string_agg_array_join
SELECT card_id, array_join(array_sort(collect_list(vendor_id)), '|') AS vendors FROM gold.recent_transactions
GROUP BY card_id ORDER BY card_id;

-- id: listagg_fn
SELECT card_id, listagg(transaction_id, ',') WITHIN GROUP (ORDER BY transaction_id) AS ids
FROM gold.recent_transactions GROUP BY card_id ORDER BY card_id;

-- id: count_distinct_multi
SELECT count(DISTINCT card_id, vendor_id) AS n FROM gold.recent_transactions;

-- id: sum_distinct
SELECT sum(DISTINCT amount) AS s FROM gold.recent_transactions;

-- id: filter_clause_agg
SELECT count(*) FILTER (WHERE amount > 1000) AS big, sum(amount) FILTER (WHERE status = 'pending') AS pend
FROM gold.recent_transactions;

-- id: benford_first_digit
SELECT substr(CAST(abs(amount) AS STRING), 1, 1) AS digit, count(*) AS n FROM gold.recent_transactions
GROUP BY 1 ORDER BY 1;

-- id: round_number_amounts
SELECT transaction_id FROM gold.recent_transactions WHERE amount % 1000 = 0 ORDER BY 1;

-- id: split_amount_detection
SELECT vendor_name, CAST(transaction_date AS DATE) AS d, count(*) AS n, sum(amount) AS total
FROM gold.recent_transactions GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 1, 2;

-- id: email_invoice_mismatch
SELECT e.email_id, e.invoice_amount - t.amount AS diff FROM gold.emails e
JOIN gold.recent_transactions t ON e.transaction_id = t.transaction_id ORDER BY 1;

-- id: email_domain_regex
SELECT regexp_extract(from_address, '@(.+)$', 1) AS domain FROM gold.emails ORDER BY email_id;

-- id: workflow_duration
SELECT audit_run_id, unix_timestamp(updated_at) - unix_timestamp(created_at) AS secs FROM workflow_state ORDER BY audit_run_id;

-- id: workflow_last_completed
SELECT max(completed_at) AS last_completed FROM workflow_state WHERE workflow_status = 'completed';

-- id: card_utilisation
SELECT c.card_id, round(sum(t.amount) / c.monthly_limit * 100, 2) AS pct FROM gold.credit_cards c
JOIN gold.recent_transactions t ON t.card_id = c.card_id GROUP BY c.card_id, c.monthly_limit ORDER BY 1;

-- id: balance_share
SELECT account_id, current_balance / sum(current_balance) OVER () AS share FROM gold.bank_accounts ORDER BY 1;

-- id: bitwise_ops
SELECT 5 & 3 AS a, 5 | 3 AS b, 5 ^ 3 AS c, ~5 AS d, shiftleft(1, 4) AS e;

-- id: bit_count_fn
SELECT bit_count(7) AS a;

-- id: boolean_ops
SELECT true AND NOT false AS a, NOT (1 > 2) AS b;

-- id: between_symmetric_like
SELECT 5 BETWEEN 1 AND 10 AS a, 'b' BETWEEN 'a' AND 'c' AS b;

-- id: ilike_any
SELECT vendor_name FROM gold.recent_transactions WHERE vendor_name LIKE ANY ('%Uber%', '%Zoom%') ORDER BY transaction_id;

-- id: tablesample_none
SELECT count(*) AS n FROM (SELECT * FROM gold.bank_accounts LIMIT 10);

-- id: long_literal
SELECT 9223372036854775807L AS a, typeof(2147483648) AS t;

-- id: double_literal_exp
SELECT 1e3 AS a, typeof(1e3) AS t, 1.5E2D AS b;

-- id: float_arith
SELECT 0.1D + 0.2D AS a, CAST(0.1 AS FLOAT) AS b;

-- id: decimal_precision_sum
SELECT sum(CAST(0.1 AS DECIMAL(38, 10))) AS s FROM VALUES (1), (2), (3) AS t(x);

-- id: decimal_mul_precision
SELECT CAST(1.25 AS DECIMAL(10, 2)) * CAST(3.333 AS DECIMAL(10, 3)) AS p;

-- id: decimal_div_precision
SELECT CAST(10 AS DECIMAL(10, 2)) / CAST(3 AS DECIMAL(10, 2)) AS q;

-- id: avg_decimal_precision
SELECT avg(CAST(x AS DECIMAL(10, 2))) AS a FROM VALUES (1), (2), (2) AS t(x);

-- id: int_plus_decimal
SELECT 1 + 1.5 AS a, typeof(1 + 1.5) AS t;

-- id: bigint_sum_type
SELECT typeof(sum(1)) AS t, typeof(count(*)) AS c;

-- id: least_mixed
SELECT least(1, 2.5) AS a;

-- id: ceil_scale
SELECT ceil(3.14159, 2) AS a, floor(3.14159, 3) AS b;

-- id: conv_fn
SELECT conv('ff', 16, 10) AS a, conv('10', 10, 2) AS b;

-- id: uuid_len
SELECT length(uuid()) AS n;

-- id: width_bucket_fn
SELECT width_bucket(amount, 0, 10000, 10) AS b FROM gold.recent_transactions ORDER BY transaction_id LIMIT 5;

-- id: try_add_fn
SELECT try_add(2147483647, 1) AS a, try_multiply(2, 3) AS b;

-- id: try_to_number
SELECT try_cast('1.5x' AS DOUBLE) AS a, try_cast('1.5' AS DOUBLE) AS b;

-- id: cast_string_double
SELECT CAST('1.5' AS DOUBLE) AS a, CAST('1e2' AS DOUBLE) AS b;

-- id: cast_nan_string
SELECT CAST('NaN' AS DOUBLE) AS a;

-- id: assert_true_ok
SELECT assert_true(1 < 2) AS a;

-- id: raise_error_fn
-- expect: error
SELECT raise_error('custom failure') AS a;

-- id: array_index_negative
-- expect: error
SELECT array(1, 2)[-1] AS a;

-- id: struct_in_array_hof
SELECT transform(array(named_struct('a', 1), named_struct('a', 2)), s -> s.a * 2) AS a;

-- id: nested_array_type
SELECT array(array(1, 2), array(3)) AS a, array(map('a', 1)) AS b;

-- id: cast_array_string
SELECT CAST(array(1, 2) AS ARRAY<STRING>) AS a;

-- id: cast_struct_string
SELECT CAST(named_struct('a', 1, 'b', 'x') AS STRING) AS s;

-- id: cast_array_to_string
SELECT CAST(array(1, 2) AS STRING) AS s;

-- id: cast_map_to_string
SELECT CAST(map('a', 1) AS STRING) AS s;

-- id: ts_literal_tz
SELECT TIMESTAMP'2025-01-01 10:00:00+02:00' AS t;

-- id: ts_ntz_literal
SELECT TIMESTAMP_NTZ'2025-01-01 10:00:00' AS t, typeof(TIMESTAMP_NTZ'2025-01-01 10:00:00') AS k;

-- id: interval_typeof
SELECT typeof(INTERVAL 1 DAY) AS a;

-- id: date_diff_ts_days
SELECT datediff(TIMESTAMP'2025-01-02 01:00:00', TIMESTAMP'2025-01-01 23:00:00') AS d;

-- id: date_sub_ts_string
SELECT date_sub('2025-03-01', 1) AS d;

-- id: like_escape
SELECT 'a_b' LIKE 'a\\_b' AS a, 'axb' LIKE 'a\\_b' AS b;

-- id: string_compare_case
SELECT 'a' < 'B' AS a, 'abc' = 'ABC' AS b;

-- id: substr_negative_len
SELECT substr('hello', 2, -1) AS a;

-- id: sentences_fn
SELECT char(65) AS a, space(3) AS b;

-- id: position_fn
SELECT position('b' IN 'abc') AS a, position('z', 'abc') AS b;

-- id: endswith_col
SELECT count(*) AS n FROM gold.emails WHERE endswith(from_address, '.com');

-- id: in_subquery_multi_col
SELECT transaction_id FROM gold.recent_transactions WHERE (card_id, account_id) IN (SELECT card_id, account_id FROM gold.credit_cards) ORDER BY 1;

-- id: group_having_no_group
SELECT count(*) AS n FROM gold.recent_transactions HAVING count(*) > 1;

-- id: exists_scalar_true
SELECT EXISTS (SELECT 1 FROM gold.emails WHERE has_attachment) AS a;

-- id: window_sum_decimal_type
SELECT transaction_id, sum(amount) OVER () AS total FROM gold.recent_transactions ORDER BY 1 LIMIT 2;

-- id: window_avg_decimal_type
SELECT transaction_id, avg(amount) OVER (PARTITION BY card_id) AS mean FROM gold.recent_transactions ORDER BY 1 LIMIT 4;

-- id: window_lag_default
SELECT transaction_id, lag(amount, 2, 0) OVER (ORDER BY transaction_id) AS prev2 FROM gold.recent_transactions ORDER BY 1 LIMIT 4;

-- id: decimal_compare_double
SELECT count(*) AS n FROM gold.recent_transactions WHERE amount = 412.5D;

-- id: timestamp_compare_date
SELECT count(*) AS n FROM gold.recent_transactions WHERE transaction_date > DATE'2025-02-27';

-- id: timestamp_eq_string
SELECT transaction_id FROM gold.recent_transactions WHERE transaction_date = '2025-02-03 14:32:00' ORDER BY 1;

-- id: date_eq_string
SELECT transaction_id FROM gold.recent_transactions WHERE posted_date = '2025-02-04' ORDER BY 1;

-- id: string_to_number_sum
SELECT sum(CAST(merchant_category_code AS INT)) AS s FROM gold.recent_transactions;

-- id: coalesce_decimal_int
SELECT coalesce(invoice_amount, 0) AS a FROM gold.emails ORDER BY email_id;

-- id: nvl_type_widen
SELECT nvl(CAST(NULL AS INT), 2.5) AS a;

-- id: array_contains_col
SELECT count(*) AS n FROM gold.recent_transactions WHERE array_contains(array('V-AWS', 'V-GGL'), vendor_id);

-- id: string_null_concat
SELECT 'a' || NULL AS a;

-- id: cast_ts_string_fraction
SELECT CAST(TIMESTAMP'2025-01-01 10:00:00.5' AS STRING) AS s;

-- id: date_format_ts_millis
SELECT date_format(TIMESTAMP'2025-01-01 10:00:00.123', 'HH:mm:ss.SSS') AS s;

-- id: scope_subquery_cast_int_sum
SELECT sum(amount) AS s FROM (SELECT CAST(amount AS INT) AS amount FROM gold.recent_transactions);

-- id: scope_cte_shadows_column
WITH t AS (SELECT transaction_id, amount * 2 AS amount FROM gold.recent_transactions)
SELECT avg(amount) AS a FROM t;

-- id: scope_union_widens
SELECT sum(x) AS s FROM (SELECT 1 AS x UNION ALL SELECT 2.5 AS x);

-- id: scope_join_same_name
SELECT t.status, c.status AS card_status, count(*) AS n FROM gold.recent_transactions t
JOIN gold.credit_cards c USING (card_id) GROUP BY 1, 2 ORDER BY 1, 2;

-- id: scope_correlated_decimal
SELECT c.card_id, (SELECT sum(t.amount) FROM gold.recent_transactions t WHERE t.card_id = c.card_id)
  / c.monthly_limit AS share FROM gold.credit_cards c ORDER BY 1;

-- id: scope_star_subquery
SELECT avg(amount) AS a FROM (SELECT * FROM gold.recent_transactions WHERE amount > 100);

-- id: scope_alias_in_outer
SELECT card_id, total / 2 AS half FROM (SELECT card_id, sum(amount) AS total
  FROM gold.recent_transactions GROUP BY card_id) ORDER BY 1;

-- id: decimal_negative_literal
SELECT amount * -1 AS neg, amount - 0.5 AS less FROM gold.recent_transactions WHERE transaction_id = 'TXN003';

-- id: decimal_between_literals
SELECT count(*) AS n FROM gold.recent_transactions WHERE amount BETWEEN 100.5 AND 1000;

-- id: decimal_case_zero
SELECT CASE WHEN amount > 1000 THEN amount ELSE 0 END AS capped FROM gold.recent_transactions
ORDER BY transaction_id LIMIT 3;

-- id: coalesce_decimal_literal
SELECT coalesce(invoice_amount, 0.5) AS a FROM gold.emails ORDER BY email_id;

-- id: avg_of_division
SELECT avg(amount / 2) AS a FROM gold.recent_transactions;

-- id: sum_of_product
SELECT sum(amount * 1.5) AS s FROM gold.recent_transactions;

-- id: window_deviation_from_avg
SELECT transaction_id, amount - avg(amount) OVER (PARTITION BY department) AS dev
FROM gold.recent_transactions ORDER BY 1;

-- id: months_between_columns
SELECT transaction_id, months_between(transaction_date, posted_date) AS m
FROM gold.recent_transactions ORDER BY 1 LIMIT 5;

-- id: timestampdiff_month_columns
SELECT t.transaction_id, timestampdiff(MONTH, c.issued_date, t.transaction_date) AS m
FROM gold.recent_transactions t JOIN gold.credit_cards c USING (card_id) ORDER BY 1 LIMIT 5;

-- id: datediff_timestamp_columns
SELECT e.email_id, datediff(e.received_at, t.transaction_date) AS d FROM gold.emails e
JOIN gold.recent_transactions t USING (transaction_id) ORDER BY 1;

-- id: extract_from_timestamp_column
SELECT extract(DOW FROM transaction_date) AS d, extract(SECOND FROM transaction_date) AS s
FROM gold.recent_transactions ORDER BY transaction_id LIMIT 3;

-- id: cast_amount_string_roundtrip
SELECT CAST(CAST(amount AS STRING) AS DECIMAL(18, 2)) = amount AS same FROM gold.recent_transactions
ORDER BY transaction_id LIMIT 3;

-- id: param_int_times_decimal
-- params: {"k": 3}
SELECT amount * :k AS x FROM gold.recent_transactions WHERE transaction_id = 'TXN003';

-- id: param_string_code
-- params: {"code": "4816"}
SELECT count(*) AS n FROM gold.recent_transactions WHERE merchant_category_code = :code;

-- id: union_decimal_column_literal
SELECT amount AS v FROM gold.recent_transactions WHERE transaction_id = 'TXN001' UNION ALL SELECT 1.5 ORDER BY 1;

-- id: date_add_param_days
-- params: {"d": 7}
SELECT date_add(posted_date, :d) AS d FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: string_column_plus_int
SELECT merchant_category_code + 1 AS m FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: sum_of_string_column
SELECT sum(merchant_category_code) AS s FROM gold.recent_transactions;

-- id: having_on_decimal_avg
SELECT department FROM gold.recent_transactions GROUP BY department HAVING avg(amount) > 1000 ORDER BY 1;

-- id: order_by_decimal_division
SELECT transaction_id FROM gold.recent_transactions ORDER BY amount / 7 DESC, transaction_id LIMIT 3;

-- id: nested_window_over_aggregate
SELECT department, sum(amount) AS total, rank() OVER (ORDER BY sum(amount) DESC) AS r
FROM gold.recent_transactions GROUP BY department ORDER BY r;

-- id: string_column_in_numbers
SELECT transaction_id FROM gold.recent_transactions WHERE merchant_category_code IN (4816, 5734) ORDER BY 1;

-- id: string_column_between_numbers
SELECT count(*) AS n FROM gold.recent_transactions WHERE merchant_category_code BETWEEN 4000 AND 5000;

-- id: float_arithmetic
SELECT CAST(1.5 AS FLOAT) * 2 AS a, CAST(1.5 AS FLOAT) + CAST(0.25 AS FLOAT) AS b, CAST(1.5 AS FLOAT) + 1.0D AS c;

-- id: cast_to_bare_decimal
SELECT CAST(12.5 AS DECIMAL) AS a, CAST('7' AS DECIMAL) AS b;

-- id: string_in_strings
SELECT count(*) AS n FROM gold.recent_transactions WHERE merchant_category_code IN ('4816', '5734');

-- id: float_union_int
SELECT x FROM (SELECT CAST(1.5 AS FLOAT) AS x UNION ALL SELECT 2) ORDER BY x;

-- id: cast_nested_to_string
SELECT CAST(array(named_struct('k', 'a', 'v', 1), named_struct('k', 'b', 'v', CAST(NULL AS INT))) AS STRING) AS s,
       CAST(map('x', array(1, 2)) AS STRING) AS m, CAST(array('a', NULL) AS STRING) AS a;

-- id: cast_struct_of_columns_to_string
SELECT CAST(struct(card_id, approval_limit, issued_date) AS STRING) AS s FROM gold.credit_cards ORDER BY card_id;

-- id: lateral_view_outer_split
SELECT audit_run_id, part FROM workflow_state
LATERAL VIEW OUTER explode(CASE WHEN workflow_status = 'completed' THEN split(audit_run_id, '-') END) t AS part ORDER BY audit_run_id, part;

-- id: approx_percentile_fn
SELECT approx_percentile(amount, 0.5) AS p FROM gold.recent_transactions;

-- id: kurtosis_skewness
SELECT kurtosis(x) AS k, skewness(x) AS s FROM VALUES (1.0D), (2.0D), (4.0D), (10.0D) AS t(x);

-- id: corr_covar
SELECT corr(x, y) AS c, covar_pop(x, y) AS p, covar_samp(x, y) AS s
FROM VALUES (1.0D, 2.0D), (2.0D, 4.5D), (4.0D, 7.0D) AS t(x, y);

-- id: mode_fn
SELECT mode(card_id) AS m FROM gold.recent_transactions;

-- id: try_sum_avg
SELECT try_sum(amount) AS s, try_avg(amount) AS a FROM gold.recent_transactions;

-- id: regexp_replace_backreference
SELECT regexp_replace('2025-02-03', '(\\d+)-(\\d+)-(\\d+)', '$3/$2/$1') AS d;

-- id: regexp_extract_no_match
SELECT regexp_extract('abc', '(\\d+)', 1) AS a, regexp_extract('a1b22', '(\\d+)', 0) AS b;

-- id: regexp_extract_all_fn
SELECT regexp_extract_all('a1b22c333', '(\\d+)', 1) AS a;

-- id: split_with_limit
SELECT split('a,b,c,d', ',', 2) AS a, split('a,b,,', ',') AS b;

-- id: lpad_empty_pad
SELECT lpad('abc', 5, '') AS a, rpad('abc', 2, 'x') AS b, repeat('x', -1) AS c;

-- id: ltrim_two_args
SELECT ltrim('xxa', 'x') AS a, rtrim('axx', 'x') AS b, trim(LEADING 'x' FROM 'xxaxx') AS c;

-- id: concat_ws_array
SELECT concat_ws(',', array('a', 'b'), 'c') AS a;

-- id: initcap_words
SELECT initcap('hello wORLD-foo bar_baz') AS a;

-- id: round_double_halves
SELECT round(0.125D, 2) AS a, round(1.005D, 2) AS b, round(-0.5D) AS c, round(2.675D, 2) AS d;

-- id: cast_negative_half_to_int
SELECT CAST(-0.5 AS INT) AS a, CAST(0.99D AS INT) AS b, CAST(-1.99 AS BIGINT) AS c;

-- id: cast_double_to_bigint_overflow
-- expect: error
SELECT CAST(1e20 AS BIGINT) AS a;

-- id: abs_int_overflow
-- expect: error
SELECT abs(CAST(-2147483648 AS INT)) AS a;

-- id: negate_int_overflow
-- expect: error
SELECT -CAST(-2147483648 AS INT) AS a;

-- id: ln_of_zero_and_negative
SELECT ln(0) AS a, ln(-1) AS b, log10(0) AS c, sqrt(-1) AS d;

-- id: power_edge
SELECT power(0, -1) AS a, power(2, 0.5) AS b, power(-8, 1.0 / 3) AS c;

-- id: cast_padded_boolean
SELECT CAST('  true ' AS BOOLEAN) AS a, CAST('YES' AS BOOLEAN) AS b, CAST('0' AS BOOLEAN) AS c;

-- id: to_date_format_slashes
SELECT to_date('2025/02/03', 'yyyy/MM/dd') AS a, to_date('03.02.2025', 'dd.MM.yyyy') AS b;

-- id: date_format_day_names
SELECT date_format(posted_date, 'EEE, dd MMM yyyy') AS a FROM gold.recent_transactions ORDER BY transaction_id LIMIT 3;

-- id: add_months_end_of_month
SELECT add_months(DATE'2024-02-29', 12) AS a, add_months(DATE'2025-02-28', 1) AS b, add_months(DATE'2025-03-31', -1) AS c;

-- id: datediff_negative
SELECT datediff(DATE'2025-01-01', DATE'2025-03-01') AS a, date_add(DATE'2025-03-01', -30) AS b;

-- id: greatest_strings
SELECT greatest('apple', 'banana', 'cherry') AS a, least('b', NULL, 'a') AS b;

-- id: nvl_string_number
-- expect: error
SELECT nvl(vendor_id, 0) AS v FROM gold.recent_transactions ORDER BY transaction_id LIMIT 3;

-- id: case_string_number_branches
-- expect: error
SELECT CASE WHEN amount > 1000 THEN 'big' ELSE 0 END AS v FROM gold.recent_transactions ORDER BY transaction_id LIMIT 3;

-- id: string_concat_number
SELECT 'n=' || 5 AS a, concat('x', 1.5, true) AS b;

-- id: lower_unicode
SELECT lower('ÄÖÜ ß') AS a, upper('straße') AS b, length('ß') AS c;

-- id: instr_locate_edges
SELECT instr('abc', '') AS a, locate('b', 'abcb', 3) AS b, locate('z', 'abc', 0) AS c;

-- id: to_timestamp_variants
SELECT to_timestamp('2025-02-03 14:32:10.123') AS a, to_timestamp('2025-02-03') AS b, to_timestamp('03/02/2025 14:32', 'dd/MM/yyyy HH:mm') AS c;

-- id: date_from_timestamp_string
SELECT to_date('2025-02-03 14:32:00') AS a, CAST('2025-02-03T10:00:00Z' AS TIMESTAMP) AS b;

-- id: unix_timestamp_string_format
SELECT unix_timestamp('2025-02-03 14:32:00') AS a, unix_timestamp('03/02/2025', 'dd/MM/yyyy') AS b;

-- id: from_unixtime_formats
SELECT from_unixtime(1738593120, 'yyyy-MM-dd HH:mm:ss') AS a, from_unixtime(1738593120, 'MMM d, yyyy') AS b;

-- id: date_trunc_minute_second
SELECT date_trunc('MINUTE', TIMESTAMP'2025-02-03 14:32:59.9') AS a, date_trunc('SECOND', TIMESTAMP'2025-02-03 14:32:59.9') AS b;

-- id: timestamp_arith_hours
SELECT transaction_date + INTERVAL 36 HOURS AS a, transaction_date - INTERVAL '1' DAY AS b
FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: date_minus_date
SELECT DATE'2025-03-01' - DATE'2025-02-01' AS d;

-- id: timestamp_minus_timestamp
SELECT TIMESTAMP'2025-03-01 12:00:00' - TIMESTAMP'2025-02-01 00:00:00' AS d;

-- id: weekofyear_edges
SELECT weekofyear(DATE'2024-12-30') AS a, weekofyear(DATE'2021-01-03') AS b, extract(YEAROFWEEK FROM DATE'2021-01-03') AS c;

-- id: dayofweek_on_timestamp_column
SELECT transaction_id, dayofweek(transaction_date) AS d, date_format(transaction_date, 'E') AS n
FROM gold.recent_transactions ORDER BY 1 LIMIT 4;

-- id: make_interval_add
SELECT DATE'2025-01-31' + make_interval(0, 1) AS a;

-- id: get_json_object_number_formats
SELECT get_json_object('{"a": 1.50, "b": 1e3, "c": true, "d": null, "e": "x"}', '$.a') AS a,
       get_json_object('{"a": 1.50, "b": 1e3}', '$.b') AS b,
       get_json_object('{"c": true}', '$.c') AS c, get_json_object('{"d": null}', '$.d') AS d;

-- id: get_json_object_nested_text
SELECT get_json_object('{"a": {"b": [1, {"c": "x"}]}}', '$.a.b[1]') AS a, get_json_object('{"a": [1, 2]}', '$.a') AS b;

-- id: from_json_type_mismatch
SELECT from_json('{"a": "not a number"}', 'a INT') AS s, from_json('not json', 'a INT') AS t;

-- id: to_json_types
SELECT to_json(named_struct('d', DATE'2025-01-01', 'n', CAST(NULL AS INT), 'x', 1.50)) AS j;

-- id: json_array_length_invalid
SELECT json_array_length('{"a": 1}') AS a, json_array_length('not json') AS b, json_array_length('[]') AS c;

-- id: nullif_types
SELECT nullif(amount, 0) AS a, nullif('x', 'x') AS b FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: count_distinct_nulls
SELECT count(DISTINCT vendor_id) AS a, count(DISTINCT vendor_id, merchant_category_code) AS b FROM gold.recent_transactions;

-- id: group_by_expression_having
SELECT substr(transaction_id, 1, 5) AS prefix, count(*) AS n FROM gold.recent_transactions GROUP BY 1 HAVING n > 5 ORDER BY 1;

-- id: order_by_nulls_first_desc
SELECT vendor_id FROM gold.recent_transactions ORDER BY vendor_id DESC NULLS FIRST, transaction_id LIMIT 6;

-- id: sum_int_overflow
-- expect: error
SELECT sum(x) AS s FROM VALUES (9223372036854775807L), (1L) AS t(x);

-- id: avg_empty_decimal
SELECT avg(amount) AS a FROM gold.recent_transactions WHERE amount > 1000000;

-- id: window_count_distinct_like
SELECT department, count(*) OVER (PARTITION BY department) AS n, size(collect_set(vendor_name) OVER (PARTITION BY department)) AS v
FROM gold.recent_transactions ORDER BY department, n LIMIT 5;

-- id: string_to_double_cast_column
SELECT CAST(merchant_category_code AS DOUBLE) / 2 AS h FROM gold.recent_transactions WHERE transaction_id = 'TXN001';

-- id: first_value_ignore_nulls
SELECT transaction_id, first_value(vendor_id, true) OVER (ORDER BY transaction_id ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING) AS f
FROM gold.recent_transactions ORDER BY 1 LIMIT 5;

-- id: last_value_ignore_nulls_syntax
SELECT transaction_id, last_value(vendor_id) IGNORE NULLS OVER (ORDER BY transaction_id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS l
FROM gold.recent_transactions ORDER BY 1 LIMIT 5;

-- id: running_total_rows_unbounded
SELECT transaction_id, sum(amount) OVER (ORDER BY transaction_date ROWS UNBOUNDED PRECEDING) AS running
FROM gold.recent_transactions ORDER BY 1 LIMIT 5;

-- id: qualify_dense_rank_vendor
SELECT vendor_name, transaction_id, amount FROM gold.recent_transactions
QUALIFY dense_rank() OVER (PARTITION BY vendor_name ORDER BY amount DESC) = 1 ORDER BY 1, 2;

-- id: hour_of_string
SELECT hour('2025-02-03 14:32:00') AS h, minute('2025-02-03 14:32:00') AS m, day('2025-02-03') AS d;

-- id: date_add_timestamp_string
SELECT date_add('2025-02-03 14:32:00', 1) AS d;

-- id: timestamp_in_dates
SELECT count(*) AS n FROM gold.recent_transactions WHERE posted_date IN (DATE'2025-02-07', '2025-02-20');

-- id: timestamp_between_strings
SELECT count(*) AS n FROM gold.recent_transactions WHERE transaction_date BETWEEN '2025-02-10' AND '2025-02-15 23:59:59';

-- id: coalesce_timestamps
SELECT audit_run_id, coalesce(completed_at, updated_at) AS t FROM workflow_state ORDER BY audit_run_id;

-- id: greatest_timestamps
SELECT audit_run_id, greatest(created_at, updated_at) AS g FROM workflow_state ORDER BY audit_run_id;

-- id: all_subquery_not_in_spark
-- expect: error
SELECT count(*) AS n FROM gold.recent_transactions WHERE amount > ALL (SELECT approval_limit FROM gold.credit_cards);

-- id: concat_ws_nulls_numbers
SELECT concat_ws('|', transaction_id, vendor_id, CAST(amount AS STRING)) AS k FROM gold.recent_transactions ORDER BY transaction_id LIMIT 3;

-- id: lag_default_decimal_literal
SELECT transaction_id, lag(amount, 1, 0.00) OVER (ORDER BY transaction_id) AS prev FROM gold.recent_transactions ORDER BY 1 LIMIT 3;

-- id: count_window_range_rows_mixed
SELECT transaction_id, count(*) OVER (PARTITION BY vendor_name ORDER BY amount RANGE BETWEEN 100 PRECEDING AND 100 FOLLOWING) AS near
FROM gold.recent_transactions ORDER BY 1 LIMIT 6;

-- id: benford_leading_digit_int
SELECT CAST(substr(CAST(CAST(abs(amount) AS BIGINT) AS STRING), 1, 1) AS INT) AS d, count(*) AS n
FROM gold.recent_transactions WHERE abs(amount) >= 1 GROUP BY 1 ORDER BY 1;

-- id: duplicate_window_minutes
SELECT a.transaction_id, b.transaction_id AS later FROM gold.recent_transactions a JOIN gold.recent_transactions b
ON a.vendor_name = b.vendor_name AND b.transaction_date > a.transaction_date
AND b.transaction_date <= a.transaction_date + INTERVAL 30 MINUTES ORDER BY 1, 2;

-- id: split_payment_same_day
SELECT card_id, to_date(transaction_date) AS d, count(*) AS n, sum(amount) AS total
FROM gold.recent_transactions GROUP BY card_id, to_date(transaction_date)
HAVING count(*) >= 2 AND sum(amount) > 1000 ORDER BY 1, 2;
