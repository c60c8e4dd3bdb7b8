//! Extractors whose rejections are [`ApiError`]s in the v2 envelope instead of axum's plain-text ones.
//!
//! Deserialization goes through `serde_path_to_error`, so a bad value is reported with the path of its field
//! (`details: {"field": "port", "reason": "invalid"}`) and a missing one as `{"field": ..., "reason": "required"}`.
//! Unknown fields are ignored (no `deny_unknown_fields` on request types). A body that is not one well-formed
//! JSON document is `{"reason": "malformed_json", "line": ..., "column": ...}`, whatever its fields.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Map;
use std::fmt::Display;
use uuid::Uuid;

use crate::error::ApiError;

/// A JSON request body (`Content-Type: application/json` or `application/*+json`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !has_json_content_type(req.headers()) {
            let mut extra = Map::new();
            extra.insert("expected".into(), "application/json".into());
            return Err(ApiError::invalid_request(
                "unsupported_content_type",
                "expected a JSON body with `Content-Type: application/json`",
                extra,
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::invalid_request("body_too_large", "the request body is too large", Map::new())
            } else {
                ApiError::invalid_request("unreadable_body", "cannot read the request body", Map::new())
            }
        })?;
        // Syntax first, over the whole body: text that is not one JSON document is `malformed_json` even when
        // a prefix of it already fails to deserialize (`{} x` is malformed, not a body missing `name`).
        serde_json::from_slice::<IgnoredAny>(&bytes).map_err(|err| malformed_json(&err))?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(json_error)?;
        de.end().map_err(|err| malformed_json(&err))?;
        Ok(ValidJson(value))
    }
}

fn has_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    if err.inner().is_data() { field_error(err.path(), err.inner()) } else { malformed_json(err.inner()) }
}

fn malformed_json(err: &serde_json::Error) -> ApiError {
    let mut extra = Map::new();
    extra.insert("line".into(), err.line().into());
    extra.insert("column".into(), err.column().into());
    ApiError::invalid_request("malformed_json", format!("the body is not valid JSON: {err}"), extra)
}

/// Turns a deserialization error at `path` into a field error. serde reports a missing field at the path of the
/// object that lacks it, naming the field only in its message (`missing field `email``).
fn field_error(path: &serde_path_to_error::Path, err: &impl Display) -> ApiError {
    let message = err.to_string();
    let parent = path.to_string();
    let parent = (parent != ".").then_some(parent);
    let join = |name: &str| parent.as_ref().map_or_else(|| name.to_owned(), |p| format!("{p}.{name}"));
    match missing_field_name(&message) {
        Some(name) => ApiError::invalid_field(&join(name), "required", format!("`{}` is required", join(name))),
        None => match parent {
            Some(field) => ApiError::invalid_field(&field, "invalid", format!("invalid `{field}`: {message}")),
            None => ApiError::invalid_request("invalid_body", format!("invalid request: {message}"), Map::new()),
        },
    }
}

fn missing_field_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(name, _)| name)
}

/// Query-string parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ValidQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(url::form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ValidQuery).map_err(|err| field_error(err.path(), err.inner()))
    }
}

