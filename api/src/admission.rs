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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::sync::Notify;
    use tower::ServiceExt;

    /// `/api/v1/slow` counts itself in `entered`, then waits until `release` is notified; the health path answers
    /// at once.
    fn app(max: usize, release: Arc<Notify>, entered: Arc<AtomicUsize>) -> Router {
        let slow = move || async move {
            entered.fetch_add(1, Ordering::SeqCst);
            release.notified().await
        };
        Router::new()
            .route("/api/v1/slow", get(slow))
            .route("/api/v1/health", get(|| async {}))
            .layer(axum::middleware::from_fn_with_state(Admission::new(max), admit))
    }

    async fn call(app: &Router, path: &str) -> StatusCode {
        let request = Request::get(path).body(Body::empty()).expect("request");
        app.clone().oneshot(request).await.expect("infallible").status()
    }

    #[tokio::test]
    async fn a_request_beyond_the_bound_waits_for_a_turn_while_probes_pass() {
        let (release, entered) = (Arc::new(Notify::new()), Arc::new(AtomicUsize::new(0)));
        let app = app(1, release.clone(), entered.clone());
        let first = tokio::spawn({
            let app = app.clone();
            async move { call(&app, "/api/v1/slow").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut second = tokio::spawn({
            let app = app.clone();
            async move { call(&app, "/api/v1/slow").await }
        });
        assert_eq!(call(&app, "/api/v1/health").await, StatusCode::OK, "a probe does not queue");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(entered.load(Ordering::SeqCst), 1, "the second request waits outside the handler");
        release.notify_one();
        assert_eq!(first.await.expect("first"), StatusCode::OK);
        assert!(tokio::time::timeout(Duration::from_millis(100), &mut second).await.is_err(), "second ran early");
        assert_eq!(entered.load(Ordering::SeqCst), 2, "the second request has its turn once the first is done");
        release.notify_one();
        assert_eq!(second.await.expect("second"), StatusCode::OK);
    }

    #[tokio::test]
    async fn zero_means_no_bound() {
        let (release, entered) = (Arc::new(Notify::new()), Arc::new(AtomicUsize::new(0)));
        let app = app(0, release.clone(), entered.clone());
        let waiting: Vec<_> = (0..3)
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move { call(&app, "/api/v1/slow").await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(entered.load(Ordering::SeqCst), 3, "all three are inside the handler at once");
        for _ in 0..3 {
            release.notify_one();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for request in waiting {
            assert_eq!(
                tokio::time::timeout(Duration::from_secs(2), request).await.expect("ended").unwrap(),
                StatusCode::OK
            );
        }
    }
}
