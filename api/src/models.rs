//! `/models`: the LLM endpoints a user can ask with. The API key is stored encrypted and never appears in a
//! response. `POST /models/{id}/test` is a real round trip to the provider, made by a worker: this node never
//! calls an LLM.

use axum::extract::State;
use querygpt_common::Provider;
use querygpt_common::config::SecretString;
use querygpt_common::messages::{ModelTestReport, ProviderFailure, WorkerOutcome, WorkerTask};
use querygpt_store::{Model, NewModel};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResponse};
use crate::extract::{PathId, ValidJson};
use crate::openapi::{CommonErrors, Envelope};
use crate::{validate, workers};

const MAX_NAME_CHARS: usize = 200;
const MAX_MODEL_ID_CHARS: usize = 200;
const MAX_URL_CHARS: usize = 2048;
const MAX_API_KEY_CHARS: usize = 4096;

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(update, delete)).routes(routes!(test))
}

#[derive(Deserialize, ToSchema)]
struct CreateModel {
    name: String,
    /// `openai` (any OpenAI-compatible endpoint) or `anthropic`.
    provider: String,
    /// The provider's model name, e.g. `gpt-4o`.
    model_id: String,
    /// Default: the provider's public endpoint. OpenAI-compatible URLs include `/v1`.
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    is_default: Option<bool>,
    /// The model's context window in tokens (e.g. 8192 for a small local model): prompts are kept within it, and a
    /// question that cannot fit is refused as such. Default: unknown.
    #[serde(default)]
    context_window: Option<u64>,
}

/// A partial update: an omitted field keeps its value; `null` (or `""`) clears `base_url` and `api_key`.
#[derive(Deserialize, ToSchema)]
struct UpdateModel {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    model_id: Option<String>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    base_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    api_key: Option<Option<String>>,
    /// `true` makes this the default model. A default stops being one only when another model becomes the default.
    #[serde(default)]
    is_default: Option<bool>,
    /// `null` makes it unknown again.
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<u64>)]
    context_window: Option<Option<u64>>,
}

/// A model as listed; deliberately without `api_key`.
#[derive(Serialize, ToSchema)]
struct ModelItem {
    id: Uuid,
    name: String,
    #[schema(value_type = String, example = "openai")]
    provider: Provider,
    model_id: String,
    /// `null` when the provider's default is used.
    base_url: Option<String>,
    /// Whether a key is stored (the key itself is never returned).
    has_api_key: bool,
    is_default: bool,
    /// Tokens, when given.
    context_window: Option<u32>,
    /// The result of the last `POST /models/{id}/test`; `null` until the model is tested (or after it was edited).
    is_available: Option<bool>,
}

impl From<Model> for ModelItem {
    fn from(model: Model) -> Self {
        ModelItem {
            id: model.id,
            name: model.name,
            provider: model.provider,
            model_id: model.model_id,
            base_url: model.base_url,
            has_api_key: model.api_key.is_some(),
            is_default: model.is_default,
            context_window: model.context_window,
            is_available: model.is_available,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct ModelList {
    models: Vec<ModelItem>,
}

/// The outcome of a model test. The request succeeds whenever the test ran; `available` says how it went.
#[derive(Serialize, ToSchema)]
struct ModelTest {
    available: bool,
    /// Time of the round trip to the provider.
    latency_ms: u64,
    /// The model's reply (cut short).
    reply: Option<String>,
    /// Why the provider could not be used: `kind` is unauthorized, model_not_found, rate_limited, timeout,
    /// unreachable, blocked, provider_error or invalid_reply; `status` the provider's HTTP status.
    #[schema(value_type = Option<Object>)]
    error: Option<ProviderFailure>,
}

impl From<ModelTestReport> for ModelTest {
    fn from(report: ModelTestReport) -> Self {
        ModelTest { available: report.ok, latency_ms: report.latency_ms, reply: report.reply, error: report.error }
    }
}

/// The user's models, oldest first.
#[utoipa::path(get, path = "/models", tag = "models", security(("bearer" = [])),
    responses((status = 200, body = Envelope<ModelList>), CommonErrors))]
async fn list(State(state): State<Arc<AppState>>, auth: AuthUser) -> Result<ApiResponse<ModelList>, ApiError> {
    let models = state.store.list_models(auth.user_id).await?;
    Ok(ApiResponse::ok(ModelList { models: models.into_iter().map(ModelItem::from).collect() }))
}

/// Adds a model. The first one, or one with `is_default`, becomes the default.
#[utoipa::path(post, path = "/models", tag = "models", security(("bearer" = [])), request_body = CreateModel,
    responses((status = 201, body = Envelope<ModelItem>), CommonErrors))]
