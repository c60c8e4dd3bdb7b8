//! Sessions against the real MySQL/MariaDB server.

mod common;

use common::{MyDb, assert_read_only, settings};
use querygpt_targets::{TableKind, TargetError, TargetSettings, Targets};
use serde_json::json;
use sqlx::{Connection, Executor, MySqlConnection};
use std::time::{Duration, Instant};

const ITEMS: &str =
    "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50) NOT NULL, price DECIMAL(10,2));
    INSERT INTO items (name, price) VALUES ('a', 1.50), ('b', 2.25), ('c', NULL), ('d', 4.00);";

async fn checksum(admin: &mut MySqlConnection) -> (i64, String) {
    let (count, digest): (i64, Option<String>) = sqlx::query_as(
        "SELECT COUNT(*), MD5(GROUP_CONCAT(id, ':', name, ':', COALESCE(price, '') ORDER BY id)) FROM items",
    )
    .fetch_one(admin)
    .await
    .expect("checksum");
    (count, digest.unwrap_or_default())
}

async fn table_count(admin: &mut MySqlConnection) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        .fetch_one(admin)
        .await
        .unwrap()
}

#[tokio::test]
async fn select_returns_typed_json() {
    let db = MyDb::create().await;
    db.admin_with(
        "CREATE TABLE typed (
                 id INT PRIMARY KEY, ti TINYINT, flag TINYINT(1), si SMALLINT, mi MEDIUMINT, bi BIGINT,
                 ubi BIGINT UNSIGNED, ui INT UNSIGNED, f FLOAT, d DOUBLE, dec1 DECIMAL(10,2), dec2 DECIMAL(30,5),
                 c CHAR(3), vc VARCHAR(20), t TEXT, bl BLOB, vb VARBINARY(8), dt DATE, dtm DATETIME(6),
                 ts TIMESTAMP NULL, tm TIME, y YEAR, j JSON, e ENUM('red', 'green'), st SET('a', 'b'), bt BIT(10));
             INSERT INTO typed VALUES (1, -5, 1, -300, 70000, -9007199254740993, 18446744073709551615, 4294967295,
                 0.1, 2.5, 1234.50, 1234567890123456789012345.12345, 'ab', 'vc', 'héllo', X'DEADBEEF', X'00FF',
                 '2024-02-29', '2024-02-29 13:05:09.123456', '2024-02-29 13:05:09', '-26:03:04', 2024,
                 '{\"a\": [1, 2]}', 'green', 'a,b', b'1000000001');
             INSERT INTO typed (id) VALUES (2);
             SET SESSION sql_mode = '';
             INSERT INTO typed (id, dt, dtm) VALUES (3, '0000-00-00', '0000-00-00 00:00:00');",
    )
    .await;
    let targets = Targets::new(settings());
    let out = targets.execute("my-typed", &db.spec(), "SELECT * FROM typed ORDER BY id").await.unwrap();
    assert_eq!(out.columns.len(), 26);
    let mut row = out.rows[0].clone();
    // MariaDB stores JSON as text and reports it as text; MySQL reports a JSON type.
    let j = row.remove("j").unwrap();
    assert!(j == json!({"a": [1, 2]}) || j == json!("{\"a\": [1, 2]}"), "{j}");
    let expect = json!({
        "id": 1, "ti": -5, "flag": 1, "si": -300, "mi": 70000, "bi": -9007199254740993i64,
        "ubi": 18446744073709551615u64, "ui": 4294967295u32, "f": 0.1, "d": 2.5, "dec1": 1234.5,
        "dec2": "1234567890123456789012345.12345", "c": "ab", "vc": "vc", "t": "héllo", "bl": "3q2+7w==",
        "vb": "AP8=", "dt": "2024-02-29", "dtm": "2024-02-29T13:05:09.123456", "ts": "2024-02-29T13:05:09Z",
        "tm": "-26:03:04", "y": 2024, "e": "green", "st": "a,b", "bt": 513
    });
    assert_eq!(serde_json::Value::Object(row), expect);
    assert!(out.rows[1].iter().filter(|(k, _)| *k != "id").all(|(_, v)| v.is_null()));
    assert_eq!(out.rows[2]["dt"], json!("0000-00-00"));
    assert_eq!(out.rows[2]["dtm"], json!("0000-00-00"));
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn row_cap_truncates_after_one_extra_row() {
    let db = MyDb::create().await;
    db.admin_with(ITEMS).await;
    let targets = Targets::new(TargetSettings { row_cap: 3, ..settings() });
    let spec = db.spec();
    let out = common::assert_cut_at_cap(&targets, "my-cap", &spec, "SELECT id, name FROM items ORDER BY id", 3).await;
    assert_eq!(out.rows[2]["name"], json!("c"));
    // A large result: reading stops early and the pool keeps serving.
    let big =
        "SELECT a.id FROM items a, items b, items c, items d, items e, items f, items g, items h, items i, items j";
    let started = Instant::now();
    common::assert_cut_at_cap(&targets, "my-cap", &spec, big, 3).await;
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let exact = targets.execute("my-cap", &spec, "SELECT id FROM items WHERE id <= 3").await.unwrap();
    assert!(!exact.truncated);
    let empty = "SELECT id, name AS label FROM items WHERE id < 0";
    common::assert_columns_without_rows(&targets, "my-cap", &spec, empty, &["id", "label"]).await;
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn writes_are_refused_by_the_session() {
    let db = MyDb::create().await;
    let mut admin = db.admin_with(ITEMS).await;
    let before = checksum(&mut admin).await;
    let targets = Targets::new(settings());
    let spec = db.spec();
    let other_db = format!("{}_x", db.name);
    let writes = [
        "INSERT INTO items (name) VALUES ('evil')".to_owned(),
        "UPDATE items SET name = 'evil'".into(),
        "DELETE FROM items".into(),
        "REPLACE INTO items (id, name) VALUES (1, 'evil')".into(),
        // DDL commits implicitly, so only the read-only session (not the transaction) stops these.
        "CREATE TABLE evil (id INT)".into(),
        "CREATE TEMPORARY TABLE evil (id INT)".into(),
        "DROP TABLE items".into(),
        "TRUNCATE TABLE items".into(),
        "ALTER TABLE items ADD COLUMN evil INT".into(),
        "RENAME TABLE items TO evil".into(),
        format!("CREATE DATABASE {other_db}"),
    ];
    assert_read_only(&targets, "my-writes", &spec, writes).await;
    // MariaDB and MySQL accept `SET SESSION TRANSACTION READ WRITE` inside a transaction: it only applies to the
    // transactions that follow, the open one stays read-only. Every session makes itself read-only again before
    // it starts, so the next session on the same connection (one connection here) still refuses writes and DDL.
    let one = Targets::new(TargetSettings { max_connections_per_target: 1, ..settings() });
    for escape in ["SET SESSION TRANSACTION READ WRITE", "SET SESSION tx_read_only = 0"] {
        let rw = one.execute("my-writes-one", &spec, escape).await;
        assert!(!matches!(rw, Err(TargetError::ReadOnlyViolation(_))), "{escape}: {rw:?}");
        assert_read_only(&one, "my-writes-one", &spec, ["DELETE FROM items", "DROP TABLE items"]).await;
    }
    drop(one);
    assert_eq!(checksum(&mut admin).await, before);
    assert_eq!(table_count(&mut admin).await, 1);
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn stacked_statements_cannot_run() {
    let db = MyDb::create().await;
    let mut admin = db.admin_with(ITEMS).await;
    let before = checksum(&mut admin).await;
    let targets = Targets::new(settings());
    let spec = db.spec();
    let stacked = ["COMMIT; DELETE FROM items", "SELECT 1; DELETE FROM items", "SELECT 1; DROP TABLE items"];
    common::assert_stacked_refused(&targets, "my-stack", &spec, &stacked, None).await;
    // Ending the transaction in one call does not make the next call writable.
    targets.execute("my-stack", &spec, "COMMIT").await.unwrap();
    assert_read_only(&targets, "my-stack", &spec, ["DELETE FROM items"]).await;
    assert_eq!(checksum(&mut admin).await, before);
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn timeout_stops_the_statement_on_the_server() {
    let db = MyDb::create().await;
    let spec = db.spec();
    let targets = common::assert_stopped_at_limit("my-timeout", &spec, "SELECT SLEEP(10)").await;
    common::assert_serves(&targets, "my-timeout", &spec).await;
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn connection_failures_are_reported() {
    common::assert_connection_failures::<MySqlConnection>("my").await;
}

#[tokio::test]
async fn schema_lists_tables_columns_and_comments() {
    let db = MyDb::create().await;
    db.admin_with(
        "CREATE TABLE customers (
                 id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL COMMENT 'Full name', note TEXT
             ) COMMENT 'People who buy';
             INSERT INTO customers (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');
             ANALYZE TABLE customers;
             CREATE TABLE order_lines (order_id INT, line INT, amount DECIMAL(10,2) NOT NULL, PRIMARY KEY (order_id, line));
             CREATE VIEW big_customers AS SELECT id, name FROM customers WHERE id > 1;",
    )
    .await;
    let targets = Targets::new(settings());
    let spec = db.spec();
    let schema = targets.schema("my-schema", &spec).await.unwrap();
    let names: Vec<&str> = schema.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["big_customers", "customers", "order_lines"]);
    let customers = &schema.tables[1];
    assert_eq!(customers.comment.as_deref(), Some("People who buy"));
    assert!(customers.row_count.is_some());
    let cols: Vec<(&str, bool, bool)> =
        customers.columns.iter().map(|c| (c.name.as_str(), c.nullable, c.primary)).collect();
    assert_eq!(cols, vec![("id", false, true), ("name", false, false), ("note", true, false)]);
    // MariaDB and MySQL 5.7 print a display width (`bigint(20)`), MySQL 8 does not.
    assert!(customers.columns[0].data_type.starts_with("bigint"), "{}", customers.columns[0].data_type);
    assert_eq!(customers.columns[1].data_type, "varchar(100)");
    assert_eq!(customers.columns[1].comment.as_deref(), Some("Full name"));
    assert_eq!(schema.tables[2].columns.iter().filter(|c| c.primary).count(), 2);
    assert_eq!(schema.tables[0].kind, TableKind::View);
    assert_eq!(schema.tables[0].comment, None);

    let info = targets.test("my-schema", &spec).await.unwrap();
    assert!(info.version.starts_with("MariaDB ") || info.version.starts_with("MySQL "), "{}", info.version);
    assert_eq!(info.tables_count, 3);
    // root holds every privilege.
    assert!(info.warnings.iter().any(|w| w.contains("administrative")), "{:?}", info.warnings);
    assert!(info.warnings.iter().any(|w| w.contains("change data")), "{:?}", info.warnings);
    drop(targets);
    db.drop_db().await;
}

#[tokio::test]
async fn schema_lists_foreign_keys_in_column_order() {
    let db = MyDb::create().await;
    let other = format!("{}_other", db.name);
    db.admin_with(&format!(
        "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL COMMENT 'Full name') COMMENT 'People who buy';
             CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL,
                 CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id));
             CREATE TABLE order_lines (order_id INT, line INT, PRIMARY KEY (line, order_id),
                 FOREIGN KEY (order_id) REFERENCES orders (id));
             -- Composite, in another order than the columns of either table.
             CREATE TABLE shipments (id INT PRIMARY KEY, order_id INT NOT NULL, line INT NOT NULL,
                 FOREIGN KEY (line, order_id) REFERENCES order_lines (line, order_id));
             INSERT INTO customers VALUES (1, 'a'), (2, 'b');
             ANALYZE TABLE customers;
             -- A key into another database cannot be named like the tables of this one: left out.
             CREATE DATABASE {other};
             CREATE TABLE {other}.carriers (id INT PRIMARY KEY);
             ALTER TABLE shipments ADD COLUMN carrier_id INT, ADD FOREIGN KEY (carrier_id) REFERENCES {other}.carriers (id);"
    ))
    .await;
    let targets = Targets::new(settings());
    let schema = targets.schema("my-fk", &db.spec()).await.unwrap();
    let table = |name: &str| schema.tables.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name}"));
    let keys = |name: &str| -> Vec<(String, String, String)> {
        table(name)
            .foreign_keys
            .iter()
            .map(|fk| (fk.columns.join(","), fk.referenced_table.clone(), fk.referenced_columns.join(",")))
            .collect()
    };
    let key = |c: &str, t: &str, r: &str| (c.to_owned(), t.to_owned(), r.to_owned());
    assert_eq!(keys("orders"), vec![key("customer_id", "customers", "id")]);
    assert_eq!(keys("order_lines"), vec![key("order_id", "orders", "id")]);
    assert_eq!(keys("shipments"), vec![key("line,order_id", "order_lines", "line,order_id")]);
    assert!(keys("customers").is_empty());
    // Comments and estimates come with the keys.
    assert_eq!(table("customers").comment.as_deref(), Some("People who buy"));
    assert_eq!(table("customers").columns[1].comment.as_deref(), Some("Full name"));
    assert_eq!(table("customers").row_count, Some(2));
    drop(targets);
    db.drop_db().await;
    let mut server = MySqlConnection::connect(&common::mysql_url()).await.unwrap();
    server.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE {other}"))).await.unwrap();
}
