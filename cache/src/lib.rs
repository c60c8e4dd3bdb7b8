//! Short-lived state that every API node and worker of a deployment shares: schemas, Text2SQL conversations,
//! rate-limit counters, one-time refresh tokens and token revocations.
//!
//! One trait, [`SharedCache`], with two implementations: [`RedisCache`] (the distributed mode: every process
//! that opens the same Redis with the same namespace sees the same entries) and [`InProcessCache`] (the embedded
//! mode: shared only inside one process). [`open`] picks one from the settings. Values are bytes with a time to
//! live; what they mean is the caller's business.

mod in_process;
mod redis_cache;

pub use in_process::InProcessCache;
pub use redis_cache::RedisCache;

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

/// Shortest time to live: Redis refuses a zero expiry.
pub const MIN_TTL: Duration = Duration::from_millis(1);
/// Longest time to live: this is a cache of short-lived state, not a store.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Why a cache operation failed. A cache failure should never fail what the cache only speeds up: callers log it
/// and do the work themselves.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The Redis URL cannot be used (the URL itself is not repeated: it may hold a password).
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(#[source] redis::RedisError),
    /// Redis could not be reached in time, or answered with an error.
    #[error("Redis {operation} failed: {source}")]
    Redis {
        operation: &'static str,
        #[source]
        source: redis::RedisError,
    },
    /// The value alone is larger than the whole budget of the in-process cache.
    #[error("a value of {size} bytes does not fit in the in-process cache ({budget} bytes)")]
    TooLarge { size: usize, budget: usize },
}

/// Entries of bytes under string keys, each with a time to live, shared by every handle on the same state.
#[async_trait]
pub trait SharedCache: Send + Sync + 'static {
    /// Name of the backend (`redis` or `in-process`), for logs.
    fn backend(&self) -> &'static str;

    /// The value stored under `key`; `None` when it was never set, was deleted or has expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Stores `value` under `key` for `ttl` (clamped to [`MIN_TTL`]..=[`MAX_TTL`]), replacing the value and the
    /// time to live the key had.
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;

    /// Removes `key`. Removing a key that is not there is not an error.
    async fn delete(&self, key: &str) -> Result<(), CacheError>;

    /// The value stored under `key`, whose time to live is renewed to `ttl` (clamped like [`SharedCache::set`])
    /// in the same step: an idle timeout that every read pushes back. `None`, and nothing renewed, when the key is
    /// not there.
    async fn get_and_touch(&self, key: &str, ttl: Duration) -> Result<Option<Vec<u8>>, CacheError>;

    /// Removes `key` and returns the value it held, in one step: of any number of concurrent takes of one key,
    /// exactly one gets the value (one-time tokens). `None` when the key is not there.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Stores `value` under `key` for `ttl` only when the key is not there (an expired key counts as not there),
    /// in one step. Returns whether it was stored; an existing value and its time to live are left as they are.
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError>;

    /// Counts one hit on `key` against at most `limit` hits per `window`, and says whether this hit is allowed.
    ///
    /// A fixed window: the first hit starts a window of `window` length, every hit in it counts, and the count
    /// starts again from zero when it ends. Chosen over a sliding window because it is one counter per key and
    /// one atomic step (in Redis a short Lua script: `INCR`, `PEXPIRE` on the first hit, `PTTL`), so API nodes
    /// sharing a Redis agree on it without locking; the cost is that up to `2 × limit` hits can pass around a
    /// window's boundary. Refused hits count too, so hammering does not reopen the window sooner. `limit` 0
    /// refuses every hit.
    async fn hit(&self, key: &str, limit: u64, window: Duration) -> Result<RateDecision, CacheError>;

    /// Checks that the shared state answers (Redis `PING`; the in-process map always does), for readiness probes.
    async fn ping(&self) -> Result<(), CacheError>;
}

/// The answer of [`SharedCache::hit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether this hit is within the limit.
    pub allowed: bool,
    /// How long until the current window ends and the count starts again (zero only when the window has just
    /// ended). Meant for `Retry-After` when the hit is refused.
    pub retry_after: Duration,
}

/// The cache a process uses: Redis at `redis_url` when one is given (connected now, so a wrong address or
/// password shows at start), else an in-process cache with the default budget. Redis keys are prefixed with
/// `namespace` (the deployment's `subject_prefix`), so deployments sharing one Redis do not see each other's entries.
pub async fn open(redis_url: Option<&str>, namespace: &str) -> Result<Arc<dyn SharedCache>, CacheError> {
    Ok(match redis_url {
        Some(url) => Arc::new(RedisCache::connect(url, namespace).await?),
        None => Arc::new(InProcessCache::default()),
    })
}

fn clamp_ttl(ttl: Duration) -> Duration {
    ttl.clamp(MIN_TTL, MAX_TTL)
}

/// `ttl` clamped, in the whole milliseconds Redis expects (`PX`, `PEXPIRE`).
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(clamp_ttl(ttl).as_millis()).expect("MAX_TTL fits in u64 milliseconds")
}
