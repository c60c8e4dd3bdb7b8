//! SQLite sessions: the file opened read-only with `query_only`, `ATTACH` and extension loading disabled, the
//! statement compiled first to prove it is exactly one statement that does not write, and a progress handler that
//! interrupts it at the deadline or when the call is abandoned.

use crate::error::{TargetError, transport_error};
use crate::output::{self, Collector, QueryOutput};
use crate::schema::{ColumnInfo, DbSchema, ForeignKeyColumn, TableHeader, TableKind, attach_foreign_keys, push_column};
use crate::session::{Checkout, Limits, Session, pool_options, run_session};
use crate::{ServerInfo, TargetSettings};
use futures::TryStreamExt;
use libsqlite3_sys as ffi;
use serde_json::Value;
use sqlx::sqlite::{LockedSqliteHandle, Sqlite, SqliteConnectOptions, SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, Column, ConnectOptions, Executor, Row, SqlSafeStr, Statement, TypeInfo, ValueRef};
use std::collections::HashMap;
use std::ffi::{CStr, c_int};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::Semaphore;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 32;

/// Virtual machine steps between two checks of the deadline (a few microseconds of work).
const PROGRESS_STEPS: c_int = 1000;

/// Resolves a SQLite path to the canonical file the pool will open (symlinks followed). With a `root`, relative
/// paths are taken inside it and the result must stay inside it.
pub(crate) async fn resolve_path(database: &str, root: Option<&Path>) -> Result<PathBuf, TargetError> {
    let raw = database.trim();
    if raw.is_empty() {
        return Err(TargetError::InvalidSpec("a database file path is required".into()));
    }
    let candidate = match root {
        Some(root) => root.join(raw),
        None => PathBuf::from(raw),
    };
    let canonical_root = match root {
        Some(root) => Some(tokio::fs::canonicalize(root).await.map_err(|e| {
            TargetError::PathNotAllowed(format!("the directory for database files is unavailable: {e}"))
        })?),
        None => None,
    };
    let resolved = match tokio::fs::canonicalize(&candidate).await {
        Ok(path) => path,
        // Do not tell which files exist outside the allowed directory.
        Err(_) if root.is_some_and(|r| !querygpt_common::paths::lexically_inside(&candidate, r)) => {
            return Err(TargetError::PathNotAllowed(format!("{raw} is outside the allowed directory")));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(TargetError::ConnectFailed(format!("the database file {raw} does not exist")));
        }
        Err(e) => return Err(TargetError::ConnectFailed(format!("cannot open {raw}: {e}"))),
    };
    if let Some(root) = &canonical_root
        && !resolved.starts_with(root)
    {
        return Err(TargetError::PathNotAllowed(format!("{raw} is outside the allowed directory")));
    }
    let metadata = tokio::fs::metadata(&resolved)
        .await
        .map_err(|e| TargetError::ConnectFailed(format!("cannot open {raw}: {e}")))?;
    if !metadata.is_file() {
        return Err(TargetError::ConnectFailed(format!("{raw} is not a file")));
    }
    Ok(resolved)
}

pub(crate) fn pool(path: &Path, settings: &TargetSettings) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        .busy_timeout(settings.statement_timeout)
        .pragma("query_only", "ON")
        // Functions in views and triggers of an untrusted file must not run with side effects.
        .pragma("trusted_schema", "OFF")
        .statement_cache_capacity(STATEMENT_CACHE)
        .disable_statement_logging();
    pool_options(settings)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                harden(conn).await?;
                Ok(())
            })
        })
        .connect_lazy_with(options)
}

/// Per connection: no `ATTACH` (it would read, or create, files outside the allowed one), no extension loading,
/// defensive mode (no writes to the schema or shadow tables even through pragmas).
async fn harden(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    let (off, on): (c_int, c_int) = (0, 1);
    // SAFETY: `db` is this connection's handle, used by no other thread while `handle` is locked; these calls only
    // change per-connection settings. `sqlite3_db_config` takes (int, int*) for both options; a null pointer means
    // the caller does not want the new value back.
    unsafe {
        ffi::sqlite3_limit(db, ffi::SQLITE_LIMIT_ATTACHED, 0);
        ffi::sqlite3_db_config(db, ffi::SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, off, std::ptr::null_mut::<c_int>());
        ffi::sqlite3_db_config(db, ffi::SQLITE_DBCONFIG_DEFENSIVE, on, std::ptr::null_mut::<c_int>());
    }
    Ok(())
}

