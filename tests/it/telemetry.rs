//! Metrics and traces, as an operator sees them: the Prometheus text of `/api/v1/metrics` and of a worker's own
//! listener, and one trace per question across the API node and the worker, exported over OTLP.

use crate::support::{Session, TestApp};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use querygpt_common::config::SecretString;
use querygpt_testkit::Reply;
use reqwest::StatusCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const REGION_TOTALS: &str =
    r#"{"sql": "SELECT region, SUM(amount) AS total FROM sales GROUP BY region", "explanation": "Sales per region"}"#;
/// A client's own trace context (the W3C specification's example ids).
const CLIENT_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const CLIENT_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Adds the test's SQLite sales database as the user's default connection.
async fn add_sales_connection(app: &TestApp, session: &Session) {
    let target = crate::support::databases::sqlite_target(app.data_dir.path()).await;
    let body = serde_json::json!({"name": "sales", "driver": "sqlite", "database": target, "is_default": true});
    let (status, created) = app.post("/connections", &session.access_token, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

/// Asks one question on the default connection and reads it to the end.
async fn ask_one(app: &TestApp, session: &Session, traceparent: Option<&str>) {
    app.llm.set_default(Reply::text(format!("```json\n{REGION_TOTALS}\n```")));
    let url = reqwest::Url::parse_with_params(&format!("{}/chat/stream", app.base), [("query", "sales per region")])
        .expect("url");
    let mut request = app.http.get(url).bearer_auth(&session.access_token);
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let response = request.send().await.expect("chat stream");
    assert_eq!(response.status(), StatusCode::OK);
    let events = crate::support::sse::SseStream::new(response).collect().await;
    assert_eq!(events.last().map(|e| e.event.as_str()), Some("done"), "{events:?}");
}

async fn scrape(app: &TestApp, url: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut request = app.http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape");
    (response.status(), response.text().await.expect("body"))
}

/// The sample lines of `text` whose series starts with `prefix` (name and the first labels).
fn series<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|line| !line.starts_with('#') && line.starts_with(prefix)).collect()
}

