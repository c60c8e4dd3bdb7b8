//! `GET /health`: liveness, in the Text2SQL document's shape (`{"status": "ok"}`, no envelope, no auth).
//! `GET /health/ready`: readiness for load balancers, which checks what a request needs: the store, the bus and
//! the shared state.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// How long one dependency may take to answer a readiness check before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready))
}

#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// Liveness: answers as long as the process serves requests.
///
/// It touches neither the store nor the bus, so a slow dependency cannot make a load balancer drop a node that is
/// otherwise fine.
#[utoipa::path(get, path = "/health", tag = "health", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The readiness of this node and of each dependency.
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// `ready` when every check passed, else `not_ready`.
    #[schema(example = "ready")]
    status: &'static str,
    /// `store`, `bus` and `shared_state`.
    checks: BTreeMap<&'static str, Check>,
}

/// One dependency's answer.
#[derive(Serialize, ToSchema)]
struct Check {
    /// `ok` or `down`.
    #[schema(example = "ok")]
    status: &'static str,
    /// Which implementation: `sqlite` or `postgres`, `in-process` or `nats`, `in-process` or `redis`.
    #[schema(example = "postgres")]
    backend: &'static str,
    /// How long the round trip took.
    latency_ms: f64,
    /// Why it is down (absent when it is up).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A dependency's name, its backend, and its check.
type Probe<'a> = (&'static str, &'static str, BoxFuture<'a, Result<(), String>>);

/// Whether this node can serve requests: its store, bus and shared state all answer.
///
/// Checks the store (`SELECT 1`), the bus (a round trip to NATS) and the shared state (Redis `PING`), at once and
/// each within 2 s: 200 when all answer, 503 with the failing ones marked `down` otherwise. No auth, no envelope
/// (like `/health`); errors say what failed but carry no addresses or secrets.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Readiness>) {
    let bus_backend = if state.settings.is_embedded() { "in-process" } else { "nats" };
    let checks: [Probe<'_>; 3] = [
        ("store", state.store.backend(), state.store.ping().map(|r| r.map_err(|e| e.to_string())).boxed()),
        ("bus", bus_backend, state.bus.flush().map(|r| r.map_err(|e| e.to_string())).boxed()),
        ("shared_state", state.shared.backend(), state.shared.ping().map(|r| r.map_err(|e| e.to_string())).boxed()),
    ];
    let results = futures::future::join_all(checks.into_iter().map(|(name, backend, check)| async move {
        let started = Instant::now();
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
        };
        let latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        let check = match outcome {
            Ok(()) => Check { status: "ok", backend, latency_ms, error: None },
            Err(error) => {
                tracing::warn!(dependency = name, %error, "readiness check failed");
                Check { status: "down", backend, latency_ms, error: Some(error) }
            }
        };
        (name, check)
    }))
    .await;
    let checks: BTreeMap<_, _> = results.into_iter().collect();
    let ready = checks.values().all(|check| check.error.is_none());
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Readiness { status: if ready { "ready" } else { "not_ready" }, checks }))
}