pub(crate) async fn execute(
    pool: &SqlitePool,
    slots: &Arc<Semaphore>,
    limits: &Limits,
    sql: &str,
) -> Result<QueryOutput, TargetError> {
    run_session(pool, slots, limits, Armed { statement: Some(sql) }, async |co| {
        // Always ended: sqlx resets the statement, even one whose rows were not all read.
        (run(co, sql, limits).await.map(Collector::finish), true)
    })
    .await
}

pub(crate) async fn schema(
    pool: &SqlitePool,
    slots: &Arc<Semaphore>,
    limits: &Limits,
) -> Result<DbSchema, TargetError> {
    run_session(pool, slots, limits, Armed { statement: None }, async |co| (read_schema(co, limits).await, true)).await
}

pub(crate) async fn server_info(
    pool: &SqlitePool,
    slots: &Arc<Semaphore>,
    limits: &Limits,
) -> Result<ServerInfo, TargetError> {
    run_session(pool, slots, limits, Armed { statement: None }, async |co| (read_server_info(co, limits).await, true))
        .await
}

/// A SQLite session: the connection armed against writes and overruns, and, for a user statement, the statement
/// checked first. There is no transaction to end.
struct Armed<'a> {
    statement: Option<&'a str>,
}

impl Session<Sqlite> for Armed<'_> {
    /// Prepares the connection for one call: `query_only` again (a statement may have turned it off), a progress
    /// handler that interrupts at the deadline or once the call is abandoned, and, for a user statement, the check
    /// that it is one statement that does not write.
    async fn begin(&self, co: &mut Checkout<Sqlite>, limits: &Limits) -> Result<(), TargetError> {
        let interrupt = Arc::new(AtomicBool::new(false));
        co.interrupt_on_abandon(Arc::clone(&interrupt));
        let deadline = Instant::now() + limits.statement_timeout;
        // Everything below runs on this thread with the handle locked: one hop to sqlx's connection thread, not one
        // per step.
        let mut handle = co.lock_handle().await.map_err(transport_error)?;
        exec(&mut handle, c"PRAGMA query_only = ON")?;
        handle.set_progress_handler(PROGRESS_STEPS, move || {
            !interrupt.load(Ordering::Acquire) && Instant::now() < deadline
        });
        match self.statement {
            Some(sql) => inspect(&mut handle, sql, limits),
            None => Ok(()),
        }
    }

    /// Nothing to end: the connection is only marked reusable.
    async fn end(&self, co: &mut Checkout<Sqlite>) {
        co.reusable = true;
    }
}

async fn read_server_info(conn: &mut SqliteConnection, limits: &Limits) -> Result<ServerInfo, TargetError> {
    let version: String =
        sqlx::query_scalar("SELECT sqlite_version()").fetch_one(&mut *conn).await.map_err(|e| classify(e, limits))?;
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| classify(e, limits))?;
    // The file is opened read-only: no login, nothing to warn about.
    Ok(ServerInfo {
        version: format!("SQLite {version}"),
        tables_count: usize::try_from(count).unwrap_or(0),
        warnings: Vec::new(),
    })
}

/// Runs `sql`, a fixed statement that returns no rows, on the locked handle.
fn exec(handle: &mut LockedSqliteHandle<'_>, sql: &CStr) -> Result<(), TargetError> {
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is locked for this thread; `sql` is NUL-terminated; no callback and no error buffer are passed.
    let rc = unsafe { ffi::sqlite3_exec(db, sql.as_ptr(), None, std::ptr::null_mut(), std::ptr::null_mut()) };
    if rc == ffi::SQLITE_OK {
        return Ok(());
    }
    Err(TargetError::QueryFailed(last_error(db)))
}

/// The message of the last failed call on `db`, a handle locked for this thread.
fn last_error(db: *mut ffi::sqlite3) -> String {
    // SAFETY: `sqlite3_errmsg` returns a NUL-terminated string owned by the connection, copied at once.
    unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }.to_string_lossy().into_owned()
}

