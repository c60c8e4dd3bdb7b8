//! Models, connections and conversations: shapes, secrets never returned, other users' rows invisible.

use axum::http::StatusCode;
use chrono::Utc;
use querygpt_common::Driver;
use querygpt_store::{AnswerMetadata, Exchange, Message, NewConnection, Role, SecretString};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::TestApp;

const API_KEY: &str = "sk-ant-very-secret-key-1234567890";
const DB_PASSWORD: &str = "db-password-that-must-not-leak";

#[tokio::test]
async fn models_are_created_and_listed_without_their_key() {
    let app = TestApp::new().await;
    let user = app.register("models@example.com").await;
    let token = Some(user.access.as_str());

    let reply = app.get("/api/v1/models", token).await;
    assert_eq!(reply.assert_ok(StatusCode::OK), &json!({"models": []}));

    let body = json!({
        "name": "Claude 3.5 Sonnet",
        "provider": "anthropic",
        "model_id": "claude-3-5-sonnet-20241022",
        "base_url": "https://api.anthropic.com",
        "api_key": API_KEY,
        "is_default": false,
        "unknown_field": "ignored",
    });
    let reply = app.post("/api/v1/models", token, &body).await;
    let created = reply.assert_ok(StatusCode::CREATED).clone();
    assert!(!reply.text.contains(API_KEY));
    let claude_id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created,
        json!({
            "id": claude_id,
            "name": "Claude 3.5 Sonnet",
            "provider": "anthropic",
            "model_id": "claude-3-5-sonnet-20241022",
            "base_url": "https://api.anthropic.com",
            "has_api_key": true,
            // The first model of a user becomes its default.
            "is_default": true,
            "context_window": null,
            // Not tested yet.
            "is_available": null,
        })
    );

    // An OpenAI-compatible local server: no key, custom base URL, made the default.
    let body = json!({"name": "Local", "provider": "openai", "model_id": "qwen2.5", "base_url": "http://ollama.internal:11434/v1/", "is_default": true});
    let reply = app.post("/api/v1/models", token, &body).await;
    let local_id = reply.assert_ok(StatusCode::CREATED)["id"].as_str().unwrap().to_owned();

    let reply = app.get("/api/v1/models", token).await;
    assert!(!reply.text.contains(API_KEY));
    let models = reply.assert_ok(StatusCode::OK)["models"].as_array().unwrap().clone();
    assert_eq!(models.len(), 2);
    let by_id = |id: &str| models.iter().find(|m| m["id"] == id).unwrap().clone();
    // Making the local model the default took the flag from the first one.
    let mut expected = created.clone();
    expected["is_default"] = json!(false);
    assert_eq!(by_id(&claude_id), expected);
    assert_eq!(by_id(&local_id)["is_default"], true);
    assert_eq!(by_id(&local_id)["provider"], "openai");

    // The key is stored (encrypted) for the worker.
    let stored = app.state.store.model(user.id, claude_id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.api_key.as_ref().map(SecretString::expose), Some(API_KEY));
    let stored = app.state.store.model(user.id, local_id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!((stored.api_key.is_none(), stored.base_url.as_deref()), (true, Some("http://ollama.internal:11434/v1")));

    // Another user sees none of them.
    let other = app.register("other-models@example.com").await;
    let reply = app.get("/api/v1/models", Some(&other.access)).await;
    assert_eq!(reply.assert_ok(StatusCode::OK), &json!({"models": []}));
}

