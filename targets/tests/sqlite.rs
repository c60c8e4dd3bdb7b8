//! SQLite sessions, the allowed-directory rule and the demo database.

mod common;

use common::{assert_read_only, settings, sqlite_spec};
use querygpt_targets::demo::ensure_demo_database;
use querygpt_targets::{TableKind, TargetError, TargetSettings, Targets};
use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Executor, SqliteConnection};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A read-write connection to a new database file, for fixtures.
async fn fixture(path: &Path, sql: &str) {
    let options = SqliteConnectOptions::new().filename(path).create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(sql.to_owned())).await.unwrap();
    conn.close().await.unwrap();
}

/// A new database file `name`, made with `sql`, in a temporary directory of its own.
async fn database(name: &str, sql: &str) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fixture(&path, sql).await;
    (dir, path)
}

async fn checksum(path: &Path) -> (i64, String) {
    let options = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    let sum =
        sqlx::query_as("SELECT count(*), group_concat(id || ':' || name, ',') FROM items").fetch_one(&mut conn).await;
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_schema").fetch_one(&mut conn).await.unwrap();
    let (count, concat): (i64, String) = sum.unwrap();
    (count, format!("{concat}|{tables}"))
}

const ITEMS: &str = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL);
    INSERT INTO items (name, price) VALUES ('a', 1.5), ('b', 2.25), ('c', NULL);";

#[tokio::test]
async fn select_decodes_by_storage_class() {
    let (_dir, path) = database(
        "typed.db",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, anything, d DATE, flag BOOLEAN, amount DECIMAL(10,2), data BLOB);
         INSERT INTO t VALUES (1, 42, '2024-02-29', 1, 12.5, X'DEADBEEF');
         INSERT INTO t VALUES (2, 'text', 20240229, 0, '12.50', NULL);
         INSERT INTO t VALUES (3, 2.5, NULL, NULL, NULL, X'');",
    )
    .await;
    let targets = Targets::new(settings());
    let out = targets.execute("lite-typed", &sqlite_spec(&path), "SELECT * FROM t ORDER BY id").await.unwrap();
    assert_eq!(out.columns, vec!["id", "anything", "d", "flag", "amount", "data"]);
    let rows: Vec<serde_json::Value> = out.rows.into_iter().map(serde_json::Value::Object).collect();
    assert_eq!(
        rows,
        vec![
            json!({"id": 1, "anything": 42, "d": "2024-02-29", "flag": 1, "amount": 12.5, "data": "3q2+7w=="}),
            json!({"id": 2, "anything": "text", "d": 20240229, "flag": 0, "amount": 12.5, "data": null}),
            json!({"id": 3, "anything": 2.5, "d": null, "flag": null, "amount": null, "data": ""}),
        ]
    );
    let dup = targets.execute("lite-typed", &sqlite_spec(&path), "SELECT 1 AS n, 2 AS n").await.unwrap();
    assert_eq!(dup.columns, vec!["n", "n_2"]);
    assert_eq!(dup.rows[0]["n_2"], json!(2));
}

#[tokio::test]
async fn writes_attach_and_extensions_are_refused() {
    let (dir, path) = database("items.db", ITEMS).await;
    let other = dir.path().join("other.db");
    fixture(&other, "CREATE TABLE secrets (s TEXT); INSERT INTO secrets VALUES ('s3cret');").await;
    let before = checksum(&path).await;
    let targets = Targets::new(settings());
    let spec = sqlite_spec(&path);
    let writes = [
        "INSERT INTO items (name) VALUES ('evil')",
        "UPDATE items SET name = 'evil'",
        "DELETE FROM items",
        "CREATE TABLE evil (id INTEGER)",
        "CREATE TEMP TABLE evil (id INTEGER)",
        "DROP TABLE items",
        "ALTER TABLE items ADD COLUMN evil INTEGER",
        "CREATE INDEX evil ON items(name)",
        "PRAGMA user_version = 7",
        "WITH x AS (SELECT 1) INSERT INTO items (name) SELECT 'evil' FROM x",
    ];
    assert_read_only(&targets, "lite-writes", &spec, writes).await;
    // Turning `query_only` off changes nothing: each call sets it again, and the file is open read-only anyway.
    let _ = targets.execute("lite-writes", &spec, "PRAGMA query_only = OFF").await;
    assert_read_only(&targets, "lite-writes", &spec, ["DELETE FROM items"]).await;
    let attach = format!("ATTACH DATABASE '{}' AS other", other.display());
    let attached = targets.execute("lite-writes", &spec, &attach).await;
    assert!(matches!(attached, Err(TargetError::QueryFailed(_))), "{attached:?}");
    let read_other = targets.execute("lite-writes", &spec, "SELECT s FROM other.secrets").await;
    assert!(read_other.is_err(), "{read_other:?}");
    let extension = targets.execute("lite-writes", &spec, "SELECT load_extension('/tmp/nothing.so')").await;
    assert!(matches!(extension, Err(TargetError::QueryFailed(_))), "{extension:?}");
    assert_eq!(checksum(&path).await, before);
}

