//! Function-style casts and conversions pass in the dialect that has them; look-alikes that are not casts, casts
//! of dangerous calls, and other dialects' casts stay refused.

use querygpt_sqlsafe::{Dialect, Policy, Rule, validate};

fn assert_pass(dialect: Dialect, statements: &[&str]) {
    for sql in statements {
        if let Err(rejection) = validate(sql, dialect, &Policy::default()) {
            panic!("{dialect}: {sql}: {rejection}");
        }
    }
}

fn assert_refused(dialect: Dialect, rule: Rule, statements: &[&str]) {
    for sql in statements {
        match validate(sql, dialect, &Policy::default()) {
            Err(rejection) => assert_eq!(rejection.rule, rule, "{dialect}: {sql}: {rejection}"),
            Ok(validated) => panic!("{dialect}: {sql} passed as {}", validated.sql),
        }
    }
}

#[test]
fn postgresql_accepts_the_function_syntax_of_type_casts() {
    assert_pass(
        Dialect::Postgresql,
        &[
            // The two benchmark gold queries were of this form.
            "SELECT date(created_at) AS day, count(*) FROM orders GROUP BY date(created_at)",
            "SELECT * FROM events WHERE date(occurred_at) = '2024-01-31'",
            r#"SELECT "time"(occurred_at), "timestamp"(occurred_at), timestamptz(occurred_at) FROM events"#,
            r#"SELECT timetz(localtime), "interval"('1 day')"#,
            "SELECT int2(quantity), int4(total_amount), int8(id), float4(price), float8(price) FROM order_items",
            r#"SELECT "numeric"(price), text(price), "varchar"(name), bpchar(name) FROM products"#,
            "SELECT bool(1), uuid('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'), json('{}'), jsonb('{\"a\": 1}')",
            "SELECT bytea('x'), inet('10.0.0.1'), cidr('10.0.0.0/8')",
            "SELECT pg_catalog.date(created_at), DATE(created_at), INT4(id) FROM customers",
            // The casts that were always syntax still pass.
            "SELECT CAST(created_at AS date), created_at::date, DATE '2024-01-31' FROM customers",
        ],
    );
}

#[test]
fn postgresql_refuses_what_only_looks_like_a_cast() {
    assert_refused(
        Dialect::Postgresql,
        Rule::FunctionNotAllowed,
        &[
            // Catalog lookups, server-internal and XML types.
            "SELECT regclass('pg_authid')",
            "SELECT regproc('pg_sleep'), regnamespace('public'), oid(1)",
            "SELECT to_regclass('pg_shadow')",
            "SELECT xml('<a/>')",
            "SELECT pg_lsn('0/0'), txid_snapshot('1:1:')",
            // Type input functions and names that are not PostgreSQL functions.
            "SELECT int4in('1'), textin('x'), date_in('2024-01-01')",
            "SELECT datetime(created_at) FROM customers",
            "SELECT dates(created_at) FROM customers",
            "SELECT integer(1), bigint(1)",
            // A cast name in another schema is somebody's function.
            "SELECT public.date(created_at) FROM customers",
            "SELECT evil.int4(id) FROM customers",
        ],
    );
    // A cast does not launder the call it converts.
    assert_refused(
        Dialect::Postgresql,
        Rule::DeniedFunction,
        &[
            "SELECT text(pg_read_file('/etc/passwd'))",
            "SELECT date(pg_sleep(10))",
            "SELECT int8(nextval('orders_id_seq'))",
            "SELECT bytea(lo_get(1234))",
        ],
    );
}

#[test]
fn mysql_accepts_its_casts_and_conversions() {
    assert_pass(
        Dialect::Mysql,
        &[
            "SELECT DATE(created_at), TIME(created_at), TIMESTAMP(created_at), YEAR(created_at) FROM customers",
            "SELECT TIMESTAMP('2024-01-31', '10:00:00')",
            "SELECT CAST(total_amount AS SIGNED), CAST(id AS UNSIGNED), CAST(total_amount AS DECIMAL(10,2)) FROM orders",
            "SELECT CAST(id AS CHAR(10)), CAST(order_date AS DATETIME), CAST(total_amount AS DOUBLE) FROM orders",
            "SELECT CONVERT(order_date, DATE), CONVERT(id, SIGNED INTEGER), CONVERT(status USING utf8mb4) FROM orders",
            "SELECT CONVERT(status, CHAR(10) CHARACTER SET utf8mb4), BINARY status FROM orders",
            "SELECT TO_CHAR(order_date, 'YYYY-MM-DD') FROM orders",
            "SELECT INET6_NTOA(INET6_ATON('::1')), BIN_TO_UUID(UUID_TO_BIN(UUID()))",
            "SELECT STR_TO_DATE('31/01/2024', '%d/%m/%Y'), FROM_UNIXTIME(0), SEC_TO_TIME(90)",
        ],
    );
}

#[test]
fn mysql_refuses_what_only_looks_like_a_cast() {
    assert_refused(
        Dialect::Mysql,
        Rule::FunctionNotAllowed,
        &[
            // Not functions on MySQL or MariaDB.
            "SELECT DATETIME(created_at) FROM customers",
            "SELECT SIGNED(id), INTEGER(id) FROM customers",
            // PostgreSQL's cast names are not MySQL's.
            "SELECT int4(id), text(id) FROM customers",
            "SELECT shop.date(created_at) FROM customers",
        ],
    );
    assert_refused(
        Dialect::Mysql,
        Rule::DeniedFunction,
        &[
            "SELECT CONVERT(LOAD_FILE('/etc/passwd') USING utf8mb4)",
            "SELECT CAST(LOAD_FILE('/etc/passwd') AS CHAR)",
            "SELECT DATE(SLEEP(10))",
            "SELECT TO_CHAR(BENCHMARK(1000000, MD5('x')))",
        ],
    );
}

#[test]
fn sqlite_converts_with_cast_and_its_date_functions() {
    assert_pass(
        Dialect::Sqlite,
        &[
            "SELECT date(created_at), time(created_at), datetime(created_at), julianday(created_at) FROM customers",
            "SELECT unixepoch(created_at), strftime('%Y-%m', created_at) FROM customers",
            "SELECT date(created_at, 'start of month', '+1 month', '-1 day') FROM customers",
            "SELECT CAST(total_amount AS INTEGER), CAST(id AS TEXT), CAST('1.5' AS REAL), CAST(x'00' AS BLOB) FROM orders",
            "SELECT CAST(total_amount AS NUMERIC), hex(id), quote(status), typeof(total_amount) FROM orders",
        ],
    );
}

#[test]
fn sqlite_refuses_what_only_looks_like_a_cast() {
    assert_refused(
        Dialect::Sqlite,
        Rule::FunctionNotAllowed,
        &[
            // SQLite's type names are not functions.
            "SELECT timestamp(created_at) FROM customers",
            "SELECT integer(id), text(id), real(id) FROM customers",
            "SELECT int4(id) FROM customers",
            "SELECT main.date(created_at) FROM customers",
        ],
    );
    assert_refused(
        Dialect::Sqlite,
        Rule::DeniedFunction,
        &[
            "SELECT CAST(readfile('/etc/passwd') AS TEXT)",
            "SELECT date(sqlite_version())",
            "SELECT datetime(load_extension('evil'))",
        ],
    );
}
