//! Test support: [`FakeLlm`], a real HTTP server on `127.0.0.1` speaking the OpenAI chat-completions and the
//! Anthropic messages protocols (plain JSON and SSE streaming), with scripted replies and recorded requests.
//!
//! ```no_run
//! # async fn demo() {
//! use querygpt_testkit::{FakeLlm, Reply};
//! use std::time::Duration;
//!
//! let llm = FakeLlm::start().await;
//! llm.reply(Reply::rate_limited(Duration::from_millis(10)));        // first request: 429
//! llm.reply(Reply::text("```sql\nSELECT 2\n```"));                   // second request
//! llm.on_prompt_containing("[case-7]", Reply::error(500, "boom"));   // any request mentioning the marker
//! let base = llm.openai_base_url();                                  // http://127.0.0.1:PORT/v1
//! # }
//! ```
//!
//! Dropping the [`FakeLlm`] shuts the server down and releases requests left hanging by [`Reply::Hang`].

mod protocol;
mod reply;

pub use reply::{DEFAULT_REPLY_TEXT, Reply, Stop};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use futures::StreamExt;
use protocol::{Protocol, ReplyContext};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Request bodies up to this size are accepted (schemas of hundreds of tables make large prompts).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A fake LLM provider bound on `127.0.0.1` with an ephemeral port.
pub struct FakeLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

/// A request as the fake server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Every header with a UTF-8 value, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The parsed JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
}

impl RecordedRequest {
    /// A header value by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// Whether the client asked for a streamed reply.
    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(Value::as_bool).unwrap_or(false)
    }

    /// The concatenated prompt text (system prompt and every message), as matched by
    /// [`FakeLlm::on_prompt_containing`].
    pub fn prompt_text(&self) -> String {
        protocol::prompt_text(&self.body)
    }
}

struct Shared {
    script: Mutex<Script>,
    requests: Mutex<Vec<RecordedRequest>>,
    count: AtomicUsize,
    /// Requests whose client went away before the reply was complete.
    abandoned: AtomicUsize,
    recording: AtomicBool,
    shutdown: CancellationToken,
}

struct Script {
    rules: Vec<Rule>,
    queue: VecDeque<Reply>,
    default: Reply,
    api_key: Option<String>,
}

/// Replies for requests whose prompt contains `needle`: used in order, the last one sticks.
struct Rule {
    needle: String,
    replies: VecDeque<Reply>,
}

impl Script {
    fn next_reply(&mut self, prompt: &str) -> Reply {
        if let Some(rule) = self.rules.iter_mut().find(|r| prompt.contains(&r.needle)) {
            let next = if rule.replies.len() > 1 { rule.replies.pop_front() } else { rule.replies.front().cloned() };
            if let Some(reply) = next {
                return reply;
            }
        }
        self.queue.pop_front().unwrap_or_else(|| self.default.clone())
    }
}

