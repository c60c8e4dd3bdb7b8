//! The only way QueryGPT reaches a user's database (PostgreSQL, MySQL/MariaDB, SQLite, Redis).
//!
//! [`Targets`] keeps one small connection pool per connection and offers three calls: [`Targets::schema`],
//! [`Targets::test`] and [`Targets::execute`]. The SQL validator runs before `execute`, but this layer does not
//! trust it: every session is read-only on the server itself, runs exactly one prepared statement, is stopped by
//! the server's own time limit, and streams at most `row_cap + 1` rows.
//!
//! | | PostgreSQL | MySQL / MariaDB | SQLite |
//! |---|---|---|---|
//! | read-only | `BEGIN READ ONLY` (+ `default_transaction_read_only` at login) | `SET SESSION TRANSACTION READ ONLY` + `START TRANSACTION READ ONLY` (the session setting also stops DDL, which would commit implicitly) | file opened read-only, `PRAGMA query_only`, `sqlite3_stmt_readonly` checked before running, `ATTACH` disabled |
//! | one statement | extended protocol (a prepared statement holds one command) | binary protocol `COM_STMT_PREPARE` (one statement) | statement tail checked before running |
//! | time limit | `SET LOCAL statement_timeout`, `lock_timeout` | `max_statement_time` (MariaDB) / `max_execution_time` (MySQL), `lock_wait_timeout` | progress handler interrupts at the deadline |
//! | end | `ROLLBACK` | `ROLLBACK` | nothing to end |
//!
//! A session that does not end cleanly (job cancelled, client-side timeout, result truncated with rows still in
//! flight) closes its connection instead of returning it to the pool; the server then rolls back and aborts the
//! statement (PostgreSQL 14+ notices within a second through `client_connection_check_interval`; older servers
//! and MySQL stop it at the statement limit at the latest). A cancelled SQLite statement is interrupted.

pub mod demo;
mod error;
mod mysql;
mod output;
mod postgres;
mod redact;
mod redis;
mod schema;
mod session;
mod sqlite;

pub use error::TargetError;
pub use output::QueryOutput;
pub use redis::{MAX_REDIS_DB, redis_db};
pub use schema::{ColumnInfo, DbSchema, ForeignKey, TableInfo, TableKind};

use querygpt_common::Driver;
use querygpt_common::config::{SecretString, Settings};
use querygpt_common::netguard::NetworkPolicy;
use serde::Serialize;
use session::Limits;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Where a user's database is and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSpec {
    pub driver: Driver,
    /// Host name or IP address (PostgreSQL, MySQL). Unix socket paths are refused.
    pub host: Option<String>,
    /// Default: the driver's standard port.
    pub port: Option<u16>,
    /// Default: `postgres` (PostgreSQL) or `root` (MySQL).
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// Database name; for SQLite the file path (relative paths resolve inside `sqlite_root` when it is set).
    pub database: String,
}

/// What `POST /connections/{id}/test` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    /// Product and version, e.g. `PostgreSQL 15.20`, `MariaDB 10.11.19`, `MySQL 8.0.35`, `SQLite 3.50.4`.
    pub version: String,
    /// Tables and views that [`Targets::schema`] would list.
    pub tables_count: usize,
    /// What the login could do beyond reading (superuser, write or file privileges). The read-only session stops
    /// writes anyway, but half of the defence is the database's own privilege check: operators should connect
    /// with a login that can only read (see the README).
    pub warnings: Vec<String>,
}

/// Limits and pool behaviour of [`Targets`].
#[derive(Debug, Clone)]
pub struct TargetSettings {
    /// Server-side limit of one statement (also bounds lock waits and the wait for a free connection).
    pub statement_timeout: Duration,
    /// Limit for opening a connection (TCP, TLS and login).
    pub connect_timeout: Duration,
    /// Rows returned at most; one more is fetched to know whether the result was truncated.
    pub row_cap: usize,
    /// Approximate JSON bytes of the rows returned at most.
    pub max_result_bytes: usize,
    /// When set, SQLite files must resolve (symlinks followed) inside this directory.
    pub sqlite_root: Option<PathBuf>,
    /// A connection's pool is closed after it has not been used for this long; idle connections close too.
    pub idle_expiry: Duration,
    /// Connections kept to one target at most; more concurrent calls wait (up to `statement_timeout`).
    pub max_connections_per_target: u32,
    /// Which addresses a host may resolve to (the SSRF guard). Pools connect to the checked address.
    pub network: NetworkPolicy,
    /// Keys a Redis schema sample looks at most.
    pub redis_sample_keys: usize,
    /// Time a Redis schema sample may take; the keys seen by then make the schema.
    pub redis_sample_time: Duration,
}

