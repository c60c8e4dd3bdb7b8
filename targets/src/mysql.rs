//! MySQL and MariaDB sessions: read-only session and transaction, the server's statement time limit, one prepared
//! statement over the binary protocol, always `ROLLBACK`.

use crate::error::{TargetError, transport_error};
use crate::output::{self, Collector, QueryOutput};
use crate::schema::{
    ColumnInfo, DbSchema, ForeignKeyColumn, TableHeader, TableKind, attach_foreign_keys, comment, push_column,
};
use crate::session::{Checkout, Limits, Session, pool_options, run_session};
use crate::{ServerInfo, TargetSettings, TargetSpec, database_name};
use futures::TryStreamExt;
use querygpt_common::config::SecretString;
use serde_json::Value;
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlRow};
use sqlx::{AssertSqlSafe, Column, ConnectOptions, Executor, Row, SqlSafeStr, Statement, TypeInfo, ValueRef};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// Prepared statements kept per connection (ours, plus user statements described after returning no rows).
const STATEMENT_CACHE: usize = 32;

/// Which server answers; they name the statement time limit differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    MariaDb,
    MySql,
}

impl Flavor {
    fn of(version: &str) -> Self {
        if version.to_ascii_lowercase().contains("mariadb") { Flavor::MariaDb } else { Flavor::MySql }
    }
}

pub(crate) fn pool(spec: &TargetSpec, address: IpAddr, settings: &TargetSettings) -> Result<MySqlPool, TargetError> {
    let mut options = MySqlConnectOptions::new()
        // The address the network policy checked, not the name (which could resolve elsewhere by now).
        .host(&address.to_string())
        .port(spec.port.unwrap_or(3306))
        .username(spec.username.as_deref().filter(|u| !u.is_empty()).unwrap_or("root"))
        .database(database_name(spec)?)
        // Keep the server's own SQL mode: `||` means what it means on this server, not string concatenation.
        .pipes_as_concat(false)
        .statement_cache_capacity(STATEMENT_CACHE)
        .disable_statement_logging();
    if let Some(password) = spec.password.as_ref().map(SecretString::expose).filter(|p| !p.is_empty()) {
        options = options.password(password);
    }
    Ok(pool_options::<MySql>(settings)
        // Read-only from the first statement on; `ReadOnly::begin` sets it again because a statement may change it.
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                Ok(())
            })
        })
        .connect_lazy_with(options))
}

pub(crate) async fn execute(
    pool: &MySqlPool,
    slots: &Arc<Semaphore>,
    limits: &Limits,
    flavor: &OnceLock<Flavor>,
    sql: &str,
) -> Result<QueryOutput, TargetError> {
    run_session(pool, slots, limits, ReadOnly { flavor }, async |co| {
        let (result, drained) = run(co, sql, limits).await;
        (result.map(Collector::finish), drained)
    })
    .await
}

pub(crate) async fn schema(
    pool: &MySqlPool,
    slots: &Arc<Semaphore>,
    limits: &Limits,
    flavor: &OnceLock<Flavor>,
) -> Result<DbSchema, TargetError> {
    run_session(pool, slots, limits, ReadOnly { flavor }, async |co| (read_schema(co, limits).await, true)).await
}

pub(crate) async fn server_info(
    pool: &MySqlPool,
    slots: &Arc<Semaphore>,
    limits: &Limits,
    flavor: &OnceLock<Flavor>,
) -> Result<ServerInfo, TargetError> {
    run_session(pool, slots, limits, ReadOnly { flavor }, async |co| (read_server_info(co, limits).await, true)).await
}

async fn version(co: &mut Checkout<MySql>, limits: &Limits) -> Result<String, TargetError> {
    sqlx::query_scalar("SELECT VERSION()").fetch_one(&mut **co).await.map_err(|e| classify(e, limits))
}

/// A MySQL or MariaDB session: read-only session and transaction with the server's time limits, ended by
/// `ROLLBACK`. The flavor of the server is learnt on the first session.
struct ReadOnly<'a> {
    flavor: &'a OnceLock<Flavor>,
}

