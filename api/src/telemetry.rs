//! What the API node measures: every HTTP request by route and status, and `GET /api/v1/metrics` (Prometheus)
//! with the job queue's depth read at scrape time. The metric names are listed in `querygpt_common::telemetry`.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use querygpt_common::config::TelemetrySettings;
use querygpt_common::telemetry as names;
use std::sync::Arc;
use std::time::Instant;

/// Counts and times one request. The route label is the matched path template (`/api/v1/models/{id}`), never the
/// raw path, so ids do not multiply the series; unmatched paths share one label.
pub(crate) async fn record_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!(names::HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(names::HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// `GET /api/v1/metrics`: every metric of this process in the Prometheus text format (in `serve`, the worker's
/// too). Off with `telemetry.metrics = false`; behind `Authorization: Bearer <telemetry.metrics_token>` when set.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    scrape(&state.settings.telemetry, &*state.bus, &headers).await
}

/// A scrape as `telemetry` allows it: 404 when metrics are off, 401 without the token when one is set, else
/// [`exposition`]. The API node and a worker's own listener answer alike.
async fn scrape(
    telemetry: &TelemetrySettings,
    bus: &dyn querygpt_bus::Bus,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if !telemetry.metrics {
        return Err(ApiError::NotFound("metrics are turned off (telemetry.metrics)".into()));
    }
    if let Some(token) = &telemetry.metrics_token
        && !bearer_matches(headers, token.expose())
    {
        return Err(ApiError::Unauthorized {
            reason: "invalid_token",
            message: "metrics need the bearer token of telemetry.metrics_token".into(),
        });
    }
    Ok(exposition(bus).await)
}

/// The recorder's text, after reading the queue's depth into its gauges. A queue that cannot be read leaves the
/// gauges at their last value: the scrape still shows everything else.
pub async fn exposition(bus: &dyn querygpt_bus::Bus) -> Response {
    match bus.job_queue().await {
        Ok(depth) => {
            metrics::gauge!(names::JOB_QUEUE_PENDING).set(depth.pending as f64);
            metrics::gauge!(names::JOB_QUEUE_UNACKED).set(depth.unacked as f64);
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the job queue's depth for the metrics"),
    }
    let handle = querygpt_telemetry::prometheus();
    handle.run_upkeep();
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], handle.render()).into_response()
}

/// Whether `headers` carry `Authorization: Bearer <token>`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    sent.len() == token.len()
        && aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), token.as_bytes()).is_ok()
}

/// A worker's own listener (`worker.metrics_listen`): `GET /metrics` as on an API node (same token) and
/// `GET /health` for probes. A worker serves nothing else over HTTP.
pub async fn serve_worker_metrics(
    listener: tokio::net::TcpListener,
    bus: Arc<dyn querygpt_bus::Bus>,
    settings: TelemetrySettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::routing::get;
    let settings = Arc::new(settings);
    let handler = move |headers: HeaderMap| {
        let (bus, settings) = (bus.clone(), settings.clone());
        async move { scrape(&settings, &*bus, &headers).await }
    };
    let app = axum::Router::new()
        .route("/metrics", get(handler))
        .route("/health", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }));
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
