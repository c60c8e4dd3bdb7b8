//! SQL shared by both backends: the schemas are shaped alike so one text serves SQLite and PostgreSQL (`$n`
//! placeholders, `ON CONFLICT`, `TRUE`/`FALSE` and partial indexes work in both). Only transaction start and row
//! locking differ; each backend names those itself.

macro_rules! model_select {
    () => {
        "SELECT id, user_id, name, provider, model_id, base_url, api_key_enc, is_default, created_at \
         FROM models WHERE user_id = $1"
    };
}

macro_rules! connection_select {
    () => {
        "SELECT id, user_id, name, driver, host, port, username, password_enc, database_name, is_default, created_at \
         FROM connections WHERE user_id = $1"
    };
}

pub const INSERT_USER: &str = "INSERT INTO users \
    (id, email, display_name, avatar_url, role, password_hash, created_at, updated_at) \
    VALUES ($1, $2, $3, NULL, 'user', $4, $5, $5)";

macro_rules! user_select {
    () => {
        "SELECT id, email, display_name, avatar_url, role, created_at, password_hash FROM users"
    };
}
pub const USER_BY_EMAIL: &str = concat!(user_select!(), " WHERE email = $1");
pub const USER_BY_ID: &str = concat!(user_select!(), " WHERE id = $1");

pub const INSERT_MODEL: &str = "INSERT INTO models \
    (id, user_id, name, provider, model_id, base_url, api_key_enc, is_default, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)";
pub const MODELS_OF_USER: &str = concat!(model_select!(), " ORDER BY created_at, id");
pub const MODEL_BY_ID: &str = concat!(model_select!(), " AND id = $2");
pub const DEFAULT_MODEL: &str = concat!(model_select!(), " AND is_default");

pub const INSERT_CONNECTION: &str = "INSERT INTO connections \
    (id, user_id, name, driver, host, port, username, password_enc, database_name, is_default, created_at, \
    updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)";
pub const CONNECTIONS_OF_USER: &str = concat!(connection_select!(), " ORDER BY created_at, id");
pub const CONNECTION_BY_ID: &str = concat!(connection_select!(), " AND id = $2");
pub const DEFAULT_CONNECTION: &str = concat!(connection_select!(), " AND is_default");

/// The statements that keep one default row per user in a table of user-owned rows.
pub struct DefaultFlag {
    /// `$1` user: whether the user already has a default row.
    pub exists: &'static str,
    /// `$1` user, `$2` now: takes the flag away from the current default.
    pub clear: &'static str,
}

macro_rules! default_flag {
    ($table:literal) => {
        DefaultFlag {
            exists: concat!("SELECT EXISTS (SELECT 1 FROM ", $table, " WHERE user_id = $1 AND is_default)"),
            clear: concat!(
                "UPDATE ",
                $table,
                " SET is_default = FALSE, updated_at = $2 WHERE user_id = $1 AND is_default"
            ),
        }
    };
}
pub const MODEL_DEFAULT: DefaultFlag = default_flag!("models");
pub const CONNECTION_DEFAULT: DefaultFlag = default_flag!("connections");

pub const CONVERSATION_BY_ID: &str = "SELECT id, user_id, title, model, connection_id, is_favorite, created_at, \
    updated_at FROM conversations WHERE user_id = $1 AND id = $2";
/// Creates the conversation unless it exists (whoever owns it). The connection is kept only if it is the user's:
/// a foreign id, or one deleted since the question was asked, must neither fail the save nor leak a reference.
pub const INSERT_CONVERSATION: &str = "INSERT INTO conversations \
    (id, user_id, title, model, connection_id, is_favorite, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, (SELECT id FROM connections WHERE id = $5 AND user_id = $2), FALSE, $6, $6) \
    ON CONFLICT (id) DO NOTHING";
pub const CONVERSATION_OWNER: &str = "SELECT user_id FROM conversations WHERE id = $1";
pub const TOUCH_CONVERSATION: &str = "UPDATE conversations SET updated_at = $2 WHERE id = $1";

pub const INSERT_MESSAGE: &str = "INSERT INTO messages (id, conversation_id, role, content, metadata, created_at) \
    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING";
/// `$1` conversation, `$2` and `$3` message ids: how many of them are in that conversation.
pub const COUNT_MESSAGES_IN: &str = "SELECT COUNT(*) FROM messages WHERE conversation_id = $1 AND id IN ($2, $3)";
pub const MESSAGES_OF_CONVERSATION: &str = "SELECT id, conversation_id, role, content, metadata, created_at \
    FROM messages WHERE conversation_id = $1 ORDER BY created_at, seq";
/// `$1` user, `$2` conversation, `$3` limit: the newest messages, returned oldest first.
pub const RECENT_MESSAGES: &str = "SELECT id, conversation_id, role, content, metadata, created_at FROM ( \
    SELECT m.id, m.conversation_id, m.role, m.content, m.metadata, m.created_at, m.seq \
    FROM messages m JOIN conversations c ON c.id = m.conversation_id \
    WHERE c.user_id = $1 AND m.conversation_id = $2 \
    ORDER BY m.created_at DESC, m.seq DESC LIMIT $3) recent \
    ORDER BY created_at, seq";
pub const MESSAGE_BY_ID: &str = "SELECT m.id, m.conversation_id, m.role, m.content, m.metadata, m.created_at \
    FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.user_id = $1 AND m.id = $2";
