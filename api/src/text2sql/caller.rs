//! Who calls the Text2SQL API: an API key (`X-API-Key: <key>` or `Authorization: Bearer <key>`), or a v2 access
//! token in `Authorization: Bearer <token>`. Keys are looked up in the store on every request, so a revoked key
//! fails at once on every node; so does an access token after its session logged out.

use axum::http::{HeaderMap, header};
use chrono::Utc;
use std::sync::Arc;
use uuid::Uuid;

use super::error::{Lang, Text2SqlError};
use crate::AppState;
use crate::api_keys::PresentedKey;
use crate::auth::TokenKind;
use crate::rate_limit::{Limited, Refusal};
use querygpt_common::ErrorCode;

/// The authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caller {
    pub user_id: Uuid,
    /// The key used, when it was a key (rate limits count per key).
    pub key_id: Option<Uuid>,
}

impl Caller {
    /// Counts this request against the caller's limits: its key's, then its user's.
    pub(crate) async fn rate_limit(&self, state: &AppState, lang: Lang) -> Result<(), Text2SqlError> {
        let refused = |refusal: Refusal| Text2SqlError {
            code: ErrorCode::RateLimited,
            message: refusal.message(lang == Lang::Zh).into(),
            retry_after_secs: Some(refusal.retry_after_secs),
        };
        if let Some(key_id) = self.key_id {
            state.rate_limit(Limited::GenerateWithKey(key_id)).await.map_err(refused)?;
        }
        state.rate_limit(Limited::GenerateByUser(self.user_id)).await.map_err(refused)
    }
}

/// The caller of a request, or `UNAUTHORIZED`.
pub(crate) async fn authenticate(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    lang: Lang,
) -> Result<Caller, Text2SqlError> {
    let unauthorized = || Text2SqlError::unauthorized(lang);
    let text = |name| headers.get(name).map(|v| v.to_str().map(str::trim).map_err(|_| unauthorized())).transpose();
    if let Some(key) = text(header::HeaderName::from_static("x-api-key"))? {
        let key = PresentedKey::parse(key).ok_or_else(unauthorized)?;
        return with_key(state, key, lang).await;
    }
    let authorization = text(header::AUTHORIZATION)?.ok_or_else(unauthorized)?;
    let (scheme, credential) = authorization.split_once(' ').ok_or_else(unauthorized)?;
    let credential = credential.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || credential.is_empty() {
        return Err(unauthorized());
    }
    if let Some(key) = PresentedKey::parse(credential) {
        return with_key(state, key, lang).await;
    }
    let claims = state.tokens.verify(credential, TokenKind::Access).map_err(|_| unauthorized())?;
    state.sessions().check(claims.sid).await.map_err(|err| Text2SqlError::from_api(err.into(), lang))?;
    Ok(Caller { user_id: claims.sub, key_id: None })
}

async fn with_key(state: &Arc<AppState>, key: PresentedKey<'_>, lang: Lang) -> Result<Caller, Text2SqlError> {
    let stored = state.store.api_key_by_prefix(key.prefix()).await.map_err(|e| Text2SqlError::internal(lang, e))?;
    let stored = stored
        .filter(|stored| state.tokens.api_key_hasher().matches(key, &stored.secret_hash))
        .ok_or_else(|| Text2SqlError::unauthorized(lang))?;
    // Off the request's path: the answer does not wait for the bookkeeping write.
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(e) = store.touch_api_key(stored.id, Utc::now()).await {
            tracing::warn!(error = %e, "cannot record the use of an API key");
        }
    });
    Ok(Caller { user_id: stored.user_id, key_id: Some(stored.id) })
}
