//! Rows as the database returns them, and their conversion into records (parsing text enums, decrypting secrets).
//! `FromRow` is derived generically, so the same structs decode SQLite and PostgreSQL rows.

use crate::{
    AnswerMetadata, ApiKey, ApiKeyCredentials, Connection, Conversation, ConversationSummary, Message, Model, Role,
    SecretBox, StoreError, User, UserCredentials, UserSettings,
};
use chrono::{DateTime, Utc};
use querygpt_common::config::SecretString;
use querygpt_common::prompts::PromptSet;
use sqlx::types::Json;
use std::str::FromStr;
use uuid::Uuid;

pub const MODELS: &str = "models";
pub const API_KEY_COLUMN: &str = "api_key_enc";
pub const CONNECTIONS: &str = "connections";
pub const PASSWORD_COLUMN: &str = "password_enc";

/// A value in the database that the code cannot read back (e.g. an unknown enum spelling).
fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(format!("{what}: {detail}").into()))
}

fn parse<T: FromStr<Err = String>>(what: &str, text: &str) -> Result<T, StoreError> {
    text.parse().map_err(|e: String| corrupt(what, e))
}

fn parse_role(text: &str) -> Result<Role, StoreError> {
    match text {
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        other => Err(corrupt("messages.role", format!("unknown role `{other}`"))),
    }
}

/// Encrypts an optional secret for `table.column` of row `id`.
pub fn seal(
    secrets: &SecretBox,
    secret: Option<&SecretString>,
    table: &str,
    id: Uuid,
    column: &str,
) -> Result<Option<String>, StoreError> {
    secret.map(|s| secrets.encrypt(s.expose(), &SecretBox::aad(table, id, column))).transpose()
}

fn open_sealed(
    secrets: &SecretBox,
    stored: Option<String>,
    table: &str,
    id: Uuid,
    column: &str,
) -> Result<Option<SecretString>, StoreError> {
    stored.map(|s| secrets.decrypt(&s, &SecretBox::aad(table, id, column))).transpose()
}

/// A row holding encrypted secrets; it becomes its record with the box that decrypts them.
pub trait SealedRow {
    type Record;
    fn into_record(self, secrets: &SecretBox) -> Result<Self::Record, StoreError>;
}

#[derive(sqlx::FromRow)]
pub struct UserRow {
    id: Uuid,
    email: String,
    display_name: String,
    avatar_url: Option<String>,
    role: String,
    created_at: DateTime<Utc>,
    password_hash: String,
}

impl UserRow {
    pub fn into_credentials(self) -> UserCredentials {
        let password_hash = SecretString::new(self.password_hash);
        let user = User {
            id: self.id,
            email: self.email,
            display_name: self.display_name,
            avatar_url: self.avatar_url,
            role: self.role,
            created_at: self.created_at,
        };
        UserCredentials { user, password_hash }
    }
}

#[derive(sqlx::FromRow)]
pub struct ModelRow {
    pub(crate) id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) name: String,
    pub(crate) provider: String,
    pub(crate) model_id: String,
    pub(crate) base_url: Option<String>,
    pub(crate) api_key_enc: Option<String>,
    pub(crate) is_default: bool,
    pub(crate) is_available: Option<bool>,
    pub(crate) context_window: Option<i64>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

impl SealedRow for ModelRow {
    type Record = Model;

