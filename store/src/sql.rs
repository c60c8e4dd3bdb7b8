//! SQL shared by both backends: the schemas are shaped alike so one text serves SQLite and PostgreSQL (`$n`
//! placeholders, `ON CONFLICT`, `TRUE`/`FALSE` and partial indexes work in both). Only transaction start and row
//! locking differ; each backend names those itself.

macro_rules! model_columns {
    () => {
        "id, user_id, name, provider, model_id, base_url, api_key_enc, is_default, is_available, context_window, created_at, \
         updated_at"
    };
}

macro_rules! model_select {
    () => {
        concat!("SELECT ", model_columns!(), " FROM models WHERE user_id = $1")
    };
}

macro_rules! connection_columns {
    () => {
        "id, user_id, name, driver, host, port, username, password_enc, database_name, is_default, is_connected, \
         created_at, updated_at"
    };
}

macro_rules! connection_select {
    () => {
        concat!("SELECT ", connection_columns!(), " FROM connections WHERE user_id = $1")
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
    (id, user_id, name, provider, model_id, base_url, api_key_enc, is_default, context_window, created_at, \
    updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $10, $9, $9)";
pub const MODELS_OF_USER: &str = concat!(model_select!(), " ORDER BY created_at, id");
pub const MODEL_BY_ID: &str = concat!(model_select!(), " AND id = $2");
pub const DEFAULT_MODEL: &str = concat!(model_select!(), " AND is_default");
/// `$1` user, `$2` model, `$3`..`$7` and `$10` the new values, `$8` whether the last test result no longer applies,
/// `$9` now.
pub const UPDATE_MODEL: &str = concat!(
    "UPDATE models SET name = $3, provider = $4, model_id = $5, base_url = $6, api_key_enc = $7, \
     is_available = CASE WHEN $8 THEN NULL ELSE is_available END, updated_at = $9, context_window = $10 \
     WHERE user_id = $1 AND id = $2 RETURNING ",
    model_columns!()
);
/// `$1` user, `$2` model, `$3` the test result. A test is not an edit: `updated_at` stays.
pub const SET_MODEL_AVAILABLE: &str = "UPDATE models SET is_available = $3 WHERE user_id = $1 AND id = $2";

pub const INSERT_CONNECTION: &str = "INSERT INTO connections \
    (id, user_id, name, driver, host, port, username, password_enc, database_name, is_default, created_at, \
    updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)";
pub const CONNECTIONS_OF_USER: &str = concat!(connection_select!(), " ORDER BY created_at, id");
pub const CONNECTION_BY_ID: &str = concat!(connection_select!(), " AND id = $2");
pub const DEFAULT_CONNECTION: &str = concat!(connection_select!(), " AND is_default");
/// `$1` user, `$2` connection, `$3`..`$9` the new values, `$10` whether the last test result no longer applies,
/// `$11` now.
pub const UPDATE_CONNECTION: &str = concat!(
    "UPDATE connections SET name = $3, driver = $4, host = $5, port = $6, username = $7, password_enc = $8, \
     database_name = $9, is_connected = CASE WHEN $10 THEN NULL ELSE is_connected END, updated_at = $11 \
     WHERE user_id = $1 AND id = $2 RETURNING ",
    connection_columns!()
);
/// `$1` user, `$2` connection, `$3` the test result; `updated_at` stays.
pub const SET_CONNECTION_CONNECTED: &str = "UPDATE connections SET is_connected = $3 WHERE user_id = $1 AND id = $2";

/// The statements of a table of user-owned rows of which one per user is the default (models, connections).
pub struct OwnedRows {
    /// What a row is, for `NotFound`.
    pub what: &'static str,
    /// `$1` user, `$2` row: the row.
    pub by_id: &'static str,
    /// `$1` user, `$2` row: deletes it, returning whether it was the default.
    pub delete: &'static str,
    /// `$1` user: whether the user already has a default row.
    pub has_default: &'static str,
    /// `$1` user, `$2` now: takes the flag away from the current default.
    pub clear_default: &'static str,
    /// `$1` user, `$2` row, `$3` now: gives the flag to that row (after `clear_default`: one default at a time).
    pub set_default: &'static str,
    /// `$1` user, `$2` now: gives the flag to the user's most recently created row.
    pub promote_newest: &'static str,
}

macro_rules! owned_rows {
    ($table:literal, $what:literal, $by_id:expr) => {
        OwnedRows {
            what: $what,
            by_id: $by_id,
            delete: concat!("DELETE FROM ", $table, " WHERE user_id = $1 AND id = $2 RETURNING is_default"),
            has_default: concat!("SELECT EXISTS (SELECT 1 FROM ", $table, " WHERE user_id = $1 AND is_default)"),
            clear_default: concat!(
                "UPDATE ",
                $table,
                " SET is_default = FALSE, updated_at = $2 WHERE user_id = $1 AND is_default"
            ),
            set_default: concat!(
                "UPDATE ",
                $table,
                " SET is_default = TRUE, updated_at = $3 WHERE user_id = $1 AND id = $2"
            ),
            promote_newest: concat!(
                "UPDATE ",
                $table,
                " SET is_default = TRUE, updated_at = $2 WHERE id = (SELECT id FROM ",
                $table,
                " WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1)"
            ),
        }
    };
}
pub const MODEL_ROWS: OwnedRows = owned_rows!("models", "model", MODEL_BY_ID);
pub const CONNECTION_ROWS: OwnedRows = owned_rows!("connections", "connection", CONNECTION_BY_ID);

macro_rules! conversation_columns {
    () => {
        "c.id, c.user_id, c.title, c.model, c.connection_id, c.is_favorite, c.created_at, c.updated_at"
    };
}
pub const CONVERSATION_BY_ID: &str =
    concat!("SELECT ", conversation_columns!(), " FROM conversations c WHERE c.user_id = $1 AND c.id = $2");
/// Creates the conversation unless it exists (whoever owns it). The connection is kept only if it is the user's:
/// a foreign id, or one deleted since the question was asked, must neither fail the save nor leak a reference.
pub const INSERT_CONVERSATION: &str = "INSERT INTO conversations \
    (id, user_id, title, model, connection_id, is_favorite, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, (SELECT id FROM connections WHERE id = $5 AND user_id = $2), FALSE, $6, $6) \
    ON CONFLICT (id) DO NOTHING";
/// The last statement of saving an exchange: `$1` conversation, `$2` now, `$3` how many messages were added, `$4`
/// and `$5` the exchange's message ids. Renews the conversation (its time only when something was added) and
/// returns its owner and how many of the two messages it holds, so the caller can check both in the same round trip.
pub const SETTLE_CONVERSATION: &str = "UPDATE conversations \
    SET updated_at = CASE WHEN $3 > 0 THEN $2 ELSE updated_at END, message_count = message_count + $3 \
    WHERE id = $1 \
    RETURNING user_id, (SELECT COUNT(*) FROM messages WHERE conversation_id = $1 AND id IN ($4, $5))";
/// Its messages go by `ON DELETE CASCADE`, their search entries with them.
pub const DELETE_CONVERSATION: &str = "DELETE FROM conversations WHERE user_id = $1 AND id = $2";
/// One statement, so concurrent toggles each flip the flag.
pub const TOGGLE_FAVORITE: &str =
    "UPDATE conversations SET is_favorite = NOT is_favorite WHERE user_id = $1 AND id = $2 RETURNING is_favorite";

/// PostgreSQL's `save_exchange` function (migration 0004): the bindings of [`INSERT_CONVERSATION`] (`$1`-`$6`), then
/// each message's as in [`INSERT_EXCHANGE_MESSAGES`] (`$7`-`$16`).
pub const SAVE_EXCHANGE_CALL: &str =
    "SELECT save_exchange($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
/// The SQLSTATE of PL/pgSQL's `no_data_found`, which `save_exchange` raises for a conversation that is not the user's.
pub const NO_DATA_FOUND: &str = "P0002";
/// An exchange's two messages (`$1` their conversation, then each message's id, role, content, metadata and time),
/// in one statement; an id already present is skipped.
pub const INSERT_EXCHANGE_MESSAGES: &str = "INSERT INTO messages \
    (id, conversation_id, role, content, metadata, created_at) \
    VALUES ($2, $1, $3, $4, $5, $6), ($7, $1, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING";
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

/// How a conversation list finds the conversations whose title or messages contain the search text `$2`.
#[derive(Debug, Clone, Copy)]
pub enum SearchSql {
    /// What to read instead of `conversations c`: every matching conversation once, as `c`, found through an
    /// index of the text (so that the index, not the user's conversations, drives the query).
    Source(&'static str),
    /// A condition on `conversations c`.
    Filter(&'static str),
}

/// The statements of one conversation list.
pub struct ConversationList {
    /// `$1` user, then the search text if there is a search, then limit and offset. Every row carries `total`,
    /// the count of all that match.
    pub page: String,
    /// `$1` user, then the search text if there is a search: the count alone, for a page past the end.
    pub count: String,
}

/// The list of a user's conversations, favourites only or all, matching `search` if given. Only static fragments
/// go into the text; values are always bound.
pub fn conversation_list(favorites_only: bool, search: Option<SearchSql>) -> ConversationList {
    let (source, condition) = match search {
        Some(SearchSql::Source(source)) => (source, None),
        Some(SearchSql::Filter(condition)) => ("conversations c", Some(condition)),
        None => ("conversations c", None),
    };
    let mut rows = format!("{source} WHERE c.user_id = $1");
    if favorites_only {
        rows.push_str(" AND c.is_favorite");
    }
    if let Some(condition) = condition {
        rows.push_str(" AND ");
        rows.push_str(condition);
    }
    let count = format!("SELECT COUNT(*) FROM {rows}");
    // A search counts its matches in the pass that finds them (a window over what the page is cut from). The
    // plain list counts on the user's index instead: a window would first read every row.
    let (total, limit) = match search {
        Some(_) => ("COUNT(*) OVER ()".to_owned(), 3),
        None => (format!("({count})"), 2),
    };
    ConversationList {
        page: format!(
            concat!(
                "SELECT ",
                conversation_columns!(),
                ", c.message_count, {} AS total FROM {} ORDER BY c.updated_at DESC, c.id DESC LIMIT ${} OFFSET ${}"
            ),
            total,
            rows,
            limit,
            limit + 1
        ),
        count,
    }
}

/// Search by a scan of the user's conversations and their messages, for texts too short for a trigram index.
/// `$position` is the backend's `(haystack, needle)` substring function; `lower` on both sides makes it
/// case-insensitive.
macro_rules! substring_scan {
    ($position:literal) => {
        $crate::sql::SearchSql::Filter(concat!(
            "(",
            $position,
            "(lower(c.title), lower($2)) > 0 OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND ",
            $position,
            "(lower(m.content), lower($2)) > 0))"
        ))
    };
}
pub(crate) use substring_scan;

/// Everything asking a question reads, in one statement (`Store::question_context`): `$1` the user, `$2` the model
/// asked for (NULL: the default), `$3` the connection asked for (NULL: the conversation's, else the default), `$4`
/// the conversation continued. One row while the user exists; a part that is missing has NULL columns. The model's
/// and the connection's columns are those of [`MODELS_OF_USER`] and [`CONNECTIONS_OF_USER`] with a prefix.
pub const QUESTION_CONTEXT: &str = "SELECT s.language, s.theme, s.view_mode, s.context_rounds, s.prompts, \
    v.id AS conversation_id, \
    m.id AS m_id, m.user_id AS m_user_id, m.name AS m_name, m.provider AS m_provider, m.model_id AS m_model_id, \
    m.base_url AS m_base_url, m.api_key_enc AS m_api_key_enc, m.is_default AS m_is_default, \
    m.is_available AS m_is_available, m.context_window AS m_context_window, m.created_at AS m_created_at, \
    m.updated_at AS m_updated_at, \
    c.id AS c_id, c.user_id AS c_user_id, c.name AS c_name, c.driver AS c_driver, c.host AS c_host, \
    c.port AS c_port, c.username AS c_username, c.password_enc AS c_password_enc, \
    c.database_name AS c_database_name, c.is_default AS c_is_default, c.is_connected AS c_is_connected, \
    c.created_at AS c_created_at, c.updated_at AS c_updated_at \
    FROM users u \
    LEFT JOIN user_settings s ON s.user_id = u.id \
    LEFT JOIN conversations v ON v.user_id = u.id AND v.id = $4 \
    LEFT JOIN models m ON m.user_id = u.id AND CASE WHEN $2 IS NULL THEN m.is_default ELSE m.id = $2 END \
    LEFT JOIN connections c ON c.user_id = u.id AND CASE WHEN COALESCE($3, v.connection_id) IS NULL \
        THEN c.is_default ELSE c.id = COALESCE($3, v.connection_id) END \
    WHERE u.id = $1";
pub const USER_SETTINGS: &str =
    "SELECT language, theme, view_mode, context_rounds, prompts FROM user_settings WHERE user_id = $1";
/// `$1` user, `$2`..`$6` the settings, `$7` now: the whole row is replaced.
pub const SAVE_USER_SETTINGS: &str = "INSERT INTO user_settings \
    (user_id, language, theme, view_mode, context_rounds, prompts, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (user_id) DO UPDATE SET language = excluded.language, theme = excluded.theme, \
    view_mode = excluded.view_mode, context_rounds = excluded.context_rounds, prompts = excluded.prompts, \
    updated_at = excluded.updated_at";

pub const INSERT_API_KEY: &str = "INSERT INTO api_keys \
    (id, user_id, name, prefix, last4, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const COUNT_API_KEYS: &str = "SELECT COUNT(*) FROM api_keys WHERE user_id = $1";
pub const API_KEYS_OF_USER: &str = "SELECT id, user_id, name, prefix, last4, created_at, last_used_at \
    FROM api_keys WHERE user_id = $1 ORDER BY created_at, id";
pub const DELETE_API_KEY: &str = "DELETE FROM api_keys WHERE user_id = $1 AND id = $2";
pub const API_KEY_BY_PREFIX: &str = "SELECT id, user_id, secret_hash FROM api_keys WHERE prefix = $1";
/// `$1` key, `$2` now, `$3` now minus the precision of `last_used_at`.
pub const TOUCH_API_KEY: &str =
    "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)";