/// Compiles `sql` without running it and refuses anything but exactly one statement that leaves the database
/// unchanged. (sqlx would otherwise run every statement of a `;`-separated string, one after the other.)
///
/// Compiling is CPU work of the same order as parsing the SQL, done on the caller's thread while the handle is
/// locked away from sqlx's worker.
fn inspect(handle: &mut LockedSqliteHandle<'_>, sql: &str, limits: &Limits) -> Result<(), TargetError> {
    let db = handle.as_raw_handle().as_ptr();
    let first = compile(db, sql, limits)?;
    let Some((read_only, rest)) = first else {
        return Err(TargetError::QueryFailed("the statement is empty".into()));
    };
    if !rest.trim().is_empty() && compile(db, rest, limits)?.is_some() {
        return Err(TargetError::QueryFailed("only one statement can run at a time".into()));
    }
    if !read_only {
        return Err(TargetError::ReadOnlyViolation("the statement would modify the database".into()));
    }
    Ok(())
}

/// Compiles the first statement of `sql`: `None` when there is none (only blanks or comments), else whether it is
/// read-only and the text after it.
fn compile<'s>(db: *mut ffi::sqlite3, sql: &'s str, limits: &Limits) -> Result<Option<(bool, &'s str)>, TargetError> {
    let len = c_int::try_from(sql.len()).map_err(|_| TargetError::QueryFailed("the statement is too long".into()))?;
    let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
    let mut tail: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: `db` is locked for this thread (see `inspect`); SQLite reads at most `len` bytes of `sql`, which
    // outlives the call, and sets `stmt` (finalized below) and `tail` (a pointer into `sql`).
    let rc = unsafe { ffi::sqlite3_prepare_v2(db, sql.as_ptr().cast(), len, &mut stmt, &mut tail) };
    if rc != ffi::SQLITE_OK {
        let message = last_error(db);
        return Err(match rc & 0xff {
            ffi::SQLITE_INTERRUPT => TargetError::Timeout(limits.statement_timeout),
            _ => TargetError::QueryFailed(message),
        });
    }
    if stmt.is_null() {
        return Ok(None);
    }
    // SAFETY: `stmt` is the valid statement just compiled; it is finalized exactly once.
    let read_only = unsafe {
        let read_only = ffi::sqlite3_stmt_readonly(stmt) != 0;
        ffi::sqlite3_finalize(stmt);
        read_only
    };
    // SAFETY: on success `tail` points into `sql`, at or after its start and at most at its end.
    let consumed = usize::try_from(unsafe { tail.offset_from(sql.as_ptr().cast()) }).unwrap_or(sql.len());
    Ok(Some((read_only, sql.get(consumed..).unwrap_or(""))))
}

async fn run(co: &mut Checkout<Sqlite>, sql: &str, limits: &Limits) -> Result<Collector, TargetError> {
    let mut collector = Collector::new(limits.row_cap, limits.max_result_bytes);
    {
        let mut rows = sqlx::query(AssertSqlSafe(sql.to_owned())).persistent(false).fetch(&mut **co);
        while let Some(row) = rows.try_next().await.map_err(|e| classify(e, limits))? {
            if collector.needs_columns() {
                collector.set_columns(row.columns().iter().map(|c| c.name()));
            }
            let values = (0..row.len()).map(|i| value(&row, i)).collect();
            if !collector.push(values)? {
                break;
            }
        }
    }
    if collector.needs_columns()
        && let Ok(statement) = co.prepare(AssertSqlSafe(sql.to_owned()).into_sql_str()).await
    {
        collector.set_columns(statement.columns().iter().map(|c| c.name()));
    }
    Ok(collector)
}

fn classify(err: sqlx::Error, limits: &Limits) -> TargetError {
    let sqlx::Error::Database(db) = &err else {
        return transport_error(err);
    };
    let primary = db.code().and_then(|c| c.parse::<c_int>().ok()).map(|c| c & 0xff);
    match primary {
        Some(ffi::SQLITE_READONLY) => TargetError::ReadOnlyViolation(db.message().to_owned()),
        Some(ffi::SQLITE_INTERRUPT) => TargetError::Timeout(limits.statement_timeout),
        _ => TargetError::QueryFailed(db.message().to_owned()),
    }
}

/// Column `index` of `row` as JSON, by the storage class of the value itself (SQLite columns are dynamically
/// typed: a `DATE` column may hold text, numbers or nothing).
fn value(row: &SqliteRow, index: usize) -> Value {
    let Ok(raw) = row.try_get_raw(index) else {
        return Value::Null;
    };
    if raw.is_null() {
        return Value::Null;
    }
    let decoded = match raw.type_info().name() {
        "INTEGER" => row.try_get_unchecked::<i64, _>(index).ok().map(Value::from),
        "REAL" => row.try_get_unchecked::<f64, _>(index).ok().map(output::float),
        "BLOB" => row.try_get_unchecked::<Vec<u8>, _>(index).ok().map(|b| output::bytes(&b)),
        _ => row.try_get_unchecked::<String, _>(index).ok().map(Value::String),
    };
    decoded.unwrap_or(Value::Null)
}

