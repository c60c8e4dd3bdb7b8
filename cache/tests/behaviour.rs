//! What every [`SharedCache`] does, checked on both implementations: each case runs once on Redis (the server at
//! QUERYGPT_TEST_REDIS_URL, a fresh namespace per test) and once in process.

use querygpt_cache::{InProcessCache, RedisCache, SharedCache};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn redis_url() -> String {
    std::env::var("QUERYGPT_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Where handles come from. Handles on the same namespace share their entries, as processes sharing one Redis
/// and one `subject_prefix` do; an in-process cache models that with one cache per namespace.
enum Backend {
    Redis { run: String },
    InProcess(Mutex<HashMap<String, Arc<InProcessCache>>>),
}

impl Backend {
    fn redis() -> Self {
        Backend::Redis { run: format!("qg_test_{}", uuid::Uuid::new_v4().simple()) }
    }

    fn in_process() -> Self {
        Backend::InProcess(Mutex::default())
    }

    /// A new handle on `namespace` (a new Redis connection, or the namespace's in-process cache).
    async fn handle(&self, namespace: &str) -> Arc<dyn SharedCache> {
        match self {
            Backend::Redis { run } => {
                Arc::new(RedisCache::connect(&redis_url(), &format!("{run}:{namespace}")).await.expect("Redis"))
            }
            Backend::InProcess(caches) => {
                let mut caches = caches.lock().unwrap();
                caches.entry(namespace.to_owned()).or_insert_with(|| Arc::new(InProcessCache::default())).clone()
            }
        }
    }
}

/// Long enough never to expire during a test.
const LONG: Duration = Duration::from_secs(60);

/// Runs each case as two tests, `<case>::redis` and `<case>::in_process`.
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test]
            async fn redis() {
                super::$case(super::Backend::redis()).await;
            }

            #[tokio::test]
            async fn in_process() {
                super::$case(super::Backend::in_process()).await;
            }
        }
    )*};
}

on_both_backends!(
    set_then_get,
    missing_keys_are_none,
    overwrite_replaces_value_and_ttl,
    delete_removes_and_tolerates_missing_keys,
    entries_expire_after_their_ttl,
    handles_on_one_namespace_share_entries,
    namespaces_are_isolated,
    values_and_keys_are_arbitrary_bytes,
    get_and_touch_renews_the_ttl,
    get_and_touch_of_a_missing_key_is_none,
    take_returns_the_value_once,
    set_if_absent_stores_only_new_keys,
    hit_allows_limit_hits_per_fixed_window,
    hit_counters_are_per_key_and_shared_by_handles,
    ping_answers,
);

async fn set_then_get(backend: Backend) {
    let cache = backend.handle("ns").await;
    cache.set("schema:1", b"{\"tables\":[]}", LONG).await.unwrap();
    assert_eq!(cache.get("schema:1").await.unwrap().as_deref(), Some(&b"{\"tables\":[]}"[..]));
}

async fn missing_keys_are_none(backend: Backend) {
    let cache = backend.handle("ns").await;
    assert_eq!(cache.get("never-set").await.unwrap(), None);
    cache.set("other", b"x", LONG).await.unwrap();
    assert_eq!(cache.get("never-set").await.unwrap(), None);
}

async fn overwrite_replaces_value_and_ttl(backend: Backend) {
    let cache = backend.handle("ns").await;
    cache.set("k", b"first", Duration::from_millis(300)).await.unwrap();
    cache.set("k", b"second", LONG).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"second"[..]));
    // The second write's TTL counts, not the first one's.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"second"[..]));
    // And a shorter one replaces a longer one.
    cache.set("k", b"third", Duration::from_millis(300)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cache.get("k").await.unwrap(), None);
}

async fn delete_removes_and_tolerates_missing_keys(backend: Backend) {
    let cache = backend.handle("ns").await;
    cache.set("k", b"v", LONG).await.unwrap();
    cache.set("kept", b"v", LONG).await.unwrap();
    cache.delete("k").await.unwrap();
    assert_eq!(cache.get("k").await.unwrap(), None);
    assert_eq!(cache.get("kept").await.unwrap().as_deref(), Some(&b"v"[..]));
    cache.delete("k").await.unwrap();
    cache.delete("never-set").await.unwrap();
    // A deleted key can be set again.
    cache.set("k", b"again", LONG).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"again"[..]));
}