impl Default for TargetSettings {
    fn default() -> Self {
        TargetSettings {
            statement_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            row_cap: 1000,
            max_result_bytes: 8 * 1024 * 1024,
            sqlite_root: None,
            idle_expiry: Duration::from_secs(300),
            max_connections_per_target: 4,
            network: NetworkPolicy::default(),
            redis_sample_keys: 1000,
            redis_sample_time: Duration::from_secs(2),
        }
    }
}

impl TargetSettings {
    /// Defaults with the service's query limits (`worker.query_timeout_secs`, `row_cap`, `max_result_bytes`), its
    /// SQLite directory, its network policy and its Redis sample caps.
    pub fn from_settings(settings: &Settings) -> Self {
        let worker = &settings.worker;
        TargetSettings {
            statement_timeout: Duration::from_secs(worker.query_timeout_secs.max(1)),
            row_cap: worker.row_cap.max(1),
            max_result_bytes: worker.max_result_bytes,
            sqlite_root: Some(settings.sqlite_dir()),
            network: settings.network,
            redis_sample_keys: worker.redis_sample_keys.max(1),
            redis_sample_time: Duration::from_millis(worker.redis_sample_ms.max(1)),
            ..TargetSettings::default()
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            statement_timeout: self.statement_timeout,
            connect_timeout: self.connect_timeout,
            row_cap: self.row_cap,
            max_result_bytes: self.max_result_bytes,
        }
    }
}

/// How long a SQLite file's resolution is trusted before a call resolves its path again. A pool only ever opens the
/// canonical file it was made for, so a file replaced by a symlink meanwhile is never followed; the recheck makes the
/// connection follow its path again within this time, while a busy connection does not pay three file-system calls,
/// each a hop to Tokio's blocking pool, for every statement.
const SQLITE_PATH_RECHECK: Duration = Duration::from_secs(2);

/// Connection pools to users' databases, keyed by connection id.
///
/// A pool is created on first use (concurrent first uses share one), replaced when the connection's spec changes,
/// and closed once idle for `idle_expiry`. Cheap to share behind an `Arc`.
pub struct Targets {
    settings: TargetSettings,
    registry: Mutex<Registry>,
}

struct Registry {
    entries: HashMap<String, Arc<Entry>>,
    last_sweep: Instant,
}

/// One target's pool and what is known about its server.
struct Entry {
    spec: TargetSpec,
    /// Canonical SQLite path the pool opens; a changed resolution (file replaced by a symlink) makes a new pool.
    sqlite_path: Option<PathBuf>,
    pool: DbPool,
    /// One slot per pooled connection (see [`session::Checkout::take`]).
    slots: Arc<Semaphore>,
    last_used: Mutex<Instant>,
    /// When `sqlite_path` was last found to be what `spec` resolves to.
    path_checked: Mutex<Instant>,
    mysql_flavor: OnceLock<mysql::Flavor>,
}

enum DbPool {
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
    Redis(Box<redis::RedisPool>),
}

impl DbPool {
    async fn close(&self) {
        match self {
            DbPool::Postgres(p) => p.close().await,
            DbPool::MySql(p) => p.close().await,
            DbPool::Sqlite(p) => p.close().await,
            DbPool::Redis(p) => p.close().await,
        }
    }
}

impl Targets {
    pub fn new(settings: TargetSettings) -> Self {
        Targets { settings, registry: Mutex::new(Registry { entries: HashMap::new(), last_sweep: Instant::now() }) }
    }

    pub fn settings(&self) -> &TargetSettings {
        &self.settings
    }

    /// Tables, views, columns and foreign keys of the database, read from its catalog in one read-only session on
    /// every call: caching them is the caller's choice (the worker shares them between workers).
    pub async fn schema(&self, key: &str, spec: &TargetSpec) -> Result<DbSchema, TargetError> {
        let entry = self.entry(key, spec).await.map_err(|e| e.redact(secret_of(spec)))?;
        let limits = self.settings.limits();
        let schema = match &entry.pool {
            DbPool::Postgres(pool) => postgres::schema(pool, &entry.slots, &limits).await,
            DbPool::MySql(pool) => mysql::schema(pool, &entry.slots, &limits, &entry.mysql_flavor).await,
            DbPool::Sqlite(pool) => sqlite::schema(pool, &entry.slots, &limits).await,
            DbPool::Redis(pool) => {
                let sample = redis::SampleLimits {
                    keys: self.settings.redis_sample_keys.max(1),
                    time: self.settings.redis_sample_time,
                };
                redis::schema(pool, &entry.slots, &limits, sample).await
            }
        };
        schema.map_err(|e| e.redact(secret_of(spec)))
    }

