//! Redis targets: one multiplexed connection per connection spec, commands validated again (the caller is not
//! trusted), run one at a time under the time limit, their replies shaped into one result table.
//!
//! Redis has no read-only session: the first defence is the command allowlist of `querygpt_sqlsafe` (checked
//! here again), the second is the login's ACL (see the README for the user to create). [`server_info`] warns when
//! the login may write.

mod sample;
mod shape;

use crate::TargetSpec;
use crate::error::TargetError;
use crate::output::{Collector, QueryOutput};
use crate::session::Limits;
use querygpt_common::config::SecretString;
use querygpt_sqlsafe::{RedisCommand, Rule, validate_redis};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, RedisError, Value};
use serde_json::Value as Json;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Instant;
use tokio::sync::{Mutex, Semaphore, SemaphorePermit};

pub(crate) use sample::{SampleLimits, schema};

/// Highest database number accepted (Redis has 16 by default; servers configured with more are rare).
pub const MAX_REDIS_DB: i64 = 15;

/// A client for one Redis target and its shared connection, opened on first use and replaced after a failure.
pub(crate) struct RedisPool {
    client: redis::Client,
    connection: Mutex<Option<MultiplexedConnection>>,
}

/// The database number of a Redis connection: its `database` field, `0` when empty.
pub fn redis_db(database: &str) -> Result<i64, TargetError> {
    let db = database.trim();
    if db.is_empty() {
        return Ok(0);
    }
    db.parse::<i64>().ok().filter(|n| (0..=MAX_REDIS_DB).contains(n)).ok_or_else(|| {
        TargetError::InvalidSpec(format!("the Redis database must be a number from 0 to {MAX_REDIS_DB}"))
    })
}

/// A pool reaching `ip` (the address the network policy checked), logging in as the spec's ACL user.
pub(crate) fn pool(spec: &TargetSpec, ip: IpAddr) -> Result<RedisPool, TargetError> {
    let port = spec.port.unwrap_or(6379);
    let mut login = RedisConnectionInfo::default().set_db(redis_db(&spec.database)?);
    if let Some(user) = spec.username.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        login = login.set_username(user);
    }
    if let Some(password) = spec.password.as_ref().map(SecretString::expose) {
        login = login.set_password(password);
    }
    let info = ConnectionAddr::Tcp(ip.to_string(), port)
        .into_connection_info()
        .map_err(|e| TargetError::InvalidSpec(e.to_string()))?
        .set_redis_settings(login);
    let client = redis::Client::open(info).map_err(|e| TargetError::InvalidSpec(e.to_string()))?;
    Ok(RedisPool { client, connection: Mutex::new(None) })
}

impl RedisPool {
    /// Nothing to close but the shared connection, which closes when dropped.
    pub(crate) async fn close(&self) {
        self.connection.lock().await.take();
    }
}

/// One call's access to the target: a slot (bounding concurrent calls) and the shared connection.
pub(crate) struct Session<'a> {
    pool: &'a RedisPool,
    connection: MultiplexedConnection,
    limits: Limits,
    _slot: SemaphorePermit<'a>,
}

impl<'a> Session<'a> {
    pub(crate) async fn open(pool: &'a RedisPool, slots: &'a Semaphore, limits: &Limits) -> Result<Self, TargetError> {
        let busy = TargetError::Busy(limits.statement_timeout);
        let slot = match tokio::time::timeout(limits.statement_timeout, slots.acquire()).await {
            Ok(Ok(slot)) => slot,
            _ => return Err(busy),
        };
        let mut shared = pool.connection.lock().await;
        let connection = match shared.as_ref() {
            Some(c) => c.clone(),
            None => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(limits.connect_timeout))
                    .set_response_timeout(Some(limits.statement_timeout));
                let c = pool
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map_err(|e| TargetError::ConnectFailed(e.to_string()))?;
                shared.insert(c).clone()
            }
        };
        drop(shared);
        Ok(Session { pool, connection, limits: *limits, _slot: slot })
    }

    /// Sends one command and waits at most the statement limit for its reply. A connection that failed or timed
    /// out is dropped so that the next call opens a fresh one.
    pub(crate) async fn run(&mut self, name: &str, args: &[String]) -> Result<Value, TargetError> {
        let mut cmd = redis::cmd(name);
        for arg in args {
            cmd.arg(arg);
        }
        let limit = self.limits.statement_timeout;
        let result = tokio::time::timeout(limit, cmd.query_async::<Value>(&mut self.connection)).await;
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    self.pool.connection.lock().await.take();
                }
                Err(if e.is_timeout() { TargetError::Timeout(limit) } else { command_error(name, &e) })
            }
            Err(_) => {
                self.pool.connection.lock().await.take();
                Err(TargetError::Timeout(limit))
            }
        }
    }
}

