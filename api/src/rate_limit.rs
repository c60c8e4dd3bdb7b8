//! Rate limits: a fixed window of one minute per user, API key or e-mail address, counted in the shared state
//! ([`SharedCache::hit`]: one atomic Lua step in Redis), so every API node of a deployment counts together.
//!
//! When the shared state cannot be reached the limit is **not** enforced (fail open): a rate limit protects the
//! service from a flood, while refusing every question during a Redis outage would be an outage of its own. The
//! skipped checks are logged (at most once per [`WARN_EVERY`]). Token revocation, which protects accounts, fails
//! closed instead (see `auth::sessions`).

use querygpt_cache::SharedCache;
use querygpt_common::config::LimitSettings;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

use crate::error::ApiError;

/// Every limit counts hits in windows of this length.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// Warnings about skipped checks are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What is being counted, and for whom.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limited<'a> {
    /// Questions of one user (`limits.chat_per_minute`).
    Chat(Uuid),
    /// `/sql/generate` with one API key (`limits.generate_per_key_per_minute`).
    GenerateWithKey(Uuid),
    /// `/sql/generate` of one user, however authenticated (`limits.generate_per_user_per_minute`).
    GenerateByUser(Uuid),
    /// Login attempts for one (normalized) e-mail address (`limits.login_per_minute`).
    Login(&'a str),
}

impl Limited<'_> {
    fn key(&self) -> String {
        match self {
            Limited::Chat(user) => format!("rl:chat:{user}"),
            Limited::GenerateWithKey(key) => format!("rl:gen-key:{key}"),
            Limited::GenerateByUser(user) => format!("rl:gen-user:{user}"),
            Limited::Login(email) => format!("rl:login:{}", email.to_lowercase()),
        }
    }

    fn limit(&self, settings: &LimitSettings) -> u64 {
        match self {
            Limited::Chat(_) => settings.chat_per_minute,
            Limited::GenerateWithKey(_) => settings.generate_per_key_per_minute,
            Limited::GenerateByUser(_) => settings.generate_per_user_per_minute,
            Limited::Login(_) => settings.login_per_minute,
        }
    }

    /// What the client is told it did too often, in English and Chinese.
    fn what(&self) -> (&'static str, &'static str) {
        match self {
            Limited::Chat(_) => ("questions", "提问"),
            Limited::GenerateWithKey(_) => ("requests with this API key", "使用此 API Key 的请求"),
            Limited::GenerateByUser(_) => ("SQL generation requests", "SQL 生成请求"),
            Limited::Login(_) => ("login attempts for this account", "此账号的登录尝试"),
        }
    }
}

/// A hit over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// Hits allowed per window.
    pub limit: u64,
    /// Whole seconds until the window ends (at least 1), for `Retry-After`.
    pub retry_after_secs: u64,
    what: (&'static str, &'static str),
}

impl Refusal {
    /// The message in English (`zh == false`) or Chinese.
    pub(crate) fn message(&self, zh: bool) -> String {
        let (en, cn) = self.what;
        if zh {
            format!("{cn}过于频繁：每分钟最多 {} 次，请在 {} 秒后重试", self.limit, self.retry_after_secs)
        } else {
            format!("too many {en}: at most {} per minute; try again in {} s", self.limit, self.retry_after_secs)
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        ApiError::RateLimited {
            message: refusal.message(false).into(),
            retry_after_secs: Some(refusal.retry_after_secs),
        }
    }
}

/// Counts one hit of `limited`; `Err` when it is over its limit. A limit of 0 is off and counts nothing.
pub(crate) async fn check(
    shared: &dyn SharedCache,
    settings: &LimitSettings,
    limited: Limited<'_>,
) -> Result<(), Refusal> {
    let limit = limited.limit(settings);
    if limit == 0 {
        return Ok(());
    }
    match shared.hit(&limited.key(), limit, WINDOW).await {
        Ok(decision) if decision.allowed => Ok(()),
        Ok(decision) => Err(Refusal {
            limit,
            retry_after_secs: decision.retry_after.as_secs_f64().ceil().max(1.0) as u64,
            what: limited.what(),
        }),
        Err(err) => {
            warn_skipped(&err);
            Ok(())
        }
    }
}

/// Seconds since the epoch of the last "skipped" warning.
static LAST_WARNING: AtomicU64 = AtomicU64::new(0);

fn warn_skipped(err: &querygpt_cache::CacheError) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let last = LAST_WARNING.load(Ordering::Relaxed);
    if now >= last + WARN_EVERY.as_secs()
        && LAST_WARNING.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        tracing::warn!(error = %err, "the shared state is unreachable: rate limits are not enforced until it is back");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use querygpt_cache::InProcessCache;

    fn settings(chat: u64) -> LimitSettings {
        LimitSettings { chat_per_minute: chat, ..LimitSettings::default() }
    }

    #[tokio::test]
    async fn the_hit_over_the_limit_is_refused_with_the_time_left() {
        let cache = InProcessCache::default();
        let user = Uuid::new_v4();
        for _ in 0..3 {
            check(&cache, &settings(3), Limited::Chat(user)).await.unwrap();
        }
        let refusal = check(&cache, &settings(3), Limited::Chat(user)).await.unwrap_err();
        assert_eq!(refusal.limit, 3);
        assert!((1..=60).contains(&refusal.retry_after_secs), "{refusal:?}");
        assert!(refusal.message(false).contains("at most 3 per minute"), "{}", refusal.message(false));
        assert!(refusal.message(true).contains("每分钟最多 3 次"));
        // Another user, and another kind of limit of the same user, count on their own.
        check(&cache, &settings(3), Limited::Chat(Uuid::new_v4())).await.unwrap();
        check(&cache, &settings(3), Limited::GenerateByUser(user)).await.unwrap();
    }

    #[tokio::test]
    async fn zero_turns_a_limit_off() {
        let cache = InProcessCache::default();
        for _ in 0..100 {
            check(&cache, &settings(0), Limited::Chat(Uuid::nil())).await.unwrap();
        }
    }

    #[tokio::test]
    async fn login_limits_ignore_the_case_of_the_address() {
        let cache = InProcessCache::default();
        let settings = LimitSettings { login_per_minute: 1, ..LimitSettings::default() };
        check(&cache, &settings, Limited::Login("a@example.com")).await.unwrap();
        assert!(check(&cache, &settings, Limited::Login("A@Example.com")).await.is_err());
    }
}
