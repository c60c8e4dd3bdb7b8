//! The OpenAPI 3.1 document of every endpoint, served at `GET /api/v1/openapi.json`.
//!
//! Paths come from the handlers' `#[utoipa::path]` attributes, collected by the same `utoipa_axum` router that
//! serves them ([`crate::router`]), so a route cannot exist without its description. What is declared here is what
//! the handlers share: the envelopes, the error responses and the bearer scheme.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use querygpt_common::ErrorCode;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Response as OpenApiResponse, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

/// Name of the JWT bearer scheme in the document.
pub(crate) const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "QueryGPT-rs",
        description = "The QueryGPT v2 API (JWT, SSE chat, conversations, models, connections, config, prompts) and \
                       the Text2SQL API, under /api/v1. v2 endpoints answer in the envelope \
                       `{success, data, message}` or `{success: false, error: {code, message, details}}`.",
        license(name = "MIT")
    ),
    modifiers(&Security),
    components(schemas(ErrorEnvelope, ErrorDetail)),
    tags(
        (name = "auth", description = "Registration, login and tokens"),
        (name = "chat", description = "Questions answered over Server-Sent Events"),
        (name = "conversations", description = "Conversation history"),
        (name = "models", description = "The LLMs a user asks with"),
        (name = "connections", description = "The databases a user queries"),
        (name = "config", description = "Per-user settings"),
        (name = "prompts", description = "Per-user prompt templates"),
        (name = "text2sql", description = "The Text2SQL API"),
        (name = "health", description = "Liveness and readiness, for load balancers")
    )
)]
pub(crate) struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        // Declared for the Text2SQL endpoints that accept API keys.
        components
            .add_security_scheme("api_key", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))));
    }
}

/// The success envelope, as documented; the handlers write it through [`crate::ApiResponse`].
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct Envelope<T> {
    /// Always `true`.
    success: bool,
    data: T,
    message: String,
}

/// The error envelope.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorEnvelope {
    /// Always `false`.
    success: bool,
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorDetail {
    #[schema(value_type = String, example = "VALIDATION_ERROR")]
    code: ErrorCode,
    message: String,
    /// `field` and `reason` for validation errors, `reason` for 401s, ...; an empty object otherwise.
    #[schema(value_type = Object)]
    details: Value,
}

/// The error responses every authenticated endpoint may give: 401, 404 (also for another user's id), 422 and 500.
pub(crate) struct CommonErrors;

impl IntoResponses for CommonErrors {
    fn responses() -> BTreeMap<String, RefOr<OpenApiResponse>> {
        [
            ("401", "Missing, invalid or expired token (`UNAUTHORIZED`)"),
            ("404", "No such resource, or another user's (`NOT_FOUND`)"),
            ("422", "Invalid request; `details.field` names the field (`VALIDATION_ERROR`)"),
            ("500", "Internal error, or no worker available (`INTERNAL_ERROR`)"),
        ]
        .into_iter()
        .map(|(status, description)| (status.to_owned(), error_response(description)))
        .collect()
    }
}

/// The error responses of an endpoint without authentication: 404, 422, 500 (and 401 for a failed login).
pub(crate) struct PublicErrors;

impl IntoResponses for PublicErrors {
    fn responses() -> BTreeMap<String, RefOr<OpenApiResponse>> {
        let mut responses = CommonErrors::responses();
        responses.insert("401".into(), error_response("Wrong credentials or token (`UNAUTHORIZED`)"));
        responses
    }
}

/// The 429 of a rate-limited endpoint.
pub(crate) struct RateLimitedError;

impl IntoResponses for RateLimitedError {
    fn responses() -> BTreeMap<String, RefOr<OpenApiResponse>> {
        let description = "Too many requests (`RATE_LIMITED`); `Retry-After` and `details.retry_after` say when to \
                           try again";
        BTreeMap::from([("429".to_owned(), error_response(description))])
    }
}

fn error_response(description: &str) -> RefOr<OpenApiResponse> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            utoipa::openapi::content::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .into()
}

/// The document as JSON, rendered once.
#[derive(Clone)]
pub(crate) struct Document(Arc<String>);

impl Document {
    pub(crate) fn new(openapi: &utoipa::openapi::OpenApi) -> Self {
        Document(Arc::new(openapi.to_pretty_json().expect("the OpenAPI document serializes")))
    }
}

impl IntoResponse for Document {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0.as_str().to_owned()).into_response()
    }
}