#[tokio::test]
async fn stacked_statements_cannot_run() {
    let (_dir, path) = database("items.db", ITEMS).await;
    let before = checksum(&path).await;
    let targets = Targets::new(settings());
    let spec = sqlite_spec(&path);
    let stacked = ["SELECT 1; DELETE FROM items", "COMMIT; DELETE FROM items", "SELECT 1; SELECT 2"];
    common::assert_stacked_refused(&targets, "lite-stack", &spec, &stacked, Some("one statement")).await;
    // A trailing semicolon or comment is still one statement.
    let one = targets.execute("lite-stack", &spec, "SELECT count(*) AS n FROM items; -- done").await.unwrap();
    assert_eq!(one.rows[0]["n"], json!(3));
    assert_eq!(checksum(&path).await, before);
}

/// A statement that runs for minutes.
const COUNT_TO_A_BILLION: &str =
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000) SELECT count(*) FROM r";

#[tokio::test]
async fn timeout_interrupts_the_statement() {
    let (_dir, path) = database("slow.db", ITEMS).await;
    let targets = Targets::new(TargetSettings { statement_timeout: Duration::from_millis(300), ..settings() });
    let spec = sqlite_spec(&path);
    let started = Instant::now();
    let result = targets.execute("lite-slow", &spec, COUNT_TO_A_BILLION).await;
    assert!(matches!(result, Err(TargetError::Timeout(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    // The interrupted connection serves the next call.
    let next = targets.execute("lite-slow", &spec, "SELECT count(*) AS n FROM items").await.unwrap();
    assert_eq!(next.rows[0]["n"], json!(3));

    // An abandoned call is interrupted too: the next call on the only connection does not wait for it.
    let patient = Targets::new(TargetSettings {
        statement_timeout: Duration::from_secs(30),
        max_connections_per_target: 1,
        ..settings()
    });
    let abandoned =
        tokio::time::timeout(Duration::from_millis(200), patient.execute("lite-slow", &spec, COUNT_TO_A_BILLION)).await;
    assert!(abandoned.is_err());
    let after = tokio::time::timeout(Duration::from_secs(2), patient.execute("lite-slow", &spec, "SELECT 1 AS one"))
        .await
        .expect("the abandoned statement was not interrupted")
        .unwrap();
    assert_eq!(after.rows[0]["one"], json!(1));
}

#[tokio::test]
async fn row_cap_truncates_after_one_extra_row() {
    let (_dir, path) = database("cap.db", ITEMS).await;
    let targets = Targets::new(TargetSettings { row_cap: 5, ..settings() });
    let spec = sqlite_spec(&path);
    let started = Instant::now();
    common::assert_cut_at_cap(&targets, "lite-cap", &spec, common::ENDLESS, 5).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    let exact = targets
        .execute(
            "lite-cap",
            &spec,
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r",
        )
        .await
        .unwrap();
    assert!(!exact.truncated);
    let empty = "SELECT id, name FROM items WHERE id < 0";
    common::assert_columns_without_rows(&targets, "lite-cap", &spec, empty, &["id", "name"]).await;
}

#[tokio::test]
async fn paths_outside_the_root_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    fixture(&root.path().join("inside.db"), ITEMS).await;
    let outside_db = outside.path().join("outside.db");
    fixture(&outside_db, ITEMS).await;
    let targets = Targets::new(TargetSettings { sqlite_root: Some(root.path().to_path_buf()), ..settings() });

    // Relative paths resolve inside the root.
    let mut relative = sqlite_spec(Path::new("inside.db"));
    let ok = targets.execute("lite-root", &relative, "SELECT count(*) AS n FROM items").await.unwrap();
    assert_eq!(ok.rows[0]["n"], json!(3));

    let escapes = [
        outside_db.clone(),
        root.path().join("..").join(outside.path().file_name().unwrap()).join("outside.db"),
        root.path().join("../../etc/passwd"),
        outside.path().join("missing.db"),
    ];
    for path in escapes {
        let result = targets.execute("lite-root-bad", &sqlite_spec(&path), "SELECT 1").await;
        assert!(matches!(result, Err(TargetError::PathNotAllowed(_))), "{}: {result:?}", path.display());
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&outside_db, root.path().join("link.db")).unwrap();
        relative.database = "link.db".into();
        let result = targets.execute("lite-root-link", &relative, "SELECT 1").await;
        assert!(matches!(result, Err(TargetError::PathNotAllowed(_))), "{result:?}");
    }
    relative.database = "missing.db".into();
    let missing = targets.execute("lite-root-missing", &relative, "SELECT 1").await;
    assert!(matches!(missing, Err(TargetError::ConnectFailed(_))), "{missing:?}");
}

#[tokio::test]
async fn schema_lists_tables_and_views() {
    let (_dir, path) = database(
        "schema.db",
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, note TEXT);
         CREATE TABLE lines (order_id INTEGER, line INTEGER, amount DECIMAL(10,2) NOT NULL, PRIMARY KEY (order_id, line));
         CREATE VIEW named AS SELECT id, name FROM customers WHERE name <> '';
         CREATE VIEW broken AS SELECT id FROM customers;
         INSERT INTO customers (name) VALUES ('a'), ('b');
         CREATE INDEX customers_name ON customers(name);
         PRAGMA legacy_alter_table = ON;
         ALTER TABLE customers RENAME TO clients;
         ANALYZE;",
    )
    .await;
    let targets = Targets::new(settings());
    let schema = targets.schema("lite-schema", &sqlite_spec(&path)).await.unwrap();
    let names: Vec<&str> = schema.tables.iter().map(|t| t.name.as_str()).collect();
    // `broken` and `named` point at a table that was renamed under them: they cannot be described and are left out.
    assert_eq!(names, vec!["clients", "lines"]);
    let clients = &schema.tables[0];
    assert_eq!(clients.kind, TableKind::Table);
    assert_eq!(clients.row_count, Some(2));
    let cols: Vec<(&str, &str, bool, bool)> =
        clients.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str(), c.nullable, c.primary)).collect();
    assert_eq!(
        cols,
        vec![("id", "INTEGER", false, true), ("name", "VARCHAR(100)", false, false), ("note", "TEXT", true, false)]
    );
    assert_eq!(schema.tables[1].columns.iter().filter(|c| c.primary).count(), 2);
    let info = targets.test("lite-schema", &sqlite_spec(&path)).await.unwrap();
    assert!(info.version.starts_with("SQLite 3."), "{}", info.version);
    assert_eq!(info.tables_count, 4);
}

