//! `/config` and `/prompts`: defaults, partial updates, and a 422 naming the field for every invalid value.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;

#[tokio::test]
async fn config_defaults_partial_updates_and_resets() {
    let app = TestApp::new().await;
    let user = app.register("config@example.com").await;
    let reply = app.get("/api/v1/config", Some(&user.access)).await;
    assert_eq!(
        reply.assert_ok(StatusCode::OK),
        &json!({"language": "zh", "theme": "light", "default_model_id": null, "default_connection_id": null, "view_mode": "user", "context_rounds": 3})
    );

    let reply = app
        .put(
            "/api/v1/config",
            Some(&user.access),
            &json!({"language": "en", "theme": "dark", "view_mode": "developer"}),
        )
        .await;
    let data = reply.assert_ok(StatusCode::OK).clone();
    assert_eq!(
        (data["language"].clone(), data["theme"].clone(), data["view_mode"].clone()),
        (json!("en"), json!("dark"), json!("developer"))
    );
    let reply = app.put("/api/v1/config", Some(&user.access), &json!({"context_rounds": 0})).await;
    let data = reply.assert_ok(StatusCode::OK).clone();
    assert_eq!(
        (data["language"].clone(), data["context_rounds"].clone()),
        (json!("en"), json!(0)),
        "other fields are kept"
    );
    let reply = app.put("/api/v1/config", Some(&user.access), &json!({"language": null, "context_rounds": null})).await;
    let data = reply.assert_ok(StatusCode::OK).clone();
    assert_eq!(
        (data["language"].clone(), data["context_rounds"].clone(), data["theme"].clone()),
        (json!("zh"), json!(3), json!("dark"))
    );

    // Defaults are the user's own models and connections, and always exactly one of each.
    let first = app
        .post("/api/v1/models", Some(&user.access), &json!({"name": "a", "provider": "openai", "model_id": "a"}))
        .await;
    let first = first.assert_ok(StatusCode::CREATED)["id"].clone();
    let second = app
        .post("/api/v1/models", Some(&user.access), &json!({"name": "b", "provider": "openai", "model_id": "b"}))
        .await;
    let second = second.assert_ok(StatusCode::CREATED)["id"].clone();
    assert_eq!(app.get("/api/v1/config", Some(&user.access)).await.json["data"]["default_model_id"], first);
    let reply = app.put("/api/v1/config", Some(&user.access), &json!({"default_model_id": second})).await;
    assert_eq!(reply.assert_ok(StatusCode::OK)["default_model_id"], second);
    let models = app.get("/api/v1/models", Some(&user.access)).await.json["data"]["models"].clone();
    let defaults: Vec<&Value> =
        models.as_array().unwrap().iter().filter(|m| m["is_default"] == true).map(|m| &m["id"]).collect();
    assert_eq!(defaults, [&second]);
}

