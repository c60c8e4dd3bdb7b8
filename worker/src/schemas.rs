//! Connection schemas through the shared cache, so that a schema read by one worker serves every worker until its
//! TTL runs out.
//!
//! The entry of a connection is keyed by its id and a fingerprint of the target (driver, host, port, database,
//! login name): an edited connection looks up another key and never gets the schema of what it pointed at before.
//! The password is not part of it (a new password reaches the same database), so it never reaches Redis in any
//! form. The cache only saves time: when it fails, the failure is logged and the catalog is read.

use crate::specs::{target_key, target_spec};
use querygpt_cache::SharedCache;
use querygpt_ranking::SchemaIndex;
use querygpt_store::Connection;
use querygpt_targets::{DbSchema, TargetError, Targets};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Ranking indexes kept in one worker. Past this many distinct schemas the map starts over: an index is rebuilt
/// in about a millisecond, so a simple bound is enough.
const MAX_INDEXES: usize = 256;

/// A schema with its ranking index, shared by the questions about it.
pub struct Prepared {
    pub schema: DbSchema,
    pub index: SchemaIndex,
}

fn hash_of(json: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    json.hash(&mut hasher);
    hasher.finish()
}

/// A cached schema's JSON, parsed; `None` (logged) when it cannot be read, so that the catalog is read instead.
fn parse(json: &[u8]) -> Option<DbSchema> {
    serde_json::from_slice(json)
        .map_err(|e| tracing::warn!(error = %e, "unreadable cached schema; reading the catalog"))
        .ok()
}

/// Version of the cached value's layout: bump it when [`DbSchema`] changes, so that workers of different releases
/// do not read each other's entries.
const LAYOUT: &str = "v1";

/// Reads schemas from the shared cache or, on a miss, from the target's catalog (and caches them).
#[derive(Clone)]
pub struct Schemas {
    targets: Arc<Targets>,
    cache: Arc<dyn SharedCache>,
    ttl: Duration,
    /// By a hash of the schema's JSON: a schema read again (or changed) finds its own entry.
    prepared: Arc<Mutex<HashMap<u64, Arc<Prepared>>>>,
}

impl Schemas {
    /// Schemas read through `targets` and kept in `cache` for `ttl` (`worker.schema_cache_ttl_secs`); a zero
    /// `ttl` turns caching off.
    pub fn new(targets: Arc<Targets>, cache: Arc<dyn SharedCache>, ttl: Duration) -> Self {
        Schemas { targets, cache, ttl, prepared: Arc::default() }
    }

    /// The schema of `connection`'s database as [`Schemas::get`] finds it, with its ranking index. The index of a
    /// schema is built once per worker and kept while the schema stays the same: building it is most of the time
    /// of ranking a 500-table schema (about 1.2 ms of 1.3 ms, `cargo bench -p querygpt-ranking --bench recall`).
    pub async fn prepared(&self, connection: &Connection) -> Result<Arc<Prepared>, TargetError> {
        // The cached JSON is hashed before it is parsed: a schema this worker has prepared already is not parsed
        // again (for a 500-table schema, parsing is most of the time of a cache hit).
        let cached = match self.ttl.is_zero() {
            true => None,
            false => self.cached_bytes(&cache_key(connection)).await,
        };
        if let Some(bytes) = cached {
            let hash = hash_of(&bytes);
            if let Some(found) = self.prepared.lock().unwrap_or_else(PoisonError::into_inner).get(&hash) {
                return Ok(found.clone());
            }
            if let Some(schema) = parse(&bytes) {
                return Ok(self.prepare(hash, schema));
            }
        }
        let (schema, json) = self.read(connection, true).await?;
        Ok(self.prepare(hash_of(&json), schema))
    }

    /// Builds the ranking index of `schema` (whose JSON hashes to `hash`) and keeps it.
    fn prepare(&self, hash: u64, schema: DbSchema) -> Arc<Prepared> {
        let mut prepared = self.prepared.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = prepared.get(&hash) {
            return found.clone();
        }
        if prepared.len() >= MAX_INDEXES {
            prepared.clear();
        }
        let index = SchemaIndex::new(&schema);
        let entry = Arc::new(Prepared { schema, index });
        prepared.insert(hash, entry.clone());
        entry
    }

