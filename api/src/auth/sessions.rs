//! Login sessions in the shared state: refresh-token rotation with reuse detection (RFC 9700 section 4.14.2) and
//! revocation, seen by every API node at once.
//!
//! A login starts a session, named by the `sid` claim of every token it ever gets. Each refresh token may be used
//! once: `/auth/refresh` marks its `jti` used (one atomic set-if-absent, so of two concurrent uses exactly one
//! wins) and returns a new pair in the same session. A refresh token that was already used means that two parties
//! hold it, the user and a thief, and nobody can tell which is which: the whole session is revoked, and both must
//! log in again. `/auth/logout` revokes the session too.
//!
//! A revocation is a key `auth:revoked:<sid>` that lives as long as any token of the session can, and every
//! authenticated request looks it up. That lookup **fails closed**: when the shared state cannot be reached, a
//! request with a token is refused (500 `INTERNAL_ERROR`, reason `shared_state_unavailable`) rather than let a
//! logged-out token through. Logging in needs no shared state at all.

use querygpt_cache::{CacheError, SharedCache};
use std::time::Duration;
use uuid::Uuid;

use super::tokens::{Claims, LEEWAY_SECS};
use crate::error::ApiError;

/// Why a session's token is refused, beyond its signature.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The session was logged out, or revoked after a refresh token was used twice.
    #[error("this session has ended (logged out or revoked); log in again")]
    Revoked,
    /// This refresh token had been used before: the session is now revoked.
    #[error("this refresh token was already used, so every token of its session has been revoked; log in again")]
    Reused,
    /// The shared state holding revocations cannot be reached.
    #[error("the session store is unreachable: {0}")]
    Unavailable(#[from] CacheError),
}

impl From<SessionError> for ApiError {
    fn from(err: SessionError) -> Self {
        match err {
            SessionError::Revoked => ApiError::unauthorized("session_revoked", err.to_string()),
            SessionError::Reused => ApiError::unauthorized("refresh_token_reused", err.to_string()),
            SessionError::Unavailable(cause) => {
                tracing::error!(error = %cause, "cannot check a token's session: refusing the request");
                ApiError::Unavailable {
                    reason: "shared_state_unavailable",
                    message: "cannot check the session right now (the shared state is unreachable); try again".into(),
                }
            }
        }
    }
}

/// The sessions of a deployment, in its shared state.
#[derive(Clone, Copy)]
pub struct Sessions<'a> {
    shared: &'a dyn SharedCache,
    /// How long a revocation must be kept: the longest any token can live, plus clock skew.
    revocation_ttl: Duration,
}

impl<'a> Sessions<'a> {
    /// Sessions whose tokens live at most `refresh_ttl_secs`.
    pub fn new(shared: &'a dyn SharedCache, refresh_ttl_secs: u64) -> Self {
        Sessions { shared, revocation_ttl: Duration::from_secs(refresh_ttl_secs + LEEWAY_SECS) }
    }

    /// A fresh session id for a login.
    pub fn start() -> Uuid {
        Uuid::new_v4()
    }

    /// `Ok` when the session of a verified token has not been revoked.
    pub async fn check(&self, sid: Uuid) -> Result<(), SessionError> {
        match self.shared.get(&revoked_key(sid)).await? {
            Some(_) => Err(SessionError::Revoked),
            None => Ok(()),
        }
    }

    /// Ends the session `sid` on every node.
    pub async fn revoke(&self, sid: Uuid) -> Result<(), SessionError> {
        Ok(self.shared.set(&revoked_key(sid), b"1", self.revocation_ttl).await?)
    }

    /// Spends the verified refresh token `claims` (whose `jti` is set): `Ok` the first time, `Reused` (and the
    /// session revoked) on any later use, `Revoked` when its session has ended.
    pub async fn spend_refresh_token(&self, claims: &Claims, now_secs: u64) -> Result<(), SessionError> {
        self.check(claims.sid).await?;
        let jti = claims.jti.expect("verified refresh tokens carry a jti");
        // Kept as long as the token could still be presented.
        let lifetime = Duration::from_secs(claims.exp.saturating_sub(now_secs) + LEEWAY_SECS);
        let first_use = self.shared.set_if_absent(&format!("auth:used:{jti}"), claims.sid.as_bytes(), lifetime).await?;
        if first_use {
            return Ok(());
        }
        self.revoke(claims.sid).await?;
        tracing::warn!(user_id = %claims.sub, sid = %claims.sid, "a refresh token was used twice: session revoked");
        Err(SessionError::Reused)
    }
}

fn revoked_key(sid: Uuid) -> String {
    format!("auth:revoked:{sid}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{TokenKeys, TokenKind};
    use querygpt_cache::InProcessCache;

    fn refresh_claims(keys: &TokenKeys, sid: Uuid) -> Claims {
        let pair = keys.issue(Uuid::new_v4(), sid).unwrap();
        keys.verify(&pair.refresh_token, TokenKind::Refresh).unwrap()
    }

    #[tokio::test]
    async fn a_refresh_token_spent_twice_revokes_its_session() {
        let cache = InProcessCache::default();
        let sessions = Sessions::new(&cache, 3600);
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 60, 3600).unwrap();
        let sid = Sessions::start();
        let now = jsonwebtoken::get_current_timestamp();
        let first = refresh_claims(&keys, sid);
        sessions.spend_refresh_token(&first, now).await.unwrap();
        let second = refresh_claims(&keys, sid);
        sessions.spend_refresh_token(&second, now).await.unwrap();
        sessions.check(sid).await.unwrap();

        assert!(matches!(sessions.spend_refresh_token(&first, now).await, Err(SessionError::Reused)));
        assert!(matches!(sessions.check(sid).await, Err(SessionError::Revoked)));
        // The newest token of the session is dead too, while other sessions live on.
        let third = refresh_claims(&keys, sid);
        assert!(matches!(sessions.spend_refresh_token(&third, now).await, Err(SessionError::Revoked)));
        sessions.check(Sessions::start()).await.unwrap();
    }

    #[tokio::test]
    async fn of_concurrent_uses_of_one_token_exactly_one_wins() {
        let cache = InProcessCache::default();
        let sessions = Sessions::new(&cache, 3600);
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 60, 3600).unwrap();
        let claims = refresh_claims(&keys, Sessions::start());
        let now = jsonwebtoken::get_current_timestamp();
        let outcomes = futures::future::join_all((0..8).map(|_| sessions.spend_refresh_token(&claims, now))).await;
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    }
}