async fn read_schema(conn: &mut SqliteConnection, limits: &Limits) -> Result<DbSchema, TargetError> {
    let err = |e| classify(e, limits);
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, type FROM sqlite_schema \
         WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    let has_stats: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_stat1')",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(err)?;
    // The first number of a table's `stat` is its row count as of the last ANALYZE.
    let row_counts: HashMap<String, i64> = if has_stats {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT tbl, MAX(CAST(stat AS INTEGER)) FROM sqlite_stat1 WHERE stat IS NOT NULL GROUP BY tbl",
        )
        .fetch_all(&mut *conn)
        .await
        .map_err(err)?
        .into_iter()
        .collect()
    } else {
        HashMap::new()
    };
    let mut schema = DbSchema::default();
    // Primary key columns of each table in key order: a foreign key that names no columns references them.
    let mut primary_keys: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for (name, kind) in tables {
        let columns: Vec<(String, String, bool, i64)> =
            match sqlx::query_as("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1) ORDER BY cid")
                .bind(&name)
                .fetch_all(&mut *conn)
                .await
            {
                Ok(columns) => columns,
                // A view over a missing table cannot be described; the rest of the schema still can.
                Err(sqlx::Error::Database(e)) => {
                    tracing::debug!(table = %name, error = %e.message(), "skipping a table that cannot be described");
                    continue;
                }
                Err(e) => return Err(err(e)),
            };
        let kind = if kind == "view" { TableKind::View } else { TableKind::Table };
        let row_count = row_counts.get(&name).copied().filter(|_| kind == TableKind::Table);
        for (column, data_type, not_null, pk) in columns {
            if pk > 0 {
                primary_keys.entry(name.clone()).or_default().push((pk, column.clone()));
            }
            let header = TableHeader { name: name.clone(), kind, comment: None, row_count };
            // SQLite lets INTEGER PRIMARY KEY hold NULL only in name: it is the rowid.
            let info =
                ColumnInfo { name: column, data_type, nullable: !not_null && pk == 0, primary: pk > 0, comment: None };
            push_column(&mut schema, header, info);
        }
    }
    for key in primary_keys.values_mut() {
        key.sort();
    }
    attach_foreign_keys(&mut schema, read_foreign_keys(conn, limits).await?);
    resolve_implied_columns(&mut schema, &primary_keys);
    Ok(schema)
}

/// The column pairs of every foreign key of every table, in one query, in declaration order (`pragma
/// foreign_key_list` numbers a table's keys from the last declared). `to` is NULL for `REFERENCES parent` without
/// columns (the parent's primary key): the column is then left empty for [`resolve_implied_columns`].
async fn read_foreign_keys(conn: &mut SqliteConnection, limits: &Limits) -> Result<Vec<ForeignKeyColumn>, TargetError> {
    let rows: Vec<(String, i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT m.name, f.id, f.\"table\", f.\"from\", f.\"to\" \
         FROM sqlite_schema m JOIN pragma_foreign_key_list(m.name) f \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
         ORDER BY m.name, f.id DESC, f.seq",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| classify(e, limits))?;
    Ok(rows
        .into_iter()
        .map(|(table, id, referenced_table, column, referenced_column)| ForeignKeyColumn {
            table,
            key: id.to_string(),
            column,
            referenced_table,
            referenced_column: referenced_column.unwrap_or_default(),
        })
        .collect())
}

/// `REFERENCES parent` without columns references the parent's primary key: its columns replace the ones the
/// catalog left empty. A key that cannot be resolved (the parent has no primary key of that size) is dropped.
fn resolve_implied_columns(schema: &mut DbSchema, primary_keys: &HashMap<String, Vec<(i64, String)>>) {
    for table in &mut schema.tables {
        table.foreign_keys.retain_mut(|fk| {
            if fk.referenced_columns.iter().all(|c| !c.is_empty()) {
                return true;
            }
            match primary_keys.get(&fk.referenced_table) {
                Some(key) if key.len() == fk.columns.len() => {
                    fk.referenced_columns = key.iter().map(|(_, column)| column.clone()).collect();
                    true
                }
                _ => false,
            }
        });
    }
}
