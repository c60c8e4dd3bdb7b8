//! Sessions against the real PostgreSQL server.

mod common;

use common::{PgDb, assert_read_only, settings, spec_for};
use querygpt_common::Driver;
use querygpt_targets::{TableKind, TargetError, TargetSettings, Targets};
use serde_json::json;
use sqlx::{Executor, PgConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ITEMS: &str = "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2));
    INSERT INTO items (name, price) SELECT 'item ' || g, g * 1.5 FROM generate_series(1, 50) g;";

async fn checksum(admin: &mut PgConnection) -> (i64, String) {
    sqlx::query_as("SELECT count(*), md5(string_agg(id || ':' || name || ':' || coalesce(price::text, ''), ',' ORDER BY id)) FROM items")
        .fetch_one(admin)
        .await
        .expect("checksum")
}

#[tokio::test]
async fn select_returns_typed_json() {
    let db = PgDb::create().await;
    db.admin_with(
        "CREATE TYPE mood AS ENUM ('happy', 'sad');
             CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
             CREATE TABLE typed (
                 id int PRIMARY KEY, i2 smallint, i8 bigint, n numeric(12,2), big numeric, r real, d double precision,
                 b boolean, t text, vc varchar(20), ch char(3), dt date, tm time, ts timestamp, tz timestamptz,
                 iv interval, j json, jb jsonb, u uuid, by bytea, arr int[], grid int[][], tags text[], ip inet,
                 m mood, pos positive, money_col money);
             INSERT INTO typed VALUES (
                 1, -7, 9007199254740993, 1234.50, 123456789012345678901234567890.123, 0.1, 2.5,
                 true, 'héllo', 'vc', 'ab', '2024-02-29', '13:05:09.25', '2024-02-29 13:05:09.123456',
                 '2024-02-29 13:05:09+02', '1 year 2 mons 3 days 04:05:06.5', '{\"a\": [1, 2]}', '{\"b\": null}',
                 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\xDEADBEEF', '{1, NULL, 3}', '{{1,2},{3,4}}',
                 '{\"x\", \"y z\"}', '10.1.2.3/8', 'sad', 42, 12.34);
             INSERT INTO typed (id) VALUES (2);",
    )
    .await;
    let targets = Targets::new(settings());
    let out = targets.execute("pg-typed", &db.spec(), "SELECT * FROM typed ORDER BY id").await.unwrap();
    assert_eq!(out.columns.len(), 27);
    assert_eq!(out.columns[0], "id");
    assert!(!out.truncated);
    let row = &out.rows[0];
    let expect = json!({
        "id": 1, "i2": -7, "i8": 9007199254740993i64, "n": 1234.5, "big": "123456789012345678901234567890.123",
        "r": 0.1, "d": 2.5, "b": true, "t": "héllo", "vc": "vc", "ch": "ab ", "dt": "2024-02-29",
        "tm": "13:05:09.250", "ts": "2024-02-29T13:05:09.123456", "tz": "2024-02-29T11:05:09Z",
        "iv": "P1Y2M3DT4H5M6.5S", "j": {"a": [1, 2]}, "jb": {"b": null},
        "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "by": "3q2+7w==", "arr": [1, null, 3], "grid": [[1, 2], [3, 4]],
        "tags": ["x", "y z"], "ip": "10.1.2.3/8", "m": "sad", "pos": 42, "money_col": 12.34
    });
    assert_eq!(serde_json::Value::Object(row.clone()), expect);
    // The all-NULL row: every column present, null.
    assert_eq!(out.rows[1].len(), 27);
    assert!(out.rows[1].iter().filter(|(k, _)| *k != "id").all(|(_, v)| v.is_null()));
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn row_cap_truncates_after_one_extra_row() {
    let db = PgDb::create().await;
    let targets = Targets::new(TargetSettings { row_cap: 10, ..settings() });
    let spec = db.spec();
    common::assert_cut_at_cap(&targets, "pg-cap", &spec, "SELECT g FROM generate_series(1, 11) g", 10).await;
    let exact = targets.execute("pg-cap", &spec, "SELECT g FROM generate_series(1, 10) g").await.unwrap();
    assert_eq!(exact.rows.len(), 10);
    assert!(!exact.truncated);
    // An endless result: only the first rows are read, and the session still ends at once.
    let started = Instant::now();
    common::assert_cut_at_cap(&targets, "pg-cap", &spec, common::ENDLESS, 10).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    // The pool still serves (the truncated session's connection was closed, not reused mid-result).
    common::assert_serves(&targets, "pg-cap", &spec).await;
    // No rows: the column names still come back.
    common::assert_columns_without_rows(&targets, "pg-cap", &spec, "SELECT 1 AS a, 'x' AS b WHERE false", &["a", "b"])
        .await;
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn byte_limit_truncates_and_refuses_giant_rows() {
    let db = PgDb::create().await;
    let targets = Targets::new(TargetSettings { max_result_bytes: 4000, ..settings() });
    let spec = db.spec();
    let out =
        targets.execute("pg-bytes", &spec, "SELECT repeat('x', 100) AS s FROM generate_series(1, 90)").await.unwrap();
    assert!(out.truncated);
    assert!(!out.rows.is_empty() && out.rows.len() < 40, "{} rows", out.rows.len());
    let giant = targets.execute("pg-bytes", &spec, "SELECT repeat('x', 10000) AS s").await;
    assert!(matches!(giant, Err(TargetError::TooLarge(_))), "{giant:?}");
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn writes_are_refused_by_the_session() {
    let db = PgDb::create().await;
    let mut admin = db.admin_with(ITEMS).await;
    let before = checksum(&mut admin).await;
    let targets = Targets::new(settings());
    let spec = db.spec();
    let writes = [
        "INSERT INTO items (name) VALUES ('evil')",
        "UPDATE items SET name = 'evil'",
        "DELETE FROM items",
        "CREATE TABLE evil (id int)",
        "DROP TABLE items",
        "TRUNCATE items",
        "ALTER TABLE items ADD COLUMN evil int",
        "WITH d AS (DELETE FROM items RETURNING *) SELECT count(*) FROM d",
        "SELECT nextval('items_id_seq')",
        "SELECT setval('items_id_seq', 1000)",
    ];
    assert_read_only(&targets, "pg-writes", &spec, writes).await;
    // Neither call writes anything, so a read-only transaction lets them run: set_config only changes session
    // state (and ROLLBACK undoes it, `false` or not), txid_current only assigns a transaction id. They must not
    // leave the connection writable for the next session, which gets the same connection here.
    let one = Targets::new(TargetSettings { max_connections_per_target: 1, ..settings() });
    let escape = "SELECT set_config('default_transaction_read_only', 'off', false), pg_catalog.txid_current()";
    let result = one.execute("pg-writes-one", &spec, escape).await;
    assert!(!matches!(result, Err(TargetError::ReadOnlyViolation(_))), "{escape}: {result:?}");
    let mode = one.execute("pg-writes-one", &spec, "SHOW default_transaction_read_only").await.unwrap();
    assert_eq!(mode.rows[0]["default_transaction_read_only"], json!("on"));
    assert_read_only(&one, "pg-writes-one", &spec, ["DELETE FROM items"]).await;
    drop(one);
    // Trying to switch the transaction to read-write fails too (the session already ran a statement).
    let rw = targets.execute("pg-writes", &spec, "SET TRANSACTION READ WRITE").await;
    assert!(rw.is_err(), "{rw:?}");
    assert_eq!(checksum(&mut admin).await, before);
    let sequence: (i64, bool) =
        sqlx::query_as("SELECT last_value, is_called FROM items_id_seq").fetch_one(&mut admin).await.unwrap();
    assert_eq!(sequence, (50, true));
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(tables, 1);
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn schema_changes_between_calls_are_seen() {
    let db = PgDb::create().await;
    let mut admin = db.admin_with(ITEMS).await;
    // One connection, so the second call runs where the first one did: no prepared plan may survive the first.
    let targets = Targets::new(TargetSettings { max_connections_per_target: 1, ..settings() });
    let spec = db.spec();
    let sql = "SELECT * FROM items ORDER BY id LIMIT 1";
    let before = targets.execute("pg-alter", &spec, sql).await.unwrap();
    assert_eq!(before.columns, vec!["id", "name", "price"]);
    admin.execute("ALTER TABLE items ADD COLUMN note text DEFAULT 'n'").await.unwrap();
    let after = targets.execute("pg-alter", &spec, sql).await.unwrap();
    assert_eq!(after.columns, vec!["id", "name", "price", "note"]);
    assert_eq!(after.rows[0]["note"], json!("n"));
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn stacked_statements_cannot_run() {
    let db = PgDb::create().await;
    let mut admin = db.admin_with(ITEMS).await;
    let before = checksum(&mut admin).await;
    let targets = Targets::new(settings());
    let spec = db.spec();
    let stacked = [
        "COMMIT; DELETE FROM items",
        "SELECT 1; DELETE FROM items",
        "ROLLBACK; SET TRANSACTION READ WRITE; DELETE FROM items",
    ];
    common::assert_stacked_refused(&targets, "pg-stack", &spec, &stacked, Some("multiple commands")).await;
    // Ending the transaction in one call does not make the next call writable.
    targets.execute("pg-stack", &spec, "COMMIT").await.unwrap();
    assert_read_only(&targets, "pg-stack", &spec, ["DELETE FROM items"]).await;
    assert_eq!(checksum(&mut admin).await, before);
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn timeout_stops_the_statement_on_the_server() {
    let db = PgDb::create().await;
    let spec = db.spec();
    let targets = common::assert_stopped_at_limit("pg-timeout", &spec, "SELECT pg_sleep(10)").await;
    // Nothing is left running, and the connection is usable again.
    let mut admin = db.admin().await;
    let running: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(10)%' AND state = 'active'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(running, 0);
    common::assert_serves(&targets, "pg-timeout", &spec).await;
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn abandoned_call_is_cancelled_on_the_server() {
    let db = PgDb::create().await;
    let targets = Targets::new(TargetSettings { statement_timeout: Duration::from_secs(30), ..settings() });
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let sql = format!("SELECT pg_sleep(20) AS m_{marker}");
    // The job is cancelled: its future is dropped while the statement runs.
    let abandoned =
        tokio::time::timeout(Duration::from_millis(700), targets.execute("pg-drop", &db.spec(), &sql)).await;
    assert!(abandoned.is_err());
    let mut admin = db.admin().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
        )
        .bind(&marker)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if running == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the abandoned statement is still running on the server");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn connection_failures_are_reported_without_secrets() {
    common::assert_connection_failures::<PgConnection>("pg").await;

    let targets = Targets::new(settings());
    let mut no_host = spec_for(Driver::Postgresql, &common::pg_url(), "test");
    no_host.host = None;
    assert!(matches!(targets.test("pg-nohost", &no_host).await, Err(TargetError::InvalidSpec(_))));
    no_host.host = Some("/var/run/postgresql".into());
    assert!(matches!(targets.test("pg-socket", &no_host).await, Err(TargetError::InvalidSpec(_))));
}

#[tokio::test]
async fn schema_lists_tables_columns_and_comments() {
    let db = PgDb::create().await;
    db.admin_with(
        "CREATE TABLE customers (id bigint PRIMARY KEY, name varchar(100) NOT NULL, note text);
             COMMENT ON TABLE customers IS 'People who buy';
             COMMENT ON COLUMN customers.name IS 'Full name';
             INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 200) g;
             ANALYZE customers;
             CREATE TABLE order_lines (order_id int, line int, amount numeric(10,2) NOT NULL, PRIMARY KEY (order_id, line));
             CREATE VIEW big_customers AS SELECT id, name FROM customers WHERE id > 100;
             CREATE SCHEMA sales;
             CREATE TABLE sales.targets (region text PRIMARY KEY, goal int);",
    )
    .await;
    let targets = Targets::new(settings());
    let schema = targets.schema("pg-schema", &db.spec()).await.unwrap();
    let names: Vec<&str> = schema.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["big_customers", "customers", "order_lines", "sales.targets"]);
    let customers = &schema.tables[1];
    assert_eq!(customers.kind, TableKind::Table);
    assert_eq!(customers.comment.as_deref(), Some("People who buy"));
    assert_eq!(customers.row_count, Some(200));
    let cols: Vec<(&str, &str, bool, bool)> =
        customers.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str(), c.nullable, c.primary)).collect();
    assert_eq!(
        cols,
        vec![
            ("id", "bigint", false, true),
            ("name", "character varying(100)", false, false),
            ("note", "text", true, false)
        ]
    );
    assert_eq!(customers.columns[1].comment.as_deref(), Some("Full name"));
    let lines = &schema.tables[2];
    assert_eq!(lines.columns.iter().filter(|c| c.primary).count(), 2);
    assert_eq!(lines.columns[2].data_type, "numeric(10,2)");
    assert_eq!(schema.tables[0].kind, TableKind::View);
    assert_eq!(schema.tables[0].row_count, None);
    // The serialized shape matches `GET /connections/{id}/schema`.
    let json = serde_json::to_value(&schema).unwrap();
    assert_eq!(
        json["tables"][1]["columns"][0],
        json!({"name": "id", "type": "bigint", "nullable": false, "primary": true})
    );

    let info = targets.test("pg-schema", &db.spec()).await.unwrap();
    assert!(info.version.starts_with("PostgreSQL "), "{}", info.version);
    assert_eq!(info.tables_count, 4);
    // The tests connect as a superuser: exactly what the connection test must warn about.
    assert!(info.warnings.iter().any(|w| w.contains("superuser")), "{:?}", info.warnings);
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn one_pool_per_connection_and_idle_pools_expire() {
    let db = PgDb::create().await;
    let targets = Arc::new(Targets::new(TargetSettings {
        idle_expiry: Duration::from_millis(300),
        max_connections_per_target: 3,
        ..settings()
    }));
    let spec = db.spec();
    let calls: Vec<_> = (0..12)
        .map(|i| {
            let (targets, spec) = (Arc::clone(&targets), spec.clone());
            tokio::spawn(
                async move { targets.execute("pg-pool", &spec, &format!("SELECT {i} AS n, pg_sleep(0.05)")).await },
            )
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(targets.cached_targets(), 1);
    let mut admin = db.admin().await;
    let connections: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'querygpt' AND datname = current_database()",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!((1..=3).contains(&connections), "{connections} connections");

    // A changed spec replaces the pool rather than adding one.
    let mut changed = spec.clone();
    changed.password = Some(querygpt_common::config::SecretString::new(""));
    assert_ne!(changed, spec);
    targets.execute("pg-pool", &changed, "SELECT 1").await.unwrap();
    assert_eq!(targets.cached_targets(), 1);

    // Idle pools are closed once another connection is used after the expiry.
    tokio::time::sleep(Duration::from_millis(400)).await;
    targets.execute("pg-pool-other", &spec, "SELECT 1").await.unwrap();
    assert_eq!(targets.cached_targets(), 1);
    targets.invalidate("pg-pool-other");
    assert_eq!(targets.cached_targets(), 0);
    drop(targets);
    db.drop_db().await;
}

/// A pooled connection is not pinged before each statement (at load that would double the round trips), but one
/// that sat idle is: a connection the server closed meanwhile is replaced, and the call does not fail.
#[tokio::test]
async fn a_connection_closed_while_idle_is_replaced_before_the_next_statement() {
    let db = PgDb::create().await;
    let targets = Targets::new(TargetSettings { max_connections_per_target: 1, ..settings() });
    let spec = db.spec();
    let pid = async || {
        let output = targets.execute("pg-idle", &spec, "SELECT pg_backend_pid() AS pid").await.unwrap();
        output.rows[0]["pid"].as_i64().expect("a pid")
    };
    let first = pid().await;
    assert_eq!(pid().await, first, "a connection just returned is reused");

    let mut admin = db.admin().await;
    let terminated: bool =
        sqlx::query_scalar("SELECT pg_terminate_backend($1::int)").bind(first).fetch_one(&mut admin).await.unwrap();
    assert!(terminated);
    tokio::time::sleep(querygpt_common::pool::PING_IF_IDLE_FOR + Duration::from_millis(200)).await;
    let second = pid().await;
    assert_ne!(second, first, "the closed connection was replaced");
    drop(targets);
    db.drop_db().await;
}

/// The SSRF guard: with the default network policy, a host that is or resolves to loopback is refused before any
/// connection is made, in every spelling; metadata and other link-local addresses are refused whatever the policy.
#[tokio::test]
async fn internal_hosts_are_refused_by_the_network_policy() {
    let db = PgDb::create().await;
    let strict = Targets::new(TargetSettings { network: Default::default(), ..settings() });
    for host in ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]", "localhost", "169.254.169.254"]
    {
        let spec = querygpt_targets::TargetSpec { host: Some(host.into()), ..db.spec() };
        let err = strict.execute(host, &spec, "SELECT 1").await.unwrap_err();
        assert!(matches!(err, TargetError::HostNotAllowed(_)), "{host}: {err:?}");
    }
    let permissive = Targets::new(TargetSettings {
        network: querygpt_common::netguard::NetworkPolicy::permissive(),
        connect_timeout: Duration::from_millis(300),
        ..settings()
    });
    let metadata = querygpt_targets::TargetSpec { host: Some("169.254.169.254".into()), ..db.spec() };
    let err = permissive.execute("metadata", &metadata, "SELECT 1").await.unwrap_err();
    assert!(matches!(err, TargetError::HostNotAllowed(_)), "{err:?}");
    // The policy that allows loopback reaches the same server.
    let allowed = Targets::new(settings());
    assert_eq!(allowed.execute("ok", &db.spec(), "SELECT 1 AS one").await.unwrap().rows.len(), 1);
    drop(allowed);
    db.drop_db().await;
}

#[tokio::test]
async fn schema_lists_foreign_keys_in_column_order() {
    let db = PgDb::create().await;
    db.admin_with(
        "CREATE SCHEMA sales;
             CREATE TABLE sales.regions (code text PRIMARY KEY);
             CREATE TABLE customers (id int PRIMARY KEY, region text REFERENCES sales.regions);
             COMMENT ON TABLE customers IS 'People who buy';
             CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id));
             CREATE TABLE order_lines (order_id int REFERENCES orders, line int, PRIMARY KEY (order_id, line));
             -- Composite, in another order than the columns of either table.
             CREATE TABLE shipments (id int PRIMARY KEY, order_id int NOT NULL, line int NOT NULL,
                 FOREIGN KEY (line, order_id) REFERENCES order_lines (line, order_id));
             COMMENT ON COLUMN shipments.line IS 'Line shipped';
             INSERT INTO sales.regions VALUES ('eu'), ('us');
             INSERT INTO customers VALUES (1, 'eu'), (2, 'us'), (3, NULL);
             ANALYZE;
             -- A key into a partitioned table is copied onto each partition's key: listed once all the same.
             CREATE TABLE events (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
             CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
             CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
             CREATE TABLE event_notes (event_id int, event_at date, FOREIGN KEY (event_id, event_at) REFERENCES events);",
    )
    .await;
    let targets = Targets::new(settings());
    let schema = targets.schema("pg-fk", &db.spec()).await.unwrap();
    let table = |name: &str| schema.tables.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name}"));
    let keys = |name: &str| -> Vec<(Vec<&str>, &str, Vec<&str>)> {
        table(name)
            .foreign_keys
            .iter()
            .map(|fk| {
                (
                    fk.columns.iter().map(String::as_str).collect(),
                    fk.referenced_table.as_str(),
                    fk.referenced_columns.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    };
    assert_eq!(keys("customers"), vec![(vec!["region"], "sales.regions", vec!["code"])]);
    assert_eq!(keys("orders"), vec![(vec!["customer_id"], "customers", vec!["id"])]);
    assert_eq!(keys("order_lines"), vec![(vec!["order_id"], "orders", vec!["id"])]);
    assert_eq!(keys("shipments"), vec![(vec!["line", "order_id"], "order_lines", vec!["line", "order_id"])]);
    assert_eq!(keys("event_notes"), vec![(vec!["event_id", "event_at"], "events", vec!["id", "at"])]);
    assert!(keys("sales.regions").is_empty());
    // Comments and estimates come with the keys.
    assert_eq!(table("customers").comment.as_deref(), Some("People who buy"));
    assert_eq!(table("customers").row_count, Some(3));
    assert_eq!(table("sales.regions").row_count, Some(2));
    assert_eq!(table("shipments").columns[2].comment.as_deref(), Some("Line shipped"));
    // The serialized shape of `GET /connections/{id}/schema`.
    assert_eq!(
        serde_json::to_value(&table("shipments").foreign_keys).unwrap(),
        json!([{"columns": ["line", "order_id"], "referenced_table": "order_lines",
                "referenced_columns": ["line", "order_id"]}])
    );
    drop(targets);
    db.drop_db().await;
}
