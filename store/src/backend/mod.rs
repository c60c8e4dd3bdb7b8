//! The [`Store`](crate::Store) implementation, written once and stamped out for each backend by `store_impl!`.
//!
//! sqlx code that is generic over the database drowns in trait bounds; a macro over the concrete pool types keeps
//! one body of logic with plain types. What really differs between the backends is passed in: how a write
//! transaction starts, how it locks the user row whose default model/connection it may change, and how a search
//! text is matched.

pub(crate) mod owned;
pub(crate) mod question;

use crate::StoreError;
use chrono::{DateTime, SubsecRound, Utc};

/// The current time at the precision both backends store (PostgreSQL keeps microseconds), so a record returned by
/// a write equals the one read back later.
pub(crate) fn now_micros() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// E-mails are unique case-insensitively because they are stored, and looked up, trimmed and lowercased.
pub(crate) fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The row of a query that selects by primary key or by the one-default-per-user index: at most one.
pub(crate) fn single<T>(rows: Vec<T>) -> Option<T> {
    rows.into_iter().next()
}

/// Maps a failed insert: a unique violation becomes `conflict`, anything else a database error.
pub(crate) fn unique_violation_as(e: sqlx::Error, conflict: impl FnOnce() -> StoreError) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => conflict(),
        _ => StoreError::Database(e),
    }
}

/// Maps a failed insert: a missing referenced row becomes `missing`, anything else a database error.
pub(crate) fn foreign_key_violation_as(e: sqlx::Error, missing: impl FnOnce() -> StoreError) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => missing(),
        _ => StoreError::Database(e),
    }
}

/// The outcome of a statement on one user-owned row: `NotFound` when it touched none.
pub(crate) fn touched_one(rows_affected: u64, what: &str, id: uuid::Uuid) -> Result<(), StoreError> {
    if rows_affected == 0 { Err(StoreError::NotFound(format!("{what} {id}"))) } else { Ok(()) }
}

