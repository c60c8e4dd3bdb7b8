//! The Text2SQL API (`../shared/spec/text2sql-api.md`): `POST /sql/generate` writes a statement for a schema the
//! client describes, in that document's shapes (`{sql, explanation, conversation_id}`, errors `{code, message}`).
//!
//! The flow of a request: authenticate (API key or access token) -> rate limit (per key and per user) -> check
//! the Content-Type and the body -> resolve the conversation (new, or a follow-up checked against the stored one) -> a worker writes
//! and validates the statement with the key owner's default model (this node never calls an LLM) -> the turn is
//! added to the conversation -> the reply. No target database is contacted.

mod caller;
mod conversation;
mod error;
mod request;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use querygpt_common::ErrorCode;
use querygpt_common::messages::{GenerateRequest, WorkerOutcome, WorkerTask};
use querygpt_common::schema::{ColumnInfo, DbSchema, TableInfo, TableKind};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::workers;
use conversation::Conversations;
use error::{ErrorBody, Lang, Text2SqlError};
use request::{GenerateSqlRequest, SchemaBody};

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(generate))
}

/// A statement and what it does.
#[derive(Serialize, ToSchema)]
struct GeneratedSqlBody {
    /// SQL for mysql/postgresql/sqlite; read-only Redis commands (one per line) for redis.
    #[schema(example = "SELECT * FROM users WHERE age > 30")]
    sql: String,
    #[schema(example = "筛选年龄大于30的用户")]
    explanation: String,
    /// Give it in the next request to continue the conversation (24 hours without use and it is forgotten).
    #[schema(example = "conv_a1b2c3d4e5f6g7h8i9j0k1l2")]
    conversation_id: String,
}

/// Writes a read-only SQL statement (or Redis commands) for the question, the schema and the database given,
/// with the default model of the key's owner, and checks it with the validator of that dialect. Nothing is run.
/// Authenticate with an API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`) or an access token.
/// Errors are `{code, message}`; messages are Chinese unless `Accept-Language` prefers English.
#[utoipa::path(post, path = "/sql/generate", tag = "text2sql", security(("api_key" = []), ("bearer" = [])),
    request_body(content = GenerateSqlRequest, content_type = "application/json"),
    responses(
        (status = 200, body = GeneratedSqlBody),
        (status = 400, description = "INVALID_REQUEST, INVALID_SCHEMA, INVALID_DATABASE, SCHEMA_REQUIRED, \
            DATABASE_REQUIRED, SQL_VALIDATION_FAILED, SCHEMA_MISMATCH or DATABASE_MISMATCH", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 404, description = "CONVERSATION_NOT_FOUND", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED (see `Retry-After`)", body = ErrorBody),
        (status = 500, description = "LLM_ERROR or INTERNAL_ERROR", body = ErrorBody),
    ))]
async fn generate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<GeneratedSqlBody>, Text2SqlError> {
    let lang = Lang::of(&headers);
    let caller = caller::authenticate(&state, &headers, lang).await?;
    caller.rate_limit(&state, lang).await?;
    let limits = &state.settings.text2sql;
    check_content_type(&headers, lang)?;
    let body = read_limited(body, limits.max_request_bytes).await.map_err(|()| {
        Text2SqlError::invalid_request(format!(
            "{} {}",
            lang.pick(
                "请求体过大或读取失败：最大字节数为",
                "the body is too large or could not be read: the limit in bytes is"
            ),
            limits.max_request_bytes
        ))
    })?;
    let request = request::parse(&body, limits, lang)?;

    let conversations = Conversations {
        shared: &*state.shared,
        ttl: Duration::from_secs(limits.conversation_ttl_secs),
        turns: limits.conversation_turns,
    };
    let resolved = conversations.resolve(caller.user_id, &request, lang).await?;
    let task = GenerateRequest {
        query: request.query.clone(),
        driver: resolved.conversation.database.driver,
        version: resolved.conversation.database.version.clone(),
        schema: db_schema(&resolved.conversation.schema),
        history: resolved.history.clone(),
    };
    let timeout = Duration::from_secs(limits.request_timeout_secs.max(1));
    let outcome = workers::request(&state, caller.user_id, WorkerTask::GenerateSql(Box::new(task)), timeout)
        .await
        .map_err(|e| Text2SqlError::from_api(e, lang))?;
    let generated = match outcome {
        WorkerOutcome::Generated(generated) => generated,
        WorkerOutcome::Failed { code, message } => return Err(worker_failure(code, message, lang)),
        other => return Err(Text2SqlError::from_api(workers::unexpected(&other), lang)),
    };
    let id = conversations.save(resolved, request.query, generated.sql.clone(), lang).await?;
    Ok(Json(GeneratedSqlBody {
        sql: generated.sql,
        explanation: generated.explanation,
        conversation_id: id.as_str().to_owned(),
    }))
}

/// A refused body is still read (and dropped) for this long, up to as much again as the limit, so that a client
/// still sending it is not cut off before it can read the refusal.
const LINGER: Duration = Duration::from_secs(2);

/// The body, or `Err` when it is over `limit` bytes or cannot be read.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, ()> {
    use futures::StreamExt;
    let mut chunks = body.into_data_stream();
    let mut read = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(drop)?;
        if read.len() + chunk.len() > limit {
            let mut dropped = 0;
            let _ = tokio::time::timeout(LINGER, async {
                while let Some(Ok(chunk)) = chunks.next().await {
                    dropped += chunk.len();
                    if dropped > limit {
                        break;
                    }
                }
            })
            .await;
            return Err(());
        }
        read.extend_from_slice(&chunk);
    }
    Ok(read)
}

/// The document requires `application/json` (a charset parameter is fine).
fn check_content_type(headers: &HeaderMap, lang: Lang) -> Result<(), Text2SqlError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match media_type.as_deref() {
        Some("application/json") => Ok(()),
        _ => Err(Text2SqlError::invalid_request(
            lang.pick("Content-Type 必须是 application/json", "the Content-Type header must be application/json"),
        )),
    }
}

/// A worker's refusal in this API's codes: the validator's (`SQL_VALIDATION_FAILED`) and the model's
/// (`LLM_ERROR`) as they are; anything else is the service's own failure.
fn worker_failure(code: ErrorCode, message: String, lang: Lang) -> Text2SqlError {
    match code {
        ErrorCode::SqlValidationFailed | ErrorCode::LlmError | ErrorCode::InternalError => {
            Text2SqlError::new(code, message)
        }
        other => Text2SqlError::internal(lang, format!("a worker failed a Text2SQL request ({other}): {message}")),
    }
}

/// The client's schema as the prompt builder and the ranking take it.
fn db_schema(schema: &SchemaBody) -> DbSchema {
    DbSchema {
        tables: schema
            .tables
            .iter()
            .map(|table| TableInfo {
                name: table.name.clone(),
                kind: TableKind::Table,
                comment: None,
                columns: table
                    .columns
                    .iter()
                    .map(|column| ColumnInfo {
                        name: column.name.clone(),
                        data_type: column.data_type.clone().unwrap_or_default(),
                        nullable: true,
                        primary: false,
                        comment: column.comment.clone(),
                    })
                    .collect(),
                foreign_keys: Vec::new(),
                row_count: None,
            })
            .collect(),
    }
}