#[tokio::test]
async fn schema_lists_foreign_keys_in_column_order() {
    let (_dir, path) = database(
        "keys.db",
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES Customers (id));
         CREATE TABLE order_lines (order_id INTEGER REFERENCES orders, line INTEGER, PRIMARY KEY (line, order_id));
         -- Two keys, listed as declared; the composite one names no columns: the primary key, in its order.
         CREATE TABLE shipments (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, line INTEGER NOT NULL,
             customer_id INTEGER REFERENCES customers (id),
             FOREIGN KEY (line, order_id) REFERENCES order_lines);
         -- Keys into a table that does not exist, or naming no columns of a table without a primary key.
         CREATE TABLE notes (order_id INTEGER REFERENCES missing (id), customer_id INTEGER REFERENCES plain);
         CREATE TABLE plain (x INTEGER);
         INSERT INTO customers (name) VALUES ('a'), ('b'), ('c');
         ANALYZE;",
    )
    .await;
    let targets = Targets::new(settings());
    let schema = targets.schema("lite-fk", &sqlite_spec(&path)).await.unwrap();
    let table = |name: &str| schema.tables.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name}"));
    let keys = |name: &str| -> Vec<(String, String, String)> {
        table(name)
            .foreign_keys
            .iter()
            .map(|fk| (fk.columns.join(","), fk.referenced_table.clone(), fk.referenced_columns.join(",")))
            .collect()
    };
    let key = |c: &str, t: &str, r: &str| (c.to_owned(), t.to_owned(), r.to_owned());
    // `Customers` is how the key spells it; the table is listed as `customers`.
    assert_eq!(keys("orders"), vec![key("customer_id", "customers", "id")]);
    assert_eq!(keys("order_lines"), vec![key("order_id", "orders", "id")]);
    assert_eq!(
        keys("shipments"),
        vec![key("customer_id", "customers", "id"), key("line,order_id", "order_lines", "line,order_id")]
    );
    assert!(keys("notes").is_empty());
    assert_eq!(table("customers").row_count, Some(3));
}

