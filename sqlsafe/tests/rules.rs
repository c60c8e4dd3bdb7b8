//! Targeted behaviours: table allowlist and CTE scoping, the LIMIT rewrite, rendering, the public types.

use querygpt_sqlsafe::{Dialect, Policy, Rejection, Rule, ValidatedSql, validate};

fn allow(tables: &[&str]) -> Policy {
    Policy { allowed_tables: Some(tables.iter().map(|t| t.to_string()).collect()), row_limit: None }
}

fn ok(sql: &str, dialect: Dialect, policy: &Policy) -> ValidatedSql {
    validate(sql, dialect, policy).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn rejected(sql: &str, dialect: Dialect, policy: &Policy) -> Rejection {
    match validate(sql, dialect, policy) {
        Err(rejection) => rejection,
        Ok(validated) => panic!("{sql} passed as {}", validated.sql),
    }
}

#[test]
fn allowlist_names_the_table_outside_it() {
    let policy = allow(&["orders", "customers"]);
    let sql = "SELECT * FROM orders o JOIN secrets s ON s.id = o.id";
    let rejection = rejected(sql, Dialect::Postgresql, &policy);
    assert_eq!(rejection.rule, Rule::TableNotAllowed);
    assert!(rejection.message.contains("`secrets`"), "{}", rejection.message);
    let nested = "SELECT * FROM orders WHERE customer_id IN (SELECT id FROM secrets)";
    assert_eq!(rejected(nested, Dialect::Mysql, &policy).rule, Rule::TableNotAllowed);
    let validated =
        ok("SELECT * FROM orders JOIN customers ON customers.id = orders.customer_id", Dialect::Sqlite, &policy);
    assert_eq!(validated.tables, ["orders", "customers"]);
}

#[test]
fn allowlist_requires_the_same_qualification() {
    let policy = allow(&["public.orders", "customers"]);
    ok("SELECT * FROM public.orders", Dialect::Postgresql, &policy);
    ok("SELECT * FROM customers", Dialect::Postgresql, &policy);
    assert_eq!(rejected("SELECT * FROM orders", Dialect::Postgresql, &policy).rule, Rule::TableNotAllowed);
    assert_eq!(rejected("SELECT * FROM other.customers", Dialect::Postgresql, &policy).rule, Rule::TableNotAllowed);
}

#[test]
fn allowlist_compares_names_like_the_database() {
    let policy = allow(&["orders"]);
    // PostgreSQL folds unquoted names, keeps quoted ones.
    ok("SELECT * FROM ORDERS", Dialect::Postgresql, &policy);
    assert_eq!(rejected(r#"SELECT * FROM "ORDERS""#, Dialect::Postgresql, &policy).rule, Rule::TableNotAllowed);
    // SQLite ignores ASCII case; MySQL table names are case-sensitive on most servers.
    ok("SELECT * FROM Orders", Dialect::Sqlite, &policy);
    assert_eq!(rejected("SELECT * FROM Orders", Dialect::Mysql, &policy).rule, Rule::TableNotAllowed);
}

#[test]
fn cte_names_are_not_tables_but_only_in_scope() {
    let policy = allow(&["orders"]);
    ok("WITH recent AS (SELECT * FROM orders) SELECT * FROM recent", Dialect::Postgresql, &policy);
    ok("WITH a AS (SELECT 1 AS x), b AS (SELECT x FROM a) SELECT * FROM b", Dialect::Postgresql, &policy);
    ok(
        "WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
        Dialect::Sqlite,
        &policy,
    );
    // A non-recursive CTE cannot see itself: inside its body the name is the real table.
    let shadow = "WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets";
    assert_eq!(rejected(shadow, Dialect::Postgresql, &policy).rule, Rule::TableNotAllowed);
    // A CTE defined in one subquery does not cover a table of the same name elsewhere.
    let sibling = "SELECT * FROM secrets, (WITH secrets AS (SELECT 1) SELECT * FROM secrets) AS s";
    assert_eq!(rejected(sibling, Dialect::Postgresql, &policy).rule, Rule::TableNotAllowed);
    // A later CTE is not visible to an earlier one.
    let forward = "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a";
    assert_eq!(rejected(forward, Dialect::Mysql, &policy).rule, Rule::TableNotAllowed);
    // Quoted and unquoted spellings that PostgreSQL keeps apart.
    let quoted = r#"WITH "Secrets" AS (SELECT 1) SELECT * FROM secrets"#;
    assert_eq!(rejected(quoted, Dialect::Postgresql, &policy).rule, Rule::TableNotAllowed);
    let validated = ok("WITH recent AS (SELECT * FROM orders) SELECT * FROM recent", Dialect::Mysql, &policy);
    assert_eq!(validated.tables, ["orders"]);
}

#[test]
fn table_functions_in_from_are_checked_as_functions() {
    let policy = allow(&["orders"]);
    ok("SELECT * FROM generate_series(1, 3) AS g", Dialect::Postgresql, &policy);
    let rejection = rejected("SELECT * FROM pg_catalog.pg_ls_dir('/') AS f", Dialect::Postgresql, &policy);
    assert_eq!(rejection.rule, Rule::DeniedFunction);
    assert_eq!(rejected("SELECT * FROM evil_srf() AS f", Dialect::Postgresql, &policy).rule, Rule::FunctionNotAllowed);
}

#[test]
fn limit_is_added_lowered_or_kept() {
    let policy = Policy { allowed_tables: None, row_limit: Some(100) };
    let pg = Dialect::Postgresql;
    assert_eq!(ok("SELECT * FROM orders", pg, &policy).sql, "SELECT * FROM orders LIMIT 100");
    assert_eq!(ok("SELECT * FROM orders LIMIT 10", pg, &policy).sql, "SELECT * FROM orders LIMIT 10");
    assert_eq!(ok("SELECT * FROM orders LIMIT 5000", pg, &policy).sql, "SELECT * FROM orders LIMIT 100");
    assert_eq!(ok("SELECT * FROM orders LIMIT ALL", pg, &policy).sql, "SELECT * FROM orders LIMIT 100");
    assert_eq!(
        ok("SELECT * FROM orders ORDER BY id OFFSET 20", pg, &policy).sql,
        "SELECT * FROM orders ORDER BY id LIMIT 100 OFFSET 20"
    );
    assert_eq!(
        ok("SELECT * FROM orders ORDER BY id FETCH FIRST 5 ROWS ONLY", pg, &policy).sql,
        "SELECT * FROM orders ORDER BY id LIMIT 5"
    );
    assert_eq!(
        ok("SELECT * FROM orders LIMIT (SELECT count(*) FROM orders)", pg, &policy).sql,
        "SELECT * FROM orders LIMIT 100"
    );
    assert_eq!(
        ok("SELECT * FROM orders LIMIT 10, 5000", Dialect::Mysql, &policy).sql,
        "SELECT * FROM orders LIMIT 10, 100"
    );
    assert_eq!(ok("SELECT 1 UNION SELECT 2", Dialect::Sqlite, &policy).sql, "SELECT 1 UNION SELECT 2 LIMIT 100");
    // Inner limits are left alone; only the outermost query bounds the result.
    assert_eq!(
        ok("SELECT * FROM (SELECT * FROM orders LIMIT 5000) AS t", pg, &policy).sql,
        "SELECT * FROM (SELECT * FROM orders LIMIT 5000) AS t LIMIT 100"
    );
}

#[test]
fn the_text_to_run_is_rendered_from_the_checked_tree() {
    let none = Policy::default();
    // Comments are dropped, a trailing semicolon too: what runs is exactly what was parsed.
    let validated = ok("/* hello */ SELECT 1 -- bye\n;", Dialect::Postgresql, &none);
    assert_eq!(validated.sql, "SELECT 1");
    // MySQL executable comments are expanded and validated as code, then rendered without the comment.
    let validated = ok("SELECT 1 /*!50000 , 2 */", Dialect::Mysql, &none);
    assert_eq!(validated.sql, "SELECT 1, 2");
    // String literals keep their exact spelling (escapes are not reinterpreted).
    let validated = ok(r"SELECT 'it''s', 'a\\b', 'c\'d'", Dialect::Mysql, &none);
    assert_eq!(validated.sql, r"SELECT 'it''s', 'a\\b', 'c\'d'");
    let validated = ok(r"SELECT E'a\'b', 'c\d', $q$x$q$", Dialect::Postgresql, &none);
    assert_eq!(validated.sql, r"SELECT E'a\'b', 'c\d', $q$x$q$");
}

#[test]
fn empty_input_is_its_own_rule() {
    for input in ["", "   ", "-- only a comment", ";", "/* */ ;"] {
        let rejection = rejected(input, Dialect::Sqlite, &Policy::default());
        assert!(matches!(rejection.rule, Rule::Empty), "{input:?}: {rejection}");
    }
}

#[test]
fn rejection_serializes_with_snake_case_rule() {
    let rejection = rejected("SELECT * FROM orders FOR UPDATE", Dialect::Postgresql, &Policy::default());
    let json = serde_json::to_value(&rejection).unwrap();
    assert_eq!(json["rule"], "locking_clause");
    assert!(json["message"].as_str().unwrap().contains("FOR UPDATE"));
    assert!(rejection.to_string().starts_with("locking_clause: "));
    assert_eq!("data_modifying_cte".parse::<Rule>().unwrap(), Rule::DataModifyingCte);
    assert_eq!(Rule::NotAQuery.to_string(), "not_a_query");
}

#[test]
fn dialects_parse_from_their_names() {
    assert_eq!("postgresql".parse::<Dialect>().unwrap(), Dialect::Postgresql);
    assert_eq!("Postgres".parse::<Dialect>().unwrap(), Dialect::Postgresql);
    assert_eq!("mariadb".parse::<Dialect>().unwrap(), Dialect::Mysql);
    assert_eq!("sqlite".parse::<Dialect>().unwrap(), Dialect::Sqlite);
    assert!("redis".parse::<Dialect>().is_err());
    assert_eq!(Dialect::Mysql.to_string(), "mysql");
}

#[test]
fn functions_are_checked_everywhere_in_the_tree() {
    let none = Policy::default();
    let places = [
        "SELECT 1 FROM orders ORDER BY pg_sleep(1)",
        "SELECT count(*) OVER (PARTITION BY pg_sleep(1)) FROM orders",
        "SELECT string_agg(name, ',' ORDER BY pg_sleep(1)) FROM customers",
        "SELECT * FROM orders o JOIN customers c ON pg_sleep(1) IS NULL",
        "SELECT * FROM orders LIMIT pg_sleep(1)::int",
        "SELECT * FROM orders GROUP BY ROLLUP (pg_sleep(1))",
        "SELECT ARRAY[pg_sleep(1)]",
        "SELECT (pg_sleep(1)).x",
        "VALUES (pg_sleep(1))",
        "SELECT 1 WHERE 1 IN (1, pg_sleep(1)::int)",
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY pg_sleep(1)) FROM orders",
    ];
    for sql in places {
        assert_eq!(rejected(sql, Dialect::Postgresql, &none).rule, Rule::DeniedFunction, "{sql}");
    }
}

/// Found by the fuzzer: a cast to a type with modifiers (`x::CATE('@', email)`) renders without the quotes, so the
/// text that would run differs from the text that was checked. Anything whose rendering is not a fixpoint is refused.
#[test]
fn statements_that_do_not_render_back_to_themselves_are_refused() {
    let sql = "SELECT LOce::CATE('@', email), INSTR(email, '.') FROM customers";
    for dialect in Dialect::ALL {
        if let Ok(validated) = validate(sql, dialect, &Policy::default()) {
            let again = ok(&validated.sql, dialect, &Policy::default());
            assert_eq!(again.sql, validated.sql, "{dialect}: rendering must be a fixpoint");
        }
    }
    assert_eq!(rejected(sql, Dialect::Mysql, &Policy::default()).rule, Rule::UnsupportedSyntax);
}
