//! The envelope around everything else: unknown routes, wrong methods, bodies that are not JSON, health.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test]
async fn unknown_routes_are_json_404s() {
    // Without the web console (`http.console`), `/` is unknown too.
    let app = TestApp::with_settings(|settings| settings.http.console = false).await;
    for uri in ["/", "/api/v1/nope", "/api/v2/auth/me", "/api/v1/models/extra/segments"] {
        let reply = app.get(uri, None).await;
        assert_eq!(reply.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND"), &json!({}), "{uri}");
        assert!(reply.json["error"]["message"].as_str().unwrap().contains(uri.trim_end_matches('/')), "{}", reply.text);
    }
    // A method the path does not support has no endpoint either.
    let reply = app.request(Method::DELETE, "/api/v1/auth/me", None, None).await;
    reply.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    let reply = app.get("/api/v1/auth/login", None).await;
    reply.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn health_has_the_flat_shape_and_needs_no_token() {
    let app = TestApp::new().await;
    let reply = app.get("/api/v1/health", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json, json!({"status": "ok"}));
}

#[tokio::test]
async fn readiness_reports_each_dependency() {
    let app = TestApp::new().await;
    let reply = app.get("/api/v1/health/ready", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["status"], "ready");
    let checks = reply.json["checks"].as_object().unwrap();
    let backends: Vec<(&str, &str, &str)> = checks
        .iter()
        .map(|(name, check)| (name.as_str(), check["status"].as_str().unwrap(), check["backend"].as_str().unwrap()))
        .collect();
    assert_eq!(
        backends,
        [("bus", "ok", "in-process"), ("shared_state", "ok", "in-process"), ("store", "ok", "sqlite")]
    );
    assert!(checks.values().all(|check| check["latency_ms"].as_f64().is_some() && check.get("error").is_none()));
}

#[tokio::test]
async fn bodies_that_are_not_json_are_validation_errors() {
    let app = TestApp::new().await;
    let reply = app.request(Method::POST, "/api/v1/auth/register", None, Some(Body::from("{\"email\": "))).await;
    let details = reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR");
    assert_eq!(details["reason"], "malformed_json");

    let reply = app.request(Method::POST, "/api/v1/auth/login", None, Some(Body::from("null"))).await;
    assert_eq!(
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
        &json!({"reason": "invalid_body"})
    );

    let reply = app.request(Method::POST, "/api/v1/auth/login", None, Some(Body::empty())).await;
    assert_eq!(reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR")["reason"], "malformed_json");

    // Not declared as JSON.
    let request = axum::http::Request::post("/api/v1/auth/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("email=a%40b.co&password=12345678"))
        .unwrap();
    let response = tower::ServiceExt::oneshot(querygpt_api::router(app.state.clone()), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"success": false, "error": {
            "code": "VALIDATION_ERROR",
            "message": "expected a JSON body with `Content-Type: application/json`",
            "details": {"reason": "unsupported_content_type", "expected": "application/json"},
        }})
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_before_parsing() {
    let app = TestApp::new().await;
    let huge = json!({"email": "a@b.co", "password": "x".repeat(querygpt_api::MAX_BODY_BYTES)});
    let reply = app.post("/api/v1/auth/register", None, &huge).await;
    assert_eq!(
        reply.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
        &json!({"reason": "body_too_large"})
    );
}

#[tokio::test]
async fn validation_runs_after_authentication() {
    let app = TestApp::new().await;
    // No token and a bad body: the token is what is reported.
    let reply = app.request(Method::POST, "/api/v1/models", None, Some(Body::from("{"))).await;
    reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}
