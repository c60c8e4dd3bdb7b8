//! Two users: every endpoint that takes an id answers 404 for the other user's id, exactly like for an id that does
//! not exist, and the owner's data is unchanged afterwards.

use axum::http::{Method, StatusCode};
use chrono::Utc;
use querygpt_store::{AnswerMetadata, Exchange, Message, Role};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, TestUser};

/// The owner's model, connection and conversation ids.
struct Owned {
    model: String,
    connection: String,
    conversation: Uuid,
}

async fn owned_resources(app: &TestApp, owner: &TestUser) -> Owned {
    let token = Some(owner.access.as_str());
    let model = app
        .post("/api/v1/models", token, &json!({"name": "m", "provider": "openai", "model_id": "gpt-4o", "base_url": "https://llm.example.com/v1", "api_key": "sk-owner"}))
        .await;
    let model = model.assert_ok(StatusCode::CREATED)["id"].as_str().unwrap().to_owned();
    let connection = app
        .post("/api/v1/connections", token, &json!({"name": "c", "driver": "postgresql", "host": "db.example.com", "username": "reader", "password": "pw-owner", "database": "sales"}))
        .await;
    let connection = connection.assert_ok(StatusCode::CREATED)["id"].as_str().unwrap().to_owned();
    let conversation = Uuid::now_v7();
    let message = |role, metadata| Message {
        id: Uuid::now_v7(),
        conversation_id: conversation,
        role,
        content: "owner's question".into(),
        metadata,
        created_at: Utc::now(),
    };
    let exchange = Exchange {
        user_id: owner.id,
        conversation_id: conversation,
        title: "owner's question".into(),
        model: "gpt-4o".into(),
        connection_id: connection.parse().unwrap(),
        user_message: message(Role::User, None),
        assistant_message: message(
            Role::Assistant,
            Some(AnswerMetadata { sql: "SELECT 1".into(), ..Default::default() }),
        ),
    };
    app.state.store.save_exchange(exchange).await.unwrap();
    Owned { model, connection, conversation }
}

/// What the owner sees of its resources.
async fn snapshot(app: &TestApp, owner: &TestUser, owned: &Owned) -> Vec<Value> {
    let token = Some(owner.access.as_str());
    let mut seen = Vec::new();
    for uri in [
        "/api/v1/models".to_owned(),
        "/api/v1/connections".to_owned(),
        "/api/v1/conversations".to_owned(),
        format!("/api/v1/conversations/{}", owned.conversation),
        "/api/v1/config".to_owned(),
    ] {
        seen.push(app.get(&uri, token).await.assert_ok(StatusCode::OK).clone());
    }
    seen
}

#[tokio::test]
async fn another_users_ids_are_not_found_and_change_nothing() {
    let app = TestApp::new().await;
    let owner = app.register("owner@example.com").await;
    let intruder = app.register("intruder@example.com").await;
    let owned = owned_resources(&app, &owner).await;
    let before = snapshot(&app, &owner, &owned).await;

    let put_model = json!({"name": "stolen", "api_key": "sk-intruder", "is_default": true});
    let put_connection = json!({"name": "stolen", "host": "evil.example.com"});
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/conversations/{}", owned.conversation), None),
        (Method::DELETE, format!("/api/v1/conversations/{}", owned.conversation), None),
        (Method::POST, format!("/api/v1/conversations/{}/favorite", owned.conversation), Some(json!({}))),
        (Method::PUT, format!("/api/v1/models/{}", owned.model), Some(put_model)),
        (Method::DELETE, format!("/api/v1/models/{}", owned.model), None),
        (Method::POST, format!("/api/v1/models/{}/test", owned.model), Some(json!({}))),
        (Method::PUT, format!("/api/v1/connections/{}", owned.connection), Some(put_connection)),
        (Method::DELETE, format!("/api/v1/connections/{}", owned.connection), None),
        (Method::POST, format!("/api/v1/connections/{}/test", owned.connection), Some(json!({}))),
        (Method::GET, format!("/api/v1/connections/{}/schema", owned.connection), None),
    ];
    for (method, uri, body) in &cases {
        let body = body.as_ref().map(|b| axum::body::Body::from(b.to_string()));
        let reply = app.request(method.clone(), uri, Some(&intruder.access), body).await;
        reply.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
        assert!(!reply.text.contains("sk-owner") && !reply.text.contains("owner's"), "{method} {uri}: {}", reply.text);
        // The same answer as for an id nobody has.
        let missing =
            uri.replace(&owned.model, &Uuid::nil().to_string()).replace(&owned.connection, &Uuid::nil().to_string());
        let missing = missing.replace(&owned.conversation.to_string(), &Uuid::nil().to_string());
        let body = match method {
            &Method::PUT | &Method::POST => Some(axum::body::Body::from("{}")),
            _ => None,
        };
        let reply = app.request(method.clone(), &missing, Some(&intruder.access), body).await;
        reply.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    // Nor can the intruder make the owner's model or connection its default.
    let reply = app
        .request(
            Method::PUT,
            "/api/v1/config",
            Some(&intruder.access),
            Some(axum::body::Body::from(json!({"default_model_id": owned.model}).to_string())),
        )
        .await;
    assert_eq!(reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR")["field"], "default_model_id");
    let reply = app
        .request(
            Method::PUT,
            "/api/v1/config",
            Some(&intruder.access),
            Some(axum::body::Body::from(json!({"default_connection_id": owned.connection}).to_string())),
        )
        .await;
    assert_eq!(
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR")["field"],
        "default_connection_id"
    );

    assert_eq!(snapshot(&app, &owner, &owned).await, before, "the owner's data changed");
    let model = app.state.store.model(owner.id, owned.model.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(model.api_key.unwrap().expose(), "sk-owner");
}
