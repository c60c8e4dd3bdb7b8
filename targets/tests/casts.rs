//! The function-style casts that the validator (`querygpt_sqlsafe`) lets through are casts on the real servers:
//! each statement is validated, the text it returns runs through [`Targets::execute`], and the row holds the
//! converted values.

mod common;

use common::{MyDb, PgDb, settings, sqlite_spec};
use querygpt_sqlsafe::{Dialect, Policy, validate};
use querygpt_targets::{TargetSpec, Targets};
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Executor, SqliteConnection};

/// Validates each statement, runs the validated text and compares its one row with the expected object.
async fn assert_casts(dialect: Dialect, spec: &TargetSpec, cases: &[(&str, Value)]) {
    let targets = Targets::new(settings());
    for (sql, expected) in cases {
        let validated = validate(sql, dialect, &Policy::default()).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let out = targets
            .execute(&format!("casts-{dialect}"), spec, &validated.sql)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", validated.sql));
        assert_eq!(out.rows.len(), 1, "{sql}");
        assert_eq!(Value::Object(out.rows[0].clone()), *expected, "{sql}");
    }
}

#[tokio::test]
async fn postgresql_runs_function_style_casts() {
    let db = PgDb::create().await;
    db.admin_with(
        "CREATE TABLE events (id int, occurred_at timestamp); INSERT INTO events VALUES (1, '2024-01-31 10:20:30')",
    )
    .await;
    let cases = [
        ("SELECT date(occurred_at) AS d FROM events", json!({"d": "2024-01-31"})),
        (
            r#"SELECT "time"(occurred_at) AS t, "timestamp"('2024-01-31 10:20:30') AS ts FROM events"#,
            json!({"t": "10:20:30", "ts": "2024-01-31T10:20:30"}),
        ),
        (
            "SELECT int2(2.5) AS a, int4('7') AS b, int8(id) AS c, float8('1.5') AS d FROM events",
            json!({"a": 3, "b": 7, "c": 1, "d": 1.5}),
        ),
        (
            r#"SELECT text(id) AS a, "varchar"(id) AS b, "numeric"('1.50') AS c, bool(1) AS d FROM events"#,
            json!({"a": "1", "b": "1", "c": 1.5, "d": true}),
        ),
        (
            "SELECT jsonb('{\"a\": 1}') AS j, uuid('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11') AS u, inet('10.0.0.1') AS i",
            json!({"j": {"a": 1}, "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "i": "10.0.0.1"}),
        ),
    ];
    assert_casts(Dialect::Postgresql, &db.spec(), &cases).await;
    db.drop_db().await;
}

#[tokio::test]
async fn mysql_runs_its_casts_and_conversions() {
    let db = MyDb::create().await;
    db.admin_with(
        "CREATE TABLE events (id INT, occurred_at DATETIME); INSERT INTO events VALUES (1, '2024-01-31 10:20:30')",
    )
    .await;
    let cases = [
        (
            "SELECT DATE(occurred_at) AS d, TIME(occurred_at) AS t, TIMESTAMP('2024-01-31', '10:00:00') AS ts FROM events",
            json!({"d": "2024-01-31", "t": "10:20:30", "ts": "2024-01-31T10:00:00"}),
        ),
        (
            "SELECT CAST('42' AS SIGNED) AS a, CONVERT(occurred_at, DATE) AS b, CONVERT('x' USING utf8mb4) AS c FROM events",
            json!({"a": 42, "b": "2024-01-31", "c": "x"}),
        ),
        ("SELECT INET6_NTOA(INET6_ATON('::1')) AS ip", json!({"ip": "::1"})),
    ];
    assert_casts(Dialect::Mysql, &db.spec(), &cases).await;
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_runs_cast_and_its_date_functions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("casts.db");
    let options = SqliteConnectOptions::new().filename(&path).create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    conn.execute(
        "CREATE TABLE events (id INTEGER, occurred_at TEXT); INSERT INTO events VALUES (1, '2024-01-31 10:20:30')",
    )
    .await
    .unwrap();
    conn.close().await.unwrap();
    let cases = [
        (
            "SELECT date(occurred_at) AS d, time(occurred_at) AS t, datetime(occurred_at, '+1 day') AS n FROM events",
            json!({"d": "2024-01-31", "t": "10:20:30", "n": "2024-02-01 10:20:30"}),
        ),
        (
            "SELECT unixepoch(occurred_at) AS u, CAST('42' AS INTEGER) AS i, CAST(id AS TEXT) AS s FROM events",
            json!({"u": 1706696430, "i": 42, "s": "1"}),
        ),
    ];
    assert_casts(Dialect::Sqlite, &sqlite_spec(&path), &cases).await;
}