impl Session<MySql> for ReadOnly<'_> {
    /// Makes the session read-only, sets its time limits and opens a read-only transaction, in one round trip of our
    /// own fixed statements. The session-level READ ONLY matters: DDL commits the open transaction implicitly and
    /// would then run outside it, but a read-only session refuses it.
    async fn begin(&self, co: &mut Checkout<MySql>, limits: &Limits) -> Result<(), TargetError> {
        let flavor = match self.flavor.get() {
            Some(f) => *f,
            None => {
                let v = version(co, limits).await?;
                *self.flavor.get_or_init(|| Flavor::of(&v))
            }
        };
        let secs = limits.statement_secs_ceil();
        let limit = match flavor {
            Flavor::MariaDb => format!("max_statement_time = {:.3}", limits.statement_timeout.as_secs_f64()),
            Flavor::MySql => format!("max_execution_time = {}", limits.statement_millis()),
        };
        let setup = format!(
            "SET SESSION TRANSACTION READ ONLY; \
             SET SESSION {limit}, SESSION lock_wait_timeout = {secs}, SESSION innodb_lock_wait_timeout = {secs}; \
             START TRANSACTION READ ONLY"
        );
        sqlx::raw_sql(AssertSqlSafe(setup)).execute(&mut **co).await.map_err(|e| classify(e, limits))?;
        Ok(())
    }

    /// Ends the session and releases the user-level locks a statement may have taken: `GET_LOCK` locks are
    /// server-wide and survive ROLLBACK, so `SELECT GET_LOCK('x', 10)` would otherwise stay held (blocking other
    /// clients of the server) for as long as the pooled connection lives. A server without `RELEASE_ALL_LOCKS`
    /// (before MySQL 5.7, MariaDB 10.5) fails it: the connection is then closed instead of being reused.
    async fn end(&self, co: &mut Checkout<MySql>) {
        if sqlx::raw_sql("ROLLBACK; DO RELEASE_ALL_LOCKS()").execute(&mut **co).await.is_ok() {
            co.reusable = true;
        }
    }
}

/// Streams the statement's rows into a collector. The flag says whether the connection was read to the end of the
/// result (false when the collector stopped early).
async fn run(co: &mut Checkout<MySql>, sql: &str, limits: &Limits) -> (Result<Collector, TargetError>, bool) {
    let mut collector = Collector::new(limits.row_cap, limits.max_result_bytes);
    {
        // `query` always prepares (COM_STMT_PREPARE takes exactly one statement) and executes over the binary
        // protocol, even without parameters; the text protocol, which allows several statements, is never used.
        let mut rows = sqlx::query(AssertSqlSafe(sql.to_owned())).persistent(false).fetch(&mut **co);
        loop {
            let row = match rows.try_next().await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => return (Err(classify(e, limits)), true),
            };
            if collector.needs_columns() {
                collector.set_columns(row.columns().iter().map(|c| c.name()));
            }
            let values = (0..row.len()).map(|i| value(&row, i)).collect();
            match collector.push(values) {
                Ok(true) => {}
                Ok(false) => return (Ok(collector), false),
                Err(e) => return (Err(e), false),
            }
        }
    }
    if collector.needs_columns() {
        // No row carried the column names: the prepare response lists them.
        if let Ok(statement) = co.prepare(AssertSqlSafe(sql.to_owned()).into_sql_str()).await {
            collector.set_columns(statement.columns().iter().map(|c| c.name()));
        }
    }
    (Ok(collector), true)
}

fn classify(err: sqlx::Error, limits: &Limits) -> TargetError {
    let sqlx::Error::Database(db) = &err else {
        return transport_error(err);
    };
    let message = db.message().to_owned();
    match db.try_downcast_ref::<MySqlDatabaseError>().map(MySqlDatabaseError::number) {
        // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, ER_OPTION_PREVENTS_STATEMENT (--read-only server)
        Some(1792 | 1290) => TargetError::ReadOnlyViolation(message),
        // ER_STATEMENT_TIMEOUT (MariaDB), ER_QUERY_TIMEOUT (MySQL), lock wait timeout, query interrupted
        Some(1969 | 3024 | 1205 | 1317) => TargetError::Timeout(limits.statement_timeout),
        _ => TargetError::QueryFailed(message),
    }
}

