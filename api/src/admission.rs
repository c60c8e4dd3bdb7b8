//! Admission: at most `http.max_concurrent_requests` requests are worked on at once; the rest wait their turn in
//! arrival order, holding nothing but their socket.
//!
//! Why: when thousands of requests arrive at once (10,000 clients opening question streams in the same second),
//! letting all of them run shares the CPU among all of them, so every one finishes late, and the time limits of
//! the calls they make (a Redis command, a store connection) run out while their tasks merely wait for a turn on a
//! core. With a bound, the admitted requests finish at full speed, in order, and the limits measure the services
//! again. A permit covers a request up to its response head: an SSE stream that goes on for minutes does not hold
//! one. Liveness, readiness and metrics are never queued, so a busy node is not taken for a dead one.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use querygpt_common::telemetry as names;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

/// Paths (below `/api/v1`) that bypass the queue: probes and scrapes must answer while the node is busy.
const UNQUEUED: [&str; 3] = ["/api/v1/health", "/api/v1/health/ready", "/api/v1/metrics"];

/// The permits of one API node; `None` when `http.max_concurrent_requests` is 0 (no bound).
#[derive(Clone)]
pub(crate) struct Admission(Option<Arc<Semaphore>>);

impl Admission {
    pub(crate) fn new(max_concurrent_requests: usize) -> Self {
        Admission((max_concurrent_requests > 0).then(|| Arc::new(Semaphore::new(max_concurrent_requests))))
    }
}

/// Waits for a permit (first come, first served: tokio's semaphore is fair), then handles the request.
pub(crate) async fn admit(State(admission): State<Admission>, request: Request, next: Next) -> Response {
    let Some(permits) = admission.0.filter(|_| !UNQUEUED.contains(&request.uri().path())) else {
        return next.run(request).await;
    };
    let waiting = Instant::now();
    // The semaphore is never closed.
    let _permit = permits.acquire_owned().await.expect("admission semaphore open");
    metrics::histogram!(names::POOL_WAIT, "pool" => "requests").record(waiting.elapsed().as_secs_f64());
    next.run(request).await
}