#[tokio::test]
async fn invalid_config_values_name_their_field_and_store_nothing() {
    let app = TestApp::new().await;
    let user = app.register("config-bad@example.com").await;
    let before = app.get("/api/v1/config", Some(&user.access)).await.json["data"].clone();
    for (body, field) in [
        (json!({"language": "fr"}), "language"),
        (json!({"language": 5}), "language"),
        (json!({"theme": "neon"}), "theme"),
        (json!({"view_mode": "admin"}), "view_mode"),
        (json!({"context_rounds": 21}), "context_rounds"),
        (json!({"context_rounds": -1}), "context_rounds"),
        (json!({"context_rounds": "three"}), "context_rounds"),
        (json!({"context_rounds": 2.5}), "context_rounds"),
        (json!({"default_model_id": "not-a-uuid"}), "default_model_id"),
        (json!({"default_model_id": "00000000-0000-0000-0000-000000000000"}), "default_model_id"),
        (json!({"default_model_id": null}), "default_model_id"),
        (json!({"default_connection_id": "00000000-0000-0000-0000-000000000000"}), "default_connection_id"),
        // Valid fields next to an invalid one are not stored either.
        (json!({"theme": "dark", "language": "fr"}), "language"),
        (json!({"theme": "dark", "default_model_id": "00000000-0000-0000-0000-000000000000"}), "default_model_id"),
    ] {
        let reply = app.put("/api/v1/config", Some(&user.access), &body).await;
        let details = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
        assert_eq!(details["field"], field, "{body}");
    }
    assert_eq!(app.get("/api/v1/config", Some(&user.access)).await.json["data"], before);
    let reply = app.request(Method::PUT, "/api/v1/config", Some(&user.access), Some(Body::from("{"))).await;
    assert_eq!(reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR")["reason"], "malformed_json");
    app.get("/api/v1/config", None).await.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn prompts_show_defaults_accept_checked_templates_and_reset() {
    let app = TestApp::new().await;
    let user = app.register("prompts@example.com").await;
    let zh = app.get("/api/v1/prompts", Some(&user.access)).await.assert_ok(StatusCode::OK).clone();
    assert_eq!(zh["language"], "zh");
    assert_eq!(zh["customized"], json!([]));
    assert!(zh["sql_generation"].as_str().unwrap().contains("{question}"));
    assert_eq!(zh["placeholders"]["sql_generation"].as_array().unwrap().len(), 4);
    assert_eq!(zh["required"]["correction"], json!(["sql", "error"]));
    let en = app.get("/api/v1/prompts?language=en", Some(&user.access)).await.assert_ok(StatusCode::OK).clone();
    assert_ne!(en["system_prompt"], zh["system_prompt"]);
    assert!(en["system_prompt"].as_str().unwrap().contains("read-only"));

    let reply =
        app.put("/api/v1/prompts", Some(&user.access), &json!({"system_prompt": "Be brief about {dialect}."})).await;
    let data = reply.assert_ok(StatusCode::OK).clone();
    assert_eq!(
        (data["system_prompt"].clone(), data["customized"].clone()),
        (json!("Be brief about {dialect}."), json!(["system_prompt"]))
    );
    assert_eq!(data["sql_generation"], zh["sql_generation"], "untouched templates stay the defaults");
    assert_eq!(
        app.get("/api/v1/prompts", Some(&user.access)).await.json["data"]["system_prompt"],
        "Be brief about {dialect}."
    );

    for (body, field, reason) in [
        (json!({"system_prompt": "Use {tables}"}), "system_prompt", "unknown_placeholder"),
        (json!({"sql_generation": "no question here {schema}"}), "sql_generation", "missing_placeholder"),
        (json!({"correction": "{sql} only"}), "correction", "missing_placeholder"),
        (json!({"explanation": "JSON {\"sql\": 1}"}), "explanation", "invalid_format"),
        (json!({"explanation": "   "}), "explanation", "required"),
        (json!({"system_prompt": "x".repeat(16_001)}), "system_prompt", "too_long"),
        (json!({"system_prompt": 42}), "system_prompt", "invalid"),
        // A valid change next to an invalid one is not stored.
        (json!({"system_prompt": "fine", "explanation": "{nope}"}), "explanation", "unknown_placeholder"),
    ] {
        let reply = app.put("/api/v1/prompts", Some(&user.access), &body).await;
        let details = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR").clone();
        assert_eq!((details["field"].as_str(), details["reason"].as_str()), (Some(field), Some(reason)), "{body}");
    }
    let unknown = app.put("/api/v1/prompts", Some(&user.access), &json!({"system_prompt": "Use {tables}"})).await;
    assert!(unknown.json["error"]["message"].as_str().unwrap().contains("{dialect}"), "{}", unknown.text);
    assert_eq!(
        app.get("/api/v1/prompts", Some(&user.access)).await.json["data"]["system_prompt"],
        "Be brief about {dialect}."
    );

    // null restores one template; reset restores all.
    let reply = app
        .put(
            "/api/v1/prompts",
            Some(&user.access),
            &json!({"explanation": "Explain in {language}.", "system_prompt": null}),
        )
        .await;
    assert_eq!(reply.assert_ok(StatusCode::OK)["customized"], json!(["explanation"]));
    let reply = app.post("/api/v1/prompts/reset", Some(&user.access), &json!({})).await;
    let data = reply.assert_ok(StatusCode::OK).clone();
    assert_eq!(data["customized"], json!([]));
    assert_eq!(data["explanation"], zh["explanation"]);
    let reply = app.get("/api/v1/prompts?language=de", Some(&user.access)).await;
    assert_eq!(reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR")["field"], "language");
}
