//! API keys: stored as hashes, found by prefix, scoped by user, limited per user, revoked by deletion.

use crate::{Harness, user};
use chrono::Utc;
use querygpt_store::{MAX_API_KEYS_PER_USER, NewApiKey, StoreError};
use uuid::Uuid;

fn new_key(prefix: &str) -> NewApiKey {
    NewApiKey { name: format!("key {prefix}"), prefix: prefix.to_owned(), last4: "wxyz".into(), secret_hash: [7; 32] }
}

pub(crate) async fn api_keys_create_list_find_and_revoke(h: Harness) {
    let u = user(&h.store, "keys@example.com").await;
    let other = user(&h.store, "other-keys@example.com").await;
    let first = h.store.create_api_key(u.id, new_key("qgpt_aaaaaaaaaaaa")).await.unwrap();
    let second = h.store.create_api_key(u.id, new_key("qgpt_bbbbbbbbbbbb")).await.unwrap();
    assert_eq!((first.user_id, first.last4.as_str(), first.last_used_at), (u.id, "wxyz", None));

    let listed = h.store.list_api_keys(u.id).await.unwrap();
    assert_eq!(listed, vec![first.clone(), second.clone()], "oldest first, as created");
    assert!(h.store.list_api_keys(other.id).await.unwrap().is_empty());

    let found = h.store.api_key_by_prefix("qgpt_aaaaaaaaaaaa").await.unwrap().unwrap();
    assert_eq!((found.id, found.user_id, found.secret_hash), (first.id, u.id, vec![7; 32]));
    assert!(h.store.api_key_by_prefix("qgpt_cccccccccccc").await.unwrap().is_none());

    let taken = h.store.create_api_key(other.id, new_key("qgpt_aaaaaaaaaaaa")).await.unwrap_err();
    assert!(matches!(taken, StoreError::Conflict(_)), "{taken:?}");

    let foreign = h.store.delete_api_key(other.id, first.id).await.unwrap_err();
    assert!(matches!(foreign, StoreError::NotFound(_)), "another user's key is not found: {foreign:?}");
    h.store.delete_api_key(u.id, first.id).await.unwrap();
    assert!(h.store.api_key_by_prefix("qgpt_aaaaaaaaaaaa").await.unwrap().is_none(), "revoked at once");
    assert!(matches!(h.store.delete_api_key(u.id, first.id).await, Err(StoreError::NotFound(_))));
    assert_eq!(h.store.list_api_keys(u.id).await.unwrap(), vec![second]);
    assert!(matches!(
        h.store.create_api_key(Uuid::now_v7(), new_key("qgpt_dddddddddddd")).await,
        Err(StoreError::NotFound(_))
    ));
}

pub(crate) async fn api_key_use_is_recorded_at_most_once_a_minute(h: Harness) {
    let u = user(&h.store, "touch@example.com").await;
    let key = h.store.create_api_key(u.id, new_key("qgpt_tttttttttttt")).await.unwrap();
    let used = Utc::now();
    h.store.touch_api_key(key.id, used).await.unwrap();
    let last = |h: &Harness| {
        let store = h.store.clone();
        async move { store.list_api_keys(u.id).await.unwrap()[0].last_used_at.unwrap() }
    };
    let recorded = last(&h).await;
    assert!((recorded - used).num_milliseconds().abs() < 1, "{recorded} vs {used}");
    h.store.touch_api_key(key.id, used + chrono::Duration::seconds(30)).await.unwrap();
    assert_eq!(last(&h).await, recorded, "within the minute: no write");
    h.store.touch_api_key(key.id, used + chrono::Duration::seconds(61)).await.unwrap();
    assert!(last(&h).await > recorded);
}

pub(crate) async fn api_keys_are_limited_per_user(h: Harness) {
    let u = user(&h.store, "many-keys@example.com").await;
    for n in 0..MAX_API_KEYS_PER_USER {
        h.store.create_api_key(u.id, new_key(&format!("qgpt_{n:012}"))).await.unwrap();
    }
    let refused = h.store.create_api_key(u.id, new_key("qgpt_onetoomany")).await.unwrap_err();
    assert!(matches!(refused, StoreError::LimitReached(_)), "{refused:?}");
    assert!(h.store.api_key_by_prefix("qgpt_onetoomany").await.unwrap().is_none(), "nothing stored");
}