/// Column `index` of `row` as JSON, by the column's wire type.
fn value(row: &MySqlRow, index: usize) -> Value {
    let Ok(raw) = row.try_get_raw(index) else {
        return Value::Null;
    };
    let bytes = || row.try_get_unchecked::<&[u8], _>(index).ok();
    // sqlx also calls the zero date NULL (a DATE/DATETIME/TIMESTAMP sent as an empty value); only a value that has
    // no bytes at all is a real NULL.
    if raw.is_null() && bytes().is_none() {
        return Value::Null;
    }
    let info = raw.type_info();
    let ty = info.name().to_owned();
    // The type names sqlx gives string columns (`VARCHAR` or `VARBINARY`, `TEXT` or `BLOB`...) follow the BINARY
    // column flag, which every `_bin` collation sets too: MariaDB's JSON (LONGTEXT COLLATE utf8mb4_bin) reads as
    // `LONGBLOB`. Only the `binary` character set (collation 63) means bytes; sqlx's own `str` check tests that.
    let is_text = <str as sqlx::Type<MySql>>::compatible(&info);
    let decoded = match ty.as_str() {
        "BOOLEAN" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "YEAR" => {
            row.try_get_unchecked::<i64, _>(index).ok().map(Value::from)
        }
        "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED" | "BIGINT UNSIGNED" => {
            row.try_get_unchecked::<u64, _>(index).ok().map(Value::from)
        }
        "FLOAT" => row.try_get_unchecked::<f32, _>(index).ok().map(output::float32),
        "DOUBLE" => row.try_get_unchecked::<f64, _>(index).ok().map(output::float),
        "DECIMAL" => bytes().map(|b| output::decimal(&String::from_utf8_lossy(b))),
        "DATE" | "DATETIME" | "TIMESTAMP" => bytes().and_then(|b| datetime(b, ty == "TIMESTAMP")).map(Value::String),
        "TIME" => bytes().and_then(time).map(Value::String),
        "BIT" => bytes().map(|b| Value::from(b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))),
        "JSON" => bytes().map(|b| output::json_text(&String::from_utf8_lossy(b))),
        "ENUM" | "SET" => bytes().map(|b| Value::String(String::from_utf8_lossy(b).into_owned())),
        "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "BINARY" | "VARBINARY" | "TINYBLOB"
        | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => bytes()
            .map(|b| if is_text { Value::String(String::from_utf8_lossy(b).into_owned()) } else { output::bytes(b) }),
        "GEOMETRY" => bytes().map(output::bytes),
        "NULL" => Some(Value::Null),
        _ => bytes().map(output::unknown),
    };
    decoded.unwrap_or(Value::Null)
}

/// Binary DATE/DATETIME/TIMESTAMP: a length byte, then year (2 bytes LE), month, day, [hour, minute, second,
/// [microseconds (4 bytes LE)]]. Length 0 is the zero date, which MySQL prints as `0000-00-00 00:00:00`.
/// TIMESTAMP values arrive in the session time zone, which sqlx sets to UTC.
fn datetime(b: &[u8], utc: bool) -> Option<String> {
    let (&len, body) = b.split_first()?;
    let body = body.get(..usize::from(len))?;
    let mut out = match body {
        [] => "0000-00-00".to_owned(),
        [y0, y1, m, d, ..] => format!("{:04}-{m:02}-{d:02}", u16::from_le_bytes([*y0, *y1])),
        _ => return None,
    };
    if let [_, _, _, _, h, mi, s, rest @ ..] = body {
        out.push_str(&format!("T{h:02}:{mi:02}:{s:02}"));
        if let [a, b, c, d] = rest {
            let micros = u32::from_le_bytes([*a, *b, *c, *d]);
            if micros != 0 {
                out.push_str(&format!(".{micros:06}"));
            }
        }
        if utc {
            out.push('Z');
        }
    }
    Some(out)
}

