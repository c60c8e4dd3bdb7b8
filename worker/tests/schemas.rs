//! Schemas shared between workers through the cache: on Redis (QUERYGPT_TEST_REDIS_URL, a fresh namespace per
//! test), and in process (workers of one process sharing one cache).

use async_trait::async_trait;
use querygpt_cache::{CacheError, InProcessCache, RedisCache, SharedCache};
use querygpt_common::Driver;
use querygpt_common::config::SecretString;
use querygpt_store::Connection;
use querygpt_targets::{DbSchema, TargetSettings, Targets};
use querygpt_worker::schemas::Schemas;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection as _, Executor, SqliteConnection};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

const TTL: Duration = Duration::from_secs(60);

/// Runs `sql` on the SQLite file at `path`, creating it if needed.
async fn write(path: &Path, sql: &str) {
    let options = SqliteConnectOptions::new().filename(path).create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(sql.to_owned())).await.unwrap();
    conn.close().await.unwrap();
}

/// A database file with one table, `items`, in a directory of its own.
async fn shop() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.db");
    write(&path, "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)").await;
    (dir, path)
}

/// Adds the table `late` behind the cache's back.
async fn add_table(path: &Path) {
    write(path, "CREATE TABLE late (id INTEGER PRIMARY KEY)").await;
}

fn connection(path: &Path) -> Connection {
    Connection {
        id: uuid::Uuid::new_v4(),
        user_id: uuid::Uuid::new_v4(),
        name: "shop".into(),
        driver: Driver::Sqlite,
        host: None,
        port: None,
        username: None,
        password: None,
        database: path.display().to_string(),
        is_default: false,
        is_connected: None,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    }
}

fn tables(schema: &DbSchema) -> Vec<&str> {
    schema.tables.iter().map(|t| t.name.as_str()).collect()
}

/// A worker: its own pools, and a handle on the shared cache.
fn worker(cache: Arc<dyn SharedCache>, ttl: Duration) -> Schemas {
    Schemas::new(Arc::new(Targets::new(TargetSettings::default())), cache, ttl)
}

