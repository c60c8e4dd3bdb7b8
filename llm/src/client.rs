//! The HTTP client: streaming, timeouts and retries.

use crate::sse::SseParser;
use crate::wire::{self, StreamState};
use crate::{Completion, LlmEndpoint, LlmError, LlmSettings, Overflow, Prompt, TimeoutKind};
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use futures::StreamExt;
use querygpt_common::Provider;
use querygpt_common::netguard::{Blocked, NetworkPolicy};
use querygpt_common::telemetry::POOL_WAIT;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The idle timeout is the request timeout, but never more than this.
const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A `Retry-After` longer than this is cut short (the job has its own deadline).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
const DEFAULT_MIN_RETRY_DELAY: Duration = Duration::from_millis(500);
const DEFAULT_MAX_RETRY_DELAY: Duration = Duration::from_secs(8);
/// Error bodies are read up to this size for their message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Plain JSON replies (servers ignoring `stream: true`) are read up to this size.
const MAX_PLAIN_BODY: usize = 16 * 1024 * 1024;
/// After the terminal event, the rest of the body is read for this long so the connection can be reused.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(100);
/// The retry after a length stop asks for at most this many tokens: every current chat model accepts it as
/// `max_tokens` (GPT-3.5/4 Turbo and Claude 3 allow no more), so the larger limit is not itself refused.
const MAX_RAISED_TOKENS: u32 = 4096;

/// A client for OpenAI-compatible and Anthropic endpoints.
///
/// Cheap to clone: every clone shares one connection pool, and calls are plain futures (no thread per call),
/// so thousands can be in flight on a few runtime threads.
#[derive(Debug, Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    settings: LlmSettings,
    idle_timeout: Duration,
    min_retry_delay: Duration,
    max_retry_delay: Duration,
    /// Calls in flight per model, when limited ([`LlmClient::with_max_calls_per_model`]).
    model_slots: Option<Arc<ModelSlots>>,
}

/// A semaphore per model (base URL and model name), shared by the clones of one client.
#[derive(Debug)]
struct ModelSlots {
    per_model: usize,
    semaphores: Mutex<HashMap<(String, String), Arc<Semaphore>>>,
}

impl ModelSlots {
    async fn acquire(&self, endpoint: &LlmEndpoint) -> OwnedSemaphorePermit {
        let semaphore = {
            let mut semaphores = self.semaphores.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (endpoint.base_url.clone(), endpoint.model.clone());
            semaphores.entry(key).or_insert_with(|| Arc::new(Semaphore::new(self.per_model))).clone()
        };
        semaphore.acquire_owned().await.expect("model semaphores are never closed")
    }
}

/// An attempt's failure, with how long the server asked to wait before another
/// ([`LlmError::is_retryable`] tells whether there is one).
#[derive(Debug)]
struct Failure {
    error: LlmError,
    retry_after: Option<Duration>,
}

impl From<LlmError> for Failure {
    fn from(error: LlmError) -> Self {
        Failure { error, retry_after: None }
    }
}