/// Binary TIME: a length byte, then sign, days (4 bytes LE), hours, minutes, seconds, [microseconds]. TIME is a
/// duration in MySQL (-838:59:59 to 838:59:59): printed as `[-]H:MM:SS[.ffffff]` with total hours.
fn time(b: &[u8]) -> Option<String> {
    let (&len, body) = b.split_first()?;
    let body = body.get(..usize::from(len))?;
    match body {
        [] => Some("00:00:00".into()),
        [neg, d0, d1, d2, d3, h, m, s, rest @ ..] => {
            let days = u32::from_le_bytes([*d0, *d1, *d2, *d3]);
            let hours = u64::from(days) * 24 + u64::from(*h);
            let mut out = format!("{}{hours:02}:{m:02}:{s:02}", if *neg != 0 { "-" } else { "" });
            if let [a, b, c, d] = rest {
                let micros = u32::from_le_bytes([*a, *b, *c, *d]);
                if micros != 0 {
                    out.push_str(&format!(".{micros:06}"));
                }
            }
            Some(out)
        }
        _ => None,
    }
}

/// Text of a catalog column: information_schema columns are binary strings on some servers.
fn text(row: &MySqlRow, index: usize) -> Option<String> {
    let raw = row.try_get_raw(index).ok()?;
    if raw.is_null() {
        return None;
    }
    row.try_get_unchecked::<&[u8], _>(index).ok().map(|b| String::from_utf8_lossy(b).into_owned())
}

async fn read_schema(co: &mut Checkout<MySql>, limits: &Limits) -> Result<DbSchema, TargetError> {
    let rows = sqlx::query(
        "SELECT t.TABLE_NAME, t.TABLE_TYPE, CAST(t.TABLE_ROWS AS SIGNED), t.TABLE_COMMENT, \
                c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE, c.COLUMN_KEY, c.COLUMN_COMMENT \
         FROM information_schema.TABLES t \
         JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME \
         WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE <> 'SEQUENCE' \
         ORDER BY t.TABLE_NAME, c.ORDINAL_POSITION",
    )
    .fetch_all(&mut **co)
    .await
    .map_err(|e| classify(e, limits))?;
    let mut schema = DbSchema::default();
    for row in rows {
        let kind = if text(&row, 1).as_deref() == Some("VIEW") { TableKind::View } else { TableKind::Table };
        let header = TableHeader {
            name: text(&row, 0).unwrap_or_default(),
            kind,
            // Views carry the comment `VIEW`, which says nothing.
            comment: comment(text(&row, 3)).filter(|_| kind == TableKind::Table),
            row_count: match kind {
                TableKind::Table => row.try_get_unchecked::<Option<i64>, _>(2).ok().flatten(),
                TableKind::View => None,
            },
        };
        let column = ColumnInfo {
            name: text(&row, 4).unwrap_or_default(),
            data_type: text(&row, 5).unwrap_or_default(),
            nullable: text(&row, 6).as_deref() == Some("YES"),
            primary: text(&row, 7).as_deref() == Some("PRI"),
            comment: comment(text(&row, 8)),
        };
        push_column(&mut schema, header, column);
    }
    attach_foreign_keys(&mut schema, read_foreign_keys(co, limits).await?);
    Ok(schema)
}

/// The column pairs of every foreign key of this database's tables that references a table of this database, in
/// one query (a key into another database could not be named the way the listing names tables).
async fn read_foreign_keys(co: &mut Checkout<MySql>, limits: &Limits) -> Result<Vec<ForeignKeyColumn>, TargetError> {
    let rows = sqlx::query(
        "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME \
         FROM information_schema.KEY_COLUMN_USAGE \
         WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_SCHEMA = DATABASE() \
           AND REFERENCED_TABLE_NAME IS NOT NULL \
         ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION",
    )
    .fetch_all(&mut **co)
    .await
    .map_err(|e| classify(e, limits))?;
    Ok(rows
        .iter()
        .map(|row| ForeignKeyColumn {
            table: text(row, 0).unwrap_or_default(),
            key: text(row, 1).unwrap_or_default(),
            column: text(row, 2).unwrap_or_default(),
            referenced_table: text(row, 3).unwrap_or_default(),
            referenced_column: text(row, 4).unwrap_or_default(),
        })
        .collect())
}

