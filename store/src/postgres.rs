//! PostgreSQL backend, for production: shared by every API node and worker.

use crate::backend::store_impl;
use crate::{SecretBox, StoreError};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// `$2` as an ILIKE pattern that matches it anywhere, literally.
macro_rules! like_pattern {
    () => {
        r"('%' || replace(replace(replace($2, '\', '\\'), '%', '\%'), '_', '\_') || '%') ESCAPE '\'"
    };
}

store_impl!(
    /// The store on PostgreSQL (READ COMMITTED transactions).
    PgStore,
    db = sqlx::Postgres,
    name = "postgres",
    migrations = [
        (1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
        (2, "settings and search", include_str!("../../migrations/postgres/0002_settings_and_search.sql")),
        (3, "api keys", include_str!("../../migrations/postgres/0003_api_keys.sql")),
        (4, "save exchange", include_str!("../../migrations/postgres/0004_save_exchange.sql")),
        (5, "search pending list", include_str!("../../migrations/postgres/0005_search_pending_list.sql")),
    ],
    begin = "BEGIN",
    // Serialises the writers of one user's default flags. NO KEY UPDATE does not block inserts of rows that only
    // reference the user (their foreign-key check takes KEY SHARE).
    lock_user = "SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE",
    // Matches across all users, for the trigram indexes to serve; the list keeps the user's. `\`, `%` and `_` are
    // escaped so that the text is taken literally.
    search_indexed = crate::sql::SearchSql::Filter(concat!(
        "c.id IN (SELECT t.id FROM conversations t WHERE t.title ILIKE ",
        like_pattern!(),
        " UNION SELECT m.conversation_id FROM messages m WHERE m.content ILIKE ",
        like_pattern!(),
        ")"
    )),
    search_scan = crate::sql::substring_scan!("strpos"),
    exchange_call = Some(crate::sql::SAVE_EXCHANGE_CALL),
);

/// Connects to `url` and optionally migrates (sqlx's migrator takes an advisory lock, so nodes starting together
/// do not race).
/// The pool has `pool.max_connections`; a request waiting `pool.acquire_timeout_ms` for one fails instead of
/// hanging, which is also how requests fail fast while the server is down.
pub(crate) async fn open(
    url: &str,
    secrets: SecretBox,
    migrate: bool,
    pool: &crate::StoreSettings,
) -> Result<PgStore, StoreError> {
    let options = PgConnectOptions::from_str(url)?;
    let pool = querygpt_common::pool::pinged_when_idle(PgPoolOptions::new())
        .max_connections(pool.max_connections.max(1))
        .acquire_timeout(Duration::from_millis(pool.acquire_timeout_ms.max(1)))
        .connect_with(options)
        .await?;
    PgStore::new(pool, secrets, migrate).await
}
