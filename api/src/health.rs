//! `GET /health`: liveness, in the Text2SQL document's shape (`{"status": "ok"}`, no envelope, no auth).

use axum::Router;
use axum::routing::get;
use axum::{Json, response::IntoResponse};
use serde_json::json;
use std::sync::Arc;

use crate::AppState;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/health", get(health))
}

/// Answers as long as the process serves requests; it touches neither the store nor the bus, so a slow
/// dependency cannot make a load balancer drop a node that is otherwise fine.
async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}