/// A poisoned lock only means another test thread panicked; the script itself stays usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeLlm {
    /// Starts a server on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no local port can be bound (a broken test environment); use [`FakeLlm::try_start`] to handle it.
    pub async fn start() -> FakeLlm {
        FakeLlm::try_start().await.expect("bind the fake LLM server on 127.0.0.1")
    }

    /// Starts a server on `127.0.0.1:0`, reporting a bind failure.
    pub async fn try_start() -> std::io::Result<FakeLlm> {
        // A large listen queue: a benchmark's thousands of simultaneous LLM calls must not overflow the fake's
        // queue (the kernel would drop their SYNs and count overflows that are not the service's).
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let listener = socket.listen(4096)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            script: Mutex::new(Script {
                rules: Vec::new(),
                queue: VecDeque::new(),
                default: Reply::default(),
                api_key: None,
            }),
            requests: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            abandoned: AtomicUsize::new(0),
            recording: AtomicBool::new(true),
            shutdown: CancellationToken::new(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/chat/completions", post(openai))
            .route("/v1/messages", post(anthropic))
            .fallback(not_found)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(shared.clone());
        let shutdown = shared.shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            // A serve error only happens when the listener breaks; tests then see connection errors.
            // Streamed chunks are small writes: without TCP_NODELAY each waits for the client's delayed ACK.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        });
        Ok(FakeLlm { addr, shared })
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL in the OpenAI convention (`http://127.0.0.1:PORT/v1`).
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Base URL in the Anthropic convention (`http://127.0.0.1:PORT`, the client appends `/v1/messages`).
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a reply; each request not matched by a rule takes the oldest queued reply.
    pub fn reply(&self, reply: Reply) {
        lock(&self.shared.script).queue.push_back(reply);
    }

    /// The reply used when the queue is empty (initially [`DEFAULT_REPLY_TEXT`]).
    pub fn set_default(&self, reply: Reply) {
        lock(&self.shared.script).default = reply;
    }

    /// Answers requests whose concatenated prompt text contains `needle` with `reply`, before the queue.
    ///
    /// Rules are checked in registration order. Registering the same needle again queues more replies for
    /// it: they are used one per matching request and the last one keeps answering.
    pub fn on_prompt_containing(&self, needle: impl Into<String>, reply: Reply) {
        let needle = needle.into();
        let mut script = lock(&self.shared.script);
        match script.rules.iter_mut().find(|r| r.needle == needle) {
            Some(rule) => rule.replies.push_back(reply),
            None => script.rules.push(Rule { needle, replies: VecDeque::from([reply]) }),
        }
    }

    /// Requires this API key (`Authorization: Bearer` for OpenAI, `x-api-key` for Anthropic); other
    /// requests get a provider-shaped 401. By default any key, or none, is accepted.
    pub fn require_api_key(&self, key: impl Into<String>) {
        lock(&self.shared.script).api_key = Some(key.into());
    }

    /// Turns recording of requests on or off (on by default). Benchmarks turn it off to keep memory flat;
    /// [`FakeLlm::request_count`] keeps counting.
    pub fn set_recording(&self, on: bool) {
        self.shared.recording.store(on, Ordering::Relaxed);
    }

    /// The recorded requests, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests reached the server (recorded or not).
    pub fn request_count(&self) -> usize {
        self.shared.count.load(Ordering::Relaxed)
    }

    /// How many requests the client gave up (closed the connection) before their reply was complete: how a test
    /// sees from the provider's side that a question was really cancelled.
    pub fn abandoned_count(&self) -> usize {
        self.shared.abandoned.load(Ordering::Relaxed)
    }

    /// Forgets the recorded requests and resets the count.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
        self.shared.count.store(0, Ordering::Relaxed);
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}

async fn openai(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    handle(&shared, Protocol::OpenAi, uri, headers, body).await
}

async fn anthropic(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    handle(&shared, Protocol::Anthropic, uri, headers, body).await
}

async fn not_found(uri: Uri) -> Response {
    let body = protocol::error_json(Protocol::OpenAi, 404, &format!("no route for {}", uri.path()));
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

async fn handle(shared: &Shared, protocol: Protocol, uri: Uri, headers: HeaderMap, raw: Bytes) -> Response {
    let n = shared.count.fetch_add(1, Ordering::Relaxed) + 1;
    let parsed = serde_json::from_slice::<Value>(&raw);
    let body = parsed.as_ref().cloned().unwrap_or(Value::Null);
    let prompt = protocol::prompt_text(&body);
    if shared.recording.load(Ordering::Relaxed) {
        let recorded = RecordedRequest {
            path: uri.path().to_owned(),
            headers: headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
            body: body.clone(),
        };
        lock(&shared.requests).push(recorded);
    }

    let reply = {
        let mut script = lock(&shared.script);
        // Rejected requests do not consume a scripted reply.
        if let Err(rejection) = validate(protocol, &headers, parsed.as_ref().ok(), script.api_key.as_deref()) {
            return rejection;
        }
        script.next_reply(&prompt)
    };

    let ctx = ReplyContext {
        protocol,
        id: match protocol {
            Protocol::OpenAi => format!("chatcmpl-fake{n}"),
            Protocol::Anthropic => format!("msg_fake{n}"),
        },
        model: body.get("model").and_then(Value::as_str).unwrap_or("fake-model").to_owned(),
        prompt_tokens: protocol::approx_tokens(&prompt),
        max_tokens: ["max_tokens", "max_completion_tokens"].iter().find_map(|k| body.get(*k).and_then(Value::as_u64)),
        include_usage: body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false),
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    // Dropped unfinished when the client closes the connection while the reply is being made.
    let mut abandoned = Abandoned { count: &shared.abandoned, finished: false };
    let response = serve_reply(reply, &ctx, stream, &shared.shutdown).await;
    abandoned.finished = true;
    response
}

/// Counts a request whose handler was dropped before it finished.
struct Abandoned<'a> {
    count: &'a AtomicUsize,
    finished: bool,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Checks what the real providers check before doing any work.
#[expect(clippy::result_large_err, reason = "the error is the response itself, built once per rejected request")]
fn validate(
    protocol: Protocol,
    headers: &HeaderMap,
    body: Option<&Value>,
    api_key: Option<&str>,
) -> Result<(), Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(expected) = api_key {
        let given = match protocol {
            Protocol::OpenAi => header("authorization").and_then(|v| v.strip_prefix("Bearer ")),
            Protocol::Anthropic => header("x-api-key"),
        };
        if given != Some(expected) {
            let message = match protocol {
                Protocol::OpenAi => "Incorrect API key provided.",
                Protocol::Anthropic => "invalid x-api-key",
            };
            return Err(error_response(protocol, 401, message, None));
        }
    }
    if protocol == Protocol::Anthropic && header("anthropic-version").is_none() {
        return Err(error_response(protocol, 400, "anthropic-version: header is required", None));
    }
    let Some(body) = body else {
        return Err(error_response(protocol, 400, "the request body is not valid JSON", None));
    };
    if !body.get("messages").is_some_and(Value::is_array) {
        return Err(error_response(protocol, 400, "messages: field required", None));
    }
    if protocol == Protocol::Anthropic && !body.get("max_tokens").is_some_and(Value::is_u64) {
        return Err(error_response(protocol, 400, "max_tokens: field required", None));
    }
    Ok(())
}

async fn serve_reply(mut reply: Reply, ctx: &ReplyContext, stream: bool, shutdown: &CancellationToken) -> Response {
    loop {
        match reply {
            Reply::Delayed { delay, reply: inner } => {
                tokio::select! {
                    () = tokio::time::sleep(delay) => reply = *inner,
                    () = shutdown.cancelled() => return shutting_down(ctx.protocol),
                }
            }
            Reply::Hang => {
                shutdown.cancelled().await;
                return shutting_down(ctx.protocol);
            }
            Reply::Error { status, message, retry_after } => {
                return error_response(ctx.protocol, status, &message, retry_after);
            }
            Reply::ContextOverflow { context_window } => {
                let body = protocol::context_overflow_json(ctx, context_window);
                return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
            }
            Reply::Raw { status, content_type, body } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
            }
            Reply::Text { chunks, chunk_delay, stop } => {
                if !stream {
                    return axum::Json(protocol::completion_json(ctx, &chunks.concat(), stop)).into_response();
                }
                return sse_response(protocol::stream_events(ctx, &chunks, stop), chunk_delay, shutdown.clone());
            }
        }
    }
}