impl LlmClient {
    /// Builds the shared HTTP client. The idle timeout (longest silence while waiting for the answer or between
    /// stream chunks) defaults to the request timeout capped at 60 s.
    pub fn new(settings: LlmSettings) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(30))
            .user_agent(concat!("querygpt-rs/", env!("CARGO_PKG_VERSION")))
            // A redirect could lead to an address the policy refuses; providers do not redirect API calls.
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(GuardedResolver(settings.network))
            .build()
            .map_err(|e| LlmError::Transport(format!("cannot initialise the HTTP client: {e}")))?;
        Ok(LlmClient {
            http,
            idle_timeout: settings.request_timeout.min(MAX_IDLE_TIMEOUT),
            settings,
            min_retry_delay: DEFAULT_MIN_RETRY_DELAY,
            max_retry_delay: DEFAULT_MAX_RETRY_DELAY,
            model_slots: None,
        })
    }

    /// At most `calls` requests to one model (base URL and model name) in flight at once; more wait their turn,
    /// so a burst of questions does not hit a provider's rate limit all at once. 0 means no limit.
    pub fn with_max_calls_per_model(mut self, calls: usize) -> Self {
        self.model_slots =
            (calls > 0).then(|| Arc::new(ModelSlots { per_model: calls, semaphores: Mutex::new(HashMap::new()) }));
        self
    }

    /// Sets the idle timeout.
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// Sets the range of the exponential backoff between retries (defaults: 500 ms to 8 s, with jitter).
    pub fn with_retry_delays(mut self, min: Duration, max: Duration) -> Self {
        self.min_retry_delay = min;
        self.max_retry_delay = max.max(min);
        self
    }

    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    /// Sends `prompt` and returns the assembled reply, which always says why generation stopped.
    ///
    /// The request always streams, so `on_chunk` is called for each chunk of generated content (reasoning
    /// included) and a stalled stream is noticed by the idle timeout. Each attempt is bounded by
    /// `request_timeout`. Retries (exponential backoff with jitter, at most `max_retries`) happen on the
    /// failures [`LlmError::is_retryable`] names: 429 (waiting at least its `Retry-After`, capped at 30 s), 408,
    /// 5xx, transport failures, and replies cut short (a response without a finish reason, which is never
    /// taken as a reply); other 4xx, timeouts and malformed responses are returned at once.
    ///
    /// Limits: with a known `context_window`, a prompt whose estimate plus `max_tokens` exceeds it is refused
    /// before any request. A reply stopped by the token limit is sent once more with twice the `max_tokens`
    /// (at most 4096, and at most what the known window leaves); if that one stops at its limit too, or fails,
    /// or there is no larger limit to ask for, the result is [`LlmError::Truncated`].
    ///
    /// Cancellation: dropping the returned future aborts the HTTP request (its connection is closed), so the
    /// provider stops generating for it.
    pub async fn complete(
        &self,
        endpoint: &LlmEndpoint,
        prompt: &Prompt,
        on_chunk: &(dyn Fn() + Send + Sync),
    ) -> Result<Completion, LlmError> {
        let url = wire::request_url(endpoint)?;
        check_literal_host(&url, &self.settings.network)?;
        check_fits(endpoint, prompt)?;
        // Held through the retries: a retried call is still one call of this model.
        let _slot = match &self.model_slots {
            Some(slots) => {
                let waiting = std::time::Instant::now();
                let slot = slots.acquire(endpoint).await;
                metrics::histogram!(POOL_WAIT, "pool" => "llm").record(waiting.elapsed().as_secs_f64());
                Some(slot)
            }
            None => None,
        };
        let completion = self.call(endpoint, &url, prompt, on_chunk).await?;
        if !completion.truncated() {
            return Ok(completion);
        }
        let truncated = LlmError::Truncated { max_tokens: prompt.max_tokens };
        let Some(raised) = raised_max_tokens(endpoint, prompt) else { return Err(truncated) };
        tracing::info!(
            provider = %endpoint.provider,
            model = %endpoint.model,
            max_tokens = prompt.max_tokens,
            raised,
            "the LLM's reply hit its token limit, asking again with a larger one"
        );
        let larger = Prompt { max_tokens: raised, ..prompt.clone() };
        match self.call(endpoint, &url, &larger, on_chunk).await {
            Ok(completion) if !completion.truncated() => Ok(completion),
            Ok(_) => Err(LlmError::Truncated { max_tokens: raised }),
            // The first reply's cut is what the user needs to know; the larger limit was only an attempt.
            Err(error) => {
                let (provider, model) = (endpoint.provider, &endpoint.model);
                tracing::warn!(%provider, %model, "the retry with a larger token limit failed: {error}");
                Err(truncated)
            }
        }
    }

    /// One request with its retries.
    async fn call(
        &self,
        endpoint: &LlmEndpoint,
        url: &Url,
        prompt: &Prompt,
        on_chunk: &(dyn Fn() + Send + Sync),
    ) -> Result<Completion, LlmError> {
        let key = endpoint.api_key.as_ref().map(|k| k.expose()).filter(|k| !k.is_empty());
        let headers = request_headers(endpoint.provider, key)?;
        let body = Bytes::from(
            serde_json::to_vec(&wire::request_body(endpoint, prompt, url))
                .map_err(|e| LlmError::Protocol(format!("cannot encode the request: {e}")))?,
        );
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.min_retry_delay)
            .with_max_delay(self.max_retry_delay)
            .with_max_times(self.settings.max_retries)
            .with_jitter();
        let headers = &headers;
        let attempt = move || {
            let body = body.clone();
            async move {
                self.attempt(endpoint, url, headers, body, on_chunk).await.map_err(|mut failure| {
                    failure.error = redact(failure.error, key);
                    failure
                })
            }
        };
        attempt
            .retry(backoff)
            .when(|failure: &Failure| failure.error.is_retryable())
            .adjust(|failure: &Failure, delay: Option<Duration>| {
                let wanted = failure.retry_after.map(|wait| wait.min(MAX_RETRY_AFTER));
                delay.map(|d| wanted.map_or(d, |w| d.max(w)))
            })
            .notify(|failure: &Failure, delay: Duration| {
                tracing::warn!(
                    provider = %endpoint.provider,
                    model = %endpoint.model,
                    delay_ms = delay.as_millis() as u64,
                    "LLM call failed, retrying: {}",
                    failure.error
                );
            })
            .await
            .map_err(|failure| failure.error)
    }

    /// One request, bounded by the request timeout.
    async fn attempt(
        &self,
        endpoint: &LlmEndpoint,
        url: &Url,
        headers: &HeaderMap,
        body: Bytes,
        on_chunk: &(dyn Fn() + Send + Sync),
    ) -> Result<Completion, Failure> {
        let timeout = self.settings.request_timeout;
        tokio::time::timeout(timeout, self.exchange(endpoint, url, headers, body, on_chunk))
            .await
            .unwrap_or_else(|_| Err(LlmError::Timeout { what: TimeoutKind::Request, after: timeout }.into()))
    }

    async fn exchange(
        &self,
        endpoint: &LlmEndpoint,
        url: &Url,
        headers: &HeaderMap,
        body: Bytes,
        on_chunk: &(dyn Fn() + Send + Sync),
    ) -> Result<Completion, Failure> {
        let request = self.http.post(url.clone()).headers(headers.clone()).body(body).send();
        let response = self.idle(request).await?.map_err(|e| match blocked_cause(&e) {
            Some(blocked) => LlmError::Blocked(blocked.to_string()),
            None => LlmError::Transport(describe(url, &e)),
        })?;
        if !response.status().is_success() {
            return Err(self.error_response(endpoint, url, response).await);
        }
        let provider = endpoint.provider;
        let content_type =
            response.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        if content_type.starts_with("application/json") {
            let body = self.read_body(response, MAX_PLAIN_BODY, url).await?;
            return Ok(wire::parse_plain(provider, &body)?);
        }
        if !content_type.starts_with("text/event-stream") {
            let shown = if content_type.is_empty() { "none" } else { content_type.as_str() };
            return Err(LlmError::Protocol(format!("expected an event stream, got content type {shown}")).into());
        }

        let mut stream = std::pin::pin!(response.bytes_stream());
        let mut parser = SseParser::default();
        let mut state = StreamState::new(provider);
        let mut events = Vec::new();
        while !state.done {
            match self.idle(stream.next()).await? {
                None => {
                    parser.finish(&mut events)?;
                    apply(&mut state, &mut events, on_chunk)?;
                    break;
                }
                // A broken connection cuts the reply short like a stream ending without a finish reason, and
                // is retried like one.
                Some(Err(e)) => return Err(LlmError::Transport(describe(url, &e)).into()),
                Some(Ok(bytes)) => {
                    parser.push(&bytes, &mut events)?;
                    apply(&mut state, &mut events, on_chunk)?;
                }
            }
        }
        if state.done {
            // Reading to the end of the body returns the connection to the pool instead of closing it.
            while let Ok(Some(Ok(_))) = tokio::time::timeout(DRAIN_TIMEOUT, stream.next()).await {}
        }
        Ok(state.finish()?)
    }

    /// Awaits `future` for at most the idle timeout.
    async fn idle<F: Future>(&self, future: F) -> Result<F::Output, Failure> {
        tokio::time::timeout(self.idle_timeout, future)
            .await
            .map_err(|_| LlmError::Timeout { what: TimeoutKind::Idle, after: self.idle_timeout }.into())
    }

    /// Reads a whole body (up to `limit` bytes), each chunk within the idle timeout.
    async fn read_body(&self, response: reqwest::Response, limit: usize, url: &Url) -> Result<Vec<u8>, Failure> {
        let mut stream = std::pin::pin!(response.bytes_stream());
        let mut body = Vec::new();
        while let Some(chunk) = self.idle(stream.next()).await? {
            let chunk = chunk.map_err(|e| LlmError::Transport(describe(url, &e)))?;
            if body.len() + chunk.len() > limit {
                return Err(LlmError::Protocol(format!("the response exceeds {limit} bytes")).into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Turns an error status into a failure, with the provider's message and the wait it asked for.
    async fn error_response(&self, endpoint: &LlmEndpoint, url: &Url, response: reqwest::Response) -> Failure {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        // The status alone is enough when the body cannot be read.
        let body =
            tokio::time::timeout(self.idle_timeout, read_limited(response, MAX_ERROR_BODY)).await.unwrap_or_default();
        Failure { error: wire::http_error(endpoint, url, status, &body, retry_after), retry_after }
    }
}

/// Refuses a prompt that cannot fit the endpoint's known context window, before any request.
fn check_fits(endpoint: &LlmEndpoint, prompt: &Prompt) -> Result<(), LlmError> {
    let Some(context_window) = endpoint.context_window else { return Ok(()) };
    let prompt_tokens = prompt.estimated_tokens();
    if prompt_tokens + u64::from(prompt.max_tokens) <= u64::from(context_window) {
        return Ok(());
    }
    Err(LlmError::ContextOverflow(Overflow::Estimated { prompt_tokens, max_tokens: prompt.max_tokens, context_window }))
}

/// The token limit to ask for after a length stop: twice the prompt's, at most [`MAX_RAISED_TOKENS`] and what
/// the known context window leaves; `None` when that is no larger.
fn raised_max_tokens(endpoint: &LlmEndpoint, prompt: &Prompt) -> Option<u32> {
    let mut raised = prompt.max_tokens.saturating_mul(2).min(MAX_RAISED_TOKENS);
    if let Some(window) = endpoint.context_window {
        let room = u64::from(window).saturating_sub(prompt.estimated_tokens());
        raised = raised.min(u32::try_from(room).unwrap_or(u32::MAX));
    }
    (raised > prompt.max_tokens).then_some(raised)
}

/// Applies parsed events to the reply, calling `on_chunk` for those carrying content.
fn apply(
    state: &mut StreamState,
    events: &mut Vec<crate::sse::SseEvent>,
    on_chunk: &(dyn Fn() + Send + Sync),
) -> Result<(), Failure> {
    for event in events.drain(..) {
        if state.on_event(&event)? {
            on_chunk();
        }
        if state.done {
            break;
        }
    }
    Ok(())
}

/// Reads at most `limit` bytes of a body; an unreadable body reads as empty.
async fn read_limited(response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut stream = std::pin::pin!(response.bytes_stream());
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == limit {
            break;
        }
    }
    body
}

/// Content type, accept and authentication headers. The key headers are marked sensitive (kept out of debug
/// output and HTTP/2 header compression).
fn request_headers(provider: Provider, key: Option<&str>) -> Result<HeaderMap, LlmError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    let secret = |value: String| {
        let mut value = HeaderValue::try_from(value).map_err(|_| LlmError::InvalidEndpoint {
            url: String::new(),
            reason: "the API key contains characters that cannot be sent in an HTTP header".into(),
        })?;
        value.set_sensitive(true);
        Ok::<_, LlmError>(value)
    };
    match provider {
        Provider::Openai => {
            if let Some(key) = key {
                headers.insert(AUTHORIZATION, secret(format!("Bearer {key}"))?);
            }
        }
        Provider::Anthropic => {
            if let Some(key) = key {
                headers.insert(HeaderName::from_static("x-api-key"), secret(key.to_owned())?);
            }
            headers.insert(
                HeaderName::from_static("anthropic-version"),
                HeaderValue::from_static(wire::ANTHROPIC_VERSION),
            );
        }
    }
    Ok(headers)
}

/// How long the server asked to wait: OpenAI's `retry-after-ms`, else `retry-after` in seconds (the HTTP-date
/// form is ignored and the backoff applies).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0)
    };
    // `try_from` rejects absurdly large values instead of panicking.
    number("retry-after-ms")
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
        .or_else(|| number(RETRY_AFTER.as_str()).and_then(|s| Duration::try_from_secs_f64(s).ok()))
}

