//! The service's own data: users, models, connections, conversations and their messages.
//!
//! One [`Store`] trait, two backends (SQLite for the embedded mode, PostgreSQL for production) picked from the
//! URL by [`open`]. Secrets (model API keys, connection passwords) are encrypted at rest by [`SecretBox`] and
//! come back decrypted inside [`SecretString`]s, which never print.

mod backend;
pub mod crypto;
mod postgres;
pub mod records;
mod rows;
mod rules;
mod sql;
mod sqlite;

pub use crypto::{CryptoError, SecretBox};
pub use querygpt_common::config::SecretString;
pub use querygpt_common::config::StoreSettings;
pub use records::*;

use async_trait::async_trait;
use std::sync::Arc;
use uuid::Uuid;

/// Errors of the store. `Conflict` and `NotFound` are meant for the caller; the rest are failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique value is taken (e.g. the e-mail of a new user).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A row the operation needs does not exist or belongs to another user.
    #[error("not found: {0}")]
    NotFound(String),
    /// The URL's scheme (only: the rest may hold a password) is neither SQLite nor PostgreSQL.
    #[error("unsupported database URL `{0}` (expected sqlite:// or postgres://)")]
    UnsupportedUrl(String),
    /// A key or a stored secret cannot be used (see [`CryptoError`] for the message and its cause).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The user already has as many rows of this kind as one user may have.
    #[error("limit reached: {0}")]
    LimitReached(String),
}

