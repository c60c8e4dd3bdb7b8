//! Helpers shared by the integration tests: real servers from the QUERYGPT_TEST_* variables, one fresh database
//! per test, and the checks that every driver's tests make.

#![allow(dead_code)]

use querygpt_common::Driver;
use querygpt_common::config::SecretString;
use querygpt_common::netguard::NetworkPolicy;
use querygpt_targets::{QueryOutput, TargetError, TargetSettings, TargetSpec, Targets};
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection, Executor, MySqlConnection, PgConnection};
use std::marker::PhantomData;
use std::path::Path;
use std::time::{Duration, Instant};

pub fn pg_url() -> String {
    std::env::var("QUERYGPT_TEST_PG_URL").unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

pub fn mysql_url() -> String {
    std::env::var("QUERYGPT_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// Short limits so that failures show quickly.
pub fn settings() -> TargetSettings {
    TargetSettings {
        statement_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(3),
        row_cap: 100,
        max_result_bytes: 1 << 20,
        // The test databases listen on loopback, which the default policy refuses.
        network: NetworkPolicy { allow_loopback: true, allow_private: false },
        ..TargetSettings::default()
    }
}

/// A spec pointing at `database` on the server of `url`.
pub fn spec_for(driver: Driver, url: &str, database: &str) -> TargetSpec {
    let url = url::Url::parse(url).expect("test database URL");
    TargetSpec {
        driver,
        host: url.host_str().map(str::to_owned),
        port: url.port(),
        username: Some(url.username().to_owned()).filter(|u| !u.is_empty()),
        password: url.password().map(SecretString::new),
        database: database.to_owned(),
    }
}

/// A spec pointing at the SQLite file `path`.
pub fn sqlite_spec(path: &Path) -> TargetSpec {
    TargetSpec {
        driver: Driver::Sqlite,
        host: None,
        port: None,
        username: None,
        password: None,
        database: path.to_string_lossy().into_owned(),
    }
}

/// `url` with its database replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let mut url = url::Url::parse(url).expect("test database URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

pub fn unique_name() -> String {
    format!("qg_t_{}", uuid::Uuid::new_v4().simple())
}

/// A test server, named by the type of its connections.
pub trait Server: Connection {
    const DRIVER: Driver;

    /// The server's admin URL.
    fn url() -> String;

    /// Drops the database `name`, closing the connections still open to it where the server can.
    fn drop_database(name: &str) -> String;
}

impl Server for PgConnection {
    const DRIVER: Driver = Driver::Postgresql;

    fn url() -> String {
        pg_url()
    }

    fn drop_database(name: &str) -> String {
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    }
}

impl Server for MySqlConnection {
    const DRIVER: Driver = Driver::Mysql;

    fn url() -> String {
        mysql_url()
    }

    fn drop_database(name: &str) -> String {
        format!("DROP DATABASE IF EXISTS {name}")
    }
}

/// A fresh database on the server `C`, dropped by [`TestDb::drop_db`].
pub struct TestDb<C> {
    pub name: String,
    server: PhantomData<C>,
}

/// A fresh PostgreSQL database.
pub type PgDb = TestDb<PgConnection>;

/// A fresh MySQL/MariaDB database.
pub type MyDb = TestDb<MySqlConnection>;

impl<C: Server> TestDb<C>
where
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    pub async fn create() -> Self {
        let name = unique_name();
        let mut admin = C::connect(&C::url()).await.expect("connect to the test server");
        admin.execute(AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
        TestDb { name, server: PhantomData }
    }

    pub fn spec(&self) -> TargetSpec {
        spec_for(C::DRIVER, &C::url(), &self.name)
    }

    /// An ordinary read-write connection, for fixtures and for checking what the tests did.
    pub async fn admin(&self) -> C {
        C::connect(&with_database(&C::url(), &self.name)).await.expect("connect to the test database")
    }

    /// An [admin](TestDb::admin) connection that has run the `fixture` statements.
    pub async fn admin_with(&self, fixture: &str) -> C {
        let mut admin = self.admin().await;
        admin.execute(AssertSqlSafe(fixture.to_owned())).await.expect("fixture");
        admin
    }

    pub async fn drop_db(self) {
        let mut admin = C::connect(&C::url()).await.expect("connect to the test server");
        admin.execute(AssertSqlSafe(C::drop_database(&self.name))).await.expect("drop database");
    }
}

/// A result without end (PostgreSQL, SQLite).
pub const ENDLESS: &str = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r";

/// Runs `sql`, whose result has more than `cap` rows (the row cap of `targets`), and expects its first `cap` rows,
/// marked truncated.
pub async fn assert_cut_at_cap(targets: &Targets, key: &str, spec: &TargetSpec, sql: &str, cap: usize) -> QueryOutput {
    let out = targets.execute(key, spec, sql).await.unwrap();
    assert_eq!(out.rows.len(), cap);
    assert!(out.truncated);
    out
}

/// Runs `sql`, which returns no row, and expects the names of its columns all the same.
pub async fn assert_columns_without_rows(targets: &Targets, key: &str, spec: &TargetSpec, sql: &str, columns: &[&str]) {
    let empty = targets.execute(key, spec, sql).await.unwrap();
    assert_eq!(empty.columns, columns);
    assert!(empty.rows.is_empty());
}

/// Runs each statement through `targets` and expects the read-only session to refuse it.
pub async fn assert_read_only<S: AsRef<str>>(
    targets: &Targets,
    key: &str,
    spec: &TargetSpec,
    statements: impl IntoIterator<Item = S>,
) {
    for sql in statements {
        let sql = sql.as_ref();
        let result = targets.execute(key, spec, sql).await;
        assert!(matches!(result, Err(TargetError::ReadOnlyViolation(_))), "{sql}: {result:?}");
    }
}

/// Runs each string of several statements and expects it to fail as a whole, before any of them ran, with a
/// message that says so (contains `complaint`) when one is given.
pub async fn assert_stacked_refused(
    targets: &Targets,
    key: &str,
    spec: &TargetSpec,
    stacked: &[&str],
    complaint: Option<&str>,
) {
    for sql in stacked {
        match targets.execute(key, spec, sql).await {
            Err(TargetError::QueryFailed(msg)) => assert!(complaint.is_none_or(|c| msg.contains(c)), "{sql}: {msg}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
}

/// Runs `slow` (a statement of several seconds) under a 500 ms limit and expects a `Timeout` well before the
/// statement would have ended. Returns the `Targets` it ran through.
pub async fn assert_stopped_at_limit(key: &str, spec: &TargetSpec, slow: &str) -> Targets {
    let targets = Targets::new(TargetSettings { statement_timeout: Duration::from_millis(500), ..settings() });
    let started = Instant::now();
    let result = targets.execute(key, spec, slow).await;
    assert!(matches!(result, Err(TargetError::Timeout(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    targets
}

/// The connection `key` answers a query.
pub async fn assert_serves(targets: &Targets, key: &str, spec: &TargetSpec) {
    let next = targets.execute(key, spec, "SELECT 2 AS two").await.unwrap();
    assert_eq!(next.rows[0]["two"], json!(2));
}

/// A server that does not answer is reported quickly as a failed connection, and so is a refused login, whose
/// password the message must not show.
pub async fn assert_connection_failures<C: Server>(key: &str) {
    let targets = Targets::new(TargetSettings { connect_timeout: Duration::from_secs(1), ..settings() });
    let mut unreachable = spec_for(C::DRIVER, &C::url(), "test");
    unreachable.host = Some("127.0.0.1".into());
    unreachable.port = Some(1);
    let started = Instant::now();
    let result = targets.test(&format!("{key}-down"), &unreachable).await;
    assert!(matches!(result, Err(TargetError::ConnectFailed(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(3));

    let mut bad_login = spec_for(C::DRIVER, &C::url(), "test");
    bad_login.username = Some("no_such_user_qg".into());
    bad_login.password = Some(SecretString::new("hunter2-no_such_user_qg"));
    let err = targets.execute(&format!("{key}-bad-login"), &bad_login, "SELECT 1").await.unwrap_err();
    assert!(matches!(err, TargetError::ConnectFailed(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}
