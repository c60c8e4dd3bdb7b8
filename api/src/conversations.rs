//! `/conversations`: the history of a user's questions. Another user's conversation is a 404, exactly like a
//! missing one.

use axum::extract::State;
use chrono::{DateTime, Utc};
use querygpt_store::{AnswerMetadata, ConversationDetail, ConversationQuery, ConversationSummary, Message, Role};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResponse};
use crate::extract::{PathId, ValidQuery};
use crate::openapi::{CommonErrors, Envelope};
use crate::validate;

/// Conversations per page unless `limit` says otherwise, and at most.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;
/// Deeper pages are not served (and would be slow): search instead.
const MAX_OFFSET: u64 = 1_000_000;
const MAX_SEARCH_CHARS: usize = 200;

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(show, delete)).routes(routes!(favorite))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Conversations per page, 1-200 (default 50).
    #[serde(default)]
    limit: Option<u32>,
    /// Conversations to skip (default 0).
    #[serde(default)]
    offset: Option<u64>,
    /// Only favourites.
    #[serde(default)]
    favorites: Option<bool>,
    /// Case-insensitive text that the title or a message must contain (any language, substring match).
    #[serde(default)]
    q: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ConversationItem {
    id: Uuid,
    title: String,
    /// The model's name when the conversation was last used; kept when the model is deleted.
    model: Option<String>,
    is_favorite: bool,
    message_count: u64,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    updated_at: DateTime<Utc>,
}

impl From<ConversationSummary> for ConversationItem {
    fn from(ConversationSummary { conversation, message_count }: ConversationSummary) -> Self {
        ConversationItem {
            id: conversation.id,
            title: conversation.title,
            model: conversation.model,
            is_favorite: conversation.is_favorite,
            message_count,
            created_at: conversation.created_at,
            updated_at: conversation.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct ConversationList {
    conversations: Vec<ConversationItem>,
    /// Conversations that match, over all pages.
    total: u64,
    /// More pages follow this one.
    has_more: bool,
}

#[derive(Serialize, ToSchema)]
struct ConversationView {
    id: Uuid,
    title: String,
    model: Option<String>,
    connection_id: Option<Uuid>,
    is_favorite: bool,
    messages: Vec<MessageView>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
struct MessageView {
    id: Uuid,
    /// `user` or `assistant`.
    #[schema(value_type = String)]
    role: Role,
    content: String,
    /// Assistant messages only: `{sql, execution_time, rows_count, truncated, columns, visualization,
    /// explanation, connection_id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    metadata: Option<AnswerMetadata>,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    created_at: DateTime<Utc>,
}

impl From<Message> for MessageView {
    fn from(message: Message) -> Self {
        MessageView {
            id: message.id,
            role: message.role,
            content: message.content,
            metadata: message.metadata.filter(|_| message.role == Role::Assistant),
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
            updated_at: conversation.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct Favorite {
    id: Uuid,
    is_favorite: bool,
}

/// The user's conversations, most recently active first, with paging, a favourites filter and search.
#[utoipa::path(get, path = "/conversations", tag = "conversations", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = Envelope<ConversationList>), CommonErrors))]
async fn list(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    ValidQuery(params): ValidQuery<ListParams>,
) -> Result<ApiResponse<ConversationList>, ApiError> {
    let query = list_query(params)?;
    let page = state.store.list_conversations(auth.user_id, &query).await?;
    let has_more = query.offset + (page.items.len() as u64) < page.total;
    Ok(ApiResponse::ok(ConversationList {
        conversations: page.items.into_iter().map(ConversationItem::from).collect(),
        total: page.total,
        has_more,
    }))
}

fn list_query(params: ListParams) -> Result<ConversationQuery, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "out_of_range", format!("`limit` must be 1 to {MAX_LIMIT}")));
    }
    let offset = params.offset.unwrap_or(0);
    if offset > MAX_OFFSET {
        return Err(ApiError::invalid_field(
            "offset",
            "out_of_range",
            format!("`offset` must be at most {MAX_OFFSET}: narrow the list with `q` instead"),
        ));
    }
    Ok(ConversationQuery {
        limit,
        offset,
        favorites_only: params.favorites.unwrap_or(false),
        search: validate::optional_text("q", params.q.as_deref(), MAX_SEARCH_CHARS)?,
    })
}

/// A conversation with all its messages, oldest first.
#[utoipa::path(get, path = "/conversations/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The conversation's id")),
    responses((status = 200, body = Envelope<ConversationView>), CommonErrors))]
async fn show(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    PathId(id): PathId,
) -> Result<ApiResponse<ConversationView>, ApiError> {
    let conversation =
        state.store.conversation_detail(auth.user_id, id).await?.ok_or_else(|| ApiError::not_found("conversation"))?;
    Ok(ApiResponse::ok(ConversationView::from(conversation)))
}

/// Deletes a conversation and its messages.
#[utoipa::path(delete, path = "/conversations/{id}", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The conversation's id")),
    responses((status = 200, body = Envelope<crate::Deleted>), CommonErrors))]
async fn delete(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    PathId(id): PathId,
) -> Result<ApiResponse<crate::Deleted>, ApiError> {
    state.store.delete_conversation(auth.user_id, id).await?;
    Ok(crate::Deleted::reply(id, "对话已删除"))
}

/// Toggles the favourite mark and returns the new state.
#[utoipa::path(post, path = "/conversations/{id}/favorite", tag = "conversations", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The conversation's id")),
    responses((status = 200, body = Envelope<Favorite>), CommonErrors))]
async fn favorite(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    PathId(id): PathId,
) -> Result<ApiResponse<Favorite>, ApiError> {
    let is_favorite = state.store.toggle_favorite(auth.user_id, id).await?;
    let message = if is_favorite { "已收藏" } else { "已取消收藏" };
    Ok(ApiResponse::ok(Favorite { id, is_favorite }).with_message(message))
}