/// Access to the service's own data. Every read and write of a user-owned row is scoped by `user_id`: a row of
/// another user is indistinguishable from a missing one.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Name of the backend (`sqlite` or `postgres`), for logs and health.
    fn backend(&self) -> &'static str;

    /// One round trip to the database (`SELECT 1`), for readiness probes.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates a user, and in the same transaction its initial connection if one is given (the demo database).
    /// `Conflict` when the e-mail (compared case-insensitively) is taken.
    async fn create_user(&self, new: NewUser) -> Result<User, StoreError>;
    /// The user and its password hash, for login.
    async fn user_by_email(&self, email: &str) -> Result<Option<UserCredentials>, StoreError>;
    async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError>;

    /// Adds a model. The first model of a user, or one with `is_default`, becomes the default (the previous default
    /// loses the flag in the same transaction).
    async fn create_model(&self, user_id: Uuid, new: NewModel) -> Result<Model, StoreError>;
    async fn list_models(&self, user_id: Uuid) -> Result<Vec<Model>, StoreError>;
    async fn model(&self, user_id: Uuid, id: Uuid) -> Result<Option<Model>, StoreError>;
    async fn default_model(&self, user_id: Uuid) -> Result<Option<Model>, StoreError>;
    /// Replaces a model's name, provider, model id, base URL and API key with `new`'s. `new.is_default` makes it
    /// the default (the previous default loses the flag in the same transaction); `false` leaves its flag as it is.
    /// `is_available` becomes `None` if the provider, model id, base URL or API key changed, and is kept otherwise.
    /// `NotFound` if the model is not the user's.
    async fn update_model(&self, user_id: Uuid, id: Uuid, new: NewModel) -> Result<Model, StoreError>;
    /// Deletes a model. If it was the default, the user's most recently created remaining model becomes the default
    /// in the same transaction. Conversations keep their model name. `NotFound` if the model is not the user's.
    async fn delete_model(&self, user_id: Uuid, id: Uuid) -> Result<(), StoreError>;
    /// Records the outcome of testing a model. `NotFound` if the model is not the user's.
    async fn set_model_available(&self, user_id: Uuid, id: Uuid, available: bool) -> Result<(), StoreError>;

    /// Adds a connection; default rules as for models.
    async fn create_connection(&self, user_id: Uuid, new: NewConnection) -> Result<Connection, StoreError>;
    async fn list_connections(&self, user_id: Uuid) -> Result<Vec<Connection>, StoreError>;
    async fn connection(&self, user_id: Uuid, id: Uuid) -> Result<Option<Connection>, StoreError>;
    async fn default_connection(&self, user_id: Uuid) -> Result<Option<Connection>, StoreError>;
    /// Replaces a connection's fields with `new`'s; default rules as for [`Store::update_model`]. `is_connected`
    /// becomes `None` if the driver, host, port, username, password or database changed, and is kept otherwise.
    async fn update_connection(&self, user_id: Uuid, id: Uuid, new: NewConnection) -> Result<Connection, StoreError>;
    /// Deletes a connection; default rules as for [`Store::delete_model`]. Its conversations stay, without a
    /// connection. `NotFound` if the connection is not the user's.
    async fn delete_connection(&self, user_id: Uuid, id: Uuid) -> Result<(), StoreError>;
    /// Records the outcome of testing a connection. `NotFound` if the connection is not the user's.
    async fn set_connection_connected(&self, user_id: Uuid, id: Uuid, connected: bool) -> Result<(), StoreError>;

    /// A page of the user's conversations, newest `updated_at` first (ties: newest id first), with the number of
    /// all that match.
    ///
    /// `search` finds the conversations whose title or any message contains the text, case-insensitively, as a
    /// plain substring in any script (`销售` finds `每个品类的销售额`); `%`, `_`, `\` and quotes are ordinary
    /// characters. A text of 3 or more characters is looked up in a trigram index (SQLite FTS5, PostgreSQL pg_trgm):
    /// the time grows with the number of hits, not of conversations. A shorter text cannot use such an index: it
    /// is found by a scan of this user's conversations and their messages. Case is folded as the backend folds it:
    /// every letter on PostgreSQL; on SQLite every letter for indexed texts, but only ASCII letters for the short
    /// ones. An empty text filters nothing.
    async fn list_conversations(
        &self,
        user_id: Uuid,
        query: &ConversationQuery,
    ) -> Result<ConversationPage, StoreError>;
    /// A conversation of this user, without its messages.
    async fn conversation(&self, user_id: Uuid, id: Uuid) -> Result<Option<Conversation>, StoreError>;
    /// A conversation of this user with all its messages, oldest first.
    async fn conversation_detail(&self, user_id: Uuid, id: Uuid) -> Result<Option<ConversationDetail>, StoreError>;
    /// The last `limit` messages of a conversation, oldest first (context for the next question).
    async fn recent_messages(
        &self,
        user_id: Uuid,
        conversation_id: Uuid,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;
    /// One message, if it exists in a conversation of this user.
    async fn message(&self, user_id: Uuid, id: Uuid) -> Result<Option<Message>, StoreError>;

    /// Stores a whole question/answer exchange in one transaction: the conversation (created if new), the user's
    /// message and the assistant's. Idempotent on the message ids: saving the same exchange twice (a redelivered
    /// job) changes nothing and returns `false`. `NotFound` if the conversation exists but belongs to another user.
    /// `Conflict` if a message id is taken by another conversation. Messages are stored under
    /// `exchange.conversation_id`; a `connection_id` that is not one of the user's is stored as none.
    async fn save_exchange(&self, exchange: Exchange) -> Result<bool, StoreError>;
    /// Deletes a conversation with its messages (and their search entries). `NotFound` if it is not the user's.
    async fn delete_conversation(&self, user_id: Uuid, id: Uuid) -> Result<(), StoreError>;
    /// Flips the conversation's favourite flag in one statement (two concurrent toggles flip it twice) and returns
    /// the new state; `updated_at` stays. `NotFound` if it is not the user's.
    async fn toggle_favorite(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError>;

    /// Everything asking a question reads, in one round trip: the user's settings, the conversation, model and
    /// connection `refs` names, or the defaults (see [`QuestionContext`]). `NotFound` if the user does not exist.
    async fn question_context(&self, user_id: Uuid, refs: QuestionRefs) -> Result<QuestionContext, StoreError>;
    /// The user's settings; all defaults (`UserSettings::default()`) if the user never saved any.
    async fn user_settings(&self, user_id: Uuid) -> Result<UserSettings, StoreError>;
    /// In one transaction: replaces the user's settings with `settings`, and makes the model and the connection
    /// that `defaults` names (when it names them) the user's defaults. If one of them is not the user's, nothing
    /// is written and the error is `NotFound("model")` or `NotFound("connection")`.
    async fn save_user_settings(
        &self,
        user_id: Uuid,
        settings: &UserSettings,
        defaults: DefaultChoice,
    ) -> Result<(), StoreError>;

    /// Stores a new API key of the user, unless the user has [`MAX_API_KEYS_PER_USER`] already (`LimitReached`).
    /// `Conflict` if the prefix is taken (the caller draws another key).
    async fn create_api_key(&self, user_id: Uuid, new: NewApiKey) -> Result<ApiKey, StoreError>;
    /// The user's API keys, oldest first.
    async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes (deletes) one of the user's keys: from the commit on, no request can use it. `NotFound` if it is not
    /// the user's.
    async fn delete_api_key(&self, user_id: Uuid, id: Uuid) -> Result<(), StoreError>;
    /// The key with this prefix, of any user: the one lookup that is not scoped by user, since finding the user is
    /// its purpose.
    async fn api_key_by_prefix(&self, prefix: &str) -> Result<Option<ApiKeyCredentials>, StoreError>;
    /// Records that the key was used at `now`, unless that was recorded less than a minute earlier (a key used on
    /// every request must not cost a write on every request).
    async fn touch_api_key(&self, id: Uuid, now: chrono::DateTime<chrono::Utc>) -> Result<(), StoreError>;
}

/// API keys one user may hold at once.
pub const MAX_API_KEYS_PER_USER: usize = 50;

/// Opens the store named by `url` (`sqlite:...`, `postgres://...` or `postgresql://...`), running its migrations
/// when `migrate`. A SQLite file and its directory are created if missing.
pub async fn open(url: &str, secrets: SecretBox, migrate: bool) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, secrets, migrate, &StoreSettings::default()).await
}

/// [`open`] with the connection pool sized and timed by `pool` (the `store.*` settings).
pub async fn open_with(
    url: &str,
    secrets: SecretBox,
    migrate: bool,
    pool: &StoreSettings,
) -> Result<Arc<dyn Store>, StoreError> {
    let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => Ok(Arc::new(sqlite::open(url, secrets, migrate).await?)),
        "postgres" | "postgresql" => Ok(Arc::new(postgres::open(url, secrets, migrate, pool).await?)),
        _ => Err(StoreError::UnsupportedUrl(scheme.to_owned())),
    }
}
