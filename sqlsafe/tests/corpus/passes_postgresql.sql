-- Real read-only queries for PostgreSQL that must all pass (no false positives). Format: see
-- `querygpt_sqlsafe::corpus`. Schema: customers(id, name, email, country, city, segment, created_at),
-- products(id, name, category, price, stock, active), orders(id, customer_id, order_date, status, total_amount,
-- shipped_at), order_items(id, order_id, product_id, quantity, unit_price), employees(id, name, manager_id,
-- department_id, salary, hire_date, title), departments(id, name, budget), payments(id, order_id, amount, method,
-- paid_at), events(id, customer_id, event_type, occurred_at, payload).

-- Portable queries (the same text in every dialect's corpus).

SELECT id, name, email FROM customers

SELECT * FROM products WHERE price > 100 ORDER BY price DESC

SELECT name, price FROM products WHERE category = 'books' AND stock > 0 ORDER BY name

SELECT COUNT(*) FROM orders

SELECT COUNT(*) AS order_count FROM orders WHERE status = 'shipped'

SELECT status, COUNT(*) AS n FROM orders GROUP BY status ORDER BY n DESC

SELECT customer_id, SUM(total_amount) AS revenue FROM orders GROUP BY customer_id ORDER BY revenue DESC LIMIT 10

SELECT category, AVG(price) AS avg_price, MIN(price) AS min_price, MAX(price) AS max_price FROM products GROUP BY category

SELECT category, COUNT(*) FROM products GROUP BY category HAVING COUNT(*) > 5

SELECT customer_id, COUNT(*) AS orders FROM orders GROUP BY customer_id HAVING SUM(total_amount) > 1000 ORDER BY orders DESC

SELECT DISTINCT country FROM customers ORDER BY country

SELECT COUNT(DISTINCT customer_id) AS buyers FROM orders WHERE order_date >= '2024-01-01'

SELECT c.name, o.id, o.total_amount FROM customers c JOIN orders o ON o.customer_id = c.id WHERE o.total_amount > 500

SELECT c.name, COUNT(o.id) AS order_count FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.name ORDER BY order_count DESC

SELECT o.id, p.name, oi.quantity, oi.unit_price FROM orders o INNER JOIN order_items oi ON oi.order_id = o.id INNER JOIN products p ON p.id = oi.product_id WHERE o.id = 42

SELECT p.category, SUM(oi.quantity * oi.unit_price) AS sales FROM order_items oi JOIN products p ON p.id = oi.product_id GROUP BY p.category ORDER BY sales DESC

SELECT c.country, COUNT(DISTINCT o.customer_id) AS customers, SUM(o.total_amount) AS revenue FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.country

SELECT e.name AS employee, m.name AS manager FROM employees e LEFT JOIN employees m ON m.id = e.manager_id

SELECT d.name, COUNT(e.id) AS headcount, AVG(e.salary) AS avg_salary FROM departments d LEFT JOIN employees e ON e.department_id = d.id GROUP BY d.id, d.name

SELECT c.name FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)

SELECT c.name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.status = 'cancelled')

SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders WHERE total_amount > 1000)

SELECT name FROM products WHERE id NOT IN (SELECT product_id FROM order_items)

SELECT name, price FROM products WHERE price > (SELECT AVG(price) FROM products)

SELECT name, (SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id) AS order_count FROM customers c

SELECT t.customer_id, t.revenue FROM (SELECT customer_id, SUM(total_amount) AS revenue FROM orders GROUP BY customer_id) t WHERE t.revenue > 5000

SELECT AVG(order_total) FROM (SELECT order_id, SUM(quantity * unit_price) AS order_total FROM order_items GROUP BY order_id) AS totals

SELECT name, salary, CASE WHEN salary >= 100000 THEN 'high' WHEN salary >= 50000 THEN 'medium' ELSE 'low' END AS band FROM employees

