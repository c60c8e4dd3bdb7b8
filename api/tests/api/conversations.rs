//! The conversation list: order, paging, favourites, search in Chinese and English, delete.

use axum::http::StatusCode;
use chrono::Utc;
use querygpt_store::{AnswerMetadata, Exchange, Message, Role};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, TestUser, assert_timestamp};

/// Stores one answered question in a new conversation and returns its id. Later calls are newer.
async fn seed(app: &TestApp, user: &TestUser, title: &str, answer: &str) -> Uuid {
    let conversation_id = Uuid::now_v7();
    let now = Utc::now();
    let message = |role, content: &str, metadata| Message {
        id: Uuid::now_v7(),
        conversation_id,
        role,
        content: content.to_owned(),
        metadata,
        created_at: now,
    };
    let metadata = AnswerMetadata { sql: "SELECT 1".into(), rows_count: 1, ..AnswerMetadata::default() };
    let exchange = Exchange {
        user_id: user.id,
        conversation_id,
        title: title.to_owned(),
        model: "gpt-4o".into(),
        connection_id: Uuid::now_v7(),
        user_message: message(Role::User, title, None),
        assistant_message: message(Role::Assistant, answer, Some(metadata)),
    };
    assert!(app.state.store.save_exchange(exchange).await.unwrap());
    // Distinct `updated_at` values, so that the order is the insertion order.
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    conversation_id
}

fn ids(data: &Value) -> Vec<String> {
    data["conversations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

async fn list(app: &TestApp, user: &TestUser, query: &str) -> Value {
    app.get(&format!("/api/v1/conversations{query}"), Some(&user.access)).await.assert_ok(StatusCode::OK).clone()
}

#[tokio::test]
async fn newest_first_with_paging_and_the_documented_fields() {
    let app = TestApp::new().await;
    let user = app.register("list@example.com").await;
    let mut seeded = Vec::new();
    for i in 0..5 {
        seeded.push(seed(&app, &user, &format!("question {i}"), "answer").await.to_string());
    }
    seeded.reverse();
    let other = app.register("list-other@example.com").await;
    seed(&app, &other, "not yours", "answer").await;

    let all = list(&app, &user, "").await;
    assert_eq!(ids(&all), seeded);
    assert_eq!((all["total"].clone(), all["has_more"].clone()), (json!(5), json!(false)));
    let first = &all["conversations"][0];
    let mut keys: Vec<&str> = first.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "id", "is_favorite", "message_count", "model", "title", "updated_at"]);
    assert_eq!((first["title"].clone(), first["model"].clone()), (json!("question 4"), json!("gpt-4o")));
    assert_eq!(first["message_count"], 2);
    assert_timestamp(&first["created_at"]);
    assert_timestamp(&first["updated_at"]);

    let page = list(&app, &user, "?limit=2&offset=2").await;
    assert_eq!(ids(&page), seeded[2..4]);
    assert_eq!((page["total"].clone(), page["has_more"].clone()), (json!(5), json!(true)));
    let last = list(&app, &user, "?limit=2&offset=4").await;
    assert_eq!((ids(&last), last["has_more"].clone()), (seeded[4..].to_vec(), json!(false)));
    assert_eq!(ids(&list(&app, &user, "?offset=10").await), Vec::<String>::new());

    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=many", "limit"),
        ("?offset=-1", "offset"),
        ("?favorites=maybe", "favorites"),
    ] {
        let reply = app.get(&format!("/api/v1/conversations{query}"), Some(&user.access)).await;
        assert_eq!(reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR")["field"], field, "{query}");
    }
    assert_eq!(list(&app, &user, "?limit=200").await["total"], 5);
}

#[tokio::test]
async fn search_finds_substrings_of_titles_and_messages_in_any_language() {
    let app = TestApp::new().await;
    let user = app.register("search@example.com").await;
    let sales = seed(&app, &user, "每个品类的销售额", "按品类汇总").await;
    let revenue = seed(&app, &user, "Monthly Revenue by region", "Revenue grows in the north").await;
    let answer_only = seed(&app, &user, "上个月的订单", "共有 42 笔订单，销售额最高的是北京").await;
    let literal = seed(&app, &user, "growth 100% of_target", "ok").await;
    let other = app.register("search-other@example.com").await;
    seed(&app, &other, "每个品类的销售额", "not yours").await;

    let found = |ids: Vec<Uuid>| ids.into_iter().rev().map(|id| id.to_string()).collect::<Vec<_>>();
    for (q, expected) in [
        ("销售", found(vec![sales, answer_only])),
        ("销售额", found(vec![sales, answer_only])),
        ("品类的销售", found(vec![sales])),
        ("北京", found(vec![answer_only])),
        ("revenue", found(vec![revenue])),
        ("REVENUE BY", found(vec![revenue])),
        ("north", found(vec![revenue])),
        ("100%", found(vec![literal])),
        ("f_t", found(vec![literal])),
        ("%", found(vec![literal])),
        ("nothing like this", vec![]),
    ] {
        let encoded = url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
        let data = list(&app, &user, &format!("?q={encoded}")).await;
        assert_eq!(ids(&data), expected, "q={q}");
        assert_eq!(data["total"], expected.len(), "q={q}");
    }
    // Blank is no filter.
    assert_eq!(list(&app, &user, "?q=%20").await["total"], 4);
}

#[tokio::test]
async fn favorites_toggle_and_filter() {
    let app = TestApp::new().await;
    let user = app.register("fav@example.com").await;
    let first = seed(&app, &user, "first", "a").await;
    let second = seed(&app, &user, "second", "b").await;
    let uri = format!("/api/v1/conversations/{first}/favorite");

    let reply = app.post(&uri, Some(&user.access), &json!({})).await;
    assert_eq!(reply.assert_ok(StatusCode::OK), &json!({"id": first, "is_favorite": true}));
    let favorites = list(&app, &user, "?favorites=true").await;
    assert_eq!((ids(&favorites), favorites["total"].clone()), (vec![first.to_string()], json!(1)));
    // Favouriting is not activity: the order is unchanged.
    assert_eq!(ids(&list(&app, &user, "").await), [second.to_string(), first.to_string()]);
    let shown = app.get(&format!("/api/v1/conversations/{first}"), Some(&user.access)).await;
    assert_eq!(shown.assert_ok(StatusCode::OK)["is_favorite"], true);

    let reply = app.post(&uri, Some(&user.access), &json!({})).await;
    assert_eq!(reply.assert_ok(StatusCode::OK)["is_favorite"], false);
    assert_eq!(list(&app, &user, "?favorites=true").await["total"], 0);
}

#[tokio::test]
async fn delete_removes_the_conversation_and_its_messages() {
    let app = TestApp::new().await;
    let user = app.register("delete@example.com").await;
    let kept = seed(&app, &user, "kept 销售", "a").await;
    let gone = seed(&app, &user, "gone 销售", "b").await;
    let uri = format!("/api/v1/conversations/{gone}");
    let reply = app.request(axum::http::Method::DELETE, &uri, Some(&user.access), None).await;
    assert_eq!(reply.assert_ok(StatusCode::OK), &json!({"id": gone, "deleted": true}));
    app.get(&uri, Some(&user.access)).await.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let reply = app.request(axum::http::Method::DELETE, &uri, Some(&user.access), None).await;
    reply.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(ids(&list(&app, &user, "?q=%E9%94%80%E5%94%AE").await), [kept.to_string()]);
    let messages = app.state.store.recent_messages(user.id, gone, 10).await.unwrap();
    assert!(messages.is_empty(), "messages of a deleted conversation remain");
}