    /// Connects (or reuses a pooled connection) and reports the server version and the number of tables.
    pub async fn test(&self, key: &str, spec: &TargetSpec) -> Result<ServerInfo, TargetError> {
        let entry = self.entry(key, spec).await.map_err(|e| e.redact(secret_of(spec)))?;
        let limits = self.settings.limits();
        let info = match &entry.pool {
            DbPool::Postgres(pool) => postgres::server_info(pool, &entry.slots, &limits).await,
            DbPool::MySql(pool) => mysql::server_info(pool, &entry.slots, &limits, &entry.mysql_flavor).await,
            DbPool::Sqlite(pool) => sqlite::server_info(pool, &entry.slots, &limits).await,
            DbPool::Redis(pool) => redis::server_info(pool, &entry.slots, &limits).await,
        };
        info.map_err(|e| e.redact(secret_of(spec)))
    }

    /// Runs one statement in a read-only session and returns at most `row_cap` rows (see the crate docs for what
    /// each database enforces). For Redis, `sql` is validated Redis commands, one per line (checked again here).
    /// Dropping the future abandons the session safely.
    pub async fn execute(&self, key: &str, spec: &TargetSpec, sql: &str) -> Result<QueryOutput, TargetError> {
        let entry = self.entry(key, spec).await.map_err(|e| e.redact(secret_of(spec)))?;
        let limits = self.settings.limits();
        let output = match &entry.pool {
            DbPool::Postgres(pool) => postgres::execute(pool, &entry.slots, &limits, sql).await,
            DbPool::MySql(pool) => mysql::execute(pool, &entry.slots, &limits, &entry.mysql_flavor, sql).await,
            DbPool::Sqlite(pool) => sqlite::execute(pool, &entry.slots, &limits, sql).await,
            DbPool::Redis(pool) => redis::execute(pool, &entry.slots, &limits, sql).await,
        };
        output.map_err(|e| e.redact(secret_of(spec)))
    }

    /// Forgets a connection (deleted or edited): its pool is closed.
    pub fn invalidate(&self, key: &str) {
        let removed = self.lock_registry().entries.remove(key);
        if let Some(entry) = removed {
            retire(vec![entry]);
        }
    }

    /// Number of connections with a live pool.
    pub fn cached_targets(&self) -> usize {
        self.lock_registry().entries.len()
    }

    /// Closes every pool (graceful shutdown). Later calls open new pools.
    pub async fn close(&self) {
        let entries: Vec<Arc<Entry>> = self.lock_registry().entries.drain().map(|(_, e)| e).collect();
        for entry in entries {
            entry.pool.close().await;
        }
    }

    fn lock_registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry for `key`, created or replaced when missing or when `spec` changed. Pool creation is lazy (no I/O)
    /// and happens under the registry lock, so concurrent first uses get the same pool. A new pool of a network
    /// database connects to the address its host resolved to when the pool was made, after the network policy
    /// checked it (so a DNS answer that changes later cannot redirect the pool).
    async fn entry(&self, key: &str, spec: &TargetSpec) -> Result<Arc<Entry>, TargetError> {
        let sqlite_path = match spec.driver {
            Driver::Sqlite => {
                if let Some(entry) = self.recently_resolved(key, spec) {
                    return Ok(entry);
                }
                Some(sqlite::resolve_path(&spec.database, self.settings.sqlite_root.as_deref()).await?)
            }
            _ => None,
        };
        let mut address = None;
        loop {
            match self.current_entry(key, spec, &sqlite_path, address) {
                Some(entry) => return entry,
                None => address = Some(self.checked_address(spec).await?),
            }
        }
    }

    /// The SQLite entry for `key` if its spec is unchanged and its path was resolved less than
    /// [`SQLITE_PATH_RECHECK`] ago.
    fn recently_resolved(&self, key: &str, spec: &TargetSpec) -> Option<Arc<Entry>> {
        let registry = self.lock_registry();
        let existing = registry.entries.get(key).filter(|e| e.spec == *spec)?;
        let now = Instant::now();
        let checked = *existing.path_checked.lock().unwrap_or_else(PoisonError::into_inner);
        if now.duration_since(checked) >= SQLITE_PATH_RECHECK {
            return None;
        }
        existing.touch(now);
        Some(Arc::clone(existing))
    }

    /// Where the network database of `spec` may be reached: its host resolved and every address checked.
    async fn checked_address(&self, spec: &TargetSpec) -> Result<IpAddr, TargetError> {
        let host = network_host(spec)?;
        let port = spec.port.or(spec.driver.default_port()).unwrap_or(0);
        let addresses = self.settings.network.resolve(host, port).await.map_err(|blocked| match blocked {
            querygpt_common::netguard::Blocked::Unresolved { .. } => TargetError::ConnectFailed(blocked.to_string()),
            other => TargetError::HostNotAllowed(other.to_string()),
        })?;
        Ok(addresses[0].ip())
    }

