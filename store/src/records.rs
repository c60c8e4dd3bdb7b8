//! Rows of the store as Rust values. Secrets are decrypted `SecretString`s; API DTOs decide what is shown.

use chrono::{DateTime, Utc};
use querygpt_common::config::SecretString;
use querygpt_common::{Driver, Provider};
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
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewModel {
    pub name: String,
    pub provider: Provider,
    pub model_id: String,
    pub base_url: Option<String>,
    pub api_key: Option<SecretString>,
    pub is_default: bool,
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
    pub created_at: DateTime<Utc>,
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
    /// Assistant messages: `{sql, execution_time, rows_count, visualization, ...}`.
    pub metadata: Option<Value>,
    pub created_at: DateTime<Utc>,
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