#[tokio::test]
async fn demo_database_is_created_once_and_answers_questions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("demo.db");
    ensure_demo_database(&path).await.unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    // Idempotent: a second call leaves the file alone; no temporary files remain.
    ensure_demo_database(&path).await.unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), modified);
    let files: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(files.len(), 1);

    let targets = Targets::new(TargetSettings { row_cap: 1000, ..settings() });
    let spec = sqlite_spec(&path);
    let schema = targets.schema("demo", &spec).await.unwrap();
    let names: Vec<&str> = schema.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["categories", "customers", "employees", "order_items", "orders", "products", "regions"]);
    let orders = schema.tables.iter().find(|t| t.name == "orders").unwrap();
    assert!(orders.row_count.unwrap_or(0) > 3000);
    // The joins the model needs are declared.
    let keys: Vec<(&str, &str, &str)> = schema
        .tables
        .iter()
        .flat_map(|t| t.foreign_keys.iter().map(move |fk| (t.name.as_str(), fk)))
        .map(|(t, fk)| (t, fk.columns[0].as_str(), fk.referenced_table.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("customers", "region_id", "regions"),
            ("employees", "region_id", "regions"),
            ("employees", "manager_id", "employees"),
            ("order_items", "order_id", "orders"),
            ("order_items", "product_id", "products"),
            ("orders", "customer_id", "customers"),
            ("orders", "employee_id", "employees"),
            ("products", "category_id", "categories"),
        ]
    );

    let monthly = targets
        .execute(
            "demo",
            &spec,
            "SELECT strftime('%Y-%m', o.order_date) AS month, c.name AS category, round(sum(i.quantity * i.unit_price * (1 - i.discount)), 2) AS revenue
             FROM orders o JOIN order_items i ON i.order_id = o.id JOIN products p ON p.id = i.product_id
             JOIN categories c ON c.id = p.category_id
             WHERE o.status NOT IN ('cancelled', 'returned')
             GROUP BY month, category ORDER BY month, category",
        )
        .await
        .unwrap();
    assert_eq!(monthly.rows.len(), 24 * 8);
    assert!(monthly.rows.iter().all(|r| r["revenue"].as_f64().unwrap_or(0.0) > 0.0));
    // Year-end peak: December sells more than February of the same season.
    let total = |month: &str| -> f64 {
        monthly.rows.iter().filter(|r| r["month"] == json!(month)).filter_map(|r| r["revenue"].as_f64()).sum()
    };
    assert!(total("2025-12") > total("2026-02") * 1.3, "{} vs {}", total("2025-12"), total("2026-02"));
    // Totals are consistent with their lines.
    let mismatched = targets
        .execute(
            "demo",
            &spec,
            "SELECT count(*) AS n FROM orders o WHERE abs(o.total_amount - o.shipping_fee - (SELECT sum(quantity * unit_price * (1 - discount)) FROM order_items WHERE order_id = o.id)) > 0.01",
        )
        .await
        .unwrap();
    assert_eq!(mismatched.rows[0]["n"], json!(0));
}
