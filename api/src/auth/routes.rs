//! `POST /auth/register`, `POST /auth/login`, `POST /auth/refresh`, `POST /auth/logout`, `GET /auth/me`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use querygpt_store::{NewUser, StoreError, User};
use serde::{Deserialize, Serialize};
use serde_json::Map;
use std::sync::Arc;
use uuid::Uuid;

use super::{AuthUser, Sessions, TokenKind, TokenPair};
use crate::AppState;
use crate::error::{ApiError, ApiResponse};
use crate::extract::ValidJson;
use crate::openapi::{CommonErrors, Envelope, PublicErrors, RateLimitedError};
use crate::rate_limit::Limited;
use crate::validate;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const MIN_PASSWORD_CHARS: usize = 8;
/// Bounds the work one request can ask of argon2.
const MAX_PASSWORD_CHARS: usize = 1024;
const MAX_DISPLAY_NAME_CHARS: usize = 100;

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
struct RegisterRequest {
    email: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
struct RefreshRequest {
    refresh_token: String,
}

#[derive(Serialize, ToSchema)]
struct RegisteredUser {
    id: Uuid,
    email: String,
    display_name: String,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
struct Registration {
    user: RegisteredUser,
    #[serde(flatten)]
    tokens: TokenPair,
}

/// The `/auth/me` body.
#[derive(Serialize, ToSchema)]
struct Profile {
    id: Uuid,
    email: String,
    display_name: String,
    avatar_url: Option<String>,
    role: String,
    #[serde(serialize_with = "crate::timestamp::rfc3339")]
    created_at: DateTime<Utc>,
}

impl From<User> for Profile {
    fn from(user: User) -> Self {
        Profile {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            avatar_url: user.avatar_url,
            role: user.role,
            created_at: user.created_at,
        }
    }
}

/// Creates an account and logs it in.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = Envelope<Registration>), PublicErrors))]
async fn register(
    State(state): State<Arc<AppState>>,
    ValidJson(request): ValidJson<RegisterRequest>,
) -> Result<ApiResponse<Registration>, ApiError> {
    let email = validate::email(&request.email)?;
    check_new_password(&request.password)?;
    let display_name =
        validate::optional_text("display_name", request.display_name.as_deref(), MAX_DISPLAY_NAME_CHARS)?
            .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_owned());

    let password_hash = state.passwords.hash(request.password).await?;
    let new_user = NewUser { email, display_name, password_hash, initial_connection: state.demo_connection.clone() };
    let user = state.store.create_user(new_user).await.map_err(|err| match err {
        StoreError::Conflict(_) => {
            ApiError::invalid_field("email", "taken", "this e-mail address is already registered")
        }
        other => other.into(),
    })?;
    tracing::info!(user_id = %user.id, "user registered");

    let tokens = state.tokens.issue(user.id, Sessions::start())?;
    let user =
        RegisteredUser { id: user.id, email: user.email, display_name: user.display_name, created_at: user.created_at };
    Ok(ApiResponse::created(Registration { user, tokens }))
}

fn check_new_password(password: &str) -> Result<(), ApiError> {
    if password.trim().is_empty() {
        return Err(ApiError::invalid_field("password", "required", "`password` must not be empty"));
    }
    let chars = password.chars().count();
    let (reason, limit, message) = if chars < MIN_PASSWORD_CHARS {
        (
            "too_short",
            ("min_length", MIN_PASSWORD_CHARS),
            format!("`password` must be at least {MIN_PASSWORD_CHARS} characters"),
        )
    } else if chars > MAX_PASSWORD_CHARS {
        (
            "too_long",
            ("max_length", MAX_PASSWORD_CHARS),
            format!("`password` must be at most {MAX_PASSWORD_CHARS} characters"),
        )
    } else {
        return Ok(());
    };
    let mut extra = Map::new();
    extra.insert(limit.0.into(), limit.1.into());
    Err(ApiError::invalid_field_with("password", reason, message, extra))
}

fn bad_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "invalid e-mail or password")
}

/// Logs in with e-mail and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = Envelope<TokenPair>), PublicErrors, RateLimitedError))]
async fn login(
    State(state): State<Arc<AppState>>,
    ValidJson(request): ValidJson<LoginRequest>,
) -> Result<ApiResponse<TokenPair>, ApiError> {
    let email = validate::required_text("email", &request.email, validate::MAX_EMAIL_CHARS)?;
    if request.password.is_empty() {
        return Err(ApiError::invalid_field("password", "required", "`password` must not be empty"));
    }
    if request.password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(bad_credentials());
    }
    // Counted per address whether or not it is registered, before any password work.
    state.rate_limit(Limited::Login(&email)).await?;
    let Some(credentials) = state.store.user_by_email(&email).await? else {
        // Same cost as a wrong password: timing does not reveal whether the e-mail is registered.
        state.passwords.waste_verification(request.password).await?;
        return Err(bad_credentials());
    };
    let hash = credentials.password_hash.expose().to_owned();
    if !state.passwords.verify(request.password, hash).await? {
        return Err(bad_credentials());
    }
    Ok(ApiResponse::ok(state.tokens.issue(credentials.user.id, Sessions::start())?))
}

/// A new token pair for a refresh token, which is spent: each refresh token works once. Presenting one again
/// revokes its whole session (`refresh_token_reused`), since it means that someone else holds a copy.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = Envelope<TokenPair>), PublicErrors))]
async fn refresh(
    State(state): State<Arc<AppState>>,
    ValidJson(request): ValidJson<RefreshRequest>,
) -> Result<ApiResponse<TokenPair>, ApiError> {
    let token = validate::required_text("refresh_token", &request.refresh_token, usize::MAX)?;
    let claims = state.tokens.verify(&token, TokenKind::Refresh)?;
    // A refresh token outlives an access token by far: make sure the account still exists before renewing it.
    if state.store.user_by_id(claims.sub).await?.is_none() {
        return Err(ApiError::unauthorized("invalid_token", "the account of this token no longer exists"));
    }
    state.sessions().spend_refresh_token(&claims, jsonwebtoken::get_current_timestamp()).await?;
    Ok(ApiResponse::ok(state.tokens.issue(claims.sub, claims.sid)?))
}

#[derive(Serialize, ToSchema)]
struct LoggedOut {
    logged_out: bool,
}

/// Ends the session of the access token on every API node at once: its access and refresh tokens stop working.
/// Other logins of the same user go on.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Envelope<LoggedOut>), CommonErrors))]
async fn logout(State(state): State<Arc<AppState>>, auth: AuthUser) -> Result<ApiResponse<LoggedOut>, ApiError> {
    state.sessions().revoke(auth.session_id).await?;
    tracing::info!(user_id = %auth.user_id, sid = %auth.session_id, "logged out");
    Ok(ApiResponse::ok(LoggedOut { logged_out: true }).with_message("已退出登录"))
}

/// The logged-in user.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Envelope<Profile>), CommonErrors))]
async fn me(State(state): State<Arc<AppState>>, auth: AuthUser) -> Result<ApiResponse<Profile>, ApiError> {
    let user = state
        .store
        .user_by_id(auth.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "the account of this token no longer exists"))?;
    Ok(ApiResponse::ok(Profile::from(user)))
}
