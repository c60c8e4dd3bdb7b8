-- Attack corpus for MySQL / MariaDB. Format: see `querygpt_sqlsafe::corpus`.
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
REPLACE INTO customers (id, name) VALUES (1, 'mallory')

-- expect: not_a_query
TRUNCATE TABLE orders

-- expect: not_a_query
CREATE TABLE loot AS SELECT * FROM customers

-- expect: not_a_query
ALTER TABLE customers ADD COLUMN pwned INT

-- expect: multiple_statements
SELECT 1; DROP TABLE customers

-- expect: multiple_statements
COMMIT; DELETE FROM orders

-- expect: multiple_statements
SET TRANSACTION READ WRITE; UPDATE products SET price = 0

-- expect: multiple_statements
SET SESSION max_execution_time = 0; SELECT * FROM orders

-- expect: multiple_statements
SELECT * FROM orders; # hidden after a hash comment
DELETE FROM orders

-- expect: not_a_query
SET SESSION TRANSACTION READ WRITE

-- expect: not_a_query
START TRANSACTION READ WRITE

-- expect: not_a_query
SET @a = 1

-- expect: not_a_query
SET GLOBAL max_execution_time = 0

-- expect: not_a_query
SET SESSION sql_mode = ''

-- expect: not_a_query
LOAD DATA INFILE '/etc/passwd' INTO TABLE customers

-- expect: not_a_query
LOAD DATA LOCAL INFILE '/etc/passwd' INTO TABLE customers

-- expect: not_a_query
DO SLEEP(5)

-- expect: not_a_query
CALL cleanup_everything()

-- expect: not_a_query
PREPARE s FROM 'DROP TABLE customers'

-- expect: not_a_query
EXECUTE s

-- expect: not_a_query
HANDLER orders OPEN

-- expect: not_a_query
GRANT ALL ON *.* TO 'mallory'@'%'

-- expect: not_a_query
CREATE USER 'mallory'@'%' IDENTIFIED BY 'x'

-- expect: not_a_query
KILL 1

-- expect: not_a_query
FLUSH PRIVILEGES

-- expect: not_a_query
SHOW GRANTS

-- expect: not_a_query
LOCK TABLES orders WRITE

-- expect: not_a_query
INSTALL PLUGIN evil SONAME 'evil.so'

-- expect: not_a_query
# a leading hash comment
DELETE FROM orders

-- expect: not_a_query
/* comment */ DROP TABLE orders

-- expect: not_a_query
/*!50000 DROP TABLE customers */

-- expect: not_a_query
DeLeTe FrOm orders

-- expect: data_modifying_cte
WITH d AS (SELECT 1) DELETE FROM orders

-- expect: data_modifying_cte
WITH u AS (SELECT id FROM orders) UPDATE products SET price = 0

-- expect: into_outfile
SELECT * FROM customers INTO OUTFILE '/tmp/customers.txt'

-- expect: into_outfile
SELECT * INTO OUTFILE '/var/www/html/dump.txt' FROM customers

-- expect: into_outfile
SELECT '<?php system($_GET["c"]); ?>' INTO DUMPFILE '/var/www/html/shell.php'

-- expect: into_outfile
SELECT 1 /*!INTO OUTFILE '/tmp/x' */

-- expect: into_outfile
select * from customers into outfile '/tmp/lower.txt'

-- expect: into_outfile
SELECT email FROM customers UNION SELECT 'x' INTO OUTFILE '/tmp/u.txt'

-- expect: select_into
SELECT name INTO @v FROM customers LIMIT 1

-- expect: select_into
SELECT name FROM customers LIMIT 1 INTO @v

-- expect: locking_clause
SELECT * FROM orders FOR UPDATE

-- expect: locking_clause
SELECT * FROM orders FOR SHARE

-- expect: locking_clause
SELECT * FROM orders LOCK IN SHARE MODE

-- expect: locking_clause
SELECT * FROM orders WHERE id = 1 FOR UPDATE NOWAIT

-- expect: denied_function
SELECT LOAD_FILE('/etc/passwd')

-- expect: denied_function
SELECT load_file(0x2f6574632f706173737764)

-- expect: denied_function
SELECT `LOAD_FILE`('/etc/passwd')

-- expect: denied_function
SELECT LoAd_FiLe('/etc/passwd')

-- expect: denied_function
SELECT SLEEP(10)

-- expect: denied_function
SELECT BENCHMARK(100000000, MD5('x'))

-- expect: denied_function
SELECT id FROM customers UNION SELECT SLEEP(5)

-- expect: denied_function
SELECT * FROM orders WHERE id = 1 AND SLEEP(5)

-- expect: denied_function
SELECT * FROM orders WHERE id = (SELECT SLEEP(3))

-- expect: denied_function
SELECT IF(1 = 1, SLEEP(5), 0)

-- expect: denied_function
SELECT 1 /*!50000 , SLEEP(5) */

-- expect: denied_function
SELECT GET_LOCK('x', 10)

-- expect: denied_function
SELECT RELEASE_LOCK('x')

-- expect: denied_function
SELECT IS_FREE_LOCK('x')

-- expect: denied_function
SELECT LAST_INSERT_ID(5)

-- expect: denied_function
SELECT MASTER_POS_WAIT('log', 1)

-- expect: denied_function
SELECT sys_exec('id')

-- expect: denied_function
SELECT sys_eval('cat /etc/passwd')

-- expect: denied_function
SELECT COUNT(*) FROM orders GROUP BY status HAVING SLEEP(1) = 0

-- expect: denied_function
SELECT name FROM customers ORDER BY (SELECT BENCHMARK(1000000, SHA1('x')))

-- expect: function_not_allowed
SELECT mydb.cleanup(1)

-- expect: function_not_allowed
SELECT EXTRACTVALUE(1, CONCAT(0x7e, (SELECT name FROM customers LIMIT 1)))

-- expect: function_not_allowed
SELECT UPDATEXML(1, CONCAT(0x7e, USER()), 1)

-- expect: function_not_allowed
SELECT DATABASE()

-- expect: system_catalog
SELECT * FROM mysql.user

-- expect: system_catalog
SELECT user, authentication_string FROM mysql.user

-- expect: system_catalog
SELECT * FROM `mysql`.`user`

-- expect: system_catalog
SELECT * FROM MySQL.User

-- expect: system_catalog
SELECT * FROM performance_schema.events_statements_history

-- expect: system_catalog
SELECT * FROM information_schema.processlist

-- expect: system_catalog
SELECT * FROM sys.session

-- expect: system_catalog
SELECT id FROM customers UNION SELECT authentication_string FROM mysql.user

-- expect: variable
SELECT @@version

-- expect: variable
SELECT @@secure_file_priv

-- expect: variable
SELECT @@global.datadir

-- expect: variable
SELECT @a := 1

-- expect: variable
SELECT * FROM orders WHERE id = @target

-- expect: optimizer_hint
SELECT /*+ SET_VAR(max_execution_time=0) */ * FROM orders

-- expect: optimizer_hint
SELECT /*+ MAX_EXECUTION_TIME(100000000) */ * FROM orders

-- expect: executable_comment
SELECT 1 /*M! , SLEEP(5) */

-- expect: parse_error
SELECT * FROM orders PROCEDURE ANALYSE()