#[tokio::test]
async fn invalid_models_name_the_field() {
    let app = TestApp::new().await;
    let user = app.register("bad-models@example.com").await;
    let valid = json!({"name": "m", "provider": "openai", "model_id": "gpt-4o"});
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases = [
        (with("name", json!("")), "name", "required"),
        (with("name", json!("  ")), "name", "required"),
        (without("model_id"), "model_id", "required"),
        (with("model_id", json!("")), "model_id", "required"),
        (with("provider", json!("gemini")), "provider", "unsupported"),
        (without("provider"), "provider", "required"),
        (with("base_url", json!("ftp://example.com")), "base_url", "invalid_format"),
        (with("base_url", json!("not a url")), "base_url", "invalid_format"),
        (with("is_default", json!("yes")), "is_default", "invalid"),
    ];
    for (body, field, reason) in cases {
        let reply = app.post("/api/v1/models", Some(&user.access), &body).await;
        let details = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(details, &json!({"field": field, "reason": reason}), "{body}");
    }
    let reply = app.get("/api/v1/models", Some(&user.access)).await;
    assert_eq!(reply.assert_ok(StatusCode::OK), &json!({"models": []}), "nothing was stored");
    let reply = app.post("/api/v1/models", None, &valid).await;
    reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn connections_are_created_and_listed_without_their_password() {
    let app = TestApp::new().await;
    let user = app.register("conn@example.com").await;
    let token = Some(user.access.as_str());

    let body = json!({
        "name": "生产数据库",
        "driver": "mysql",
        "host": "mysql.internal",
        "port": 3306,
        "username": "root",
        "password": DB_PASSWORD,
        "database": "sales",
        "is_default": true,
    });
    let reply = app.post("/api/v1/connections", token, &body).await;
    assert!(!reply.text.contains(DB_PASSWORD));
    let mysql = reply.assert_ok(StatusCode::CREATED).clone();
    assert_eq!(
        mysql,
        json!({
            "id": mysql["id"],
            "name": "生产数据库",
            "driver": "mysql",
            "host": "mysql.internal",
            "port": 3306,
            "database": "sales",
            "is_default": true,
            "is_connected": null,
        })
    );

    // `postgres` alias, default port; SQLite needs only the path.
    let body = json!({"name": "pg", "driver": "postgres", "host": "db.internal", "username": "app", "password": DB_PASSWORD, "database": "shop"});
    let reply = app.post("/api/v1/connections", token, &body).await;
    let pg = reply.assert_ok(StatusCode::CREATED).clone();
    assert_eq!((&pg["driver"], &pg["port"], &pg["is_default"]), (&json!("postgresql"), &json!(5432), &json!(false)));
    let body = json!({"name": "file", "driver": "sqlite", "database": "sales.db"});
    let reply = app.post("/api/v1/connections", token, &body).await;
    let sqlite = reply.assert_ok(StatusCode::CREATED).clone();
    assert_eq!(
        sqlite,
        json!({"id": sqlite["id"], "name": "file", "driver": "sqlite", "host": null, "port": null,
               "database": "sales.db", "is_default": false, "is_connected": null})
    );

    let reply = app.get("/api/v1/connections", token).await;
    assert!(!reply.text.contains(DB_PASSWORD));
    assert!(!reply.text.contains("\"password\""));
    assert!(!reply.text.contains("\"username\""));
    let list = reply.assert_ok(StatusCode::OK)["connections"].as_array().unwrap().clone();
    assert_eq!(list.len(), 3);
    for item in [&mysql, &pg, &sqlite] {
        assert!(list.contains(item), "{item} in {list:?}");
    }

    // Stored for the worker, decrypted on read.
    let id = pg["id"].as_str().unwrap().parse().unwrap();
    let stored = app.state.store.connection(user.id, id).await.unwrap().unwrap();
    assert_eq!(stored.password.as_ref().map(SecretString::expose), Some(DB_PASSWORD));
    assert_eq!(stored.username.as_deref(), Some("app"));

    let other = app.register("other-conn@example.com").await;
    let reply = app.get("/api/v1/connections", Some(&other.access)).await;
    assert_eq!(reply.assert_ok(StatusCode::OK), &json!({"connections": []}));
}

#[tokio::test]
async fn invalid_connections_name_the_field() {
    let app = TestApp::new().await;
    let user = app.register("bad-conn@example.com").await;
    let cases = [
        (
            json!({"name": "x", "driver": "oracle", "host": "h", "username": "u", "database": "d"}),
            "driver",
            "unsupported",
        ),
        (json!({"name": "x", "driver": "redis", "host": "h", "username": "u", "database": "d"}), "database", "invalid"),
        (json!({"name": "x", "driver": "mysql", "username": "u", "database": "d"}), "host", "required"),
        (json!({"name": "x", "driver": "mysql", "host": "", "username": "u", "database": "d"}), "host", "required"),
        (json!({"name": "x", "driver": "mysql", "host": "h", "database": "d"}), "username", "required"),
        (json!({"name": "x", "driver": "mysql", "host": "h", "username": "u", "database": ""}), "database", "required"),
        (json!({"name": "x", "driver": "mysql", "host": "h", "username": "u"}), "database", "required"),
        (
            json!({"name": "x", "driver": "mysql", "host": "h", "username": "u", "database": "d", "port": 70000}),
            "port",
            "invalid",
        ),
        (
            json!({"name": "x", "driver": "mysql", "host": "h", "username": "u", "database": "d", "port": "3306"}),
            "port",
            "invalid",
        ),
        (json!({"name": "", "driver": "sqlite", "database": "/tmp/x.db"}), "name", "required"),
        (json!({"name": "x", "driver": "sqlite", "database": "  "}), "database", "required"),
    ];
    for (body, field, reason) in cases {
        let reply = app.post("/api/v1/connections", Some(&user.access), &body).await;
        let details = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(details, &json!({"field": field, "reason": reason}), "{body}");
    }
    let reply = app.get("/api/v1/connections", Some(&user.access)).await;
    assert_eq!(reply.assert_ok(StatusCode::OK), &json!({"connections": []}));
}

#[tokio::test]
async fn new_users_get_the_demo_connection() {
    let demo = NewConnection {
        name: "Demo sales".into(),
        driver: Driver::Sqlite,
        host: None,
        port: None,
        username: None,
        password: None,
        database: "/srv/demo.db".into(),
        is_default: true,
    };
    let app = TestApp::with_demo(Some(demo)).await;
    for email in ["demo1@example.com", "demo2@example.com"] {
        let user = app.register(email).await;
        let reply = app.get("/api/v1/connections", Some(&user.access)).await;
        let list = reply.assert_ok(StatusCode::OK)["connections"].as_array().unwrap().clone();
        assert_eq!(list.len(), 1, "each user gets its own copy");
        assert_eq!((&list[0]["name"], &list[0]["is_default"]), (&json!("Demo sales"), &json!(true)));
    }
}

#[tokio::test]
async fn conversations_are_shown_to_their_owner_only() {
    let app = TestApp::new().await;
    let owner = app.register("conv@example.com").await;
    let body = json!({"name": "file", "driver": "sqlite", "database": "sales.db"});
    let reply = app.post("/api/v1/connections", Some(&owner.access), &body).await;
    let connection_id: Uuid = reply.assert_ok(StatusCode::CREATED)["id"].as_str().unwrap().parse().unwrap();

    let conversation_id = Uuid::new_v4();
    let now = Utc::now();
    let metadata = AnswerMetadata {
        sql: "SELECT 1".into(),
        execution_time: 0.5,
        rows_count: 1,
        visualization: Some(json!({"type": "bar"})),
        ..AnswerMetadata::default()
    };
    let message = |role, content: &str, metadata| Message {
        id: Uuid::new_v4(),
        conversation_id,
        role,
        content: content.into(),
        metadata,
        created_at: now,
    };
    let question = message(Role::User, "查询上月销售额", None);
    let answer = message(Role::Assistant, "根据查询结果...", Some(metadata.clone()));
    let exchange = Exchange {
        user_id: owner.id,
        conversation_id,
        title: "查询上月销售额".into(),
        model: "gpt-4o".into(),
        connection_id,
        user_message: question.clone(),
        assistant_message: answer.clone(),
    };
    assert!(app.state.store.save_exchange(exchange).await.unwrap());

    let uri = format!("/api/v1/conversations/{conversation_id}");
    let reply = app.get(&uri, Some(&owner.access)).await;
    let data = reply.assert_ok(StatusCode::OK);
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        data,
        &json!({
            "id": conversation_id,
            "title": "查询上月销售额",
            "model": "gpt-4o",
            "connection_id": connection_id,
            "is_favorite": false,
            "messages": [
                {"id": question.id, "role": "user", "content": "查询上月销售额", "created_at": stamp},
                {"id": answer.id, "role": "assistant", "content": "根据查询结果...", "metadata": metadata, "created_at": stamp},
            ],
            "created_at": data["created_at"],
            "updated_at": data["updated_at"],
        })
    );

    let stranger = app.register("stranger@example.com").await;
    let hidden = app.get(&uri, Some(&stranger.access)).await;
    let missing = app.get(&format!("/api/v1/conversations/{}", Uuid::new_v4()), Some(&owner.access)).await;
    let not_uuid = app.get("/api/v1/conversations/123", Some(&owner.access)).await;
    for reply in [&hidden, &missing, &not_uuid] {
        reply.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    assert_eq!(hidden.json, missing.json, "another user's conversation looks exactly like a missing one");
    app.get(&uri, None).await.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

/// The SSRF guard: hosts that are (or resolve to) loopback, private, link-local or other internal addresses are
/// refused, in every spelling, for connections and for model base URLs (the default policy allows none of them).
#[tokio::test]
async fn internal_destinations_are_refused() {
    let app = TestApp::new().await;
    let user = app.register("ssrf@example.com").await;
    let token = Some(user.access.as_str());
    let hosts = [
        "127.0.0.1",
        "127.1",
        "2130706433",
        "0x7f000001",
        "[::ffff:127.0.0.1]",
        "::1",
        "localhost",
        "169.254.169.254",
        "10.1.2.3",
        "192.168.0.10",
        "0.0.0.0",
    ];
    for host in hosts {
        let body = json!({"name": "x", "driver": "postgresql", "host": host, "username": "u", "database": "d"});
        let reply = app.post("/api/v1/connections", token, &body).await;
        let details = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(details, &json!({"field": "host", "reason": "blocked_address"}), "{host}");

        let url_host =
            if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() };
        let body = json!({"name": "m", "provider": "openai", "model_id": "m", "base_url": format!("http://{url_host}:8080/v1")});
        let reply = app.post("/api/v1/models", token, &body).await;
        let details = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(details, &json!({"field": "base_url", "reason": "blocked_address"}), "{host}");
    }
    let reply = app.get("/api/v1/connections", token).await;
    assert_eq!(reply.assert_ok(StatusCode::OK), &json!({"connections": []}), "nothing was stored");
}

#[tokio::test]
async fn sqlite_files_outside_the_allowed_directory_are_refused_at_the_door() {
    let app = TestApp::new().await;
    let user = app.register("sqlite-door@example.com").await;
    let token = Some(user.access.as_str());
    for path in ["/etc/passwd", "../outside.db", "sub/../../outside.db", "/tmp/x.db"] {
        let body = json!({"name": "x", "driver": "sqlite", "database": path});
        let reply = app.post("/api/v1/connections", token, &body).await;
        let details = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(
            (details["field"].as_str(), details["reason"].as_str()),
            (Some("database"), Some("path_not_allowed")),
            "{path}"
        );
    }
    let inside = app.state.settings.sqlite_dir().join("shop.db").display().to_string();
    let reply =
        app.post("/api/v1/connections", token, &json!({"name": "ok", "driver": "sqlite", "database": inside})).await;
    let id = reply.assert_ok(StatusCode::CREATED)["id"].as_str().unwrap().to_owned();
    // An update is checked the same way, and nothing of it is stored.
    let uri = format!("/api/v1/connections/{id}");
    let body = axum::body::Body::from(json!({"name": "renamed", "database": "/etc/passwd"}).to_string());
    let reply = app.request(axum::http::Method::PUT, &uri, token, Some(body)).await;
    assert_eq!(reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR")["reason"], "path_not_allowed");
    let listed = app.get("/api/v1/connections", token).await.json["data"]["connections"][0].clone();
    assert_eq!((listed["name"].as_str(), listed["database"].as_str()), (Some("ok"), Some(inside.as_str())));
}

#[tokio::test]
async fn updates_are_partial_and_there_is_always_one_default() {
    let app = TestApp::new().await;
    let user = app.register("updates@example.com").await;
    let token = Some(user.access.as_str());

    let first = app
        .post(
            "/api/v1/models",
            token,
            &json!({"name": "first", "provider": "openai", "model_id": "gpt-4o", "api_key": API_KEY}),
        )
        .await;
    let first = first.assert_ok(StatusCode::CREATED)["id"].as_str().unwrap().to_owned();
    let second = app
        .post("/api/v1/models", token, &json!({"name": "second", "provider": "anthropic", "model_id": "claude"}))
        .await;
    let second = second.assert_ok(StatusCode::CREATED)["id"].as_str().unwrap().to_owned();

    // Omitted fields (the key too) are kept.
    let reply = app.put(&format!("/api/v1/models/{first}"), token, &json!({"name": "renamed"})).await;
    let data = reply.assert_ok(StatusCode::OK).clone();
    assert_eq!(
        (data["name"].as_str(), data["model_id"].as_str(), data["has_api_key"].as_bool()),
        (Some("renamed"), Some("gpt-4o"), Some(true))
    );
    let stored = app.state.store.model(user.id, first.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.api_key.unwrap().expose(), API_KEY);
    // null clears the key; bad values name their field and change nothing.
    let reply = app.put(&format!("/api/v1/models/{first}"), token, &json!({"api_key": null})).await;
    assert_eq!(reply.assert_ok(StatusCode::OK)["has_api_key"], false);
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"provider": "gemini"}), "provider"),
        (json!({"base_url": "ftp://x"}), "base_url"),
        (json!({"base_url": "http://127.0.0.1:8080/v1"}), "base_url"),
        (json!({"is_default": false}), "is_default"),
    ] {
        let reply = app.put(&format!("/api/v1/models/{first}"), token, &body).await;
        assert_eq!(reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR")["field"], field, "{body}");
    }

    let defaults = || async {
        let models = app.get("/api/v1/models", token).await.json["data"]["models"].clone();
        models
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["is_default"] == true)
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(defaults().await, [first.as_str()]);
    app.put(&format!("/api/v1/models/{second}"), token, &json!({"is_default": true})).await.assert_ok(StatusCode::OK);
    assert_eq!(defaults().await, [second.as_str()]);
    // Deleting the default passes it on.
    let reply = app.delete(&format!("/api/v1/models/{second}"), token).await;
    assert_eq!(reply.assert_ok(StatusCode::OK), &json!({"id": second, "deleted": true}));
    assert_eq!(defaults().await, [first.as_str()]);
    app.delete(&format!("/api/v1/models/{second}"), token).await.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    app.delete(&format!("/api/v1/models/{first}"), token).await.assert_ok(StatusCode::OK);
    assert_eq!(app.get("/api/v1/models", token).await.json["data"]["models"], json!([]));

    // Connections: the password is kept unless given; a changed target is untested again.
    let body = json!({"name": "pg", "driver": "postgresql", "host": "db.example.com", "username": "reader", "password": DB_PASSWORD, "database": "sales"});
    let id = app.post("/api/v1/connections", token, &body).await.assert_ok(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.state.store.set_connection_connected(user.id, id.parse().unwrap(), true).await.unwrap();
    let reply = app.put(&format!("/api/v1/connections/{id}"), token, &json!({"name": "pg renamed"})).await;
    assert_eq!(reply.assert_ok(StatusCode::OK)["is_connected"], true, "a rename keeps the test result");
    let reply =
        app.put(&format!("/api/v1/connections/{id}"), token, &json!({"database": "sales2", "port": 6543})).await;
    let data = reply.assert_ok(StatusCode::OK).clone();
    assert!(!reply.text.contains(DB_PASSWORD));
    assert_eq!(
        (data["database"].as_str(), data["port"].as_u64(), data["is_connected"].clone()),
        (Some("sales2"), Some(6543), Value::Null)
    );
    let stored = app.state.store.connection(user.id, id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.password.unwrap().expose(), DB_PASSWORD);
    let reply = app.put(&format!("/api/v1/connections/{id}"), token, &json!({"host": null})).await;
    assert_eq!(reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR")["field"], "host");
    app.delete(&format!("/api/v1/connections/{id}"), token).await.assert_ok(StatusCode::OK);
    assert_eq!(app.get("/api/v1/connections", token).await.json["data"]["connections"], json!([]));
}
