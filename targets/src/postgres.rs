//! PostgreSQL sessions: `BEGIN READ ONLY` with local time limits, one statement over the extended protocol,
//! always `ROLLBACK`.

mod decode;

use crate::error::{TargetError, transport_error};
use crate::output::{Collector, QueryOutput};
use crate::schema::{
    ColumnInfo, DbSchema, ForeignKeyColumn, TableHeader, TableKind, attach_foreign_keys, comment, push_column,
};
use crate::session::{Checkout, Limits, Session, pool_options, run_session};
use crate::{ServerInfo, TargetSettings, TargetSpec, database_name};
use futures::TryStreamExt;
use querygpt_common::config::SecretString;
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPool, Postgres};
use sqlx::{AssertSqlSafe, Column, ConnectOptions, Connection, Executor, Row, SqlSafeStr, Statement};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Prepared statements a connection holds at most during one session (each session closes them at its end).
const STATEMENT_CACHE: usize = 32;

/// Relations a user sees: tables, partitioned tables, views, materialized views, foreign tables; no partitions,
/// no system or temporary schemas, only what the login may read.
const RELATION_FILTER: &str = "c.relkind IN ('r', 'p', 'v', 'm', 'f') \
    AND NOT c.relispartition \
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname NOT LIKE 'pg\\_toast%' \
    AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
    AND has_table_privilege(c.oid, 'SELECT')";

pub(crate) fn pool(spec: &TargetSpec, address: IpAddr, settings: &TargetSettings) -> Result<PgPool, TargetError> {
    let options = PgConnectOptions::new_without_pgpass()
        // The address the network policy checked, not the name (which could resolve elsewhere by now).
        .host(&address.to_string())
        .port(spec.port.unwrap_or(5432))
        .username(spec.username.as_deref().filter(|u| !u.is_empty()).unwrap_or("postgres"))
        // Always explicit: with no password sqlx would fall back to this process's own PGPASSWORD.
        .password(spec.password.as_ref().map(SecretString::expose).unwrap_or(""))
        .database(database_name(spec)?)
        .application_name("querygpt")
        .statement_cache_capacity(STATEMENT_CACHE)
        // Any transaction this login opens is read-only unless it asks otherwise; ours never does.
        .options([("default_transaction_read_only", "on")])
        .disable_statement_logging();
    Ok(pool_options(settings).connect_lazy_with(options))
}

pub(crate) async fn execute(
    pool: &PgPool,
    slots: &Arc<Semaphore>,
    limits: &Limits,
    sql: &str,
) -> Result<QueryOutput, TargetError> {
    run_session(pool, slots, limits, ReadOnly, async |co| {
        let (result, drained) = run(co, sql, limits).await;
        (result.map(Collector::finish), drained)
    })
    .await
}

pub(crate) async fn schema(pool: &PgPool, slots: &Arc<Semaphore>, limits: &Limits) -> Result<DbSchema, TargetError> {
    run_session(pool, slots, limits, ReadOnly, async |co| (read_schema(co, limits).await, true)).await
}

pub(crate) async fn server_info(
    pool: &PgPool,
    slots: &Arc<Semaphore>,
    limits: &Limits,
) -> Result<ServerInfo, TargetError> {
    run_session(pool, slots, limits, ReadOnly, async |co| (read_server_info(co, limits).await, true)).await
}

/// A PostgreSQL session: `BEGIN READ ONLY` with local time limits, ended by `ROLLBACK`.
struct ReadOnly;

impl Session<Postgres> for ReadOnly {
    /// Opens the read-only transaction and sets its limits, in one round trip of our own fixed statements.
    async fn begin(&self, co: &mut Checkout<Postgres>, limits: &Limits) -> Result<(), TargetError> {
        let ms = limits.statement_millis();
        // Everything after BEGIN is transaction-local: a statement that changes these settings is undone by ROLLBACK.
        let mut setup = format!(
            "BEGIN READ ONLY; SET LOCAL statement_timeout = {ms}; SET LOCAL lock_timeout = {ms}; \
             SET LOCAL idle_in_transaction_session_timeout = {};",
            ms.saturating_add(10_000)
        );
        if co.server_version_num().is_some_and(|v| v >= 140_000) {
            // Lets the server notice within a second that an abandoned session's connection was closed.
            setup.push_str(" SET LOCAL client_connection_check_interval = 1000;");
        }
        // A first query takes the transaction's snapshot, after which its READ ONLY can no longer be switched off
        // (`SET TRANSACTION READ WRITE` fails with "transaction read-write mode must be set before any query").
        setup.push_str(" SELECT 1;");
        sqlx::raw_sql(AssertSqlSafe(setup)).execute(&mut **co).await.map_err(|e| classify(e, limits))?;
        Ok(())
    }

