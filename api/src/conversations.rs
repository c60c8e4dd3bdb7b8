//! `GET /conversations/{id}`: a conversation with its messages. Another user's conversation is a 404, exactly
//! like a missing one.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use chrono::{DateTime, Utc};
use querygpt_store::{AnswerMetadata, ConversationDetail, Message, Role};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResponse};
use crate::extract::PathId;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/conversations/{id}", get(show))
}

#[derive(Serialize)]
struct ConversationView {
    id: Uuid,
    title: String,
    model: Option<String>,
    connection_id: Option<Uuid>,
    is_favorite: bool,
    messages: Vec<MessageView>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    created_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct MessageView {
    id: Uuid,
    role: Role,
    content: String,
    /// Present on assistant messages only (`{sql, execution_time, rows_count, visualization, ...}`; `null` if
    /// none was stored).
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Option<AnswerMetadata>>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    created_at: DateTime<Utc>,
}

impl From<Message> for MessageView {
    fn from(message: Message) -> Self {
        let metadata = match message.role {
            Role::Assistant => Some(message.metadata),
            Role::User => None,
        };
        MessageView {
            id: message.id,
            role: message.role,
            content: message.content,
            metadata,
            created_at: message.created_at,
        }
    }
}

impl From<ConversationDetail> for ConversationView {
    fn from(ConversationDetail { conversation, messages }: ConversationDetail) -> Self {
        ConversationView {
            id: conversation.id,
            title: conversation.title,
            model: conversation.model,
            connection_id: conversation.connection_id,
            is_favorite: conversation.is_favorite,
            messages: messages.into_iter().map(MessageView::from).collect(),
            created_at: conversation.created_at,
        }
    }
}

async fn show(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    PathId(id): PathId,
) -> Result<ApiResponse<ConversationView>, ApiError> {
    let conversation =
        state.store.conversation_detail(auth.user_id, id).await?.ok_or_else(|| ApiError::not_found("conversation"))?;
    Ok(ApiResponse::ok(ConversationView::from(conversation)))
}
