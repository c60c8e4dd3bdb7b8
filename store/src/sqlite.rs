//! SQLite backend, for the embedded mode: one file next to the service's other data.

use crate::backend::store_impl;
use crate::{SecretBox, StoreError};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

/// WAL lets readers work while one writer writes; more connections would only queue on the write lock.
const MAX_CONNECTIONS: u32 = 4;
/// WAL pages written before a commit checkpoints them into the database file (SQLite's default is 1000).
const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;
/// How long a writer waits for the write lock before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

store_impl!(
    /// The store on SQLite. Write transactions start with `BEGIN IMMEDIATE`: they take the write lock up front, so
    /// their reads cannot go stale and a read-then-write never fails to upgrade its lock midway.
    SqliteStore,
    db = sqlx::Sqlite,
    name = "sqlite",
    migrations = [
        (1, "init", include_str!("../../migrations/sqlite/0001_init.sql")),
        (2, "settings and search", include_str!("../../migrations/sqlite/0002_settings_and_search.sql")),
        (3, "api keys", include_str!("../../migrations/sqlite/0003_api_keys.sql")),
    ],
    begin = "BEGIN IMMEDIATE",
    // The write lock taken by BEGIN IMMEDIATE already serialises every writer.
    lock_user = "SELECT id FROM users WHERE id = $1",
    // A trigram phrase query is a substring match; only `"` is special inside an FTS5 string. An entry's rowid
    // is a message's seq, or the negated rowid of a conversation for its title (see the 0002 migration). Read
    // from the hits (CROSS JOIN keeps that order): the user's index would walk all of the user's conversations.
    search_indexed = crate::sql::SearchSql::Source(concat!(
        "(SELECT DISTINCT CASE WHEN conversation_search.rowid < 0 THEN -conversation_search.rowid ",
        "ELSE (SELECT t.rowid FROM messages m JOIN conversations t ON t.id = m.conversation_id ",
        "WHERE m.seq = conversation_search.rowid) END AS conversation ",
        r#"FROM conversation_search WHERE conversation_search MATCH '"' || replace($2, '"', '""') || '"') hit "#,
        "CROSS JOIN conversations c ON c.rowid = hit.conversation"
    )),
    search_scan = crate::sql::substring_scan!("instr"),
    // An in-process database: a statement costs a hop to its connection's thread, not a network round trip.
    exchange_call = None,
);

/// Opens (creating the file and its directory if missing) and optionally migrates the database at `url`.
pub(crate) async fn open(url: &str, secrets: SecretBox, migrate: bool) -> Result<SqliteStore, StoreError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // In WAL mode NORMAL never corrupts the database and survives a crash of the process; only a power loss
        // can drop the last commits. FULL would fsync on every answer stored (milliseconds each).
        .synchronous(SqliteSynchronous::Normal)
        // A checkpoint copies every page changed since the last one back into the file and fsyncs it, inside the
        // commit that crosses the limit. Every answer touches the same few pages (the tables' right edges, the
        // search index), so a limit ten times SQLite's default copies each of them once instead of ten times: the
        // WAL grows to about 40 MB between checkpoints instead of 4 MB.
        .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT);
    // In-memory databases have a name without a directory.
    if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(sqlx::Error::Io)?;
    }
    let pool = querygpt_common::pool::pinged_when_idle(SqlitePoolOptions::new())
        .max_connections(MAX_CONNECTIONS)
        .connect_with(options)
        .await?;
    SqliteStore::new(pool, secrets, migrate).await
}