fn sse_response(events: Vec<String>, delay: Duration, shutdown: CancellationToken) -> Response {
    let body = if delay.is_zero() {
        // One write: the cheapest form for benchmarks; clients still parse event by event.
        Body::from(events.concat())
    } else {
        let paced = futures::stream::iter(events.into_iter().enumerate())
            .then(move |(i, event)| {
                let shutdown = shutdown.clone();
                async move {
                    if i > 0 {
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {}
                            () = shutdown.cancelled() => return None,
                        }
                    }
                    Some(Ok::<_, Infallible>(Bytes::from(event)))
                }
            })
            .take_while(|event| futures::future::ready(event.is_some()))
            .filter_map(futures::future::ready);
        Body::from_stream(paced)
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

fn error_response(protocol: Protocol, status: u16, message: &str, retry_after: Option<Duration>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (code, axum::Json(protocol::error_json(protocol, status, message))).into_response();
    if let Some(wait) = retry_after {
        let headers = response.headers_mut();
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        if protocol == Protocol::OpenAi {
            headers.insert("retry-after-ms", HeaderValue::from(wait.as_millis() as u64));
        }
    }
    response
}

fn shutting_down(protocol: Protocol) -> Response {
    error_response(protocol, 503, "the fake LLM server is shutting down", None)
}