SELECT SUM(CASE WHEN status = 'paid' THEN total_amount ELSE 0 END) AS paid, SUM(CASE WHEN status = 'refunded' THEN total_amount ELSE 0 END) AS refunded FROM orders

SELECT CASE status WHEN 'new' THEN 1 WHEN 'paid' THEN 2 ELSE 3 END AS stage, COUNT(*) FROM orders GROUP BY 1

SELECT id, COALESCE(city, country, 'unknown') AS place FROM customers

SELECT id, NULLIF(stock, 0) AS stock FROM products

SELECT name FROM customers WHERE email IS NULL OR city IS NULL

SELECT id FROM orders WHERE shipped_at IS NOT NULL AND status <> 'delivered'

SELECT name FROM products WHERE name LIKE 'Pro%' OR name LIKE '%Max'

SELECT name FROM products WHERE price BETWEEN 10 AND 20

SELECT id, total_amount FROM orders WHERE order_date BETWEEN '2024-01-01' AND '2024-03-31' ORDER BY order_date

SELECT id FROM orders WHERE status IN ('paid', 'shipped', 'delivered')

SELECT UPPER(name), LOWER(email), LENGTH(name) FROM customers

SELECT TRIM(name), REPLACE(email, '@', ' at '), SUBSTR(name, 1, 3) FROM customers

SELECT id, ABS(amount), ROUND(amount, 1) FROM payments

SELECT ROUND(AVG(total_amount), 2) AS avg_order FROM orders

SELECT id, name, salary, RANK() OVER (ORDER BY salary DESC) AS salary_rank FROM employees

SELECT id, department_id, salary, DENSE_RANK() OVER (PARTITION BY department_id ORDER BY salary DESC) AS r FROM employees

SELECT id, customer_id, order_date, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY order_date) AS nth_order FROM orders

SELECT order_date, total_amount, SUM(total_amount) OVER (ORDER BY order_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running_total FROM orders

SELECT order_date, total_amount, AVG(total_amount) OVER (ORDER BY order_date ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS moving_avg FROM orders

SELECT id, total_amount, LAG(total_amount, 1) OVER (ORDER BY order_date) AS previous, LEAD(total_amount) OVER (ORDER BY order_date) AS next_amount FROM orders

SELECT id, salary, NTILE(4) OVER (ORDER BY salary) AS quartile FROM employees

SELECT id, salary, PERCENT_RANK() OVER (ORDER BY salary) AS pr, CUME_DIST() OVER (ORDER BY salary) AS cd FROM employees

SELECT DISTINCT department_id, FIRST_VALUE(name) OVER (PARTITION BY department_id ORDER BY salary DESC) AS top_earner FROM employees

SELECT customer_id, total_amount, total_amount * 100 / SUM(total_amount) OVER (PARTITION BY customer_id) AS pct FROM orders

SELECT * FROM (SELECT id, customer_id, total_amount, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY total_amount DESC) AS rn FROM orders) ranked WHERE rn <= 3

WITH revenue AS (SELECT customer_id, SUM(total_amount) AS total FROM orders GROUP BY customer_id) SELECT c.name, r.total FROM revenue r JOIN customers c ON c.id = r.customer_id ORDER BY r.total DESC LIMIT 5

WITH big AS (SELECT * FROM orders WHERE total_amount > 1000), counts AS (SELECT customer_id, COUNT(*) AS n FROM big GROUP BY customer_id) SELECT customer_id, n FROM counts WHERE n > 1

WITH monthly AS (SELECT customer_id, COUNT(*) AS n FROM orders GROUP BY customer_id) SELECT AVG(n) FROM monthly

WITH RECURSIVE chain (id, name, manager_id, depth) AS (SELECT id, name, manager_id, 0 FROM employees WHERE manager_id IS NULL UNION ALL SELECT e.id, e.name, e.manager_id, chain.depth + 1 FROM employees e JOIN chain ON e.manager_id = chain.id) SELECT * FROM chain ORDER BY depth

WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) SELECT i FROM n