fn redis_url() -> String {
    std::env::var("QUERYGPT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn redis(namespace: &str) -> Arc<dyn SharedCache> {
    Arc::new(RedisCache::connect(&redis_url(), namespace).await.expect("Redis"))
}

fn namespace() -> String {
    format!("qg_test_{}", uuid::Uuid::new_v4().simple())
}

/// Two workers on one cache. The second gets what the first cached, even after the database changed (so it did not
/// read the catalog); `refresh` reads it and updates the entry for both; an edited connection is another entry.
async fn shared_between_workers(first: Arc<dyn SharedCache>, second: Arc<dyn SharedCache>) {
    let (dir, path) = shop().await;
    let shop = connection(&path);
    let (first, second) = (worker(first, TTL), worker(second, TTL));

    assert_eq!(tables(&first.get(&shop, false).await.unwrap()), vec!["items"]);
    add_table(&path).await;
    assert_eq!(tables(&second.get(&shop, false).await.unwrap()), vec!["items"]);
    // A new password reaches the same database: the same entry.
    let new_password = Connection { password: Some(SecretString::new("new")), ..shop.clone() };
    assert_eq!(tables(&second.get(&new_password, false).await.unwrap()), vec!["items"]);

    // Edited to name the file another way (another target, as far as the cache can tell): a miss.
    let edited = Connection { database: format!("{}/./shop.db", dir.path().display()), ..shop.clone() };
    assert_eq!(tables(&second.get(&edited, false).await.unwrap()), vec!["items", "late"]);
    assert_eq!(tables(&first.get(&shop, false).await.unwrap()), vec!["items"]);

    assert_eq!(tables(&second.get(&shop, true).await.unwrap()), vec!["items", "late"]);
    assert_eq!(tables(&first.get(&shop, false).await.unwrap()), vec!["items", "late"]);
}

#[tokio::test]
async fn workers_share_schemas_through_redis() {
    let namespace = namespace();
    shared_between_workers(redis(&namespace).await, redis(&namespace).await).await;
}

#[tokio::test]
async fn workers_of_one_process_share_schemas_in_process() {
    let cache: Arc<dyn SharedCache> = Arc::new(InProcessCache::default());
    shared_between_workers(cache.clone(), cache).await;
}

/// Deployments sharing one Redis under different namespaces do not share schemas.
#[tokio::test]
async fn namespaces_do_not_share_schemas() {
    let (_dir, path) = shop().await;
    let shop = connection(&path);
    let ours = worker(redis(&namespace()).await, TTL);
    let theirs = worker(redis(&namespace()).await, TTL);
    ours.get(&shop, false).await.unwrap();
    add_table(&path).await;
    assert_eq!(tables(&theirs.get(&shop, false).await.unwrap()), vec!["items", "late"]);
}

/// An entry expires after the TTL: the next read goes to the catalog.
#[tokio::test]
async fn entries_expire_after_the_ttl() {
    let (_dir, path) = shop().await;
    let shop = connection(&path);
    let schemas = worker(redis(&namespace()).await, Duration::from_secs(1));
    schemas.get(&shop, false).await.unwrap();
    add_table(&path).await;
    assert_eq!(tables(&schemas.get(&shop, false).await.unwrap()), vec!["items"]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(tables(&schemas.get(&shop, false).await.unwrap()), vec!["items", "late"]);
}

/// A cache whose Redis is gone: every call fails.
struct Down;

fn down() -> CacheError {
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    CacheError::Redis { operation: "GET", source: refused.into() }
}

#[async_trait]
impl SharedCache for Down {
    fn backend(&self) -> &'static str {
        "down"
    }

    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Err(down())
    }

    async fn set(&self, _: &str, _: &[u8], _: Duration) -> Result<(), CacheError> {
        Err(down())
    }

    async fn delete(&self, _: &str) -> Result<(), CacheError> {
        Err(down())
    }

    async fn get_and_touch(&self, _: &str, _: Duration) -> Result<Option<Vec<u8>>, CacheError> {
        Err(down())
    }

    async fn take(&self, _: &str) -> Result<Option<Vec<u8>>, CacheError> {
        Err(down())
    }

    async fn set_if_absent(&self, _: &str, _: &[u8], _: Duration) -> Result<bool, CacheError> {
        Err(down())
    }

    async fn hit(&self, _: &str, _: u64, _: Duration) -> Result<querygpt_cache::RateDecision, CacheError> {
        Err(down())
    }

    async fn ping(&self) -> Result<(), CacheError> {
        Err(down())
    }
}

/// With the cache down every read goes to the catalog, and the question still gets its schema.
#[tokio::test]
async fn a_failing_cache_falls_back_to_the_catalog() {
    let (_dir, path) = shop().await;
    let shop = connection(&path);
    let schemas = worker(Arc::new(Down), TTL);
    assert_eq!(tables(&schemas.get(&shop, false).await.unwrap()), vec!["items"]);
    add_table(&path).await;
    assert_eq!(tables(&schemas.get(&shop, false).await.unwrap()), vec!["items", "late"]);
}

/// A zero TTL turns the cache off.
#[tokio::test]
async fn a_zero_ttl_reads_the_catalog_every_time() {
    let (_dir, path) = shop().await;
    let shop = connection(&path);
    let schemas = worker(Arc::new(InProcessCache::default()), Duration::ZERO);
    schemas.get(&shop, false).await.unwrap();
    add_table(&path).await;
    assert_eq!(tables(&schemas.get(&shop, false).await.unwrap()), vec!["items", "late"]);
}

/// The ranking index of a schema is built once and kept while the schema stays the same.
#[tokio::test]
async fn a_schema_keeps_its_index_until_it_changes() {
    let (_dir, path) = shop().await;
    let connection = connection(&path);
    // TTL 0: every question reads the catalog, so a changed schema shows at once.
    let schemas = worker(Arc::new(InProcessCache::default()), Duration::ZERO);
    let first = schemas.prepared(&connection).await.unwrap();
    let again = schemas.prepared(&connection).await.unwrap();
    assert!(Arc::ptr_eq(&first, &again), "the same schema reuses its index");
    add_table(&path).await;
    let changed = schemas.prepared(&connection).await.unwrap();
    assert!(!Arc::ptr_eq(&first, &changed), "a changed schema gets a new index");
    assert_eq!(tables(&changed.schema), ["items", "late"]);
}
