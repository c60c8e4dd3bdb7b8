-- Real read-only queries for MySQL / MariaDB that must all pass (no false positives). Format: see
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

-- MySQL / MariaDB-specific queries.

SELECT name FROM employees WHERE salary > ALL (SELECT salary FROM employees WHERE department_id = 2)

SELECT DATE_FORMAT(order_date, '%Y-%m') AS ym, SUM(total_amount) AS revenue FROM orders GROUP BY ym ORDER BY ym

SELECT YEAR(order_date) AS y, MONTH(order_date) AS m, COUNT(*) FROM orders GROUP BY YEAR(order_date), MONTH(order_date)

SELECT id FROM orders WHERE order_date >= DATE_SUB(CURDATE(), INTERVAL 30 DAY)

SELECT id, DATEDIFF(shipped_at, order_date) AS days_to_ship FROM orders WHERE shipped_at IS NOT NULL

SELECT id, TIMESTAMPDIFF(MONTH, created_at, NOW()) AS months_as_customer FROM customers

SELECT DAYNAME(order_date) AS weekday, COUNT(*) FROM orders GROUP BY DAYNAME(order_date)

SELECT WEEK(occurred_at) AS wk, COUNT(*) FROM events GROUP BY WEEK(occurred_at)

SELECT LAST_DAY(order_date) AS month_end, SUM(total_amount) FROM orders GROUP BY LAST_DAY(order_date)

SELECT STR_TO_DATE('01/02/2024', '%d/%m/%Y') AS d

SELECT UNIX_TIMESTAMP(created_at), FROM_UNIXTIME(1700000000) FROM customers LIMIT 3

SELECT DATE_ADD(order_date, INTERVAL 7 DAY) AS due FROM orders

SELECT QUARTER(order_date) AS q, COUNT(*) FROM orders GROUP BY QUARTER(order_date)

SELECT id, IFNULL(city, 'n/a'), IF(stock > 0, 'in stock', 'sold out') FROM products

SELECT name, IF(segment = 'enterprise', 1, 0) AS is_enterprise FROM customers

SELECT customer_id, GROUP_CONCAT(status ORDER BY order_date SEPARATOR ', ') AS statuses FROM orders GROUP BY customer_id

SELECT CONCAT(name, ' <', email, '>') FROM customers

SELECT CONCAT_WS(', ', city, country) FROM customers

SELECT LEFT(name, 1), RIGHT(email, 4), LPAD(id, 6, '0'), UCASE(country) FROM customers

SELECT SUBSTRING_INDEX(email, '@', -1) AS domain, COUNT(*) FROM customers GROUP BY domain ORDER BY COUNT(*) DESC

SELECT LOCATE('@', email), INSTR(email, '.'), CHAR_LENGTH(name) FROM customers

SELECT FORMAT(total_amount, 2) FROM orders

SELECT * FROM orders ORDER BY id LIMIT 10, 20

SELECT JSON_EXTRACT(payload, '$.source') AS source, COUNT(*) FROM events GROUP BY source

SELECT JSON_UNQUOTE(JSON_EXTRACT(payload, '$.campaign')) FROM events

SELECT id FROM events WHERE JSON_CONTAINS(payload, '"spring"', '$.campaign')

SELECT JSON_OBJECT('id', id, 'name', name) FROM customers LIMIT 5

SELECT country, city, COUNT(*) FROM customers GROUP BY country, city WITH ROLLUP

SELECT CAST(total_amount AS CHAR) AS s, CAST(price AS DECIMAL(10, 2)) FROM orders, products LIMIT 5

SELECT CONVERT(name USING utf8mb4) FROM customers

SELECT `name`, `email` FROM `customers` WHERE `country` = 'FR'

SELECT name FROM customers WHERE name REGEXP '^A'

SELECT id FROM customers WHERE city <=> NULL

SELECT TRUNCATE(price, 1), MOD(stock, 7), GREATEST(price, 10), LEAST(stock, 100) FROM products

SELECT name FROM products ORDER BY FIELD(category, 'books', 'music', 'games'), name

SELECT name FROM customers WHERE FIND_IN_SET(segment, 'smb,enterprise') > 0

SELECT table_name FROM information_schema.tables WHERE table_schema = 'test'

SELECT SQL_NO_CACHE id FROM orders LIMIT 1

SELECT c.name, o.id FROM customers c STRAIGHT_JOIN orders o ON o.customer_id = c.id LIMIT 10

SELECT id FROM orders USE INDEX (PRIMARY) WHERE id > 100

SELECT id, total_amount, SUM(total_amount) OVER w AS running FROM orders WINDOW w AS (PARTITION BY customer_id ORDER BY order_date)

SELECT 'it\'s', "double quoted", 'back\\slash' FROM customers LIMIT 1

SELECT id, name FROM customers WHERE created_at > NOW() - INTERVAL 1 YEAR

SELECT CURDATE(), CURTIME(), UTC_TIMESTAMP()

SELECT MAKEDATE(2024, 32), SEC_TO_TIME(3600), TIME_TO_SEC('01:00:00')

SELECT id, CASE WHEN total_amount > 100 THEN 'big' ELSE 'small' END AS size FROM orders

SELECT name FROM products WHERE name LIKE CONCAT('%', 'widget', '%')

SELECT MD5(email), SHA2(email, 256) FROM customers LIMIT 1

SELECT id, TRIM(BOTH ' ' FROM name), POSITION('@' IN email), SUBSTRING(email, 1, 5) FROM customers

SELECT TIMESTAMPADD(DAY, 3, order_date), PERIOD_DIFF(202403, 202401) FROM orders LIMIT 1

SELECT CONCAT(YEAR(order_date), '-Q', QUARTER(order_date)) AS yq, SUM(total_amount) FROM orders GROUP BY yq ORDER BY yq
