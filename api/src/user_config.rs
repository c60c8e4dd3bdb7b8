//! `GET/PUT /config`: a user's settings. The chat uses them when a request leaves them out: `language`, the default
//! model and connection, and `context_rounds`.

use axum::extract::State;
use querygpt_common::{Language, Theme, ViewMode};
use querygpt_store::{DefaultChoice, StoreError, UserSettings};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResponse};
use crate::extract::ValidJson;
use crate::openapi::{CommonErrors, Envelope};
use crate::validate;

/// Largest `context_rounds`: each round adds a question and its SQL to every prompt.
pub(crate) const MAX_CONTEXT_ROUNDS: u32 = 20;

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(show, update))
}

/// A user's effective settings: what they set, the service's defaults for the rest.
#[derive(Serialize, ToSchema)]
pub(crate) struct ConfigView {
    /// `zh` or `en`: progress messages, explanations and default prompts.
    #[schema(value_type = String, example = "zh")]
    language: Language,
    /// `light`, `dark` or `system`.
    #[schema(value_type = String, example = "light")]
    theme: Theme,
    /// The model a question uses when it names none (`null`: no model yet).
    default_model_id: Option<Uuid>,
    /// The connection a question uses when it names none.
    default_connection_id: Option<Uuid>,
    /// `user` or `developer` (adds tokens, attempts and time per stage).
    #[schema(value_type = String, example = "user")]
    view_mode: ViewMode,
    /// Earlier question/SQL pairs of a conversation given to the model, 0-20.
    context_rounds: u32,
}

/// A partial update: omitted fields keep their value; `null` resets `language`, `theme`, `view_mode` and
/// `context_rounds` to the service default. The default model and connection must be the user's own.
#[derive(Deserialize, ToSchema)]
struct UpdateConfig {
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    language: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    theme: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    view_mode: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<i64>)]
    context_rounds: Option<Option<i64>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<Uuid>)]
    default_model_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<Uuid>)]
    default_connection_id: Option<Option<String>>,
}

/// The user's settings.
#[utoipa::path(get, path = "/config", tag = "config", security(("bearer" = [])),
    responses((status = 200, body = Envelope<ConfigView>), CommonErrors))]
async fn show(State(state): State<Arc<AppState>>, auth: AuthUser) -> Result<ApiResponse<ConfigView>, ApiError> {
    let settings = state.store.user_settings(auth.user_id).await?;
    Ok(ApiResponse::ok(view(&state, auth.user_id, &settings).await?))
}

/// Changes the user's settings; every field is checked before anything is stored.
#[utoipa::path(put, path = "/config", tag = "config", security(("bearer" = [])), request_body = UpdateConfig,
    responses((status = 200, body = Envelope<ConfigView>), CommonErrors))]
async fn update(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    ValidJson(request): ValidJson<UpdateConfig>,
) -> Result<ApiResponse<ConfigView>, ApiError> {
    let mut settings = state.store.user_settings(auth.user_id).await?;
    if let Some(language) = request.language {
        settings.language = language.as_deref().map(|v| choice("language", v)).transpose()?;
    }
    if let Some(theme) = request.theme {
        settings.theme = theme.as_deref().map(|v| choice("theme", v)).transpose()?;
    }
    if let Some(view_mode) = request.view_mode {
        settings.view_mode = view_mode.as_deref().map(|v| choice("view_mode", v)).transpose()?;
    }
    if let Some(rounds) = request.context_rounds {
        settings.context_rounds = rounds.map(context_rounds).transpose()?;
    }
    let defaults = DefaultChoice {
        model_id: request.default_model_id.map(|id| own_id("default_model_id", id)).transpose()?,
        connection_id: request.default_connection_id.map(|id| own_id("default_connection_id", id)).transpose()?,
    };
    match state.store.save_user_settings(auth.user_id, &settings, defaults).await {
        Ok(()) => {}
        Err(StoreError::NotFound(what)) => {
            let field = if what.contains("connection") { "default_connection_id" } else { "default_model_id" };
            return Err(ApiError::invalid_field(field, "not_found", format!("`{field}` is not one of your {what}s")));
        }
        Err(other) => return Err(other.into()),
    }
    Ok(ApiResponse::ok(view(&state, auth.user_id, &settings).await?).with_message("配置已更新"))
}

pub(crate) async fn view(state: &AppState, user_id: Uuid, settings: &UserSettings) -> Result<ConfigView, ApiError> {
    let model = state.store.default_model(user_id).await?;
    let connection = state.store.default_connection(user_id).await?;
    Ok(ConfigView {
        language: settings.language.unwrap_or_default(),
        theme: settings.theme.unwrap_or_default(),
        default_model_id: model.map(|m| m.id),
        default_connection_id: connection.map(|c| c.id),
        view_mode: settings.view_mode.unwrap_or_default(),
        context_rounds: effective_context_rounds(state, settings),
    })
}

/// The user's `context_rounds`, else the service's `worker.context_rounds`.
pub(crate) fn effective_context_rounds(state: &AppState, settings: &UserSettings) -> u32 {
    settings.context_rounds.unwrap_or_else(|| {
        u32::try_from(state.settings.worker.context_rounds).unwrap_or(MAX_CONTEXT_ROUNDS).min(MAX_CONTEXT_ROUNDS)
    })
}

fn choice<T: FromStr<Err = String>>(field: &str, value: &str) -> Result<T, ApiError> {
    value.parse().map_err(|message: String| ApiError::invalid_field(field, "unsupported", message))
}

fn context_rounds(value: i64) -> Result<u32, ApiError> {
    u32::try_from(value).ok().filter(|rounds| *rounds <= MAX_CONTEXT_ROUNDS).ok_or_else(|| {
        ApiError::invalid_field(
            "context_rounds",
            "out_of_range",
            format!("`context_rounds` must be 0 to {MAX_CONTEXT_ROUNDS}"),
        )
    })
}

/// A default id: required (there is always a default once the user has a model or connection) and a UUID.
fn own_id(field: &str, value: Option<String>) -> Result<Uuid, ApiError> {
    let value = value.ok_or_else(|| {
        ApiError::invalid_field(field, "required", format!("`{field}` cannot be cleared: choose another one"))
    })?;
    value.trim().parse().map_err(|_| ApiError::invalid_field(field, "invalid", format!("`{field}` is not a valid id")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_rounds_are_bounded() {
        assert_eq!(context_rounds(0).unwrap(), 0);
        assert_eq!(context_rounds(20).unwrap(), 20);
        for bad in [-1, 21, i64::MAX] {
            let err = context_rounds(bad).unwrap_err();
            assert!(matches!(err, ApiError::Validation { ref details, .. } if details["field"] == "context_rounds"));
        }
    }

    #[test]
    fn choices_name_their_field() {
        assert_eq!(choice::<Theme>("theme", "DARK").unwrap(), Theme::Dark);
        let err = choice::<Language>("language", "fr").unwrap_err();
        assert!(matches!(err, ApiError::Validation { ref details, .. } if details["field"] == "language"));
        assert!(own_id("default_model_id", None).is_err());
        assert!(own_id("default_model_id", Some("x".into())).is_err());
    }
}