async fn create(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    ValidJson(request): ValidJson<CreateModel>,
) -> Result<ApiResponse<ModelItem>, ApiError> {
    let new = NewModel {
        name: validate::required_text("name", &request.name, MAX_NAME_CHARS)?,
        provider: provider(&request.provider)?,
        model_id: validate::required_text("model_id", &request.model_id, MAX_MODEL_ID_CHARS)?,
        base_url: base_url(request.base_url.as_deref())?,
        api_key: api_key(request.api_key.as_deref())?,
        is_default: request.is_default.unwrap_or(false),
        context_window: request.context_window.map(context_window).transpose()?,
    };
    check_destination(&state, &new).await?;
    let model = state.store.create_model(auth.user_id, new).await?;
    Ok(ApiResponse::created(ModelItem::from(model)))
}

/// Changes a model (partial update). Editing the provider, model, URL or key makes `is_available` unknown again.
#[utoipa::path(put, path = "/models/{id}", tag = "models", security(("bearer" = [])), request_body = UpdateModel,
    params(("id" = Uuid, Path, description = "The model's id")),
    responses((status = 200, body = Envelope<ModelItem>), CommonErrors))]
async fn update(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    PathId(id): PathId,
    ValidJson(request): ValidJson<UpdateModel>,
) -> Result<ApiResponse<ModelItem>, ApiError> {
    let current = state.store.model(auth.user_id, id).await?.ok_or_else(|| ApiError::not_found("model"))?;
    if request.is_default == Some(false) && current.is_default {
        return Err(ApiError::invalid_field(
            "is_default",
            "default_required",
            "this is the default model: make another model the default instead",
        ));
    }
    let new = NewModel {
        name: match request.name {
            Some(name) => validate::required_text("name", &name, MAX_NAME_CHARS)?,
            None => current.name,
        },
        provider: request.provider.as_deref().map(provider).transpose()?.unwrap_or(current.provider),
        model_id: match request.model_id {
            Some(model_id) => validate::required_text("model_id", &model_id, MAX_MODEL_ID_CHARS)?,
            None => current.model_id,
        },
        base_url: match request.base_url {
            Some(url) => base_url(url.as_deref())?,
            None => current.base_url,
        },
        api_key: match request.api_key {
            Some(key) => api_key(key.as_deref())?,
            None => current.api_key,
        },
        is_default: request.is_default == Some(true),
        context_window: match request.context_window {
            Some(window) => window.map(context_window).transpose()?,
            None => current.context_window,
        },
    };
    check_destination(&state, &new).await?;
    let model = state.store.update_model(auth.user_id, id, new).await?;
    Ok(ApiResponse::ok(ModelItem::from(model)).with_message("模型已更新"))
}

/// Deletes a model. Conversations keep the model's name; if it was the default, the newest remaining model
/// becomes the default.
#[utoipa::path(delete, path = "/models/{id}", tag = "models", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The model's id")),
    responses((status = 200, body = Envelope<crate::Deleted>), CommonErrors))]
async fn delete(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    PathId(id): PathId,
) -> Result<ApiResponse<crate::Deleted>, ApiError> {
    state.store.delete_model(auth.user_id, id).await?;
    Ok(crate::Deleted::reply(id, "模型已删除"))
}

