//! [`SharedCache`] in this process's memory, for the embedded mode (one process: API and worker together).

use crate::{CacheError, RateDecision, SharedCache, clamp_ttl};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Budget of [`InProcessCache::default`]: room for the schemas of a few hundred large databases.
pub const DEFAULT_BUDGET: usize = 64 * 1024 * 1024;

/// What an entry costs besides its key and value (map slot, expiry, allocation headers), roughly.
const ENTRY_OVERHEAD: usize = 64;

/// Entries in a map behind a mutex, shared by every holder of the same `InProcessCache` (put it in an `Arc`).
///
/// Expiry is checked on read. Memory is bounded by a byte budget: a write that would go over it first drops the
/// expired entries, then the ones closest to expiring, so the map never grows past the budget however many keys
/// are written.
pub struct InProcessCache {
    budget: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Sum of [`cost`] over `entries`.
    used: usize,
}

struct Entry {
    value: Vec<u8>,
    expires: Instant,
}

impl Default for InProcessCache {
    fn default() -> Self {
        InProcessCache::new(DEFAULT_BUDGET)
    }
}

impl InProcessCache {
    /// A cache whose keys and values take at most about `budget` bytes.
    pub fn new(budget: usize) -> Self {
        InProcessCache { budget, state: Mutex::new(State::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses an entry that alone is larger than the whole budget (no eviction could make room for it).
    fn fits(&self, key: &str, value: &[u8]) -> Result<(), CacheError> {
        let size = cost(key, value);
        if size > self.budget {
            return Err(CacheError::TooLarge { size, budget: self.budget });
        }
        Ok(())
    }
}

/// Bytes an entry is counted for.
fn cost(key: &str, value: &[u8]) -> usize {
    key.len() + value.len() + ENTRY_OVERHEAD
}

impl State {
    /// The entry under `key` if it has not expired; an expired one is dropped on the way.
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.entries.get(key).is_some_and(|entry| entry.expires <= now) {
            self.remove(key);
        }
        self.entries.get_mut(key)
    }

    /// Drops `key`, returning the value it held.
    fn remove(&mut self, key: &str) -> Option<Vec<u8>> {
        let entry = self.entries.remove(key)?;
        self.used -= cost(key, &entry.value);
        Some(entry.value)
    }

    /// Stores `value` under `key` until `expires`, replacing what the key held and making room for it first.
    /// The caller has checked that the entry alone fits in `budget`.
    fn put(&mut self, key: &str, value: Vec<u8>, expires: Instant, budget: usize, now: Instant) {
        let size = cost(key, &value);
        self.remove(key);
        self.make_room(size, budget, now);
        self.entries.insert(key.to_owned(), Entry { value, expires });
        self.used += size;
    }

    /// Frees entries until `needed` more bytes fit in `budget`: the expired ones, then the soonest to expire.
    fn make_room(&mut self, needed: usize, budget: usize, now: Instant) {
        if self.used + needed <= budget {
            return;
        }
        self.entries.retain(|_, entry| entry.expires > now);
        self.used = self.entries.iter().map(|(key, entry)| cost(key, &entry.value)).sum();
        if self.used + needed <= budget {
            return;
        }
        let mut by_expiry: Vec<(Instant, String)> =
            self.entries.iter().map(|(key, entry)| (entry.expires, key.clone())).collect();
        by_expiry.sort_unstable();
        for (_, key) in by_expiry {
            self.remove(&key);
            if self.used + needed <= budget {
                break;
            }
        }
    }
}

#[async_trait]
impl SharedCache for InProcessCache {
    fn backend(&self) -> &'static str {
        "in-process"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Ok(self.lock().live(key, Instant::now()).map(|entry| entry.value.clone()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.fits(key, value)?;
        let now = Instant::now();
        self.lock().put(key, value.to_vec(), now + clamp_ttl(ttl), self.budget, now);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn get_and_touch(&self, key: &str, ttl: Duration) -> Result<Option<Vec<u8>>, CacheError> {
        let now = Instant::now();
        Ok(self.lock().live(key, now).map(|entry| {
            entry.expires = now + clamp_ttl(ttl);
            entry.value.clone()
        }))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut state = self.lock();
        if state.live(key, Instant::now()).is_none() {
            return Ok(None);
        }
        Ok(state.remove(key))
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        self.fits(key, value)?;
        let now = Instant::now();
        let mut state = self.lock();
        if state.live(key, now).is_some() {
            return Ok(false);
        }
        state.put(key, value.to_vec(), now + clamp_ttl(ttl), self.budget, now);
        Ok(true)
    }

    async fn hit(&self, key: &str, limit: u64, window: Duration) -> Result<RateDecision, CacheError> {
        // The count is kept as an 8-byte value like any entry, so counters share the budget and the eviction of
        // the other entries; the whole step runs under the lock, which makes it atomic like the Redis script.
        self.fits(key, &0u64.to_be_bytes())?;
        let now = Instant::now();
        let mut state = self.lock();
        let (count, expires) = match state.live(key, now) {
            Some(entry) => (counter(&entry.value) + 1, entry.expires),
            None => (1, now + clamp_ttl(window)),
        };
        state.put(key, count.to_be_bytes().to_vec(), expires, self.budget, now);
        Ok(RateDecision { allowed: count <= limit, retry_after: expires - now })
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Ok(())
    }
}

/// The count held by a rate-limit entry; a value that is not one (the key was `set` by someone else) counts as 0.
fn counter(value: &[u8]) -> u64 {
    <[u8; 8]>::try_from(value).map(u64::from_be_bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn the_budget_bounds_memory_and_evicts_the_soonest_to_expire() {
        let value = [7u8; 100];
        let one = cost("k00", &value);
        let cache = InProcessCache::new(one * 3);
        for (i, ttl) in [3, 1, 2].into_iter().enumerate() {
            cache.set(&format!("k0{i}"), &value, MINUTE * ttl).await.unwrap();
        }
        // Full: the next write drops `k01`, which would have expired first.
        cache.set("k03", &value, MINUTE).await.unwrap();
        assert_eq!(cache.lock().used, one * 3);
        assert!(cache.get("k01").await.unwrap().is_none());
        for kept in ["k00", "k02", "k03"] {
            assert!(cache.get(kept).await.unwrap().is_some(), "{kept}");
        }
        // Overwriting a key does not count it twice.
        cache.set("k03", &value, MINUTE).await.unwrap();
        assert_eq!(cache.lock().entries.len(), 3);
    }

    #[tokio::test]
    async fn expired_entries_go_before_live_ones() {
        let value = [1u8; 10];
        let cache = InProcessCache::new(cost("a", &value) * 2);
        cache.set("a", &value, MINUTE).await.unwrap();
        cache.set("b", &value, Duration::from_millis(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        cache.set("c", &value, MINUTE).await.unwrap();
        assert!(cache.get("a").await.unwrap().is_some());
        assert!(cache.get("c").await.unwrap().is_some());
        assert_eq!(cache.lock().entries.len(), 2);
    }

    #[tokio::test]
    async fn a_value_larger_than_the_budget_is_refused() {
        let cache = InProcessCache::new(1024);
        let err = cache.set("big", &[0u8; 2048], MINUTE).await.unwrap_err();
        assert!(matches!(err, CacheError::TooLarge { budget: 1024, .. }), "{err}");
        assert!(cache.get("big").await.unwrap().is_none());
    }
}
