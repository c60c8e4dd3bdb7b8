//! [`SharedCache`] on Redis, through one multiplexed connection that reconnects by itself.

use crate::{CacheError, SharedCache, clamp_ttl};
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

/// Entries in Redis under `<namespace>:<key>`, expiring on the server (`SET ... PX`), so every process using the
/// same Redis and namespace shares them.
pub struct RedisCache {
    manager: ConnectionManager,
    namespace: String,
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
        Ok(RedisCache { manager, namespace: namespace.to_owned() })
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
        let millis = u64::try_from(clamp_ttl(ttl).as_millis()).expect("MAX_TTL fits in u64 milliseconds");
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(millis)
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
}
