//! The QueryGPT v2 envelope: [`ApiError`] renders `{success: false, error: {code, message, details}}` and
//! [`ApiResponse`] renders `{success: true, data, message}`. Every failure of every route becomes an `ApiError`,
//! and this file is the only place that decides its HTTP status and what the client is told.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use querygpt_bus::BusError;
use querygpt_common::ErrorCode;
use querygpt_store::StoreError;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::borrow::Cow;

use crate::auth::{PasswordError, TokenError};

/// Message of a success body when the handler gives none.
const DEFAULT_SUCCESS_MESSAGE: &str = "OK";
/// What a client is told about an internal error; the cause goes to the log only.
const INTERNAL_MESSAGE: &str = "internal server error";

/// A failed request, as the client will see it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: missing, malformed, forged or expired credentials. `reason` is a stable machine-readable word
    /// (`missing_token`, `invalid_token`, `token_expired`, `wrong_token_type`, `invalid_credentials`, ...).
    #[error("unauthorized: {message}")]
    Unauthorized { reason: &'static str, message: Cow<'static, str> },
    /// 403: authenticated but not allowed. (Other users' resources are reported as `NotFound`, not this.)
    #[error("forbidden: {0}")]
    Forbidden(Cow<'static, str>),
    /// 404: the resource does not exist or belongs to another user; also unknown routes.
    #[error("not found: {0}")]
    NotFound(Cow<'static, str>),
    /// 422: the request is malformed or a field is invalid. `details` says which field and why.
    #[error("validation error: {message}")]
    Validation { message: Cow<'static, str>, details: Value },
    /// 429: too many requests; `retry_after_secs` becomes a `Retry-After` header.
    #[error("rate limited: {message}")]
    RateLimited { message: Cow<'static, str>, retry_after_secs: Option<u64> },
    /// 424 `DATABASE_ERROR` (a code of this service, beyond the v2 table): the user's database could not be read
    /// (unreachable, refused the login, file missing). The message says why, without secrets.
    #[error("database error: {0}")]
    Database(Cow<'static, str>),
    /// 500: something the request needs is unavailable: no worker could run it (none is running, or none answered
    /// in time), or the shared state (Redis) that token revocations are checked in cannot be reached. The client is
    /// told so, with `reason`: it is not a fault of this request, and an operator may have to act.
    #[error("unavailable: {message}")]
    Unavailable { reason: &'static str, message: Cow<'static, str> },
    /// 500: a failure of ours. Logged with its cause; the client gets a generic message.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn unauthorized(reason: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::Unauthorized { reason, message: message.into() }
    }

    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::Forbidden(message.into())
    }

    /// `what` names the resource: `ApiError::not_found("model")` says "model not found".
    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found").into())
    }

    /// A validation error about one field: details are `{"field": field, "reason": reason}`.
    pub fn invalid_field(field: &str, reason: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::invalid_field_with(field, reason, message, Map::new())
    }

    /// Like [`ApiError::invalid_field`], with more keys in `details` (e.g. `min_length`).
    pub fn invalid_field_with(
        field: &str,
        reason: &'static str,
        message: impl Into<Cow<'static, str>>,
        mut extra: Map<String, Value>,
    ) -> Self {
        extra.insert("field".into(), field.into());
        extra.insert("reason".into(), reason.into());
        ApiError::Validation { message: message.into(), details: Value::Object(extra) }
    }

    /// A validation error about the request as a whole (not one field): details are `{"reason": reason, ..}`.
    pub fn invalid_request(
        reason: &'static str,
        message: impl Into<Cow<'static, str>>,
        extra: Map<String, Value>,
    ) -> Self {
        let mut details = extra;
        details.insert("reason".into(), reason.into());
        ApiError::Validation { message: message.into(), details: Value::Object(details) }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(err.into())
    }

    /// The error code of the envelope (which also decides the HTTP status).
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthorized { .. } => ErrorCode::Unauthorized,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Validation { .. } => ErrorCode::ValidationError,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
            ApiError::Database(_) => ErrorCode::DatabaseError,
            ApiError::Unavailable { .. } | ApiError::Internal(_) => ErrorCode::InternalError,
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    success: bool,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: ErrorCode,
    message: &'a str,
    /// Always an object (empty when there is nothing to add), so typed clients see one shape.
    details: Value,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let (message, details): (&str, Value) = match &self {
            ApiError::Unauthorized { reason, message } | ApiError::Unavailable { reason, message } => {
                (&**message, json!({ "reason": reason }))
            }
            ApiError::Forbidden(message) | ApiError::NotFound(message) | ApiError::Database(message) => {
                (&**message, json!({}))
            }
            ApiError::Validation { message, details } => (&**message, details.clone()),
            ApiError::RateLimited { message, retry_after_secs } => {
                (&**message, retry_after_secs.map_or_else(|| json!({}), |secs| json!({ "retry_after": secs })))
            }
            ApiError::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "internal error while serving a request");
                (INTERNAL_MESSAGE, json!({}))
            }
        };
        let body = ErrorEnvelope { success: false, error: ErrorBody { code, message, details } };
        let mut response = (status, Json(body)).into_response();
        match &self {
            // RFC 6750: a 401 names the scheme the client should use.
            ApiError::Unauthorized { .. } => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RateLimited { retry_after_secs: Some(secs), .. } => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            // The store scopes every lookup by user: "not found" also covers another user's row.
            StoreError::NotFound(what) => ApiError::NotFound(what.into()),
            StoreError::Conflict(what) => {
                ApiError::invalid_request("conflict", format!("already exists: {what}"), Map::new())
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Signing(_) => ApiError::internal(err),
            TokenError::Expired => ApiError::unauthorized("token_expired", err.to_string()),
            TokenError::Invalid => ApiError::unauthorized("invalid_token", err.to_string()),
            TokenError::WrongKind { .. } => ApiError::unauthorized("wrong_token_type", err.to_string()),
        }
    }
}