    /// Ends the session and, when that worked, closes the statements it prepared so the connection can go back to
    /// the pool. Nothing stays prepared between sessions: a cached plan would outlive a change to the tables it reads
    /// (`cached plan must not change result type`), and one session's statements are no business of the next.
    ///
    /// `DISCARD ALL` then drops what a statement can leave in the session past ROLLBACK: session-level advisory locks
    /// (`pg_advisory_lock(1)` would otherwise stay held, blocking other clients of the database, for as long as the
    /// pooled connection lives), SQL-level `PREPARE`d statements, `WITH HOLD` cursors, `LISTEN`s.
    async fn end(&self, co: &mut Checkout<Postgres>) {
        if co.execute("ROLLBACK").await.is_err() {
            return;
        }
        if co.cached_statements_size() > 0 && co.clear_cached_statements().await.is_err() {
            return;
        }
        if co.execute("DISCARD ALL").await.is_err() {
            return;
        }
        co.reusable = true;
    }
}

/// Streams the statement's rows into a collector. The flag says whether the connection was read to the end of the
/// result (false when the collector stopped early).
///
/// The statement is first prepared (Parse and Describe; the server refuses more than one command in it), then bound
/// and executed: the extended protocol only. It is a *named* statement on purpose: describing a result whose types
/// sqlx has not seen on this connection yet (enums, domains, extension types) makes sqlx look them up with a
/// simple query, which destroys the unnamed statement before it can be bound ("unnamed prepared statement does not
/// exist"). [`ReadOnly::end`] closes it again, and its columns give the names even when no row comes back.
async fn run(co: &mut Checkout<Postgres>, sql: &str, limits: &Limits) -> (Result<Collector, TargetError>, bool) {
    let mut collector = Collector::new(limits.row_cap, limits.max_result_bytes);
    let statement = match co.prepare(AssertSqlSafe(sql.to_owned()).into_sql_str()).await {
        Ok(statement) => statement,
        Err(e) => return (Err(classify(e, limits)), true),
    };
    collector.set_columns(statement.columns().iter().map(|c| c.name()));
    let mut rows = statement.query().fetch(&mut **co);
    loop {
        let row = match rows.try_next().await {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => return (Err(classify(e, limits)), true),
        };
        let values = (0..row.len()).map(|i| decode::value(&row, i)).collect();
        match collector.push(values) {
            Ok(true) => {}
            Ok(false) => return (Ok(collector), false),
            Err(e) => return (Err(e), false),
        }
    }
    (Ok(collector), true)
}

fn classify(err: sqlx::Error, limits: &Limits) -> TargetError {
    let sqlx::Error::Database(db) = &err else {
        return transport_error(err);
    };
    match db.code().as_deref() {
        // read_only_sql_transaction
        Some("25006") => TargetError::ReadOnlyViolation(db.message().to_owned()),
        // query_canceled (statement_timeout), lock_not_available (lock_timeout)
        Some("57014") | Some("55P03") => TargetError::Timeout(limits.statement_timeout),
        _ => {
            let hint = db.try_downcast_ref::<PgDatabaseError>().and_then(PgDatabaseError::hint);
            match hint {
                Some(hint) => TargetError::QueryFailed(format!("{} (hint: {hint})", db.message())),
                None => TargetError::QueryFailed(db.message().to_owned()),
            }
        }
    }
}

async fn read_schema(co: &mut Checkout<Postgres>, limits: &Limits) -> Result<DbSchema, TargetError> {
    let sql = format!(
        "SELECT n.nspname::text AS schema_name, c.relname::text AS table_name, c.relkind::text AS kind, \
                obj_description(c.oid, 'pg_class') AS table_comment, \
                CASE WHEN c.relkind IN ('r', 'p', 'm') AND c.reltuples >= 0 THEN c.reltuples::float8 END AS estimate, \
                a.attname::text AS column_name, format_type(a.atttypid, a.atttypmod) AS column_type, \
                NOT a.attnotnull AS nullable, col_description(c.oid, a.attnum) AS column_comment, \
                COALESCE(a.attnum = ANY(pk.conkey), false) AS is_primary \
         FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
         LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p' \
         WHERE {RELATION_FILTER} \
         ORDER BY n.nspname, c.relname, a.attnum"
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut **co).await.map_err(|e| classify(e, limits))?;
    let mut schema = DbSchema::default();
    for row in rows {
        let get = |e: sqlx::Error| classify(e, limits);
        let namespace: String = row.try_get("schema_name").map_err(get)?;
        let table: String = row.try_get("table_name").map_err(get)?;
        let kind: String = row.try_get("kind").map_err(get)?;
        let estimate: Option<f64> = row.try_get("estimate").map_err(get)?;
        let header = TableHeader {
            name: qualified(namespace, table),
            kind: if kind == "v" { TableKind::View } else { TableKind::Table },
            comment: comment(row.try_get("table_comment").map_err(get)?),
            // reltuples is a float estimate far below i64's range.
            row_count: estimate.map(|e| e.round() as i64),
        };
        let column = ColumnInfo {
            name: row.try_get("column_name").map_err(get)?,
            data_type: row.try_get("column_type").map_err(get)?,
            nullable: row.try_get("nullable").map_err(get)?,
            primary: row.try_get("is_primary").map_err(get)?,
            comment: comment(row.try_get("column_comment").map_err(get)?),
        };
        push_column(&mut schema, header, column);
    }
    attach_foreign_keys(&mut schema, read_foreign_keys(co, limits).await?);
    Ok(schema)
}

