//! `/api-keys`: the keys that authenticate the Text2SQL API (`POST /sql/generate`). A logged-in user creates,
//! lists and revokes them; a key is shown once, at creation, and stored only as a keyed hash (see [`secret`]).
//! Revoking deletes the row, so the next request with the key fails on every API node at once: each request looks
//! its key up in the store.

pub(crate) mod secret;

use axum::extract::State;
use chrono::{DateTime, Utc};
use querygpt_store::{ApiKey, NewApiKey, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResponse};
use crate::extract::{PathId, ValidJson};
use crate::openapi::{CommonErrors, Envelope};
use crate::validate;

pub use secret::{ApiKeyHasher, PresentedKey};

const MAX_NAME_CHARS: usize = 100;
/// Draws of a new key whose prefix is taken before giving up. With 12 random base62 characters a collision is
/// astronomically unlikely; a second draw covers it.
const PREFIX_DRAWS: usize = 3;

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(revoke))
}

#[derive(Deserialize, ToSchema)]
struct CreateApiKey {
    /// What the key is for, e.g. `reporting job`.
    name: String,
}

/// A key as listed: its prefix and last four characters, never the key.
#[derive(Serialize, ToSchema)]
struct ApiKeyItem {
    id: Uuid,
    name: String,
    /// The key's first characters (`qgpt_` and 12 more).
    #[schema(example = "qgpt_AbCdEfGh1234")]
    prefix: String,
    /// The key's last four characters.
    last4: String,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    created_at: DateTime<Utc>,
    /// When a request last used it (recorded at most once a minute); `null` if never.
    #[serde(serialize_with = "crate::timestamp::rfc3339_optional")]
    last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for ApiKeyItem {
    fn from(key: ApiKey) -> Self {
        ApiKeyItem {
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            last4: key.last4,
            created_at: key.created_at,
            last_used_at: key.last_used_at,
        }
    }
}

/// A key just created: the only time `key` is shown.
#[derive(Serialize, ToSchema)]
struct CreatedApiKey {
    /// The whole key. It cannot be shown again: store it now.
    #[schema(example = "qgpt_AbCdEfGh1234ijklmnopqrstuvwxyz0123456789")]
    key: String,
    #[serde(flatten)]
    item: ApiKeyItem,
}

#[derive(Serialize, ToSchema)]
struct ApiKeyList {
    api_keys: Vec<ApiKeyItem>,
}

/// The user's API keys, oldest first.
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", security(("bearer" = [])),
    responses((status = 200, body = Envelope<ApiKeyList>), CommonErrors))]
async fn list(State(state): State<Arc<AppState>>, auth: AuthUser) -> Result<ApiResponse<ApiKeyList>, ApiError> {
    let keys = state.store.list_api_keys(auth.user_id).await?;
    Ok(ApiResponse::ok(ApiKeyList { api_keys: keys.into_iter().map(ApiKeyItem::from).collect() }))
}

/// Creates a key for `POST /sql/generate` (as `Authorization: Bearer <key>` or `X-API-Key: <key>`). The reply is
/// the only time the key is shown. A user holds at most 50 keys.
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", security(("bearer" = [])), request_body = CreateApiKey,
    responses((status = 201, body = Envelope<CreatedApiKey>), CommonErrors))]
async fn create(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    ValidJson(request): ValidJson<CreateApiKey>,
) -> Result<ApiResponse<CreatedApiKey>, ApiError> {
    let name = validate::required_text("name", &request.name, MAX_NAME_CHARS)?;
    for _ in 0..PREFIX_DRAWS {
        let new = state.tokens.api_key_hasher().generate();
        let row = NewApiKey { name: name.clone(), prefix: new.prefix, last4: new.last4, secret_hash: new.hash };
        match state.store.create_api_key(auth.user_id, row).await {
            Ok(stored) => {
                let created = CreatedApiKey { key: new.key, item: ApiKeyItem::from(stored) };
                return Ok(ApiResponse::created(created).with_message("API Key 已创建，请立即保存：它不会再次显示"));
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(StoreError::LimitReached(message)) => {
                return Err(ApiError::invalid_request("limit_reached", message, serde_json::Map::new()));
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::internal(anyhow::anyhow!("{PREFIX_DRAWS} new API keys in a row had a prefix already taken")))
}

/// Revokes a key: from now on no request can use it, on any API node.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "api-keys", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The key's id")),
    responses((status = 200, body = Envelope<crate::Deleted>), CommonErrors))]
async fn revoke(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    PathId(id): PathId,
) -> Result<ApiResponse<crate::Deleted>, ApiError> {
    state.store.delete_api_key(auth.user_id, id).await?;
    Ok(crate::Deleted::reply(id, "API Key 已撤销"))
}