fn command_error(name: &str, e: &RedisError) -> TargetError {
    match e.code() {
        Some("NOPERM") => TargetError::ReadOnlyViolation(format!("{name}: {e}")),
        _ => TargetError::QueryFailed(format!("{name}: {e}")),
    }
}

/// Runs the validated commands of `text` one at a time and returns their replies as one table: with one command
/// its own columns, with several a `command` column first (the command's line) and the union of their columns.
pub(crate) async fn execute(
    pool: &RedisPool,
    slots: &Semaphore,
    limits: &Limits,
    text: &str,
) -> Result<QueryOutput, TargetError> {
    let commands = validate_redis(text).map_err(|r| match r.rule {
        Rule::WriteCommand | Rule::ScriptingCommand | Rule::AdminCommand => TargetError::ReadOnlyViolation(r.message),
        _ => TargetError::QueryFailed(r.message),
    })?;
    let mut session = Session::open(pool, slots, limits).await?;
    let mut collector = Collector::new(limits.row_cap, limits.max_result_bytes);
    let mut tables = Vec::with_capacity(commands.len());
    let mut rows = 0;
    let mut cut = false;
    for command in &commands {
        if rows > limits.row_cap {
            cut = true;
            break;
        }
        let limit = limits.row_cap + 1 - rows;
        let (table, partial) = if is_scan(&command.name) {
            scan(&mut session, command, limit).await?
        } else {
            let reply = session.run(&command.name, &command.args).await?;
            (shape::table(command, reply, limit), false)
        };
        cut |= partial;
        rows += table.rows.len();
        tables.push((command.to_line(), table));
    }
    if let [(_, table)] = tables.as_mut_slice() {
        collector.set_columns(table.columns.iter().copied());
        for row in std::mem::take(&mut table.rows) {
            if !collector.push(row)? {
                break;
            }
        }
    } else {
        let mut columns: Vec<&str> = vec!["command"];
        for (_, table) in &tables {
            for c in &table.columns {
                if !columns.contains(c) {
                    columns.push(c);
                }
            }
        }
        collector.set_columns(columns.iter().copied());
        'tables: for (line, table) in tables {
            for row in table.rows {
                let mut values = vec![Json::Null; columns.len()];
                values[0] = Json::String(line.clone());
                for (name, value) in table.columns.iter().zip(row) {
                    if let Some(at) = columns.iter().position(|c| c == name) {
                        values[at] = value;
                    }
                }
                if !collector.push(values)? {
                    break 'tables;
                }
            }
        }
    }
    let mut output = collector.finish();
    output.truncated |= cut;
    Ok(output)
}

fn is_scan(name: &str) -> bool {
    matches!(name, "SCAN" | "HSCAN" | "SSCAN" | "ZSCAN")
}