async fn entries_expire_after_their_ttl(backend: Backend) {
    let cache = backend.handle("ns").await;
    cache.set("short", b"v", Duration::from_secs(1)).await.unwrap();
    cache.set("long", b"v", LONG).await.unwrap();
    // A zero TTL is the shortest there is, not "forever".
    cache.set("zero", b"v", Duration::ZERO).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cache.get("short").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(cache.get("zero").await.unwrap(), None);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(cache.get("short").await.unwrap(), None);
    assert_eq!(cache.get("long").await.unwrap().as_deref(), Some(&b"v"[..]));
}

async fn handles_on_one_namespace_share_entries(backend: Backend) {
    let first = backend.handle("ns").await;
    let second = backend.handle("ns").await;
    first.set("k", b"from the first", LONG).await.unwrap();
    assert_eq!(second.get("k").await.unwrap().as_deref(), Some(&b"from the first"[..]));
    second.set("k", b"from the second", LONG).await.unwrap();
    assert_eq!(first.get("k").await.unwrap().as_deref(), Some(&b"from the second"[..]));
    second.delete("k").await.unwrap();
    assert_eq!(first.get("k").await.unwrap(), None);
}

async fn namespaces_are_isolated(backend: Backend) {
    let a = backend.handle("a").await;
    let b = backend.handle("b").await;
    // A namespace that starts with another one's name is another namespace.
    let longer = backend.handle("a2").await;
    a.set("k", b"in a", LONG).await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), None);
    b.set("k", b"in b", LONG).await.unwrap();
    assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"in a"[..]));
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some(&b"in b"[..]));
    b.delete("k").await.unwrap();
    assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"in a"[..]));
    assert_eq!(longer.get("k").await.unwrap(), None);
}

async fn values_and_keys_are_arbitrary_bytes(backend: Backend) {
    let cache = backend.handle("ns").await;
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, 0xFF, 0xFE]).collect();
    let large: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let values: [(&str, &[u8]); 5] = [
        ("binary", &binary),
        ("not utf-8", &[0xC3, 0x28, 0xA0, 0xA1]),
        ("empty", b""),
        ("key with spaces, colons: and ünïcödé 表", b"v"),
        ("large", &large),
    ];
    for (key, value) in values {
        cache.set(key, value, LONG).await.unwrap();
    }
    for (key, value) in values {
        assert_eq!(cache.get(key).await.unwrap().as_deref(), Some(value), "{key}");
    }
}

async fn get_and_touch_renews_the_ttl(backend: Backend) {
    let cache = backend.handle("ns").await;
    cache.set("conv", b"turns", Duration::from_millis(600)).await.unwrap();
    // Each read pushes the expiry back: read three times, 400 ms apart, well past the first 600 ms.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let read = cache.get_and_touch("conv", Duration::from_millis(600)).await.unwrap();
        assert_eq!(read.as_deref(), Some(&b"turns"[..]));
    }
    // Without further reads it does expire, after the renewed TTL.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(cache.get("conv").await.unwrap(), None);
    // A touch can also shorten the time to live.
    cache.set("k", b"v", LONG).await.unwrap();
    assert!(cache.get_and_touch("k", Duration::from_millis(200)).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cache.get("k").await.unwrap(), None);
}

async fn get_and_touch_of_a_missing_key_is_none(backend: Backend) {
    let cache = backend.handle("ns").await;
    assert_eq!(cache.get_and_touch("never-set", LONG).await.unwrap(), None);
    // Touching a missing key does not create it.
    assert_eq!(cache.get("never-set").await.unwrap(), None);
    cache.set("gone", b"v", Duration::from_millis(100)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cache.get_and_touch("gone", LONG).await.unwrap(), None);
    assert_eq!(cache.get("gone").await.unwrap(), None);
}