SELECT city FROM customers UNION SELECT 'Headquarters'

SELECT email FROM customers WHERE country = 'FR' UNION ALL SELECT email FROM customers WHERE country = 'DE'

SELECT customer_id FROM orders WHERE status = 'paid' INTERSECT SELECT customer_id FROM orders WHERE status = 'refunded'

SELECT id FROM customers EXCEPT SELECT customer_id FROM orders

SELECT c.name, p.method, SUM(p.amount) AS paid FROM payments p JOIN orders o ON o.id = p.order_id JOIN customers c ON c.id = o.customer_id GROUP BY c.name, p.method ORDER BY paid DESC

SELECT o.id FROM orders o LEFT JOIN payments p ON p.order_id = o.id WHERE p.id IS NULL

SELECT event_type, COUNT(*) FROM events GROUP BY event_type ORDER BY 2 DESC LIMIT 5

SELECT customer_id, MIN(occurred_at) AS first_seen, MAX(occurred_at) AS last_seen FROM events GROUP BY customer_id

SELECT * FROM orders ORDER BY order_date DESC, id DESC LIMIT 20 OFFSET 40

SELECT c.id, c.name FROM customers AS c CROSS JOIN departments AS d WHERE d.id = 1

SELECT o.id, c.name FROM orders o, customers c WHERE o.customer_id = c.id AND c.segment = 'enterprise'

SELECT name FROM employees WHERE salary > (SELECT MAX(salary) FROM employees WHERE department_id = 3) AND hire_date < '2020-01-01'

SELECT e.department_id, e.name, e.salary FROM employees e WHERE e.salary = (SELECT MAX(salary) FROM employees x WHERE x.department_id = e.department_id)

-- PostgreSQL-specific queries.

WITH orders AS (SELECT * FROM orders WHERE status = 'paid') SELECT COUNT(*) FROM orders

SELECT name FROM employees WHERE salary > ALL (SELECT salary FROM employees WHERE department_id = 2)

SELECT date_trunc('month', order_date) AS month, SUM(total_amount) AS revenue FROM orders GROUP BY 1 ORDER BY 1

SELECT EXTRACT(YEAR FROM order_date) AS y, EXTRACT(QUARTER FROM order_date) AS q, COUNT(*) FROM orders GROUP BY 1, 2 ORDER BY 1, 2

SELECT id FROM orders WHERE order_date >= CURRENT_DATE - INTERVAL '30 days'

SELECT id, age(now(), created_at) AS customer_age FROM customers

SELECT to_char(order_date, 'YYYY-MM') AS ym, COUNT(*) FROM orders GROUP BY ym ORDER BY ym

SELECT date_part('dow', occurred_at) AS weekday, COUNT(*) FROM events GROUP BY 1

SELECT id, EXTRACT(EPOCH FROM (shipped_at - order_date::timestamp)) / 3600 AS hours_to_ship FROM orders WHERE shipped_at IS NOT NULL

SELECT make_date(2024, 1, 1) AS start_of_year, now()::date AS today

SELECT name FROM customers WHERE email ILIKE '%@example.com'

SELECT name FROM customers WHERE name ~* '^a.*n$'

SELECT customer_id, string_agg(status, ', ' ORDER BY order_date) AS statuses FROM orders GROUP BY customer_id

SELECT customer_id, array_agg(id ORDER BY id) AS order_ids FROM orders GROUP BY customer_id

SELECT status, COUNT(*) FILTER (WHERE total_amount > 100) AS big, COUNT(*) AS all_orders FROM orders GROUP BY status

SELECT DISTINCT ON (customer_id) customer_id, id, order_date FROM orders ORDER BY customer_id, order_date DESC

SELECT d::date AS day, COUNT(o.id) FROM generate_series('2024-01-01'::date, '2024-01-31'::date, interval '1 day') AS d LEFT JOIN orders o ON o.order_date = d::date GROUP BY 1 ORDER BY 1

