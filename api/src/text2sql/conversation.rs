//! Text2SQL conversations: what a follow-up reuses (schema, database, earlier turns). They live in the shared
//! state (Redis in the distributed mode, in-process when embedded) under `t2s:conv:<id>`, forgotten after
//! `text2sql.conversation_ttl_secs` (24 hours) without a request; each request renews the time.
//!
//! A follow-up that gives `schema` or `database` again must agree with the conversation:
//! - **schema**: the same tables (names compared case-insensitively, order free), and every column a table had
//!   is still there. Columns may be added (the document's second round adds `status`), and types and comments may
//!   change. The schema given replaces the stored one. Anything else is `SCHEMA_MISMATCH`.
//! - **database**: the same type (`DATABASE_MISMATCH` otherwise); a version given replaces the stored one.
//!
//! Two follow-ups of one conversation at the same moment both succeed; the turn written last is kept.

use querygpt_cache::SharedCache;
use querygpt_common::ErrorCode;
use querygpt_common::messages::PriorTurn;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

use super::error::{Lang, Text2SqlError};
use super::request::{Database, Generate, SchemaBody};

const ID_MARKER: &str = "conv_";
const ID_RANDOM_CHARS: usize = 24;
const ID_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// `conv_` and 24 lowercase letters or digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConversationId(String);

impl ConversationId {
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let random = text.strip_prefix(ID_MARKER)?;
        (random.len() == ID_RANDOM_CHARS && random.bytes().all(|b| ID_ALPHABET.contains(&b)))
            .then(|| ConversationId(text.to_owned()))
    }

    fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let random: String =
            (0..ID_RANDOM_CHARS).map(|_| char::from(ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())])).collect();
        ConversationId(format!("{ID_MARKER}{random}"))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    fn key(&self) -> String {
        format!("t2s:conv:{}", self.0)
    }
}

/// One answered turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Turn {
    query: String,
    sql: String,
}

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Conversation {
    /// The user whose key (or token) started it: another user's request cannot see it.
    owner: Uuid,
    pub database: Database,
    pub schema: SchemaBody,
    turns: Vec<Turn>,
}

/// The turn about to be asked: the conversation it belongs to, and what goes to the worker.
pub(crate) struct Resolved {
    pub id: ConversationId,
    pub conversation: Conversation,
    pub history: Vec<PriorTurn>,
}

pub(crate) fn not_found(lang: Lang) -> Text2SqlError {
    Text2SqlError::new(
        ErrorCode::ConversationNotFound,
        lang.pick("conversation_id 不存在或已过期", "the conversation does not exist or has expired"),
    )
}

/// Where conversations are kept, and for how long.
pub(crate) struct Conversations<'a> {
    pub shared: &'a dyn SharedCache,
    pub ttl: Duration,
    /// Turns kept (and sent to the model).
    pub turns: usize,
}

impl Conversations<'_> {
    /// The conversation `request` continues (checked against what it gives again) or starts.
    pub(crate) async fn resolve(&self, owner: Uuid, request: &Generate, lang: Lang) -> Result<Resolved, Text2SqlError> {
        let Some(id) = request.conversation_id.clone() else {
            let schema = request.schema.clone().ok_or_else(|| required(ErrorCode::SchemaRequired, lang))?;
            let database = request.database.clone().ok_or_else(|| required(ErrorCode::DatabaseRequired, lang))?;
            let conversation = Conversation { owner, database, schema, turns: Vec::new() };
            let history = history(&conversation, request.previous_sql.as_deref());
            return Ok(Resolved { id: ConversationId::generate(), conversation, history });
        };
        // Read and renewed in one round trip: a conversation lives 24 hours after its last use, answered or not.
        let stored = self.shared.get_and_touch(&id.key(), self.ttl).await.map_err(|e| unavailable(lang, e))?;
        let mut conversation: Conversation = match stored.map(|bytes| serde_json::from_slice(&bytes)) {
            Some(Ok(conversation)) => conversation,
            Some(Err(e)) => return Err(Text2SqlError::internal(lang, format!("unreadable conversation: {e}"))),
            None => return Err(not_found(lang)),
        };
        if conversation.owner != owner {
            return Err(not_found(lang));
        }
        if let Some(schema) = &request.schema {
            if !schema_agrees(&conversation.schema, schema) {
                return Err(Text2SqlError::new(
                    ErrorCode::SchemaMismatch,
                    lang.pick(
                        "schema 与历史会话不一致：表必须相同，已有的列必须保留（可以新增列）",
                        "the schema does not match the conversation's: the tables must be the same and keep every \
                         column they had (columns may be added)",
                    ),
                ));
            }
            conversation.schema = schema.clone();
        }
        if let Some(database) = &request.database {
            if database.driver != conversation.database.driver {
                return Err(Text2SqlError::new(
                    ErrorCode::DatabaseMismatch,
                    format!(
                        "{} {}",
                        lang.pick(
                            "database 与历史会话不一致：会话的类型是",
                            "the database does not match the conversation's type"
                        ),
                        conversation.database.driver
                    ),
                ));
            }
            if database.version.is_some() {
                conversation.database.version = database.version.clone();
            }
        }
        let history = history(&conversation, request.previous_sql.as_deref());
        Ok(Resolved { id, conversation, history })
    }

    /// Adds the answered turn and stores the conversation for another `ttl`.
    pub(crate) async fn save(
        &self,
        resolved: Resolved,
        query: String,
        sql: String,
        lang: Lang,
    ) -> Result<ConversationId, Text2SqlError> {
        let Resolved { id, mut conversation, .. } = resolved;
        conversation.turns.push(Turn { query, sql });
        let excess = conversation.turns.len().saturating_sub(self.turns.max(1));
        conversation.turns.drain(..excess);
        let bytes = serde_json::to_vec(&conversation).map_err(|e| Text2SqlError::internal(lang, e))?;
        self.shared.set(&id.key(), &bytes, self.ttl).await.map_err(|e| unavailable(lang, e))?;
        Ok(id)
    }
}

