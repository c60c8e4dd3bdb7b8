//! `GET /health`: liveness, in the Text2SQL document's shape (`{"status": "ok"}`, no envelope, no auth).

use axum::Json;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(health))
}

#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// Answers as long as the process serves requests; it touches neither the store nor the bus, so a slow
/// dependency cannot make a load balancer drop a node that is otherwise fine.
#[utoipa::path(get, path = "/health", tag = "text2sql", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}