    /// The entry for `key` if it is current, or a new one; `None` when a new pool needs a network address that
    /// has not been resolved yet.
    fn current_entry(
        &self,
        key: &str,
        spec: &TargetSpec,
        sqlite_path: &Option<PathBuf>,
        address: Option<IpAddr>,
    ) -> Option<Result<Arc<Entry>, TargetError>> {
        let sqlite_path = sqlite_path.clone();
        let now = Instant::now();
        let mut retired = Vec::new();
        let entry = {
            let mut registry = self.lock_registry();
            if now.duration_since(registry.last_sweep) >= self.settings.idle_expiry.min(Duration::from_secs(10)) {
                registry.last_sweep = now;
                let expiry = self.settings.idle_expiry;
                let idle: Vec<String> = registry
                    .entries
                    .iter()
                    .filter(|(k, e)| k.as_str() != key && Arc::strong_count(e) == 1 && e.idle_for(now) >= expiry)
                    .map(|(k, _)| k.clone())
                    .collect();
                retired.extend(idle.iter().filter_map(|k| registry.entries.remove(k)));
            }
            match registry.entries.get(key) {
                Some(existing) if existing.spec == *spec && existing.sqlite_path == sqlite_path => {
                    existing.touch(now);
                    *existing.path_checked.lock().unwrap_or_else(PoisonError::into_inner) = now;
                    Ok(Arc::clone(existing))
                }
                _ if address.is_none() && spec.driver != Driver::Sqlite => return None,
                _ => self.new_entry(spec, sqlite_path, address).map(|created| {
                    let created = Arc::new(created);
                    retired.extend(registry.entries.insert(key.to_owned(), Arc::clone(&created)));
                    created
                }),
            }
        };
        retire(retired);
        Some(entry)
    }

    fn new_entry(
        &self,
        spec: &TargetSpec,
        sqlite_path: Option<PathBuf>,
        address: Option<IpAddr>,
    ) -> Result<Entry, TargetError> {
        let pool = match (spec.driver, &sqlite_path, address) {
            (Driver::Postgresql, _, Some(ip)) => DbPool::Postgres(postgres::pool(spec, ip, &self.settings)?),
            (Driver::Mysql, _, Some(ip)) => DbPool::MySql(mysql::pool(spec, ip, &self.settings)?),
            (Driver::Sqlite, Some(path), _) => DbPool::Sqlite(sqlite::pool(path, &self.settings)),
            (Driver::Redis, _, Some(ip)) => DbPool::Redis(Box::new(redis::pool(spec, ip)?)),
            (_, _, _) => {
                return Err(TargetError::InvalidSpec("a host or a database file path is required".into()));
            }
        };
        Ok(Entry {
            spec: spec.clone(),
            sqlite_path,
            pool,
            slots: Arc::new(Semaphore::new(self.settings.max_connections_per_target.max(1) as usize)),
            last_used: Mutex::new(Instant::now()),
            path_checked: Mutex::new(Instant::now()),
            mysql_flavor: OnceLock::new(),
        })
    }
}

impl Entry {
    /// Marks the entry used at `now`, which keeps it from the idle sweep.
    fn touch(&self, now: Instant) {
        *self.last_used.lock().unwrap_or_else(PoisonError::into_inner) = now;
    }

    fn idle_for(&self, now: Instant) -> Duration {
        now.duration_since(*self.last_used.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Closes replaced or expired pools in the background; calls still holding one finish first. Outside a Tokio
/// runtime the pools are just dropped (their connections close as they are released).
fn retire(entries: Vec<Arc<Entry>>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    for entry in entries {
        runtime.spawn(async move { entry.pool.close().await });
    }
}

fn secret_of(spec: &TargetSpec) -> &str {
    spec.password.as_ref().map(SecretString::expose).unwrap_or("")
}

/// `host` trimmed, required for network databases; socket paths are refused because they would reach the
/// worker's own machine.
fn network_host(spec: &TargetSpec) -> Result<&str, TargetError> {
    let host = spec.host.as_deref().map(str::trim).unwrap_or("");
    if host.is_empty() {
        return Err(TargetError::InvalidSpec("a host is required".into()));
    }
    if host.contains('/') {
        return Err(TargetError::InvalidSpec("the host must be a host name or an IP address".into()));
    }
    Ok(host)
}

fn database_name(spec: &TargetSpec) -> Result<&str, TargetError> {
    let db = spec.database.trim();
    if db.is_empty() {
        return Err(TargetError::InvalidSpec("a database name is required".into()));
    }
    Ok(db)
}
