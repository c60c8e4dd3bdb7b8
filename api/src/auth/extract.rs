//! The [`AuthUser`] extractor: a valid access token in `Authorization: Bearer <token>`.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use std::sync::Arc;
use uuid::Uuid;

use super::TokenKind;
use crate::AppState;
use crate::error::ApiError;

/// The user a request is authenticated as. Rejects with 401 `UNAUTHORIZED` when the header is missing or the
/// token is malformed, forged, expired, a refresh token, or of a session that has been logged out; with 500
/// `INTERNAL_ERROR` when revocations cannot be checked (fail closed, see [`super::sessions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub user_id: Uuid,
    /// The login session of the token.
    pub session_id: Uuid,
}

impl FromRequestParts<Arc<AppState>> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?;
        let claims = state.tokens.verify(token, TokenKind::Access)?;
        state.sessions().check(claims.sid).await?;
        Ok(AuthUser { user_id: claims.sub, session_id: claims.sid })
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing_token", "missing `Authorization: Bearer <token>` header"))?;
    let malformed = || ApiError::unauthorized("invalid_token", "the Authorization header is not `Bearer <token>`");
    let value = value.to_str().map_err(|_| malformed())?;
    // The scheme is case-insensitive (RFC 7235).
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(token)
}
