//! The Text2SQL document's error shape: a flat `{"code": "...", "message": "..."}` with the document's codes and
//! statuses (`ErrorCode::http_status`), never the v2 envelope. Messages are Chinese, as in the document, or
//! English for a client whose `Accept-Language` prefers it.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use querygpt_common::ErrorCode;
use serde::Serialize;
use std::borrow::Cow;
use utoipa::ToSchema;

use crate::error::ApiError;

/// The language of the messages of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Zh,
    En,
}

impl Lang {
    /// English when the first language of `Accept-Language` is English; Chinese otherwise (the document's).
    pub(crate) fn of(headers: &HeaderMap) -> Lang {
        let first = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|tag| tag.trim().to_ascii_lowercase());
        match first {
            Some(tag) if tag == "en" || tag.starts_with("en-") => Lang::En,
            _ => Lang::Zh,
        }
    }

    /// `zh` or `en`, whichever this is.
    pub(crate) fn pick<T>(self, zh: T, en: T) -> T {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// A failed Text2SQL request, as the client sees it.
#[derive(Debug)]
pub(crate) struct Text2SqlError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after_secs: Option<u64>,
}

/// The body of every error of the Text2SQL API.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    /// `UNAUTHORIZED`, `INVALID_REQUEST`, `INVALID_SCHEMA`, `INVALID_DATABASE`, `SCHEMA_REQUIRED`,
    /// `DATABASE_REQUIRED`, `SQL_VALIDATION_FAILED`, `CONVERSATION_NOT_FOUND`, `SCHEMA_MISMATCH`,
    /// `DATABASE_MISMATCH`, `LLM_ERROR`, `RATE_LIMITED`, `INTERNAL_ERROR`.
    #[schema(value_type = String, example = "INVALID_REQUEST")]
    code: ErrorCode,
    #[schema(example = "query 不能为空")]
    message: String,
}

impl Text2SqlError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Text2SqlError { code, message: message.into(), retry_after_secs: None }
    }

    pub(crate) fn invalid_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub(crate) fn unauthorized(lang: Lang) -> Self {
        Self::new(
            ErrorCode::Unauthorized,
            lang.pick(
                "API Key 缺失或无效：请在 `Authorization: Bearer <api_key>` 或 `X-API-Key: <api_key>` 头中提供有效的 API Key",
                "missing or invalid API key: send a valid key as `Authorization: Bearer <api_key>` or `X-API-Key: <api_key>`",
            ),
        )
    }

    /// A failure of the service itself; the cause goes to the log only.
    pub(crate) fn internal(lang: Lang, cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error while serving a Text2SQL request");
        Self::new(ErrorCode::InternalError, lang.pick("服务器内部错误，请稍后重试", "internal server error; try again"))
    }

    /// Errors of the parts shared with the v2 API (store, workers, rate limits) in this API's shape.
    pub(crate) fn from_api(error: ApiError, lang: Lang) -> Self {
        match error {
            ApiError::RateLimited { message, retry_after_secs } => {
                Text2SqlError { code: ErrorCode::RateLimited, message, retry_after_secs }
            }
            ApiError::Unauthorized { .. } => Self::unauthorized(lang),
            // "No worker is running", "no worker answered in time", "the shared state is unreachable": an operator's
            // problem, told as it is.
            ApiError::Unavailable { message, .. } => Self::new(ErrorCode::InternalError, message),
            ApiError::Internal(cause) => Self::internal(lang, format!("{cause:#}")),
            other => Self::new(other.code(), other.to_string()),
        }
    }
}

impl IntoResponse for Text2SqlError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody { code: self.code, message: self.message.into_owned() };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.code == ErrorCode::Unauthorized {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