impl From<PasswordError> for ApiError {
    fn from(err: PasswordError) -> Self {
        ApiError::internal(err)
    }
}

impl From<BusError> for ApiError {
    fn from(err: BusError) -> Self {
        match err {
            BusError::NoResponders => ApiError::Unavailable {
                reason: "no_worker",
                message: "no worker is running to handle this request; start one with `querygpt worker`".into(),
            },
            BusError::TimedOut(after) => ApiError::Unavailable {
                reason: "worker_timeout",
                message: format!("no worker answered within {} s", after.as_secs()).into(),
            },
            BusError::QueueFull => ApiError::RateLimited {
                message: "the service is busy: too many questions are waiting; try again in a moment".into(),
                retry_after_secs: Some(1),
            },
            other => ApiError::internal(other),
        }
    }
}

/// A success body: `{"success": true, "data": ..., "message": ...}` with status 200 (or 201 for [`created`]).
///
/// [`created`]: ApiResponse::created
#[derive(Debug)]
pub struct ApiResponse<T> {
    status: StatusCode,
    data: T,
    message: Cow<'static, str>,
}

impl<T: Serialize> ApiResponse<T> {
    pub fn ok(data: T) -> Self {
        ApiResponse { status: StatusCode::OK, data, message: Cow::Borrowed(DEFAULT_SUCCESS_MESSAGE) }
    }

    /// 201 Created, for a POST that created a resource.
    pub fn created(data: T) -> Self {
        ApiResponse { status: StatusCode::CREATED, ..Self::ok(data) }
    }

    pub fn with_message(self, message: impl Into<Cow<'static, str>>) -> Self {
        ApiResponse { message: message.into(), ..self }
    }
}

#[derive(Serialize)]
struct SuccessEnvelope<'a, T> {
    success: bool,
    data: &'a T,
    message: &'a str,
}

impl<T: Serialize> IntoResponse for ApiResponse<T> {
    fn into_response(self) -> Response {
        let body = SuccessEnvelope { success: true, data: &self.data, message: &self.message };
        match serde_json::to_vec(&body) {
            Ok(bytes) => (self.status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
            Err(err) => {
                ApiError::internal(anyhow::Error::new(err).context("cannot serialize a response")).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn render(err: ApiError) -> (StatusCode, Value) {
        let response = err.into_response();
        let status = response.status();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn every_variant_gets_the_documented_status_and_code() {
        let cases = [
            (ApiError::unauthorized("invalid_token", "bad"), 401, "UNAUTHORIZED"),
            (ApiError::forbidden("no"), 403, "FORBIDDEN"),
            (ApiError::not_found("model"), 404, "NOT_FOUND"),
            (ApiError::invalid_field("email", "invalid_format", "bad email"), 422, "VALIDATION_ERROR"),
            (ApiError::RateLimited { message: "slow down".into(), retry_after_secs: Some(3) }, 429, "RATE_LIMITED"),
            (ApiError::internal(anyhow::anyhow!("disk on fire")), 500, "INTERNAL_ERROR"),
        ];
        for (err, status, code) in cases {
            let (got_status, body) = render(err).await;
            assert_eq!(got_status.as_u16(), status);
            assert_eq!(body["success"], false);
            assert_eq!(body["error"]["code"], code);
            assert!(body["error"]["details"].is_object());
        }
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let (_, body) = render(ApiError::internal(anyhow::anyhow!("password=hunter2 at 10.0.0.1"))).await;
        assert_eq!(
            body,
            json!({"success": false, "error": {"code": "INTERNAL_ERROR", "message": INTERNAL_MESSAGE, "details": {}}})
        );
    }

    #[tokio::test]
    async fn validation_details_name_the_field() {
        let (_, body) = render(ApiError::invalid_field("email", "taken", "this e-mail is already registered")).await;
        assert_eq!(
            body,
            json!({"success": false, "error": {
                "code": "VALIDATION_ERROR",
                "message": "this e-mail is already registered",
                "details": {"field": "email", "reason": "taken"}
            }})
        );
    }

    #[tokio::test]
    async fn unauthorized_and_rate_limited_set_their_headers() {
        let response = ApiError::unauthorized("missing_token", "no token").into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
        let response = ApiError::RateLimited { message: "later".into(), retry_after_secs: Some(7) }.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }

    #[tokio::test]
    async fn success_envelope() {
        let response = ApiResponse::created(json!({"id": 1})).with_message("created").into_response();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, json!({"success": true, "data": {"id": 1}, "message": "created"}));
    }

    #[test]
    fn store_errors_map_to_codes() {
        assert_eq!(ApiError::from(StoreError::NotFound("x".into())).code(), ErrorCode::NotFound);
        assert_eq!(ApiError::from(StoreError::Conflict("x".into())).code(), ErrorCode::ValidationError);
        assert_eq!(ApiError::from(StoreError::Crypto("x".into())).code(), ErrorCode::InternalError);
    }
}