/// The earlier turns for the model; `previous_sql` replaces the statement of the last one (or is the only one).
fn history(conversation: &Conversation, previous_sql: Option<&str>) -> Vec<PriorTurn> {
    let mut history: Vec<PriorTurn> = conversation
        .turns
        .iter()
        .map(|turn| PriorTurn { question: Some(turn.query.clone()), sql: turn.sql.clone() })
        .collect();
    if let Some(sql) = previous_sql {
        match history.last_mut() {
            Some(last) => last.sql = sql.to_owned(),
            None => history.push(PriorTurn { question: None, sql: sql.to_owned() }),
        }
    }
    history
}

/// Same tables (case-insensitively), each keeping every column it had.
fn schema_agrees(stored: &SchemaBody, given: &SchemaBody) -> bool {
    let columns = |schema: &SchemaBody| -> HashMap<String, Vec<String>> {
        schema
            .tables
            .iter()
            .map(|t| (t.name.to_lowercase(), t.columns.iter().map(|c| c.name.to_lowercase()).collect()))
            .collect()
    };
    let (stored, given) = (columns(stored), columns(given));
    stored.len() == given.len()
        && stored.iter().all(|(table, had)| given.get(table).is_some_and(|now| had.iter().all(|c| now.contains(c))))
}

fn required(code: ErrorCode, lang: Lang) -> Text2SqlError {
    let message = match code {
        ErrorCode::SchemaRequired => lang.pick(
            "新会话需要提供 schema（或提供有效的 conversation_id）",
            "a new conversation needs a schema (or give a valid conversation_id)",
        ),
        _ => lang.pick(
            "新会话需要提供 database（或提供有效的 conversation_id）",
            "a new conversation needs a database (or give a valid conversation_id)",
        ),
    };
    Text2SqlError::new(code, message)
}

/// The shared state cannot be reached: no conversation can be read or kept.
fn unavailable(lang: Lang, cause: impl std::fmt::Display) -> Text2SqlError {
    tracing::error!(error = %cause, "the shared state holding Text2SQL conversations failed");
    Text2SqlError::new(
        ErrorCode::InternalError,
        lang.pick("会话存储暂时不可用，请稍后重试", "conversations cannot be read or kept right now; try again"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text2sql::request::{ColumnBody, TableBody};

    fn schema(tables: &[(&str, &[&str])]) -> SchemaBody {
        SchemaBody {
            tables: tables
                .iter()
                .map(|(name, columns)| TableBody {
                    name: name.to_string(),
                    columns: columns
                        .iter()
                        .map(|c| ColumnBody { name: c.to_string(), data_type: None, comment: None })
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn added_columns_agree_and_other_changes_do_not() {
        let stored = schema(&[("users", &["id", "name", "age"]), ("orders", &["id"])]);
        assert!(schema_agrees(&stored, &schema(&[("orders", &["id"]), ("USERS", &["id", "name", "age", "status"])])));
        assert!(!schema_agrees(&stored, &schema(&[("users", &["id", "name"]), ("orders", &["id"])])), "a column gone");
        assert!(!schema_agrees(&stored, &schema(&[("users", &["id", "name", "age"])])), "a table gone");
        let more = schema(&[("users", &["id", "name", "age"]), ("orders", &["id"]), ("items", &["id"])]);
        assert!(!schema_agrees(&stored, &more), "a table added");
    }

    #[test]
    fn previous_sql_replaces_the_last_statement_or_is_the_only_one() {
        let mut conversation = Conversation {
            owner: Uuid::nil(),
            database: Database { driver: querygpt_common::Driver::Mysql, version: None },
            schema: schema(&[("users", &["id"])]),
            turns: Vec::new(),
        };
        assert_eq!(history(&conversation, Some("SELECT 1")), [PriorTurn { question: None, sql: "SELECT 1".into() }]);
        conversation.turns = vec![
            Turn { query: "q1".into(), sql: "SELECT a".into() },
            Turn { query: "q2".into(), sql: "SELECT b".into() },
        ];
        let replaced = history(&conversation, Some("SELECT c"));
        assert_eq!(replaced[0].sql, "SELECT a");
        assert_eq!((replaced[1].question.as_deref(), replaced[1].sql.as_str()), (Some("q2"), "SELECT c"));
        assert_eq!(history(&conversation, None)[1].sql, "SELECT b");
    }

    #[test]
    fn ids_have_the_documented_shape() {
        let id = ConversationId::generate();
        assert_eq!(id.as_str().len(), 29);
        assert_eq!(ConversationId::parse(id.as_str()), Some(id));
        for bad in ["conv_xxx", "conv_A1B2C3D4E5F6G7H8I9J0K1L2", "conx_a1b2c3d4e5f6g7h8i9j0k1l2", ""] {
            assert!(ConversationId::parse(bad).is_none(), "{bad}");
        }
        assert!(ConversationId::parse("conv_a1b2c3d4e5f6g7h8i9j0k1l2").is_some());
    }
}
