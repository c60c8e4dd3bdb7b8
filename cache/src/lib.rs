//! Short-lived state that every API node and worker of a deployment shares: schemas now; rate limits, token
//! revocations and conversations later.
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
