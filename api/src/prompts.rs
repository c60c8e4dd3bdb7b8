//! `GET/PUT /prompts`, `POST /prompts/reset`: a user's prompt templates. What is stored here is what the worker
//! sends; a template not set is the built-in default in the question's language (see `querygpt_common::prompts`).

use axum::extract::State;
use querygpt_common::Language;
use querygpt_common::prompts::{Placeholder, PromptKind, PromptSet};
use querygpt_store::{DefaultChoice, UserSettings};
use serde::{Deserialize, Serialize};
use serde_json::Map;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResponse};
use crate::extract::{ValidJson, ValidQuery};
use crate::openapi::{CommonErrors, Envelope};
use crate::validate;

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(show, update)).routes(routes!(reset))
}

/// The templates a question of the user uses, and how to write them.
#[derive(Serialize, ToSchema)]
struct PromptsView {
    /// Language of the defaults shown.
    #[schema(value_type = String, example = "zh")]
    language: Language,
    /// The system message: the model's role and rules.
    system_prompt: String,
    /// The message that asks for the SQL of a question.
    sql_generation: String,
    /// The message that sends a failed statement and its error back to the model.
    correction: String,
    /// How the model is asked to explain its SQL (appended to the system message).
    explanation: String,
    /// Templates the user has set; the others are the built-in defaults.
    customized: Vec<String>,
    /// The placeholders each template may use, e.g. `{schema}`; `{{` and `}}` are literal braces.
    #[schema(value_type = Object)]
    placeholders: BTreeMap<&'static str, Vec<Placeholder>>,
    /// Placeholders each template must contain.
    #[schema(value_type = Object)]
    required: BTreeMap<&'static str, &'static [&'static str]>,
}

/// A partial update: a string sets a template, `null` restores its default, an omitted field is unchanged.
#[derive(Deserialize, ToSchema)]
struct UpdatePrompts {
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    system_prompt: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    sql_generation: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    correction: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::nullable")]
    #[schema(value_type = Option<String>)]
    explanation: Option<Option<String>>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ShowParams {
    /// Language of the defaults to show (`zh` or `en`); default: the user's `language`.
    #[serde(default)]
    language: Option<String>,
}

/// The user's templates (defaults where not set).
#[utoipa::path(get, path = "/prompts", tag = "prompts", security(("bearer" = [])), params(ShowParams),
    responses((status = 200, body = Envelope<PromptsView>), CommonErrors))]
async fn show(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    ValidQuery(params): ValidQuery<ShowParams>,
) -> Result<ApiResponse<PromptsView>, ApiError> {
    let settings = state.store.user_settings(auth.user_id).await?;
    let language = match params.language.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        Some(language) => {
            language.parse().map_err(|message: String| ApiError::invalid_field("language", "unsupported", message))?
        }
        None => settings.language.unwrap_or_default(),
    };
    Ok(ApiResponse::ok(view(&settings.prompts, language)))
}

/// Sets or restores templates. Each is checked (known placeholders, required ones present, balanced braces)
/// before anything is stored.
#[utoipa::path(put, path = "/prompts", tag = "prompts", security(("bearer" = [])), request_body = UpdatePrompts,
    responses((status = 200, body = Envelope<PromptsView>), CommonErrors))]
async fn update(
    State(state): State<Arc<AppState>>,
    auth: AuthUser,
    ValidJson(request): ValidJson<UpdatePrompts>,
) -> Result<ApiResponse<PromptsView>, ApiError> {
    let mut settings = state.store.user_settings(auth.user_id).await?;
    let changes = [
        (PromptKind::System, request.system_prompt),
        (PromptKind::SqlGeneration, request.sql_generation),
        (PromptKind::Correction, request.correction),
        (PromptKind::Explanation, request.explanation),
    ];
    for (kind, change) in changes {
        if let Some(template) = change {
            *settings.prompts.slot(kind) = template.map(|t| checked(kind, t)).transpose()?;
        }
    }
    save(&state, auth.user_id, &settings).await?;
    Ok(ApiResponse::ok(view(&settings.prompts, settings.language.unwrap_or_default())).with_message("Prompt 已更新"))
}

/// Restores every template to its default.
#[utoipa::path(post, path = "/prompts/reset", tag = "prompts", security(("bearer" = [])),
    responses((status = 200, body = Envelope<PromptsView>), CommonErrors))]
async fn reset(State(state): State<Arc<AppState>>, auth: AuthUser) -> Result<ApiResponse<PromptsView>, ApiError> {
    let mut settings = state.store.user_settings(auth.user_id).await?;
    settings.prompts = PromptSet::default();
    save(&state, auth.user_id, &settings).await?;
    Ok(ApiResponse::ok(view(&settings.prompts, settings.language.unwrap_or_default()))
        .with_message("已恢复默认 Prompt"))
}

async fn save(state: &AppState, user_id: Uuid, settings: &UserSettings) -> Result<(), ApiError> {
    Ok(state.store.save_user_settings(user_id, settings, DefaultChoice::default()).await?)
}

fn checked(kind: PromptKind, template: String) -> Result<String, ApiError> {
    kind.check(&template).map(|()| template).map_err(|err| {
        let mut extra = Map::new();
        extra.insert("allowed".into(), kind.placeholders().iter().map(|p| format!("{{{}}}", p.name)).collect());
        ApiError::invalid_field_with(kind.as_str(), err.reason(), format!("`{kind}`: {err}"), extra)
    })
}

fn view(prompts: &PromptSet, language: Language) -> PromptsView {
    PromptsView {
        language,
        system_prompt: prompts.effective(PromptKind::System, language).to_owned(),
        sql_generation: prompts.effective(PromptKind::SqlGeneration, language).to_owned(),
        correction: prompts.effective(PromptKind::Correction, language).to_owned(),
        explanation: prompts.effective(PromptKind::Explanation, language).to_owned(),
        customized: PromptKind::ALL
            .iter()
            .filter(|kind| prompts.custom(**kind).is_some())
            .map(|kind| kind.as_str().to_owned())
            .collect(),
        placeholders: PromptKind::ALL.iter().map(|kind| (kind.as_str(), kind.placeholders().to_vec())).collect(),
        required: PromptKind::ALL.iter().map(|kind| (kind.as_str(), kind.required())).collect(),
    }
}