async fn read_server_info(co: &mut Checkout<MySql>, limits: &Limits) -> Result<ServerInfo, TargetError> {
    let version = version(co, limits).await?;
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE <> 'SEQUENCE'",
    )
    .fetch_one(&mut **co)
    .await
    .map_err(|e| classify(e, limits))?;
    // `10.11.19-MariaDB-0+deb12u1` -> `MariaDB 10.11.19`; `8.0.35` -> `MySQL 8.0.35`
    let number = version.split('-').next().unwrap_or(&version);
    let product = match Flavor::of(&version) {
        Flavor::MariaDb => "MariaDB",
        Flavor::MySql => "MySQL",
    };
    let warnings = privilege_warnings(co, limits).await?;
    Ok(ServerInfo {
        version: format!("{product} {number}"),
        tables_count: usize::try_from(count).unwrap_or(0),
        warnings,
    })
}

/// Privileges of the login beyond reading, global or on this database.
async fn privilege_warnings(co: &mut Checkout<MySql>, limits: &Limits) -> Result<Vec<String>, TargetError> {
    // GRANTEE is `'user'@'host'`; CURRENT_USER() is `user@host`.
    let privileges: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT PRIVILEGE_TYPE FROM ( \
             SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES \
             UNION ALL SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES \
                       WHERE TABLE_SCHEMA = DATABASE()) p \
         WHERE GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
                                SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')",
    )
    .fetch_all(&mut **co)
    .await
    .map_err(|e| classify(e, limits))?;
    Ok(mysql_warnings(&privileges))
}

/// Warnings for the privileges a login holds (names as in `information_schema`).
fn mysql_warnings(privileges: &[String]) -> Vec<String> {
    let has = |wanted: &[&str]| privileges.iter().any(|p| wanted.iter().any(|w| p.eq_ignore_ascii_case(w)));
    let mut warnings = Vec::new();
    if has(&["SUPER", "FILE", "SHUTDOWN", "PROCESS", "RELOAD", "CREATE USER", "GRANT OPTION"]) {
        warnings.push(
            "the login has administrative privileges (SUPER, FILE, GRANT OPTION...): use a login that can only read"
                .into(),
        );
    }
    if has(&["INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "CREATE", "INDEX", "EXECUTE", "CREATE ROUTINE"]) {
        warnings.push("the login may change data or schema (INSERT, UPDATE, DELETE, DROP...)".into());
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_dates_and_times() {
        assert_eq!(datetime(&[0], false).unwrap(), "0000-00-00");
        assert_eq!(datetime(&[4, 0xE8, 0x07, 2, 29], false).unwrap(), "2024-02-29");
        assert_eq!(datetime(&[7, 0xE8, 0x07, 2, 29, 13, 5, 9], true).unwrap(), "2024-02-29T13:05:09Z");
        assert_eq!(
            datetime(&[11, 0xE8, 0x07, 2, 29, 13, 5, 9, 0x40, 0xE2, 0x01, 0], false).unwrap(),
            "2024-02-29T13:05:09.123456"
        );
        assert_eq!(time(&[8, 1, 1, 0, 0, 0, 2, 3, 4]).unwrap(), "-26:03:04");
        assert_eq!(time(&[0]).unwrap(), "00:00:00");
        assert!(time(&[3, 1, 2, 3]).is_none());
    }

    #[test]
    fn flavor_from_version() {
        assert_eq!(Flavor::of("10.11.19-MariaDB-0+deb12u1"), Flavor::MariaDb);
        assert_eq!(Flavor::of("8.0.35"), Flavor::MySql);
    }
}
