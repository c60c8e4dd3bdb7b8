//! Error codes of the two API documents, plus the two codes the chat stream adds for failures that happen after a
//! job was accepted (`DATABASE_ERROR`, `CANCELLED`). Every code knows its HTTP status; the envelope that carries it
//! is chosen by the API layer (QueryGPT v2 envelope or Text2SQL flat shape).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    // QueryGPT v2
    Unauthorized,
    Forbidden,
    NotFound,
    ValidationError,
    RateLimited,
    InternalError,
    // Text2SQL (also used in chat error events)
    InvalidRequest,
    InvalidSchema,
    InvalidDatabase,
    SchemaRequired,
    DatabaseRequired,
    SqlValidationFailed,
    ConversationNotFound,
    SchemaMismatch,
    DatabaseMismatch,
    LlmError,
    // Chat stream, and `GET /connections/{id}/schema` of a database that cannot be read
    DatabaseError,
    Cancelled,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            Unauthorized => 401,
            Forbidden => 403,
            NotFound | ConversationNotFound => 404,
            ValidationError => 422,
            RateLimited => 429,
            InvalidRequest | InvalidSchema | InvalidDatabase | SchemaRequired | DatabaseRequired
            | SqlValidationFailed | SchemaMismatch | DatabaseMismatch => 400,
            InternalError | LlmError => 500,
            // Failed Dependency: the user's database failed, not this service (a 5xx would say it is ours).
            DatabaseError => 424,
            Cancelled => 499,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            Unauthorized => "UNAUTHORIZED",
            Forbidden => "FORBIDDEN",
            NotFound => "NOT_FOUND",
            ValidationError => "VALIDATION_ERROR",
            RateLimited => "RATE_LIMITED",
            InternalError => "INTERNAL_ERROR",
            InvalidRequest => "INVALID_REQUEST",
            InvalidSchema => "INVALID_SCHEMA",
            InvalidDatabase => "INVALID_DATABASE",
            SchemaRequired => "SCHEMA_REQUIRED",
            DatabaseRequired => "DATABASE_REQUIRED",
            SqlValidationFailed => "SQL_VALIDATION_FAILED",
            ConversationNotFound => "CONVERSATION_NOT_FOUND",
            SchemaMismatch => "SCHEMA_MISMATCH",
            DatabaseMismatch => "DATABASE_MISMATCH",
            LlmError => "LLM_ERROR",
            DatabaseError => "DATABASE_ERROR",
            Cancelled => "CANCELLED",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_spelling_matches_as_str() {
        for code in [ErrorCode::SqlValidationFailed, ErrorCode::LlmError, ErrorCode::NotFound] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