/// The column pairs of every foreign key of the listed relations, in one query. A key on a partitioned table that
/// references a partitioned table also has a copy per partition (`conparentid` set): only the key as declared counts.
async fn read_foreign_keys(co: &mut Checkout<Postgres>, limits: &Limits) -> Result<Vec<ForeignKeyColumn>, TargetError> {
    let sql = format!(
        "SELECT n.nspname::text AS schema_name, c.relname::text AS table_name, con.oid::text AS key, \
                a.attname::text AS column_name, rn.nspname::text AS referenced_schema, \
                rc.relname::text AS referenced_table, ra.attname::text AS referenced_column \
         FROM pg_catalog.pg_constraint con \
         JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_catalog.pg_class rc ON rc.oid = con.confrelid \
         JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace \
         CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(attnum, refattnum, position) \
         JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum \
         JOIN pg_catalog.pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.refattnum \
         WHERE con.contype = 'f' AND con.conparentid = 0 AND {RELATION_FILTER} \
         ORDER BY n.nspname, c.relname, con.conname, con.oid, k.position"
    );
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(&mut **co).await.map_err(|e| classify(e, limits))?;
    let get = |e: sqlx::Error| classify(e, limits);
    rows.iter()
        .map(|row| {
            Ok(ForeignKeyColumn {
                table: qualified(row.try_get("schema_name").map_err(get)?, row.try_get("table_name").map_err(get)?),
                key: row.try_get("key").map_err(get)?,
                column: row.try_get("column_name").map_err(get)?,
                referenced_table: qualified(
                    row.try_get("referenced_schema").map_err(get)?,
                    row.try_get("referenced_table").map_err(get)?,
                ),
                referenced_column: row.try_get("referenced_column").map_err(get)?,
            })
        })
        .collect()
}

/// A relation's name as SQL on this database writes it: bare in `public`, `schema.table` elsewhere.
fn qualified(namespace: String, table: String) -> String {
    if namespace == "public" { table } else { format!("{namespace}.{table}") }
}

async fn read_server_info(co: &mut Checkout<Postgres>, limits: &Limits) -> Result<ServerInfo, TargetError> {
    let version: String = sqlx::query_scalar("SELECT current_setting('server_version')")
        .fetch_one(&mut **co)
        .await
        .map_err(|e| classify(e, limits))?;
    let count_sql = format!(
        "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE {RELATION_FILTER}"
    );
    let count: i64 =
        sqlx::query_scalar(AssertSqlSafe(count_sql)).fetch_one(&mut **co).await.map_err(|e| classify(e, limits))?;
    // `15.20 (Debian 15.20-0+deb12u1)` -> `PostgreSQL 15.20`
    let number = version.split_whitespace().next().unwrap_or(&version);
    let warnings = privilege_warnings(co, limits).await?;
    Ok(ServerInfo {
        version: format!("PostgreSQL {number}"),
        tables_count: usize::try_from(count).unwrap_or(0),
        warnings,
    })
}

/// Superuser, role attributes and write privileges of the login: what it could do if every other guard failed.
async fn privilege_warnings(co: &mut Checkout<Postgres>, limits: &Limits) -> Result<Vec<String>, TargetError> {
    let (superuser, creates, writable, server_files): (bool, bool, bool, bool) = sqlx::query_as(
        "SELECT r.rolsuper, r.rolcreaterole OR r.rolcreatedb, \
                EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                          AND n.nspname NOT LIKE 'pg\\_toast%' \
                          AND pg_catalog.has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')), \
                pg_catalog.pg_has_role(current_user, 'pg_execute_server_program', 'USAGE') \
                  OR pg_catalog.pg_has_role(current_user, 'pg_read_server_files', 'USAGE') \
                  OR pg_catalog.pg_has_role(current_user, 'pg_write_server_files', 'USAGE') \
         FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(&mut **co)
    .await
    .map_err(|e| classify(e, limits))?;
    let mut warnings = Vec::new();
    if superuser {
        warnings.push(
            "the login is a superuser: it could run programs and read server files; use a login that can only read"
                .into(),
        );
        return Ok(warnings);
    }
    if server_files {
        warnings.push("the login may read or write server files or run programs (pg_*_server_* roles)".into());
    }
    if creates {
        warnings.push("the login may create roles or databases".into());
    }
    if writable {
        warnings.push("the login may write to some tables (INSERT, UPDATE, DELETE or TRUNCATE)".into());
    }
    Ok(warnings)
}
