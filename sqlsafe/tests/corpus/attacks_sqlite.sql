-- Attack corpus for SQLite. Format: see `querygpt_sqlsafe::corpus`.
-- Tables referenced: customers, orders, order_items, products, employees, payments, events.

-- expect: not_a_query
DROP TABLE customers

-- expect: not_a_query
DELETE FROM orders

-- expect: not_a_query
UPDATE products SET price = 0

-- expect: not_a_query
INSERT INTO customers (name, email) VALUES ('mallory', 'm@evil.test')

-- expect: not_a_query
INSERT OR REPLACE INTO customers (id, name) VALUES (1, 'mallory')

-- expect: not_a_query
REPLACE INTO customers (id, name) VALUES (1, 'mallory')

-- expect: not_a_query
CREATE TABLE loot AS SELECT * FROM customers

-- A trigger body is a list of `;`-terminated statements, so the token scan sees text after a `;` and
-- rejects the trigger as stacked statements before the parser runs.

-- expect: multiple_statements
CREATE TRIGGER t AFTER INSERT ON orders BEGIN DELETE FROM customers; END

-- expect: not_a_query
CREATE VIEW v AS SELECT * FROM customers

-- expect: not_a_query
ALTER TABLE customers RENAME TO gone

-- expect: not_a_query
ATTACH DATABASE '/tmp/evil.db' AS evil

-- expect: not_a_query
ATTACH '/etc/passwd' AS p

-- expect: not_a_query
attach database 'file:/tmp/x.db?mode=rwc' as x

-- expect: not_a_query
DETACH DATABASE main

-- expect: not_a_query
PRAGMA writable_schema = ON

-- expect: not_a_query
PRAGMA query_only = 0

-- expect: not_a_query
PRAGMA journal_mode = DELETE

-- expect: not_a_query
PRAGMA table_info(customers)

-- expect: not_a_query
VACUUM INTO '/tmp/copy.db'

-- expect: not_a_query
VACUUM

-- expect: not_a_query
REINDEX

-- expect: not_a_query
ANALYZE

-- expect: not_a_query
BEGIN IMMEDIATE

-- expect: not_a_query
COMMIT

-- expect: not_a_query
SAVEPOINT s1

-- expect: not_a_query
-- a leading comment
DELETE FROM orders

-- expect: not_a_query
/* block comment */ DROP TABLE orders

-- expect: not_a_query
DeLeTe FrOm orders

-- expect: multiple_statements
SELECT 1; DROP TABLE customers

-- expect: multiple_statements
COMMIT; DELETE FROM orders

-- expect: multiple_statements
BEGIN; DELETE FROM orders; COMMIT

-- expect: multiple_statements
SELECT 1; ATTACH DATABASE '/tmp/evil.db' AS evil

-- expect: multiple_statements
SELECT 1; PRAGMA query_only = 0

-- expect: data_modifying_cte
WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d

-- expect: data_modifying_cte
WITH x AS (SELECT 1) DELETE FROM orders

-- expect: data_modifying_cte
WITH x AS (SELECT 1) INSERT INTO customers (name) SELECT 'x' FROM x

-- expect: select_into
SELECT * INTO backup FROM orders

-- expect: locking_clause
SELECT * FROM orders FOR UPDATE

-- expect: denied_function
SELECT load_extension('/tmp/evil.so')

-- expect: denied_function
SELECT load_extension('/tmp/evil.so', 'sqlite3_evil_init')

-- expect: denied_function
SELECT LOAD_EXTENSION('x')

-- expect: denied_function
SELECT "load_extension"('x')

-- expect: denied_function
SELECT readfile('/etc/passwd')

-- expect: denied_function
SELECT writefile('/tmp/x', 'data')

-- expect: denied_function
SELECT edit('text', 'vi')

-- expect: denied_function
SELECT * FROM fsdir('/')

-- expect: denied_function
SELECT * FROM zipfile('/tmp/a.zip')

-- expect: denied_function
SELECT fts3_tokenizer('simple')

-- expect: denied_function
SELECT * FROM pragma_table_info('customers')

-- expect: system_catalog
SELECT name FROM pragma_database_list

-- expect: denied_function
SELECT sqlite_compileoption_get(0)

-- expect: denied_function
SELECT * FROM orders WHERE id IN (SELECT load_extension('x'))

-- expect: denied_function
SELECT id FROM customers UNION SELECT writefile('/tmp/a', 'b')

-- expect: denied_function
SELECT char(65) || readfile('/etc/hosts')

-- expect: denied_function
SELECT CASE WHEN 1 THEN load_extension('x') END

-- expect: denied_function
WITH x AS (SELECT readfile('/etc/passwd') AS f) SELECT f FROM x

-- expect: function_not_allowed
SELECT randomblob(1000000000)

-- expect: function_not_allowed
SELECT zeroblob(1000000000)

-- expect: function_not_allowed
SELECT main.evil(1)

-- expect: function_not_allowed
SELECT my_udf(id) FROM orders

-- expect: system_catalog
SELECT * FROM sqlite_dbpage

-- expect: system_catalog
SELECT data FROM sqlite_dbpage WHERE pgno = 1