/// Resolves endpoint names with the SSRF guard: every address is checked, and only checked addresses are
/// handed to the connector.
struct GuardedResolver(NetworkPolicy);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        Box::pin(async move {
            let addrs = policy.resolve(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// IP-literal hosts never reach the resolver: check them before sending.
fn check_literal_host(url: &Url, policy: &NetworkPolicy) -> Result<(), LlmError> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    policy.check_ip(&ip.to_string(), ip).map_err(|blocked| LlmError::Blocked(blocked.to_string()))
}

/// The guard's refusal inside a connection error, if that is what failed.
fn blocked_cause(error: &reqwest::Error) -> Option<&Blocked> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = source {
        if let Some(blocked) = err.downcast_ref::<Blocked>() {
            return Some(blocked);
        }
        source = err.source();
    }
    None
}

/// A transport error for users: the host and the chain of causes, without the full URL.
fn describe(url: &Url, error: &reqwest::Error) -> String {
    let mut text = match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        _ => "endpoint".to_owned(),
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut last = String::new();
    while let Some(err) = source {
        let piece = if last.is_empty() { without_url(error) } else { err.to_string() };
        // Some layers repeat their cause in their own message.
        if !piece.is_empty() && !last.contains(&piece) {
            text.push_str(": ");
            text.push_str(&piece);
        }
        last = piece;
        source = err.source();
    }
    text
}

/// The top-level message of a reqwest error without the URL it appends.
fn without_url(error: &reqwest::Error) -> String {
    let text = error.to_string();
    match text.find(" for url (") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Removes the API key from provider messages (some echo what they were sent).
fn redact(error: LlmError, key: Option<&str>) -> LlmError {
    // Short strings would mangle ordinary words; real keys are long.
    let Some(key) = key.filter(|k| k.len() >= 8) else { return error };
    let clean = |s: String| s.replace(key, "***");
    match error {
        LlmError::Http { status, message } => LlmError::Http { status, message: clean(message) },
        LlmError::RateLimited { message, retry_after } => {
            LlmError::RateLimited { message: clean(message), retry_after }
        }
        LlmError::EndpointNotFound { status, url, provider, model, message } => {
            LlmError::EndpointNotFound { status, url, provider, model, message: clean(message) }
        }
        LlmError::ContextOverflow(Overflow::Refused { status, message }) => {
            LlmError::ContextOverflow(Overflow::Refused { status, message: clean(message) })
        }
        LlmError::Transport(message) => LlmError::Transport(clean(message)),
        LlmError::Protocol(message) => LlmError::Protocol(clean(message)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_prefers_milliseconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(150)));
        let mut date = HeaderMap::new();
        date.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&date), None);
    }

    #[test]
    fn key_headers_per_provider() {
        let openai = request_headers(Provider::Openai, Some("sk-123")).unwrap();
        assert_eq!(openai[AUTHORIZATION], "Bearer sk-123");
        assert!(openai[AUTHORIZATION].is_sensitive());
        assert!(!openai.contains_key("x-api-key"));
        let anthropic = request_headers(Provider::Anthropic, Some("ak-123")).unwrap();
        assert_eq!(anthropic["x-api-key"], "ak-123");
        assert_eq!(anthropic["anthropic-version"], wire::ANTHROPIC_VERSION);
        assert!(!anthropic.contains_key(AUTHORIZATION));
        let keyless = request_headers(Provider::Openai, None).unwrap();
        assert!(!keyless.contains_key(AUTHORIZATION));
        assert!(request_headers(Provider::Openai, Some("bad\nkey")).is_err());
    }

    #[test]
    fn provider_messages_are_scrubbed_of_the_key() {
        let error = LlmError::Http { status: 401, message: "Incorrect API key provided: sk-secret-123456".into() };
        let scrubbed = redact(error, Some("sk-secret-123456"));
        assert_eq!(scrubbed.to_string(), "the LLM provider answered HTTP 401: Incorrect API key provided: ***");
    }
}