/// The `{id}` segment of a resource path. Anything that is not a UUID cannot name a resource, so it is a 404
/// like an id that does not exist (or belongs to someone else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound("resource not found".into()))?;
        Uuid::parse_str(&raw).map(PathId).map_err(|_| ApiError::NotFound("resource not found".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::extract::DefaultBodyLimit;
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use serde::Deserialize;
    use serde_json::Value;
    use serde_json::json;
    use tower::ServiceExt;

    #[derive(Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        port: u16,
    }

    #[derive(Deserialize)]
    struct Payload {
        name: String,
        #[allow(dead_code)]
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Deserialize)]
    struct Params {
        query: String,
        #[serde(default)]
        limit: Option<u32>,
    }

    fn app() -> Router {
        Router::new()
            .route("/json", post(|ValidJson(b): ValidJson<Payload>| async move { b.name }))
            .route(
                "/query",
                get(|ValidQuery(p): ValidQuery<Params>| async move { format!("{}:{:?}", p.query, p.limit) }),
            )
            .route("/id/{id}", get(|PathId(id): PathId| async move { id.to_string() }))
            .layer(DefaultBodyLimit::max(64))
    }

    async fn call(req: axum::http::Request<Body>) -> (StatusCode, String) {
        let response = app().oneshot(req).await.unwrap().into_response();
        let status = response.status();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn post_json(content_type: Option<&str>, body: &str) -> (StatusCode, Value) {
        let mut req = axum::http::Request::post("/json");
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let (status, text) = call(req.body(Body::from(body.to_owned())).unwrap()).await;
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    #[tokio::test]
    async fn json_rejections_are_validation_envelopes() {
        let ct = Some("application/json");
        let too_large = format!(r#"{{"name": "{}"}}"#, "x".repeat(100));
        let cases = [
            (ct, "{", json!({"reason": "malformed_json", "line": 1, "column": 1})),
            (ct, "{} x", json!({"reason": "malformed_json", "line": 1, "column": 4})),
            (ct, "{}", json!({"field": "name", "reason": "required"})),
            (ct, r#"{"name": 5}"#, json!({"field": "name", "reason": "invalid"})),
            (ct, r#"{"name": "a", "inner": {}}"#, json!({"field": "inner.port", "reason": "required"})),
            (ct, r#"{"name": "a", "inner": {"port": 70000}}"#, json!({"field": "inner.port", "reason": "invalid"})),
            (ct, "[]", json!({"reason": "invalid_body"})),
            (
                Some("text/plain"),
                r#"{"name": "a"}"#,
                json!({"reason": "unsupported_content_type", "expected": "application/json"}),
            ),
            (None, r#"{"name": "a"}"#, json!({"reason": "unsupported_content_type", "expected": "application/json"})),
            (ct, too_large.as_str(), json!({"reason": "body_too_large"})),
        ];
        for (content_type, body, details) in cases {
            let (status, json) = post_json(content_type, body).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(json["success"], false);
            assert_eq!(json["error"]["code"], "VALIDATION_ERROR");
            assert_eq!(json["error"]["details"], details, "{body}");
        }
    }

    #[tokio::test]
    async fn json_accepts_charset_vendor_types_and_unknown_fields() {
        for ct in ["application/json; charset=utf-8", "application/vnd.api+json", "Application/JSON"] {
            let (status, body) = post_json(Some(ct), r#"{"name": "ok", "extra": [1, 2]}"#).await;
            assert_eq!(status, StatusCode::OK, "{ct}");
            assert_eq!(body, json!("ok"));
        }
    }

    #[tokio::test]
    async fn query_rejections_name_the_field() {
        let get = |uri: &str| axum::http::Request::get(uri).body(Body::empty()).unwrap();
        assert_eq!(call(get("/query?query=hi&limit=5")).await, (StatusCode::OK, "hi:Some(5)".into()));
        assert_eq!(call(get("/query?query=%E4%BD%A0")).await, (StatusCode::OK, "你:None".into()));

        let (status, text) = call(get("/query?limit=5")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"]["details"], json!({"field": "query", "reason": "required"}));

        let (status, text) = call(get("/query?query=x&limit=many")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["error"]["details"], json!({"field": "limit", "reason": "invalid"}));
    }

    #[tokio::test]
    async fn path_ids_that_are_not_uuids_are_not_found() {
        let id = Uuid::new_v4();
        let get = |uri: String| axum::http::Request::get(uri).body(Body::empty()).unwrap();
        assert_eq!(call(get(format!("/id/{id}"))).await, (StatusCode::OK, id.to_string()));
        let (status, text) = call(get("/id/not-a-uuid".into())).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(text.contains("NOT_FOUND"));
    }
}