/// Generates `$store` and its `Store` impl for the pool of `$db`.
/// - `migrations`: the backend's migrations as `(version, description, sql)`, embedded with `include_str!` (the
///   files live under the workspace's `migrations/`; sqlx's `migrate!` would pull in its macro crates).
/// - `begin`: statement that starts a write transaction.
/// - `lock_user`: `$1` user id; returns the user's id and, until commit, keeps other writers of that user's
///   default flags out (so two concurrent "first model" inserts cannot both become the default).
/// - `search_indexed`, `search_scan`: how a list finds the conversations whose title or a message contains the
///   search text `$2` (`sql::SearchSql`, see `Store::list_conversations`); the first through the trigram index, the
///   second by a scan of the user's rows for texts too short for it.
/// - `exchange_call`: `Some` statement that calls the backend's `save_exchange` function (one round trip per
///   answer), or `None` to save an exchange as a transaction of single statements.
macro_rules! store_impl {
    ($(#[$meta:meta])* $store:ident, db = $db:ty, name = $name:literal, migrations = [$(($version:literal, $description:literal, $migration:expr)),+ $(,)?],
     begin = $begin:literal, lock_user = $lock_user:literal, search_indexed = $search_indexed:expr,
     search_scan = $search_scan:expr, exchange_call = $exchange_call:expr $(,)?) => {
        mod generated {
            use crate::backend::{
                foreign_key_violation_as, normalize_email, now_micros, single, touched_one, unique_violation_as,
            };
            use crate::rules::{connection_needs_retest, model_needs_retest, search_is_indexed};
            use crate::rows::{
                API_KEY_COLUMN, ApiKeyCredentialsRow, ApiKeyRow, CONNECTIONS, ConnectionRow, ListedConversationRow, MODELS, MessageRow, ModelRow,
                PASSWORD_COLUMN, SealedRow, UserRow, UserSettingsRow, seal,
            };
            use crate::{
                ApiKey, ApiKeyCredentials, MAX_API_KEYS_PER_USER, NewApiKey, Connection, Conversation, ConversationDetail, ConversationPage, ConversationQuery, DefaultChoice,
                Exchange, Message, Model, NewConnection, NewModel, NewUser, SecretBox, Store, StoreError, User,
                UserCredentials, UserSettings, sql,
            };
            use chrono::{DateTime, SubsecRound, Utc};
            use sqlx::AssertSqlSafe;
            use sqlx::types::Json;
            use uuid::Uuid;

            crate::backend::owned::owned_rows_impl!($store, $db);
            crate::backend::question::question_context_impl!($store, $db);

            $(#[$meta])*
            pub(crate) struct $store {
                pool: sqlx::Pool<$db>,
                secrets: SecretBox,
            }

            /// Binds a message's id, role, content, metadata and time, the columns of a message in
            /// [`sql::INSERT_EXCHANGE_MESSAGES`] and [`sql::SAVE_EXCHANGE_CALL`].
            fn bind_message<'q>(
                query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
                message: &'q Message,
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
                query
                    .bind(message.id)
                    .bind(message.role.as_str())
                    .bind(&message.content)
                    .bind(message.metadata.as_ref().map(Json))
                    .bind(message.created_at.trunc_subsecs(6))
            }

            fn migrator() -> sqlx::migrate::Migrator {
                use sqlx::SqlSafeStr;
                use sqlx::migrate::{Migration, MigrationType, Migrator};
                Migrator::with_migrations(vec![$(
                    Migration::new($version, $description.into(), MigrationType::Simple, $migration.into_sql_str(), false)
                ),+])
            }

            impl $store {
                /// The store on `pool`, after running the migrations when `migrate`.
                pub(crate) async fn new(
                    pool: sqlx::Pool<$db>,
                    secrets: SecretBox,
                    migrate: bool,
                ) -> Result<Self, StoreError> {
                    if migrate {
                        migrator().run(&pool).await?;
                    }
                    tracing::info!(backend = $name, migrated = migrate, "store opened");
                    Ok(Self { pool, secrets })
                }

                async fn begin_write(&self) -> Result<sqlx::Transaction<'static, $db>, StoreError> {
                    let waiting = std::time::Instant::now();
                    let tx = self.pool.begin_with($begin).await?;
                    metrics::histogram!(querygpt_common::telemetry::POOL_WAIT, "pool" => "store")
                        .record(waiting.elapsed().as_secs_f64());
                    Ok(tx)
                }

                /// A connection of the pool, the wait for it measured (`querygpt_pool_wait_seconds{pool="store"}`).
                async fn conn(&self) -> Result<sqlx::pool::PoolConnection<$db>, StoreError> {
                    let waiting = std::time::Instant::now();
                    let conn = self.pool.acquire().await?;
                    metrics::histogram!(querygpt_common::telemetry::POOL_WAIT, "pool" => "store")
                        .record(waiting.elapsed().as_secs_f64());
                    Ok(conn)
                }

                /// [`Store::save_exchange`] as a transaction of single statements: five round trips, BEGIN and COMMIT
                /// included. A failed check returns before the commit, so the transaction rolls back with
                /// everything it wrote.
                async fn save_exchange_in_transaction(&self, exchange: Exchange) -> Result<bool, StoreError> {
                    let Exchange { user_id, conversation_id, .. } = exchange;
                    let now = now_micros();
                    let mut tx = self.begin_write().await?;
                    sqlx::query(sql::INSERT_CONVERSATION)
                        .bind(conversation_id)
                        .bind(user_id)
                        .bind(&exchange.title)
                        .bind(&exchange.model)
                        .bind(exchange.connection_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| {
                            foreign_key_violation_as(e, || {
                                StoreError::NotFound(format!("user {user_id}"))
                            })
                        })?;
                    // Both messages in one statement, then one statement that settles the conversation and
                    // checks the result.
                    let (user, assistant) = (&exchange.user_message, &exchange.assistant_message);
                    let query = sqlx::query(sql::INSERT_EXCHANGE_MESSAGES).bind(conversation_id);
                    let inserted = bind_message(bind_message(query, user), assistant)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    let (owner, present): (Uuid, i64) = sqlx::query_as(sql::SETTLE_CONVERSATION)
                        .bind(conversation_id)
                        .bind(now)
                        .bind(i64::try_from(inserted).unwrap_or(i64::MAX))
                        .bind(user.id)
                        .bind(assistant.id)
                        .fetch_optional(&mut *tx)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("conversation {conversation_id}")))?;
                    if owner != user_id {
                        return Err(StoreError::NotFound(format!("conversation {conversation_id}")));
                    }
                    // A message id that is already taken by another conversation was skipped by the insert: that is
                    // not a redelivery of this exchange but a collision, and must not pass for "already saved".
                    if present != 2 {
                        return Err(StoreError::Conflict(format!(
                            "message ids {} and {} are not both free for conversation {conversation_id}",
                            user.id, assistant.id
                        )));
                    }
                    tx.commit().await?;
                    Ok(inserted > 0)
                }

                /// [`Store::save_exchange`] as one call of a database function (`call`) that does the steps of
                /// [`Self::save_exchange_in_transaction`]: one round trip, the statement its own transaction.
                async fn save_exchange_in_one_call(&self, call: &'static str, exchange: Exchange) -> Result<bool, StoreError> {
                    use sqlx::Row;
                    let Exchange { user_id, conversation_id, .. } = exchange;
                    let (user, assistant) = (&exchange.user_message, &exchange.assistant_message);
                    let query = sqlx::query(call)
                        .bind(conversation_id)
                        .bind(user_id)
                        .bind(&exchange.title)
                        .bind(&exchange.model)
                        .bind(exchange.connection_id)
                        .bind(now_micros());
                    let added = bind_message(bind_message(query, user), assistant)
                        .fetch_one(&mut *self.conn().await?)
                        .await
                        .map_err(|e| match &e {
                            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                                StoreError::NotFound(format!("user {user_id}"))
                            }
                            sqlx::Error::Database(db) if db.code().as_deref() == Some(crate::sql::NO_DATA_FOUND) => {
                                StoreError::NotFound(format!("conversation {conversation_id}"))
                            }
                            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(format!(
                                "message ids {} and {} are not both free for conversation {conversation_id}",
                                user.id, assistant.id
                            )),
                            _ => StoreError::Database(e),
                        })?
                        .try_get::<i64, _>(0)?;
                    Ok(added > 0)
                }

                async fn lock_user(
                    tx: &mut sqlx::Transaction<'static, $db>,
                    user_id: Uuid,
                ) -> Result<(), StoreError> {
                    sqlx::query_scalar::<_, Uuid>($lock_user)
                        .bind(user_id)
                        .fetch_optional(&mut **tx)
                        .await?
                        .map(drop)
                        .ok_or_else(|| StoreError::NotFound(format!("user {user_id}")))
                }

                /// Inserts a connection inside `tx`, whose caller has made sure the user exists and is locked.
                async fn insert_connection(
                    &self,
                    tx: &mut sqlx::Transaction<'static, $db>,
                    user_id: Uuid,
                    new: NewConnection,
                    now: DateTime<Utc>,
                ) -> Result<Connection, StoreError> {
                    let id = Uuid::now_v7();
                    let password_enc =
                        seal(&self.secrets, new.password.as_ref(), CONNECTIONS, id, PASSWORD_COLUMN)?;
                    let is_default =
                        Self::claim_default(tx, &sql::CONNECTION_ROWS, user_id, new.is_default, now).await?;
                    sqlx::query(sql::INSERT_CONNECTION)
                        .bind(id)
                        .bind(user_id)
                        .bind(&new.name)
                        .bind(new.driver.as_str())
                        .bind(&new.host)
                        .bind(new.port.map(i32::from))
                        .bind(&new.username)
                        .bind(password_enc)
                        .bind(&new.database)
                        .bind(is_default)
                        .bind(now)
                        .execute(&mut **tx)
                        .await?;
                    Ok(Connection {
                        id,
                        user_id,
                        name: new.name,
                        driver: new.driver,
                        host: new.host,
                        port: new.port,
                        username: new.username,
                        password: new.password,
                        database: new.database,
                        is_default,
                        is_connected: None,
                        created_at: now,
                        updated_at: now,
                    })
                }

                /// Rows of a user-owned table with secrets: `$1` is the user, `$2` (if `id`) the row.
                async fn sealed_rows<R>(
                    &self,
                    statement: &'static str,
                    user_id: Uuid,
                    id: Option<Uuid>,
                ) -> Result<Vec<R::Record>, StoreError>
                where
                    R: SealedRow
                        + for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row>
                        + Send
                        + Unpin,
                {
                    let query = sqlx::query_as::<_, R>(statement).bind(user_id);
                    let query = match id {
                        Some(id) => query.bind(id),
                        None => query,
                    };
                    query.fetch_all(&mut *self.conn().await?).await?.into_iter().map(|row| row.into_record(&self.secrets)).collect()
                }

                async fn messages(
                    &self,
                    statement: &'static str,
                    first: Uuid,
                    second: Option<Uuid>,
                    limit: Option<i64>,
                ) -> Result<Vec<Message>, StoreError> {
                    let query = sqlx::query_as::<_, MessageRow>(statement).bind(first);
                    let query = match second {
                        Some(id) => query.bind(id),
                        None => query,
                    };
                    let query = match limit {
                        Some(limit) => query.bind(limit),
                        None => query,
                    };
                    query.fetch_all(&mut *self.conn().await?).await?.into_iter().map(MessageRow::into_record).collect()
                }
            }

            #[async_trait::async_trait]
            impl Store for $store {
                fn backend(&self) -> &'static str {
                    $name
                }

                async fn ping(&self) -> Result<(), StoreError> {
                    sqlx::query("SELECT 1").execute(&mut *self.conn().await?).await?;
                    Ok(())
                }

                async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
                    let now = now_micros();
                    let user = User {
                        id: Uuid::now_v7(),
                        email: normalize_email(&new.email),
                        display_name: new.display_name,
                        avatar_url: None,
                        role: "user".to_owned(),
                        created_at: now,
                    };
                    let mut tx = self.begin_write().await?;
                    sqlx::query(sql::INSERT_USER)
                        .bind(user.id)
                        .bind(&user.email)
                        .bind(&user.display_name)
                        .bind(&new.password_hash)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| {
                            unique_violation_as(e, || {
                                StoreError::Conflict(format!("e-mail {} is already registered", user.email))
                            })
                        })?;
                    if let Some(connection) = new.initial_connection {
                        self.insert_connection(&mut tx, user.id, connection, now).await?;
                    }
                    tx.commit().await?;
                    Ok(user)
                }

                async fn user_by_email(
                    &self,
                    email: &str,
                ) -> Result<Option<UserCredentials>, StoreError> {
                    let row = sqlx::query_as::<_, UserRow>(sql::USER_BY_EMAIL)
                        .bind(normalize_email(email))
                        .fetch_optional(&mut *self.conn().await?)
                        .await?;
                    Ok(row.map(UserRow::into_credentials))
                }

                async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
                    let row = sqlx::query_as::<_, UserRow>(sql::USER_BY_ID)
                        .bind(id)
                        .fetch_optional(&mut *self.conn().await?)
                        .await?;
                    Ok(row.map(|r| r.into_credentials().user))
                }

                async fn create_model(
                    &self,
                    user_id: Uuid,
                    new: NewModel,
                ) -> Result<Model, StoreError> {
                    let now = now_micros();
                    let id = Uuid::now_v7();
                    let api_key_enc = seal(&self.secrets, new.api_key.as_ref(), MODELS, id, API_KEY_COLUMN)?;
                    let mut tx = self.begin_write().await?;
                    Self::lock_user(&mut tx, user_id).await?;
                    let is_default =
                        Self::claim_default(&mut tx, &sql::MODEL_ROWS, user_id, new.is_default, now).await?;
                    sqlx::query(sql::INSERT_MODEL)
                        .bind(id)
                        .bind(user_id)
                        .bind(&new.name)
                        .bind(new.provider.as_str())
                        .bind(&new.model_id)
                        .bind(&new.base_url)
                        .bind(api_key_enc)
                        .bind(is_default)
                        .bind(now)
                        .bind(new.context_window.map(i64::from))
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(Model {
                        id,
                        user_id,
                        name: new.name,
                        provider: new.provider,
                        model_id: new.model_id,
                        base_url: new.base_url,
                        api_key: new.api_key,
                        is_default,
                        is_available: None,
                        context_window: new.context_window,
                        created_at: now,
                        updated_at: now,
                    })
                }

                async fn list_models(&self, user_id: Uuid) -> Result<Vec<Model>, StoreError> {
                    self.sealed_rows::<ModelRow>(sql::MODELS_OF_USER, user_id, None).await
                }

                async fn model(
                    &self,
                    user_id: Uuid,
                    id: Uuid,
                ) -> Result<Option<Model>, StoreError> {
                    self.sealed_rows::<ModelRow>(sql::MODEL_BY_ID, user_id, Some(id)).await.map(single)
                }

                async fn default_model(
                    &self,
                    user_id: Uuid,
                ) -> Result<Option<Model>, StoreError> {
                    self.sealed_rows::<ModelRow>(sql::DEFAULT_MODEL, user_id, None).await.map(single)
                }

                async fn update_model(&self, user_id: Uuid, id: Uuid, new: NewModel) -> Result<Model, StoreError> {
                    let now = now_micros();
                    let (mut tx, old) =
                        self.begin_update::<ModelRow>(&sql::MODEL_ROWS, user_id, id, new.is_default, now).await?;
                    let api_key_enc = seal(&self.secrets, new.api_key.as_ref(), MODELS, id, API_KEY_COLUMN)?;
                    let row = sqlx::query_as::<_, ModelRow>(sql::UPDATE_MODEL)
                        .bind(user_id)
                        .bind(id)
                        .bind(&new.name)
                        .bind(new.provider.as_str())
                        .bind(&new.model_id)
                        .bind(&new.base_url)
                        .bind(api_key_enc)
                        .bind(model_needs_retest(&old, &new))
                        .bind(now)
                        .bind(new.context_window.map(i64::from))
                        .fetch_one(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    row.into_record(&self.secrets)
                }

                async fn delete_model(&self, user_id: Uuid, id: Uuid) -> Result<(), StoreError> {
                    self.delete_owned(&sql::MODEL_ROWS, user_id, id).await
                }

                async fn set_model_available(&self, user_id: Uuid, id: Uuid, available: bool) -> Result<(), StoreError> {
                    self.set_flag(sql::SET_MODEL_AVAILABLE, sql::MODEL_ROWS.what, user_id, id, available).await
                }

                async fn create_connection(
                    &self,
                    user_id: Uuid,
                    new: NewConnection,
                ) -> Result<Connection, StoreError> {
                    let now = now_micros();
                    let mut tx = self.begin_write().await?;
                    Self::lock_user(&mut tx, user_id).await?;
                    let connection = self.insert_connection(&mut tx, user_id, new, now).await?;
                    tx.commit().await?;
                    Ok(connection)
                }

                async fn list_connections(
                    &self,
                    user_id: Uuid,
                ) -> Result<Vec<Connection>, StoreError> {
                    self.sealed_rows::<ConnectionRow>(sql::CONNECTIONS_OF_USER, user_id, None).await
                }

                async fn connection(
                    &self,
                    user_id: Uuid,
                    id: Uuid,
                ) -> Result<Option<Connection>, StoreError> {
                    self.sealed_rows::<ConnectionRow>(sql::CONNECTION_BY_ID, user_id, Some(id)).await.map(single)
                }

                async fn default_connection(
                    &self,
                    user_id: Uuid,
                ) -> Result<Option<Connection>, StoreError> {
                    self.sealed_rows::<ConnectionRow>(sql::DEFAULT_CONNECTION, user_id, None).await.map(single)
                }

                async fn update_connection(
                    &self,
                    user_id: Uuid,
                    id: Uuid,
                    new: NewConnection,
                ) -> Result<Connection, StoreError> {
                    let now = now_micros();
                    let (mut tx, old) = self
                        .begin_update::<ConnectionRow>(&sql::CONNECTION_ROWS, user_id, id, new.is_default, now)
                        .await?;
                    let password_enc = seal(&self.secrets, new.password.as_ref(), CONNECTIONS, id, PASSWORD_COLUMN)?;
                    let row = sqlx::query_as::<_, ConnectionRow>(sql::UPDATE_CONNECTION)
                        .bind(user_id)
                        .bind(id)
                        .bind(&new.name)
                        .bind(new.driver.as_str())
                        .bind(&new.host)
                        .bind(new.port.map(i32::from))
                        .bind(&new.username)
                        .bind(password_enc)
                        .bind(&new.database)
                        .bind(connection_needs_retest(&old, &new))
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    row.into_record(&self.secrets)
                }

                async fn delete_connection(&self, user_id: Uuid, id: Uuid) -> Result<(), StoreError> {
                    self.delete_owned(&sql::CONNECTION_ROWS, user_id, id).await
                }

                async fn set_connection_connected(
                    &self,
                    user_id: Uuid,
                    id: Uuid,
                    connected: bool,
                ) -> Result<(), StoreError> {
                    self.set_flag(sql::SET_CONNECTION_CONNECTED, sql::CONNECTION_ROWS.what, user_id, id, connected).await
                }

                async fn list_conversations(
                    &self,
                    user_id: Uuid,
                    query: &ConversationQuery,
                ) -> Result<ConversationPage, StoreError> {
                    let search = query.search.as_deref().filter(|text| !text.is_empty());
                    let search_sql =
                        search.map(|text| if search_is_indexed(text) { $search_indexed } else { $search_scan });
                    let statements = sql::conversation_list(query.favorites_only, search_sql);
                    // The text is made of static fragments only; the search text is bound. A search is planned for
                    // its text each time: a plan kept for one text (PostgreSQL's generic plan after five runs) can
                    // be many times slower for a rarer or a commoner one.
                    let persistent = search.is_none();
                    let page = sqlx::query_as::<_, ListedConversationRow>(AssertSqlSafe(statements.page))
                        .persistent(persistent)
                        .bind(user_id);
                    let count =
                        sqlx::query_scalar::<_, i64>(AssertSqlSafe(statements.count)).persistent(persistent).bind(user_id);
                    let (page, count) = match search {
                        Some(text) => (page.bind(text), count.bind(text)),
                        None => (page, count),
                    };
                    let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
                    let rows = page.bind(i64::from(query.limit)).bind(offset).fetch_all(&mut *self.conn().await?).await?;
                    let total = match rows.first() {
                        Some(row) => row.total,
                        // An empty first page that could hold rows: nothing matches.
                        None if query.offset == 0 && query.limit > 0 => 0,
                        // Past the end (or no page asked for), no row carries the total.
                        None => count.fetch_one(&mut *self.conn().await?).await?,
                    };
                    Ok(ConversationPage {
                        items: rows.into_iter().map(ListedConversationRow::into_record).collect::<Result<_, _>>()?,
                        total: u64::try_from(total).unwrap_or_default(),
                    })
                }

                async fn conversation(&self, user_id: Uuid, id: Uuid) -> Result<Option<Conversation>, StoreError> {
                    Ok(sqlx::query_as(sql::CONVERSATION_BY_ID).bind(user_id).bind(id).fetch_optional(&mut *self.conn().await?).await?)
                }

                async fn conversation_detail(
                    &self,
                    user_id: Uuid,
                    id: Uuid,
                ) -> Result<Option<ConversationDetail>, StoreError> {
                    let Some(conversation) = self.conversation(user_id, id).await? else { return Ok(None) };
                    let messages = self.messages(sql::MESSAGES_OF_CONVERSATION, id, None, None).await?;
                    Ok(Some(ConversationDetail { conversation, messages }))
                }

                async fn recent_messages(
                    &self,
                    user_id: Uuid,
                    conversation_id: Uuid,
                    limit: usize,
                ) -> Result<Vec<Message>, StoreError> {
                    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                    self.messages(sql::RECENT_MESSAGES, user_id, Some(conversation_id), Some(limit)).await
                }

                async fn message(
                    &self,
                    user_id: Uuid,
                    id: Uuid,
                ) -> Result<Option<Message>, StoreError> {
                    self.messages(sql::MESSAGE_BY_ID, user_id, Some(id), None).await.map(single)
                }

                async fn save_exchange(&self, exchange: Exchange) -> Result<bool, StoreError> {
                    match $exchange_call {
                        Some(call) => self.save_exchange_in_one_call(call, exchange).await,
                        None => self.save_exchange_in_transaction(exchange).await,
                    }
                }

                async fn delete_conversation(&self, user_id: Uuid, id: Uuid) -> Result<(), StoreError> {
                    let done = sqlx::query(sql::DELETE_CONVERSATION).bind(user_id).bind(id).execute(&mut *self.conn().await?).await?;
                    touched_one(done.rows_affected(), "conversation", id)
                }

                async fn toggle_favorite(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
                    sqlx::query_scalar(sql::TOGGLE_FAVORITE)
                        .bind(user_id)
                        .bind(id)
                        .fetch_optional(&mut *self.conn().await?)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("conversation {id}")))
                }

                async fn question_context(
                    &self,
                    user_id: Uuid,
                    refs: crate::QuestionRefs,
                ) -> Result<crate::QuestionContext, StoreError> {
                    self.read_question_context(user_id, refs).await
                }

                async fn user_settings(&self, user_id: Uuid) -> Result<UserSettings, StoreError> {
                    let row = sqlx::query_as::<_, UserSettingsRow>(sql::USER_SETTINGS)
                        .bind(user_id)
                        .fetch_optional(&mut *self.conn().await?)
                        .await?;
                    row.map_or_else(|| Ok(UserSettings::default()), UserSettingsRow::into_record)
                }

                async fn save_user_settings(
                    &self,
                    user_id: Uuid,
                    settings: &UserSettings,
                    defaults: DefaultChoice,
                ) -> Result<(), StoreError> {
                    let now = now_micros();
                    let mut tx = self.begin_write().await?;
                    Self::lock_user(&mut tx, user_id).await?;
                    let choices = [(&sql::MODEL_ROWS, defaults.model_id), (&sql::CONNECTION_ROWS, defaults.connection_id)];
                    for (table, id) in choices {
                        let Some(id) = id else { continue };
                        // Returning drops `tx`: its rollback undoes whatever this loop already changed.
                        if !Self::make_default(&mut tx, table, user_id, id, now).await? {
                            return Err(StoreError::NotFound(table.what.to_owned()));
                        }
                    }
                    sqlx::query(sql::SAVE_USER_SETTINGS)
                        .bind(user_id)
                        .bind(settings.language.map(|l| l.as_str()))
                        .bind(settings.theme.map(|t| t.as_str()))
                        .bind(settings.view_mode.map(|v| v.as_str()))
                        .bind(settings.context_rounds.map(i64::from))
                        .bind(Json(&settings.prompts))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }
                async fn create_api_key(&self, user_id: Uuid, new: NewApiKey) -> Result<ApiKey, StoreError> {
                    let now = now_micros();
                    let mut tx = self.begin_write().await?;
                    // Locked so that two concurrent creations cannot both pass the count.
                    Self::lock_user(&mut tx, user_id).await?;
                    let held: i64 = sqlx::query_scalar(sql::COUNT_API_KEYS).bind(user_id).fetch_one(&mut *tx).await?;
                    if held >= MAX_API_KEYS_PER_USER as i64 {
                        return Err(StoreError::LimitReached(format!(
                            "a user may hold {MAX_API_KEYS_PER_USER} API keys; revoke one first"
                        )));
                    }
                    let id = Uuid::now_v7();
                    sqlx::query(sql::INSERT_API_KEY)
                        .bind(id)
                        .bind(user_id)
                        .bind(&new.name)
                        .bind(&new.prefix)
                        .bind(&new.last4)
                        .bind(&new.secret_hash[..])
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| unique_violation_as(e, || StoreError::Conflict("API key prefix".into())))?;
                    tx.commit().await?;
                    Ok(ApiKey {
                        id,
                        user_id,
                        name: new.name,
                        prefix: new.prefix,
                        last4: new.last4,
                        created_at: now,
                        last_used_at: None,
                    })
                }

                async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
                    let rows = sqlx::query_as::<_, ApiKeyRow>(sql::API_KEYS_OF_USER)
                        .bind(user_id)
                        .fetch_all(&mut *self.conn().await?)
                        .await?;
                    Ok(rows.into_iter().map(ApiKey::from).collect())
                }

                async fn delete_api_key(&self, user_id: Uuid, id: Uuid) -> Result<(), StoreError> {
                    let done = sqlx::query(sql::DELETE_API_KEY).bind(user_id).bind(id).execute(&mut *self.conn().await?).await?;
                    touched_one(done.rows_affected(), "API key", id)
                }

                async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyCredentials>, StoreError> {
                    let row = sqlx::query_as::<_, ApiKeyCredentialsRow>(sql::API_KEY_BY_PREFIX)
                        .bind(prefix)
                        .fetch_optional(&mut *self.conn().await?)
                        .await?;
                    Ok(row.map(ApiKeyCredentials::from))
                }

                async fn touch_api_key(&self, id: Uuid, now: DateTime<Utc>) -> Result<(), StoreError> {
                    let now = now.trunc_subsecs(6);
                    sqlx::query(sql::TOUCH_API_KEY)
                        .bind(id)
                        .bind(now)
                        .bind(now - chrono::Duration::seconds(60))
                        .execute(&mut *self.conn().await?)
                        .await?;
                    Ok(())
                }
            }
        }
        pub(crate) use generated::$store;
    };
}
pub(crate) use store_impl;
