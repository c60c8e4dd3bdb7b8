//! The OpenAPI document: served, complete, and unchanged unless its snapshot is updated on purpose
//! (`cargo insta review`, or `INSTA_UPDATE=always cargo test -p querygpt-api --test api openapi`).

use axum::http::StatusCode;
use serde_json::Value;

use crate::support::TestApp;

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let app = TestApp::new().await;
    let reply = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json, serde_json::to_value(querygpt_api::openapi_document()).unwrap());
    assert_eq!(reply.json["openapi"], "3.1.0");
}

#[test]
fn every_endpoint_of_the_v2_document_is_described() {
    let document = serde_json::to_value(querygpt_api::openapi_document()).unwrap();
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/health", "get"),
        ("/health/ready", "get"),
        ("/auth/register", "post"),
        ("/auth/login", "post"),
        ("/auth/refresh", "post"),
        ("/auth/logout", "post"),
        ("/auth/me", "get"),
        ("/chat/stream", "get"),
        ("/chat/stop", "post"),
        ("/conversations", "get"),
        ("/conversations/{id}", "get"),
        ("/conversations/{id}", "delete"),
        ("/conversations/{id}/favorite", "post"),
        ("/models", "get"),
        ("/models", "post"),
        ("/models/{id}", "put"),
        ("/models/{id}", "delete"),
        ("/models/{id}/test", "post"),
        ("/connections", "get"),
        ("/connections", "post"),
        ("/connections/{id}", "put"),
        ("/connections/{id}", "delete"),
        ("/connections/{id}/test", "post"),
        ("/connections/{id}/schema", "get"),
        ("/config", "get"),
        ("/config", "put"),
        ("/prompts", "get"),
        ("/prompts", "put"),
        ("/prompts/reset", "post"),
    ] {
        let operation = &paths.get(path).unwrap_or_else(|| panic!("{path} is not described"))[method];
        assert!(operation.is_object(), "{method} {path} is not described");
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.keys().any(|status| status.starts_with('2')), "{method} {path}: no success response");
        if !path.starts_with("/health") {
            assert!(responses.contains_key("422") && responses.contains_key("500"), "{method} {path}: {responses:?}");
        }
    }
}

#[test]
fn snapshot() {
    let document: Value = serde_json::to_value(querygpt_api::openapi_document()).unwrap();
    insta::assert_json_snapshot!("openapi", document);
}