fn assert_series(text: &str, prefix: &str) {
    assert!(!series(text, prefix).is_empty(), "no series {prefix} in:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_requests_stages_tokens_pools_and_the_queue() {
    let app = TestApp::embedded().await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    add_sales_connection(&app, &session).await;
    ask_one(&app, &session, None).await;

    let (status, text) = scrape(&app, &format!("{}/metrics", app.base), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_series(&text, r#"querygpt_http_requests_total{method="GET",route="/api/v1/chat/stream",status="200"}"#);
    assert_series(&text, r#"querygpt_http_requests_total{method="POST",route="/api/v1/auth/register",status="201"}"#);
    assert_series(&text, r#"querygpt_http_request_duration_seconds_bucket{method="GET",route="/api/v1/chat/stream""#);
    assert_series(&text, "querygpt_jobs_submitted_total");
    assert_series(&text, r#"querygpt_jobs_settled_total{outcome="acked"}"#);
    for stage in ["llm", "validation", "execution", "store"] {
        assert_series(&text, &format!(r#"querygpt_stage_duration_seconds_count{{stage="{stage}"}}"#));
    }
    assert_series(&text, r#"querygpt_llm_tokens_total{model=""#);
    for pool in ["store", "target", "llm"] {
        assert_series(&text, &format!(r#"querygpt_pool_wait_seconds_count{{pool="{pool}"}}"#));
    }
    // The stream ended and the job was settled: both gauges are back at zero.
    assert!(series(&text, "querygpt_sse_streams_open").iter().any(|line| line.ends_with(" 0")), "{text}");
    assert!(series(&text, "querygpt_jobs_running").iter().any(|line| line.ends_with(" 0")), "{text}");
    assert_series(&text, "querygpt_job_queue_pending 0");
    assert_series(&text, "querygpt_job_queue_unacked");
    // Ids never become labels: the route is the template.
    assert!(!text.contains(&session.user_id), "a user id in the metrics");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_ask_for_a_token_or_be_turned_off() {
    let app = TestApp::embedded_with(|s| s.telemetry.metrics_token = Some(SecretString::new("scrape-me"))).await;
    let url = format!("{}/metrics", app.base);
    for token in [None, Some("wrong")] {
        let (status, body) = scrape(&app, &url, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        let body: serde_json::Value = serde_json::from_str(&body).expect("the v2 envelope");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED", "{body}");
    }
    let (status, text) = scrape(&app, &url, Some("scrape-me")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("# TYPE querygpt_http_requests_total counter"), "{text}");
    app.stop().await;

    let off = TestApp::embedded_with(|s| s.telemetry.metrics = false).await;
    let (status, body) = scrape(&off, &format!("{}/metrics", off.base), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    off.stop().await;
}

/// An OTLP/HTTP collector: keeps every span it is sent.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Collector {
    async fn start() -> Collector {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let kept = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                    let mut kept = kept.lock().unwrap();
                    for resource in request.resource_spans {
                        for scope in resource.scope_spans {
                            kept.extend(scope.spans);
                        }
                    }
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Collector { url, spans }
    }

    /// The spans of trace `trace_id` once one of each of `names` has arrived (each process exports on its own
    /// schedule, so the worker's span can come before the API node's).
    async fn trace_with(&self, trace_id: &str, names: &[&str]) -> Vec<Span> {
        for _ in 0..200 {
            let spans: Vec<Span> =
                self.spans.lock().unwrap().iter().filter(|s| hex(&s.trace_id) == trace_id).cloned().collect();
            if names.iter().all(|name| spans.iter().any(|s| s.name == *name)) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("not all of {names:?} in trace {trace_id}; spans: {:?}", self.spans.lock().unwrap());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The distributed mode: the client's `traceparent` reaches the worker through the job's NATS header, so the API
/// node's request span and the worker's job span are one trace; the worker's own listener serves its metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_questions_trace_crosses_from_the_api_node_to_the_worker() {
    let collector = Collector::start().await;
    let worker_metrics = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let app = TestApp::distributed_with(&[
        ("QUERYGPT_TELEMETRY__OTLP_ENDPOINT", &collector.url),
        ("QUERYGPT_WORKER__METRICS_LISTEN", &worker_metrics.to_string()),
        // Export within half a second rather than the default five.
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ])
    .await;
    let session = app.register().await;
    app.add_openai_model(&session, true).await;
    add_sales_connection(&app, &session).await;
    ask_one(&app, &session, Some(CLIENT_TRACEPARENT)).await;

    let spans = collector.trace_with(CLIENT_TRACE_ID, &["request", "job"]).await;
    let request = spans.iter().find(|s| s.name == "request").expect("the API node's request span in the trace");
    let job = spans.iter().find(|s| s.name == "job").expect("the worker's job span");
    assert_eq!(hex(&request.parent_span_id), "00f067aa0ba902b7", "the request continues the client's span");
    assert_eq!(job.parent_span_id, request.span_id, "the job is a child of the request that asked it");

    let (status, text) = scrape(&app, &format!("http://{worker_metrics}/metrics"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_series(&text, r#"querygpt_stage_duration_seconds_count{stage="llm"} 1"#);
    assert_series(&text, r#"querygpt_jobs_settled_total{outcome="acked"} 1"#);
    let (status, _) = scrape(&app, &format!("http://{worker_metrics}/health"), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, api_text) = scrape(&app, &format!("{}/metrics", app.base), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_series(&api_text, "querygpt_jobs_submitted_total 1");
    assert_series(&api_text, "querygpt_job_queue_pending 0");
    app.stop().await;
}

/// A worker's own listener obeys the same settings as the API node: 404 with metrics off, 401 without the token.
#[tokio::test]
async fn a_workers_metrics_listener_obeys_the_telemetry_settings() {
    use querygpt_common::config::TelemetrySettings;
    async fn listener(settings: TelemetrySettings) -> String {
        let bus = Arc::new(querygpt_bus::InProcessBus::new(querygpt_common::subjects::Subjects::new("qg")));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let serving = querygpt_api::telemetry::serve_worker_metrics(listener, bus, settings, std::future::pending());
        tokio::spawn(serving);
        url
    }
    let http = reqwest::Client::new();
    let get = |url: String, token: Option<&'static str>| {
        let request = http.get(url);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        async move {
            let response = request.send().await.expect("scrape");
            let status = response.status();
            (status, response.json::<serde_json::Value>().await.ok())
        }
    };

    let off = listener(TelemetrySettings { metrics: false, ..TelemetrySettings::default() }).await;
    let (status, body) = get(format!("{off}/metrics"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body.expect("an error envelope")["error"]["code"], "NOT_FOUND");
    assert_eq!(get(format!("{off}/health"), None).await.0, StatusCode::OK, "probes answer with metrics off");

    let token = Some(SecretString::new("scrape-me"));
    let guarded = listener(TelemetrySettings { metrics_token: token, ..TelemetrySettings::default() }).await;
    let (status, body) = get(format!("{guarded}/metrics"), Some("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body.expect("an error envelope")["error"]["code"], "UNAUTHORIZED");
    assert_eq!(get(format!("{guarded}/metrics"), Some("scrape-me")).await.0, StatusCode::OK);
}
