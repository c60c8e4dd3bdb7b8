//! Helpers shared by the integration tests: real servers from the QUERYGPT_TEST_* variables, one fresh database
//! per test.

#![allow(dead_code)]

use querygpt_common::Driver;
use querygpt_common::config::SecretString;
use querygpt_common::netguard::NetworkPolicy;
use querygpt_targets::{TargetSettings, TargetSpec};
use sqlx::{Connection, Executor, MySqlConnection, PgConnection};
use std::time::Duration;

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

fn with_database(url: &str, database: &str) -> String {
    let mut url = url::Url::parse(url).expect("test database URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

pub fn unique_name() -> String {
    format!("qg_t_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh PostgreSQL database, dropped by [`PgDb::drop_db`].
pub struct PgDb {
    pub name: String,
}

impl PgDb {
    pub async fn create() -> Self {
        let name = unique_name();
        let mut admin = PgConnection::connect(&pg_url()).await.expect("connect to the test PostgreSQL");
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
        PgDb { name }
    }

    pub fn spec(&self) -> TargetSpec {
        spec_for(Driver::Postgresql, &pg_url(), &self.name)
    }

    /// An ordinary read-write connection, for fixtures and for checking what the tests did.
    pub async fn admin(&self) -> PgConnection {
        PgConnection::connect(&with_database(&pg_url(), &self.name)).await.expect("connect to the test database")
    }

    pub async fn drop_db(self) {
        let mut admin = PgConnection::connect(&pg_url()).await.expect("connect to the test PostgreSQL");
        admin
            .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
            .await
            .expect("drop database");
    }
}

/// A fresh MySQL/MariaDB database, dropped by [`MyDb::drop_db`].
pub struct MyDb {
    pub name: String,
}

impl MyDb {
    pub async fn create() -> Self {
        let name = unique_name();
        let mut admin = MySqlConnection::connect(&mysql_url()).await.expect("connect to the test MySQL");
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create database");
        MyDb { name }
    }

    pub fn spec(&self) -> TargetSpec {
        spec_for(Driver::Mysql, &mysql_url(), &self.name)
    }

    pub async fn admin(&self) -> MySqlConnection {
        MySqlConnection::connect(&with_database(&mysql_url(), &self.name)).await.expect("connect to the test database")
    }

    pub async fn drop_db(self) {
        let mut admin = MySqlConnection::connect(&mysql_url()).await.expect("connect to the test MySQL");
        admin
            .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {}", self.name)))
            .await
            .expect("drop database");
    }
}
