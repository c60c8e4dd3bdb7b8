//! Rows of the store as Rust values. Secrets are decrypted `SecretString`s; API DTOs decide what is shown.

use chrono::{DateTime, Utc};
use querygpt_common::config::SecretString;
use querygpt_common::prompts::PromptSet;
use querygpt_common::{Driver, Language, Provider, Theme, ViewMode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    /// `user` or `admin`.
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// A user with its argon2id PHC hash string, only for verifying a login.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: SecretString,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    /// Created with the user, as its default connection (the embedded demo database).
    pub initial_connection: Option<NewConnection>,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub provider: Provider,
    /// The provider's model name, e.g. `gpt-4o`.
    pub model_id: String,
    pub base_url: Option<String>,
    pub api_key: Option<SecretString>,
    pub is_default: bool,
    /// Outcome of the last test of this configuration; `None` until tested, and again after the provider, model
    /// id, base URL or API key change.
    pub is_available: Option<bool>,
    /// The model's context window in tokens, when the user gave it: prompts are kept within it.
    pub context_window: Option<u32>,
    pub created_at: DateTime<Utc>,
    /// When its configuration last changed (at creation, then by each update): a worker keeps the record for the
    /// jobs that name this `updated_at`, and reads it again for those that name another.
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewModel {
    pub name: String,
    pub provider: Provider,
    pub model_id: String,
    pub base_url: Option<String>,
    pub api_key: Option<SecretString>,
    pub is_default: bool,
    pub context_window: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Connection {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub driver: Driver,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// Database name; for SQLite the file path.
    pub database: String,
    pub is_default: bool,
    /// Outcome of the last test of this configuration; `None` until tested, and again after the driver, host,
    /// port, username, password or database change.
    pub is_connected: Option<bool>,
    pub created_at: DateTime<Utc>,
    /// When its configuration last changed (at creation, then by each update): a worker keeps the record for the
    /// jobs that name this `updated_at`, and reads it again for those that name another.
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewConnection {
    pub name: String,
    pub driver: Driver,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub database: String,
    pub is_default: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub role: Role,
    pub content: String,
    /// What an assistant message records about its answer; `None` on the user's messages.
    pub metadata: Option<AnswerMetadata>,
    pub created_at: DateTime<Utc>,
}

/// What an assistant message records about its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AnswerMetadata {
    /// The statement as the model wrote it (follow-up questions refine this text). What ran is this statement
    /// checked by the validator, which applies the row cap: `executed_sql`.
    pub sql: String,
    /// The exact text that ran, when it differs from `sql` (developer view).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed_sql: Option<String>,
    /// Seconds from sending the statement to the last row read.
    pub execution_time: f64,
    pub rows_count: usize,
    /// More rows existed than were kept.
    #[serde(default)]
    pub truncated: bool,
    /// Column names in result order.
    #[serde(default)]
    pub columns: Vec<String>,
    /// The chart specification, if one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visualization: Option<Value>,
    /// The LLM's explanation of the query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// The connection the SQL ran on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<Uuid>,
    /// The tables whose schema the model was given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    /// Attempts the answer took (more than 1 after a self-correction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Fields written by newer versions, kept as they are.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// A conversation without its messages.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Conversation {
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    /// Model name shown to the user (the provider's model id, e.g. `gpt-4o`).
    pub model: Option<String>,
    pub connection_id: Option<Uuid>,
    pub is_favorite: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which of a user's conversations [`crate::Store::list_conversations`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationQuery {
    /// Page size.
    pub limit: u32,
    /// Conversations skipped before the page.
    pub offset: u64,
    pub favorites_only: bool,
    /// Text to find in the title or in any message (case-insensitive substring, taken literally); `None` or empty
    /// finds every conversation.
    pub search: Option<String>,
}

/// A conversation in a list: its header and how many messages it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationSummary {
    pub conversation: Conversation,
    pub message_count: u64,
}

/// One page of a conversation list.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationPage {
    /// Newest activity (`updated_at`) first.
    pub items: Vec<ConversationSummary>,
    /// How many conversations match the query, on every page together.
    pub total: u64,
}

/// A conversation with all its messages, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationDetail {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
}

/// One answered question, stored atomically by [`crate::Store::save_exchange`].
#[derive(Debug, Clone)]
pub struct Exchange {
    pub user_id: Uuid,
    pub conversation_id: Uuid,
    /// Title used if the conversation is created now.
    pub title: String,
    pub model: String,
    pub connection_id: Uuid,
    pub user_message: Message,
    pub assistant_message: Message,
}

/// A user's own settings; `None` means the service default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSettings {
    pub language: Option<Language>,
    pub theme: Option<Theme>,
    pub view_mode: Option<ViewMode>,
    /// How many earlier exchanges a question sends along as context.
    pub context_rounds: Option<u32>,
    pub prompts: PromptSet,
}

/// Which model and connection become the user's defaults along with a settings change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultChoice {
    pub model_id: Option<Uuid>,
    pub connection_id: Option<Uuid>,
}

/// An API key of the Text2SQL API as a listing shows it: never the key, only how to recognise it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// The key's first characters, which find it: unique.
    pub prefix: String,
    /// The key's last four characters.
    pub last4: String,
    pub created_at: DateTime<Utc>,
    /// Updated at most once a minute (see [`crate::Store::touch_api_key`]).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A key to store: what identifies it, and its keyed hash (the key itself is never stored).
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub prefix: String,
    pub last4: String,
    pub secret_hash: [u8; 32],
}

/// What checking a presented key needs: whose it is and the hash to compare with.
#[derive(Debug, Clone)]
pub struct ApiKeyCredentials {
    pub id: Uuid,
    pub user_id: Uuid,
    pub secret_hash: Vec<u8>,
}

/// What a question names besides its text; `None` picks the default (see [`crate::Store::question_context`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuestionRefs {
    pub model: Option<Uuid>,
    pub connection: Option<Uuid>,
    pub conversation: Option<Uuid>,
}

/// What asking a question reads from the store.
#[derive(Debug, Clone)]
pub struct QuestionContext {
    pub settings: UserSettings,
    /// The conversation asked for, when it is one of the user's.
    pub conversation: Option<Uuid>,
    /// The model asked for, else the default; `None` when the one asked for is not the user's, or there is no
    /// default.
    pub model: Option<Model>,
    /// The connection asked for, else the conversation's, else the default; `None` likewise.
    pub connection: Option<Connection>,
}