async fn take_returns_the_value_once(backend: Backend) {
    let first = backend.handle("ns").await;
    let second = backend.handle("ns").await;
    first.set("jti", b"family", LONG).await.unwrap();
    assert_eq!(second.take("jti").await.unwrap().as_deref(), Some(&b"family"[..]));
    assert_eq!(first.take("jti").await.unwrap(), None, "a second take finds nothing");
    assert_eq!(first.get("jti").await.unwrap(), None);
    // An expired entry cannot be taken.
    first.set("old", b"v", Duration::from_millis(100)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(first.take("old").await.unwrap(), None);
    // Of many concurrent takes of one key, exactly one gets the value.
    first.set("race", b"once", LONG).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let cache = if i % 2 == 0 { first.clone() } else { second.clone() };
            tokio::spawn(async move { cache.take("race").await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if let Some(value) = task.await.unwrap() {
            assert_eq!(value, b"once");
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

async fn set_if_absent_stores_only_new_keys(backend: Backend) {
    let cache = backend.handle("ns").await;
    assert!(cache.set_if_absent("k", b"first", Duration::from_millis(600)).await.unwrap());
    assert!(!cache.set_if_absent("k", b"second", LONG).await.unwrap(), "the key is there");
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"first"[..]));
    // The refused write did not extend the first value's TTL; once it expires the key is free again.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(cache.get("k").await.unwrap(), None);
    assert!(cache.set_if_absent("k", b"third", LONG).await.unwrap());
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"third"[..]));
    // Concurrent writers: exactly one wins.
    let tasks: Vec<_> = (0..20u8)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move { cache.set_if_absent("race", &[i], LONG).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}

async fn hit_allows_limit_hits_per_fixed_window(backend: Backend) {
    let cache = backend.handle("ns").await;
    let window = Duration::from_millis(1500);
    for n in 1..=3 {
        let decision = cache.hit("rl:user", 3, window).await.unwrap();
        assert!(decision.allowed, "hit {n} of 3");
        assert!(decision.retry_after > Duration::ZERO && decision.retry_after <= window, "{decision:?}");
    }
    let refused = cache.hit("rl:user", 3, window).await.unwrap();
    assert!(!refused.allowed, "the 4th hit is over the limit");
    assert!(refused.retry_after > Duration::from_millis(500) && refused.retry_after <= window, "{refused:?}");
    // Refused hits count too, and do not push the window's end back.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = cache.hit("rl:user", 3, window).await.unwrap();
    assert!(!later.allowed);
    assert!(later.retry_after < refused.retry_after, "{later:?} vs {refused:?}");
    // When the window ends the count starts again.
    tokio::time::sleep(later.retry_after + Duration::from_millis(100)).await;
    assert!(cache.hit("rl:user", 3, window).await.unwrap().allowed);
    // A limit of 0 refuses every hit.
    assert!(!cache.hit("rl:closed", 0, window).await.unwrap().allowed);
}

async fn hit_counters_are_per_key_and_shared_by_handles(backend: Backend) {
    let first = backend.handle("ns").await;
    let second = backend.handle("ns").await;
    let other_namespace = backend.handle("other").await;
    assert!(first.hit("rl:a", 2, LONG).await.unwrap().allowed);
    assert!(second.hit("rl:a", 2, LONG).await.unwrap().allowed);
    // Two hits through two handles: the third, through either, is over.
    assert!(!first.hit("rl:a", 2, LONG).await.unwrap().allowed);
    assert!(second.hit("rl:b", 2, LONG).await.unwrap().allowed);
    assert!(other_namespace.hit("rl:a", 2, LONG).await.unwrap().allowed);
    // Concurrent hits are counted exactly once each.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let cache = first.clone();
            tokio::spawn(async move { cache.hit("rl:burst", 5, LONG).await.unwrap().allowed })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += usize::from(task.await.unwrap());
    }
    assert_eq!(allowed, 5);
}

async fn ping_answers(backend: Backend) {
    backend.handle("ns").await.ping().await.unwrap();
}

/// A Redis that is not there is reported at once, and the error does not show the URL's password.
#[tokio::test]
async fn unreachable_redis_fails_fast_without_the_password() {
    let started = std::time::Instant::now();
    let err = match RedisCache::connect("redis://:hunter2@127.0.0.1:1", "ns").await {
        Ok(_) => panic!("nothing listens on port 1"),
        Err(err) => err,
    };
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
    let invalid = querygpt_cache::open(Some("http://:hunter2@127.0.0.1"), "ns").await.err().expect("not a Redis URL");
    assert!(matches!(invalid, querygpt_cache::CacheError::InvalidUrl(_)), "{invalid:?}");
    assert!(!format!("{invalid} {invalid:?}").contains("hunter2"), "{invalid:?}");
}

/// Without a URL, [`querygpt_cache::open`] gives an in-process cache.
#[tokio::test]
async fn open_picks_the_backend() {
    assert_eq!(querygpt_cache::open(None, "ns").await.unwrap().backend(), "in-process");
    assert_eq!(querygpt_cache::open(Some(&redis_url()), "ns").await.unwrap().backend(), "redis");
}
