//! [`SharedCache`] on Redis, through one multiplexed connection that reconnects by itself.

use crate::{CacheError, RateDecision, SharedCache, ttl_millis};
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// Limits of one connection attempt and of one command. A cache that is slow to answer is worse than none: its
/// callers fall back to doing the work, so they should learn quickly that Redis is gone.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnection attempts after a lost connection, waiting at most `MAX_RECONNECT_DELAY` between two; a command
/// issued meanwhile waits for them, so they are few.
const RECONNECT_RETRIES: usize = 2;
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// The fixed-window counter of [`SharedCache::hit`], run atomically by Redis. `KEYS[1]` is the counter,
/// `ARGV[1]` the window in milliseconds; returns the count including this hit and the window's remaining
/// milliseconds. A counter without an expiry (written by something else, or left by a crash between two commands
/// of an older version) gets one, so no counter can block a caller for ever.
const HIT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
";

/// Entries in Redis under `<namespace>:<key>`, expiring on the server (`SET ... PX`), so every process using the
/// same Redis and namespace shares them.
pub struct RedisCache {
    manager: ConnectionManager,
    namespace: String,
    /// [`HIT_SCRIPT`], sent once by `EVALSHA`'s fallback and then called by its hash.
    hit_script: redis::Script,
}

impl RedisCache {
    /// Connects to `url` (`redis://[:PASSWORD@]HOST[:PORT][/DB]`). Later connection losses are repaired on the
    /// next command.
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).map_err(CacheError::InvalidUrl)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(MAX_RECONNECT_DELAY);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|source| CacheError::Redis { operation: "connection", source })?;
        Ok(RedisCache { manager, namespace: namespace.to_owned(), hit_script: redis::Script::new(HIT_SCRIPT) })
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.namespace)
    }
}

#[async_trait]
impl SharedCache for RedisCache {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut self.manager.clone())
            .await
            .map_err(|source| CacheError::Redis { operation: "GET", source })
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_millis(ttl))
            .exec_async(&mut self.manager.clone())
            .await
            .map_err(|source| CacheError::Redis { operation: "SET", source })
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        redis::cmd("DEL")
            .arg(self.key(key))
            .exec_async(&mut self.manager.clone())
            .await
            .map_err(|source| CacheError::Redis { operation: "DEL", source })
    }

    async fn get_and_touch(&self, key: &str, ttl: Duration) -> Result<Option<Vec<u8>>, CacheError> {
        // GETEX (Redis 6.2+) reads and renews in one command; a missing key stays missing.
        redis::cmd("GETEX")
            .arg(self.key(key))
            .arg("PX")
            .arg(ttl_millis(ttl))
            .query_async(&mut self.manager.clone())
            .await
            .map_err(|source| CacheError::Redis { operation: "GETEX", source })
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        // GETDEL (Redis 6.2+): Redis runs commands one at a time, so two takes cannot both see the value.
        redis::cmd("GETDEL")
            .arg(self.key(key))
            .query_async(&mut self.manager.clone())
            .await
            .map_err(|source| CacheError::Redis { operation: "GETDEL", source })
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        // `SET ... NX` answers OK when it stored the value and nil when the key was there.
        let stored: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl_millis(ttl))
            .query_async(&mut self.manager.clone())
            .await
            .map_err(|source| CacheError::Redis { operation: "SET NX", source })?;
        Ok(stored.is_some())
    }

    async fn hit(&self, key: &str, limit: u64, window: Duration) -> Result<RateDecision, CacheError> {
        let (count, left): (u64, u64) = self
            .hit_script
            .key(self.key(key))
            .arg(ttl_millis(window))
            .invoke_async(&mut self.manager.clone())
            .await
            .map_err(|source| CacheError::Redis { operation: "rate-limit script", source })?;
        Ok(RateDecision { allowed: count <= limit, retry_after: Duration::from_millis(left) })
    }

    async fn ping(&self) -> Result<(), CacheError> {
        redis::cmd("PING")
            .exec_async(&mut self.manager.clone())
            .await
            .map_err(|source| CacheError::Redis { operation: "PING", source })
    }
}
