//! `GET /models`, `POST /models`: the LLM endpoints a user can ask with. The API key is stored encrypted and never
//! appears in a response.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use querygpt_common::Provider;
use querygpt_common::config::SecretString;
use querygpt_store::{Model, NewModel};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResponse};
use crate::extract::ValidJson;
use crate::validate;

const MAX_NAME_CHARS: usize = 200;
const MAX_MODEL_ID_CHARS: usize = 200;
const MAX_URL_CHARS: usize = 2048;
const MAX_API_KEY_CHARS: usize = 4096;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/models", get(list).post(create))
}

#[derive(Deserialize)]
struct CreateModel {
    name: String,
    provider: String,
    model_id: String,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    is_default: Option<bool>,
}

/// A model as listed; deliberately without `base_url` and `api_key`.
#[derive(Serialize)]
struct ModelItem {
    id: Uuid,
    name: String,
    provider: Provider,
    model_id: String,
    is_default: bool,
    /// Every stored model is offered; reachability is checked by `/models/{id}/test` (a later endpoint).
    is_available: bool,
}

impl From<Model> for ModelItem {
    fn from(model: Model) -> Self {
        ModelItem {
            id: model.id,
            name: model.name,
            provider: model.provider,
            model_id: model.model_id,
            is_default: model.is_default,
            is_available: true,
        }
    }
}

#[derive(Serialize)]
struct ModelList {
    models: Vec<ModelItem>,
}

async fn list(State(state): State<Arc<AppState>>, auth: AuthUser) -> Result<ApiResponse<ModelList>, ApiError> {
    let models = state.store.list_models(auth.user_id).await?;
    Ok(ApiResponse::ok(ModelList { models: models.into_iter().map(ModelItem::from).collect() }))
}

async fn create(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    ValidJson(request): ValidJson<CreateModel>,
) -> Result<ApiResponse<ModelItem>, ApiError> {
    let new = NewModel {
        name: validate::required_text("name", &request.name, MAX_NAME_CHARS)?,
        provider: provider(&request.provider)?,
        model_id: validate::required_text("model_id", &request.model_id, MAX_MODEL_ID_CHARS)?,
        base_url: validate::optional_text("base_url", request.base_url.as_deref(), MAX_URL_CHARS)?
            .map(|url| base_url(&url))
            .transpose()?,
        // Keys are opaque: only blank means "none" (local servers such as Ollama need no key).
        api_key: validate::optional_text("api_key", request.api_key.as_deref(), MAX_API_KEY_CHARS)?
            .map(SecretString::new),
        is_default: request.is_default.unwrap_or(false),
    };
    if let Some(url) = new.base_url.as_deref().and_then(|u| url::Url::parse(u).ok())
        && let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default())
    {
        validate::allowed_destination(&state.settings.network, "base_url", host, port).await?;
    }
    let model = state.store.create_model(auth.user_id, new).await?;
    Ok(ApiResponse::created(ModelItem::from(model)))
}

fn provider(value: &str) -> Result<Provider, ApiError> {
    validate::required_text("provider", value, MAX_NAME_CHARS)?
        .parse()
        .map_err(|message: String| ApiError::invalid_field("provider", "unsupported", message))
}

/// An absolute `http(s)` URL with a host, stored without a trailing slash so that paths can be appended. When it is
/// absent the worker uses the provider's default.
fn base_url(value: &str) -> Result<String, ApiError> {
    let invalid =
        || ApiError::invalid_field("base_url", "invalid_format", "`base_url` must be an http:// or https:// URL");
    let url = url::Url::parse(value).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid());
    }
    Ok(value.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(base_url("http://127.0.0.1:11434/v1/").unwrap(), "http://127.0.0.1:11434/v1");
        assert_eq!(base_url("https://api.anthropic.com").unwrap(), "https://api.anthropic.com");
        for bad in ["ftp://x.org", "localhost:8000", "not a url", "file:///etc/passwd", "http://"] {
            assert!(base_url(bad).is_err(), "{bad}");
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