    fn into_record(self, secrets: &SecretBox) -> Result<Model, StoreError> {
        Ok(Model {
            api_key: open_sealed(secrets, self.api_key_enc, MODELS, self.id, API_KEY_COLUMN)?,
            provider: parse("models.provider", &self.provider)?,
            id: self.id,
            user_id: self.user_id,
            name: self.name,
            model_id: self.model_id,
            base_url: self.base_url,
            is_default: self.is_default,
            is_available: self.is_available,
            context_window: self.context_window.and_then(|w| u32::try_from(w).ok()),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ConnectionRow {
    pub(crate) id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) name: String,
    pub(crate) driver: String,
    pub(crate) host: Option<String>,
    pub(crate) port: Option<i32>,
    pub(crate) username: Option<String>,
    pub(crate) password_enc: Option<String>,
    pub(crate) database_name: String,
    pub(crate) is_default: bool,
    pub(crate) is_connected: Option<bool>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

impl SealedRow for ConnectionRow {
    type Record = Connection;

    fn into_record(self, secrets: &SecretBox) -> Result<Connection, StoreError> {
        let port = self
            .port
            .map(|p| u16::try_from(p).map_err(|_| corrupt("connections.port", format!("{p} is not a port"))))
            .transpose()?;
        Ok(Connection {
            password: open_sealed(secrets, self.password_enc, CONNECTIONS, self.id, PASSWORD_COLUMN)?,
            driver: parse("connections.driver", &self.driver)?,
            port,
            id: self.id,
            user_id: self.user_id,
            name: self.name,
            host: self.host,
            username: self.username,
            database: self.database_name,
            is_default: self.is_default,
            is_connected: self.is_connected,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct MessageRow {
    id: Uuid,
    conversation_id: Uuid,
    role: String,
    content: String,
    metadata: Option<Json<AnswerMetadata>>,
    created_at: DateTime<Utc>,
}

impl MessageRow {
    pub fn into_record(self) -> Result<Message, StoreError> {
        Ok(Message {
            id: self.id,
            conversation_id: self.conversation_id,
            role: parse_role(&self.role)?,
            content: self.content,
            metadata: self.metadata.map(|Json(v)| v),
            created_at: self.created_at,
        })
    }
}

/// A conversation in a list, with the number of all that the list's query matches.
#[derive(sqlx::FromRow)]
pub struct ListedConversationRow {
    #[sqlx(flatten)]
    conversation: Conversation,
    message_count: i64,
    pub total: i64,
}

impl ListedConversationRow {
    pub fn into_record(self) -> Result<ConversationSummary, StoreError> {
        let message_count = u64::try_from(self.message_count)
            .map_err(|_| corrupt("conversations.message_count", format!("{} is not a count", self.message_count)))?;
        Ok(ConversationSummary { conversation: self.conversation, message_count })
    }
}

#[derive(sqlx::FromRow)]
pub struct UserSettingsRow {
    pub(crate) language: Option<String>,
    pub(crate) theme: Option<String>,
    pub(crate) view_mode: Option<String>,
    pub(crate) context_rounds: Option<i64>,
    pub(crate) prompts: Json<PromptSet>,
}

fn parse_optional<T: FromStr<Err = String>>(what: &str, text: Option<String>) -> Result<Option<T>, StoreError> {
    text.map(|t| parse(what, &t)).transpose()
}

impl UserSettingsRow {
    pub fn into_record(self) -> Result<UserSettings, StoreError> {
        let context_rounds = self
            .context_rounds
            .map(|n| {
                u32::try_from(n).map_err(|_| corrupt("user_settings.context_rounds", format!("{n} is out of range")))
            })
            .transpose()?;
        Ok(UserSettings {
            language: parse_optional("user_settings.language", self.language)?,
            theme: parse_optional("user_settings.theme", self.theme)?,
            view_mode: parse_optional("user_settings.view_mode", self.view_mode)?,
            context_rounds,
            prompts: self.prompts.0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ApiKeyRow {
    id: Uuid,
    user_id: Uuid,
    name: String,
    prefix: String,
    last4: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        let ApiKeyRow { id, user_id, name, prefix, last4, created_at, last_used_at } = row;
        ApiKey { id, user_id, name, prefix, last4, created_at, last_used_at }
    }
}

#[derive(sqlx::FromRow)]
pub struct ApiKeyCredentialsRow {
    id: Uuid,
    user_id: Uuid,
    secret_hash: Vec<u8>,
}

impl From<ApiKeyCredentialsRow> for ApiKeyCredentials {
    fn from(row: ApiKeyCredentialsRow) -> Self {
        ApiKeyCredentials { id: row.id, user_id: row.user_id, secret_hash: row.secret_hash }
    }
}