/// A SCAN-family command continued from its cursor while the table still needs rows (at most `limit`) and the
/// statement limit allows; duplicates (which SCAN may return) are dropped. The flag tells that the iteration
/// stopped for time with the cursor not done.
async fn scan(
    session: &mut Session<'_>,
    command: &RedisCommand,
    limit: usize,
) -> Result<(shape::Table, bool), TargetError> {
    let columns = shape::scan_columns(command);
    let width = columns.len();
    let cursor_at = usize::from(command.name != "SCAN");
    let mut args = command.args.clone();
    let deadline = Instant::now() + session.limits.statement_timeout;
    let mut seen = HashSet::new();
    let mut table = shape::Table { columns, rows: Vec::new() };
    loop {
        let reply = session.run(&command.name, &args).await?;
        let (cursor, rows) = shape::scan_items(reply, width)
            .ok_or_else(|| TargetError::QueryFailed(format!("{}: unexpected reply", command.name)))?;
        for row in rows {
            if table.rows.len() < limit && seen.insert(row[0].to_string()) {
                table.rows.push(row);
            }
        }
        if cursor == 0 || table.rows.len() >= limit {
            return Ok((table, false));
        }
        if Instant::now() >= deadline {
            return Ok((table, true));
        }
        args[cursor_at] = cursor.to_string();
    }
}

/// Version (`INFO server`), number of keys (`DBSIZE`, reported as the table count) and what the login may do
/// beyond reading.
pub(crate) async fn server_info(
    pool: &RedisPool,
    slots: &Semaphore,
    limits: &Limits,
) -> Result<crate::ServerInfo, TargetError> {
    let mut session = Session::open(pool, slots, limits).await?;
    // INFO is in @dangerous: a login without `+info` still connects, with its version unknown.
    let info = match session.run("INFO", &["server".to_owned()]).await {
        Err(TargetError::ReadOnlyViolation(_)) => String::new(),
        other => text(other?),
    };
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .map(|v| format!("Redis {}", v.trim()))
        .unwrap_or_else(|| "Redis".to_owned());
    let keys = match session.run("DBSIZE", &[]).await? {
        Value::Int(n) => usize::try_from(n).unwrap_or(0),
        _ => 0,
    };
    let warnings = write_warnings(&mut session).await;
    Ok(crate::ServerInfo { version, tables_count: keys, warnings })
}

/// Asks the server (`ACL DRYRUN`, Redis 7+) whether the login could run a few writes. A login not allowed to
/// run DRYRUN itself (a read-only ACL user) is probed with a write that changes nothing: `DEL` of a random key
/// that does not exist, which the ACL refuses before it runs when the login cannot write.
async fn write_warnings(session: &mut Session<'_>) -> Vec<String> {
    let user = match session.run("ACL", &["WHOAMI".to_owned()]).await {
        Ok(v) => text(v),
        Err(TargetError::ReadOnlyViolation(_)) => "this login".to_owned(),
        Err(_) => return vec!["the server has no ACLs (Redis before 6): the login can write".to_owned()],
    };
    let probes: [&[&str]; 4] = [&["SET", "k", "v"], &["DEL", "k"], &["FLUSHALL"], &["CONFIG", "SET", "k", "v"]];
    let mut allowed = Vec::new();
    for probe in probes {
        let mut args = vec!["DRYRUN".to_owned(), user.clone()];
        args.extend(probe.iter().map(|s| (*s).to_owned()));
        match session.run("ACL", &args).await {
            Ok(Value::Okay) => allowed.push(probe[..probe.len().min(2)].join(" ")),
            Ok(Value::SimpleString(s)) if s == "OK" => allowed.push(probe[..probe.len().min(2)].join(" ")),
            Ok(_) => {}
            Err(TargetError::ReadOnlyViolation(_)) => {
                let key = format!("querygpt:write-probe:{}", uuid::Uuid::new_v4());
                match session.run("DEL", &[key]).await {
                    Err(TargetError::ReadOnlyViolation(_)) => return Vec::new(),
                    _ => {
                        allowed.push("DEL".to_owned());
                        break;
                    }
                }
            }
            Err(_) => {
                return vec![format!("could not check the rights of `{user}`: make sure it can only read")];
            }
        }
    }
    if allowed.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "the login `{user}` can run write or administrative commands ({}): use an ACL user that can only read (see \
         the README)",
        allowed.join(", ")
    )]
}

/// A JSON cell as plain text (strings without quotes).
fn shape_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn text(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::SimpleString(s) => s,
        Value::VerbatimString { text, .. } => text,
        other => format!("{other:?}"),
    }
}