/// Asks a worker to send the model one short request, and records whether it answered (`is_available`).
#[utoipa::path(post, path = "/models/{id}/test", tag = "models", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The model's id")),
    responses((status = 200, body = Envelope<ModelTest>), CommonErrors))]
async fn test(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    PathId(id): PathId,
) -> Result<ApiResponse<ModelTest>, ApiError> {
    // Not found here rather than from the worker: no bus round trip for an id that is not the user's.
    state.store.model(auth.user_id, id).await?.ok_or_else(|| ApiError::not_found("model"))?;
    let report = match workers::ask(&state, auth.user_id, WorkerTask::TestModel { model_id: id }).await? {
        WorkerOutcome::ModelTested(report) => report,
        other => return Err(workers::unexpected(&other)),
    };
    state.store.set_model_available(auth.user_id, id, report.ok).await?;
    let message = if report.ok { "模型可用" } else { "模型不可用" };
    Ok(ApiResponse::ok(ModelTest::from(report)).with_message(message))
}

fn provider(value: &str) -> Result<Provider, ApiError> {
    validate::required_text("provider", value, MAX_NAME_CHARS)?
        .parse()
        .map_err(|message: String| ApiError::invalid_field("provider", "unsupported", message))
}

/// An absolute `http(s)` URL with a host, stored without a trailing slash so that paths can be appended. Blank is
/// none: the worker then uses the provider's default.
fn base_url(value: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(value) = validate::optional_text("base_url", value, MAX_URL_CHARS)? else {
        return Ok(None);
    };
    let invalid =
        || ApiError::invalid_field("base_url", "invalid_format", "`base_url` must be an http:// or https:// URL");
    let url = url::Url::parse(&value).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid());
    }
    Ok(Some(value.trim_end_matches('/').to_owned()))
}

/// Keys are opaque: only blank means "none" (local servers such as Ollama need no key).
fn api_key(value: Option<&str>) -> Result<Option<SecretString>, ApiError> {
    Ok(validate::optional_text("api_key", value, MAX_API_KEY_CHARS)?.map(SecretString::new))
}

/// Smallest and largest context window accepted, in tokens: below the minimum no prompt fits.
const CONTEXT_WINDOW: std::ops::RangeInclusive<u64> = 1024..=10_000_000;

fn context_window(tokens: u64) -> Result<u32, ApiError> {
    if !CONTEXT_WINDOW.contains(&tokens) {
        let (min, max) = (CONTEXT_WINDOW.start(), CONTEXT_WINDOW.end());
        return Err(ApiError::invalid_field(
            "context_window",
            "out_of_range",
            format!("`context_window` must be {min} to {max} tokens"),
        ));
    }
    Ok(u32::try_from(tokens).expect("the range fits in u32"))
}

/// The SSRF guard: a `base_url` may not point at a blocked address.
async fn check_destination(state: &AppState, model: &NewModel) -> Result<(), ApiError> {
    if let Some(url) = model.base_url.as_deref().and_then(|u| url::Url::parse(u).ok())
        && let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default())
    {
        validate::allowed_destination(&state.settings.network, "base_url", host, port).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(base_url(Some("http://127.0.0.1:11434/v1/")).unwrap().unwrap(), "http://127.0.0.1:11434/v1");
        assert_eq!(base_url(Some("https://api.anthropic.com")).unwrap().unwrap(), "https://api.anthropic.com");
        assert_eq!(base_url(Some("  ")).unwrap(), None);
        for bad in ["ftp://x.org", "localhost:8000", "not a url", "file:///etc/passwd", "http://"] {
            assert!(base_url(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn providers() {
        assert_eq!(provider("OpenAI").unwrap(), Provider::Openai);
        assert_eq!(provider("anthropic").unwrap(), Provider::Anthropic);
        assert!(provider("gemini").is_err());
        assert!(provider(" ").is_err());
    }
}