SELECT payload ->> 'source' AS source, COUNT(*) FROM events GROUP BY 1

SELECT id FROM events WHERE payload @> '{"campaign": "spring"}'::jsonb

SELECT id, payload -> 'items' -> 0 ->> 'sku' AS first_sku FROM events

SELECT id, jsonb_array_length(payload -> 'items') AS n_items FROM events WHERE payload ? 'items'

SELECT GREATEST(price, 10), LEAST(stock, 100) FROM products

SELECT name, price::numeric(10, 2), stock::text FROM products

SELECT CAST(total_amount AS integer) AS whole, CAST(id AS text) FROM orders

SELECT name FROM products ORDER BY price DESC NULLS LAST LIMIT 10

SELECT c.name, o.id FROM customers c FULL OUTER JOIN orders o ON o.customer_id = c.id

SELECT c.name, last_order.order_date FROM customers c CROSS JOIN LATERAL (SELECT order_date FROM orders o WHERE o.customer_id = c.id ORDER BY order_date DESC LIMIT 1) AS last_order

SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total_amount) AS median_order FROM orders

SELECT department_id, percentile_disc(0.9) WITHIN GROUP (ORDER BY salary) FROM employees GROUP BY department_id

SELECT split_part(email, '@', 2) AS domain, COUNT(*) FROM customers GROUP BY 1 ORDER BY 2 DESC

SELECT initcap(name), left(name, 1), right(email, 4), lpad(id::text, 6, '0') FROM customers

SELECT regexp_replace(email, '@.*$', '') AS local_part FROM customers

SELECT format('%s <%s>', name, email) FROM customers

SELECT country, city, COUNT(*) FROM customers GROUP BY ROLLUP (country, city)

SELECT country, segment, COUNT(*) FROM customers GROUP BY GROUPING SETS ((country), (segment), ())

SELECT category, active, COUNT(*) FROM products GROUP BY CUBE (category, active)

SELECT id FROM customers WHERE city IS DISTINCT FROM 'Paris'

SELECT id FROM orders WHERE status = ANY (ARRAY['paid', 'shipped'])

SELECT json_build_object('id', id, 'name', name) FROM customers LIMIT 5

SELECT json_agg(json_build_object('id', id, 'total', total_amount)) FROM orders WHERE customer_id = 7

SELECT unnest(ARRAY[1, 2, 3]) AS n

SELECT bool_and(active), bool_or(active) FROM products

SELECT * FROM orders ORDER BY id FETCH FIRST 10 ROWS ONLY

SELECT * FROM (VALUES (1, 'one'), (2, 'two')) AS v (n, label)

SELECT width_bucket(price, 0, 1000, 10) AS bucket, COUNT(*) FROM products GROUP BY 1 ORDER BY 1

SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position

SELECT schemaname, tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public'

SELECT pg_catalog.lower(name) FROM customers

SELECT "name", "email" FROM "customers" WHERE "country" = 'FR'

SELECT id, E'line\nbreak' AS s, $$dollar 'quoted'$$ AS d FROM customers LIMIT 1

SELECT date_trunc('week', occurred_at) AS week, event_type, COUNT(*) FROM events WHERE occurred_at > now() - interval '90 days' GROUP BY 1, 2

SELECT id, total_amount, SUM(total_amount) OVER w AS running FROM orders WINDOW w AS (PARTITION BY customer_id ORDER BY order_date)

SELECT o.id, COALESCE(SUM(p.amount), 0) AS paid FROM orders o LEFT JOIN payments p ON p.order_id = o.id GROUP BY o.id HAVING COALESCE(SUM(p.amount), 0) < MAX(o.total_amount)

SELECT TRIM(BOTH ' ' FROM name), POSITION('@' IN email), SUBSTRING(email FROM 1 FOR 5) FROM customers

SELECT id, shipped_at AT TIME ZONE 'UTC' FROM orders LIMIT 5