    /// The schema of `connection`'s database: the cached one if a worker read it within the TTL, else the catalog's
    /// (which is then cached). `refresh` reads the catalog whatever the cache holds and replaces the entry.
    pub async fn get(&self, connection: &Connection, refresh: bool) -> Result<DbSchema, TargetError> {
        let caching = !self.ttl.is_zero();
        if caching
            && !refresh
            && let Some(schema) = self.cached_bytes(&cache_key(connection)).await.as_deref().and_then(parse)
        {
            return Ok(schema);
        }
        Ok(self.read(connection, caching).await?.0)
    }

    /// The catalog's schema of `connection`, with its JSON; cached when `keep`.
    async fn read(&self, connection: &Connection, keep: bool) -> Result<(DbSchema, Vec<u8>), TargetError> {
        let schema = self.targets.schema(&target_key(connection), &target_spec(connection)).await?;
        let json = serde_json::to_vec(&schema).expect("a schema serializes to JSON");
        if keep && !self.ttl.is_zero() {
            self.keep(&cache_key(connection), &json).await;
        }
        Ok((schema, json))
    }

    /// The cached schema JSON under `key`; `None` on a miss, and on a failure (logged).
    async fn cached_bytes(&self, key: &str) -> Option<Vec<u8>> {
        match self.cache.get(key).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(error = %e, backend = self.cache.backend(), "schema cache unavailable; reading the catalog");
                None
            }
        }
    }

    /// Caches a schema's JSON under `key`; a failure is only logged (the next read goes to the catalog again).
    async fn keep(&self, key: &str, json: &[u8]) {
        if let Err(e) = self.cache.set(key, json, self.ttl).await {
            tracing::warn!(error = %e, backend = self.cache.backend(), "could not cache a schema");
        }
    }
}

/// `schema:<layout>:<connection id>:<fingerprint>`, the fingerprint being the first 16 bytes of the SHA-256 of the
/// target's identity as JSON (which keeps the fields apart whatever they contain).
fn cache_key(connection: &Connection) -> String {
    let identity = (connection.driver, &connection.host, connection.port, &connection.database, &connection.username);
    let json = serde_json::to_vec(&identity).expect("plain values serialize to JSON");
    let digest = Sha256::digest(&json);
    let fingerprint: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("schema:{LAYOUT}:{}:{fingerprint}", connection.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use querygpt_common::Driver;
    use querygpt_common::config::SecretString;

    fn connection() -> Connection {
        Connection {
            id: uuid::Uuid::from_u128(7),
            user_id: uuid::Uuid::from_u128(1),
            name: "sales".into(),
            driver: Driver::Postgresql,
            host: Some("db.example".into()),
            port: Some(5432),
            username: Some("reader".into()),
            password: Some(SecretString::new("hunter2")),
            database: "sales".into(),
            is_default: false,
            is_connected: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_key_follows_the_target_but_not_the_password_or_the_name() {
        let base = connection();
        let key = cache_key(&base);
        assert!(key.starts_with("schema:v1:00000000-0000-0000-0000-000000000007:"), "{key}");
        assert!(!key.contains("hunter2") && !key.contains("reader") && !key.contains("db.example"), "{key}");
        let edits: [fn(&mut Connection); 6] = [
            |c| c.driver = Driver::Mysql,
            |c| c.host = Some("db2.example".into()),
            |c| c.port = None,
            |c| c.database = "sales2".into(),
            |c| c.username = None,
            |c| c.id = uuid::Uuid::from_u128(8),
        ];
        for edit in edits {
            let mut edited = base.clone();
            edit(&mut edited);
            assert_ne!(cache_key(&edited), key, "{edited:?}");
        }
        // Fields cannot run into each other: host `a` + database `bc` is not host `ab` + database `c`.
        let mut ab = base.clone();
        (ab.host, ab.database) = (Some("ab".into()), "c".into());
        let mut a = base.clone();
        (a.host, a.database) = (Some("a".into()), "bc".into());
        assert_ne!(cache_key(&ab), cache_key(&a));
        let unchanged = Connection {
            name: "renamed".into(),
            password: Some(SecretString::new("new password")),
            is_default: true,
            ..base.clone()
        };
        assert_eq!(cache_key(&unchanged), key);
    }
}
