//! The client against the fake LLM server (a real HTTP server on 127.0.0.1).

use querygpt_common::Provider;
use querygpt_common::config::SecretString;
use querygpt_common::netguard::NetworkPolicy;
use querygpt_llm::{
    LlmClient, LlmEndpoint, LlmError, LlmSettings, Overflow, Prompt, PromptMessage, TimeoutKind, Usage,
};
use querygpt_testkit::{FakeLlm, Reply};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "sk-test-0123456789";
/// The fake LLM listens on loopback, which the default policy refuses.
const LOCAL_ONLY: NetworkPolicy = NetworkPolicy { allow_loopback: true, allow_private: false };

fn client(max_retries: usize) -> LlmClient {
    LlmClient::new(LlmSettings {
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        max_retries,
        network: LOCAL_ONLY,
    })
    .unwrap()
    .with_retry_delays(Duration::from_millis(10), Duration::from_millis(40))
}

fn openai(llm: &FakeLlm) -> LlmEndpoint {
    LlmEndpoint {
        provider: Provider::Openai,
        base_url: llm.openai_base_url(),
        api_key: Some(SecretString::new(KEY)),
        model: "gpt-test".into(),
        context_window: None,
    }
}

fn anthropic(llm: &FakeLlm) -> LlmEndpoint {
    LlmEndpoint {
        provider: Provider::Anthropic,
        base_url: llm.anthropic_base_url(),
        api_key: Some(SecretString::new(KEY)),
        model: "claude-test".into(),
        context_window: None,
    }
}

fn prompt(question: &str) -> Prompt {
    Prompt {
        system: "You translate questions into SQL.".into(),
        messages: vec![PromptMessage::user(question)],
        max_tokens: 512,
        temperature: Some(0.0),
    }
}

async fn complete(client: &LlmClient, endpoint: &LlmEndpoint) -> Result<querygpt_llm::Completion, LlmError> {
    client.complete(endpoint, &prompt("how many users?"), &|| {}).await
}

#[tokio::test]
async fn openai_stream_is_assembled_and_progress_reported() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::text_chunks(["```sql\n", "SELECT count(*) ", "FROM users\n", "```"]));
    let chunks = AtomicUsize::new(0);
    let on_chunk = || {
        chunks.fetch_add(1, Ordering::Relaxed);
    };
    let done = client(0).complete(&openai(&llm), &prompt("how many users?"), &on_chunk).await.unwrap();
    assert_eq!(done.text, "```sql\nSELECT count(*) FROM users\n```");
    assert_eq!(chunks.load(Ordering::Relaxed), 4);
    assert_eq!(done.model.as_deref(), Some("gpt-test"));
    assert_eq!(done.finish_reason, "stop");
    assert!(done.usage.is_some_and(|u| u.input_tokens > 0 && u.output_tokens > 0));
}

#[tokio::test]
async fn anthropic_stream_is_assembled_and_progress_reported() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::text_chunks(["SELECT ", "name ", "FROM users"]));
    let chunks = AtomicUsize::new(0);
    let on_chunk = || {
        chunks.fetch_add(1, Ordering::Relaxed);
    };
    let done = client(0).complete(&anthropic(&llm), &prompt("names?"), &on_chunk).await.unwrap();
    assert_eq!(done.text, "SELECT name FROM users");
    assert_eq!(chunks.load(Ordering::Relaxed), 3);
    assert_eq!(done.model.as_deref(), Some("claude-test"));
    assert_eq!(done.finish_reason, "end_turn");
    let usage: Usage = done.usage.unwrap();
    assert!(usage.input_tokens > 0 && usage.output_tokens > 0);
}

#[tokio::test]
async fn openai_request_carries_bearer_key_and_prompt() {
    let llm = FakeLlm::start().await;
    llm.require_api_key(KEY);
    complete(&client(0), &openai(&llm)).await.unwrap();
    let request = &llm.requests()[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(request.header("x-api-key"), None);
    assert_eq!(request.body["model"], "gpt-test");
    assert_eq!(request.body["stream"], true);
    assert_eq!(request.body["max_tokens"], 512);
    assert_eq!(request.body["temperature"], 0.0);
    assert_eq!(request.body["messages"][0]["role"], "system");
    assert_eq!(request.body["messages"][1]["content"], "how many users?");
}

#[tokio::test]
async fn anthropic_request_carries_x_api_key_and_version() {
    let llm = FakeLlm::start().await;
    llm.require_api_key(KEY);
    complete(&client(0), &anthropic(&llm)).await.unwrap();
    let request = &llm.requests()[0];
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.header("x-api-key"), Some(KEY));
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.body["system"], "You translate questions into SQL.");
    assert_eq!(request.body["max_tokens"], 512);
}

#[tokio::test]
async fn base_urls_with_trailing_slash_or_v1_work() {
    let llm = FakeLlm::start().await;
    let mut endpoint = openai(&llm);
    endpoint.base_url.push('/');
    complete(&client(0), &endpoint).await.unwrap();
    let mut endpoint = anthropic(&llm);
    endpoint.base_url.push_str("/v1/");
    complete(&client(0), &endpoint).await.unwrap();
    let paths: Vec<String> = llm.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/v1/chat/completions", "/v1/messages"]);
}

#[tokio::test]
async fn wrong_key_is_a_401_without_retry() {
    let llm = FakeLlm::start().await;
    llm.require_api_key("another-key-entirely");
    let err = complete(&client(3), &openai(&llm)).await.unwrap_err();
    assert!(matches!(err, LlmError::Http { status: 401, .. }), "{err:?}");
    assert_eq!(llm.request_count(), 1);
}

#[tokio::test]
async fn rate_limit_then_success_is_retried() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::rate_limited(Duration::from_millis(20)));
    llm.reply(Reply::text("SELECT 1"));
    let done = complete(&client(2), &openai(&llm)).await.unwrap();
    assert_eq!(done.text, "SELECT 1");
    assert_eq!(llm.request_count(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::rate_limited(Duration::from_millis(600)));
    let started = Instant::now();
    complete(&client(1), &openai(&llm)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(600), "waited only {:?}", started.elapsed());
}

#[tokio::test]
async fn anthropic_rate_limit_then_success() {
    let llm = FakeLlm::start().await;
    // Anthropic sends whole seconds: the smallest wait is one second.
    llm.reply(Reply::rate_limited(Duration::from_millis(1)));
    llm.reply(Reply::text("SELECT 2"));
    let started = Instant::now();
    assert_eq!(complete(&client(1), &anthropic(&llm)).await.unwrap().text, "SELECT 2");
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn rate_limit_every_time_ends_as_rate_limited() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::rate_limited(Duration::from_millis(5)));
    let err = complete(&client(2), &openai(&llm)).await.unwrap_err();
    assert!(matches!(&err, LlmError::RateLimited { message, .. } if message.contains("Rate limit")), "{err:?}");
    assert_eq!(llm.request_count(), 3);
}

#[tokio::test]
async fn server_errors_exhaust_the_retries() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::error(500, "The server had an error while processing your request."));
    let err = complete(&client(3), &openai(&llm)).await.unwrap_err();
    assert_eq!(
        err,
        LlmError::Http { status: 500, message: "The server had an error while processing your request.".into() }
    );
    assert_eq!(llm.request_count(), 4);
}

#[tokio::test]
async fn unavailable_and_request_timeout_are_retried() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::error(503, "overloaded"));
    llm.reply(Reply::error(408, "request timeout"));
    llm.reply(Reply::error(529, "Overloaded"));
    llm.reply(Reply::text("SELECT 3"));
    assert_eq!(complete(&client(3), &anthropic(&llm)).await.unwrap().text, "SELECT 3");
    assert_eq!(llm.request_count(), 4);
}

#[tokio::test]
async fn bad_request_is_not_retried_and_keeps_the_provider_message() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::error(400, "max_tokens: 999999 > 8192, which is the maximum allowed"));
    let err = complete(&client(3), &anthropic(&llm)).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("max_tokens: 999999 > 8192"), "{err}");
    assert_eq!(llm.request_count(), 1);
}

#[tokio::test]
async fn hang_times_out_without_retry() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::hang());
    let client = LlmClient::new(LlmSettings {
        request_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(1),
        max_retries: 2,
        network: LOCAL_ONLY,
    })
    .unwrap();
    let started = Instant::now();
    let err = complete(&client, &openai(&llm)).await.unwrap_err();
    assert!(matches!(err, LlmError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(llm.request_count(), 1);
}

#[tokio::test]
async fn stalled_stream_hits_the_idle_timeout() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::text_chunks(["SELECT ", "1"]).with_chunk_delay(Duration::from_secs(5)));
    let client = client(0).with_idle_timeout(Duration::from_millis(200));
    let err = complete(&client, &anthropic(&llm)).await.unwrap_err();
    assert!(matches!(err, LlmError::Timeout { what: TimeoutKind::Idle, .. }), "{err:?}");
}

#[tokio::test]
async fn slow_but_steady_stream_hits_the_request_timeout() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::text_chunks(["a"; 20]).with_chunk_delay(Duration::from_millis(50)));
    let client = LlmClient::new(LlmSettings {
        request_timeout: Duration::from_millis(400),
        connect_timeout: Duration::from_secs(1),
        max_retries: 1,
        network: LOCAL_ONLY,
    })
    .unwrap();
    let chunks = AtomicUsize::new(0);
    let on_chunk = || {
        chunks.fetch_add(1, Ordering::Relaxed);
    };
    let err = client.complete(&openai(&llm), &prompt("q"), &on_chunk).await.unwrap_err();
    assert!(matches!(err, LlmError::Timeout { what: TimeoutKind::Request, .. }), "{err:?}");
    assert!(chunks.load(Ordering::Relaxed) > 0, "chunks arrived before the deadline");
    assert_eq!(llm.request_count(), 1);
}

#[tokio::test]
async fn delayed_reply_within_the_timeout_succeeds() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::delayed(Duration::from_millis(200), Reply::text("SELECT 4")));
    assert_eq!(complete(&client(0), &openai(&llm)).await.unwrap().text, "SELECT 4");
}

#[tokio::test]
async fn refused_connection_is_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let endpoint = LlmEndpoint {
        provider: Provider::Openai,
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key: Some(SecretString::new(KEY)),
        model: "m".into(),
        context_window: None,
    };
    let started = Instant::now();
    let err = complete(&client(2), &endpoint).await.unwrap_err();
    assert!(matches!(err, LlmError::Transport(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains(KEY));
    // Two backoff sleeps of at least 10 ms each happened.
    assert!(started.elapsed() >= Duration::from_millis(20));
}

#[tokio::test]
async fn malformed_stream_is_a_protocol_error() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::raw(200, "text/event-stream", "data: {oops\n\n"));
    let err = complete(&client(2), &openai(&llm)).await.unwrap_err();
    assert!(matches!(err, LlmError::Protocol(_)), "{err:?}");
    assert_eq!(llm.request_count(), 1);
}

#[tokio::test]
async fn body_ending_mid_reply_is_incomplete() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::raw(200, "text/event-stream", "data: {\"choices\":[{\"delta\":{\"content\":\"SEL\"}}]}\n\n"));
    let err = complete(&client(0), &openai(&llm)).await.unwrap_err();
    assert_eq!(err, LlmError::Incomplete { received_chars: 3 });
}

/// The issue's case: llama-cpp-python interrupted a reply for another request and ended it with `[DONE]`.
#[tokio::test]
async fn interrupted_reply_is_retried_and_the_complete_one_returned() {
    for provider in [Provider::Openai, Provider::Anthropic] {
        let llm = FakeLlm::start().await;
        llm.reply(Reply::interrupted("SELECT * FROM customers"));
        llm.reply(Reply::text("SELECT * FROM customers WHERE country = 'FR'"));
        let endpoint = if provider == Provider::Openai { openai(&llm) } else { anthropic(&llm) };
        let done = complete(&client(2), &endpoint).await.unwrap();
        assert_eq!(done.text, "SELECT * FROM customers WHERE country = 'FR'", "{provider}");
        assert_eq!(llm.request_count(), 2, "{provider}");
    }
}

#[tokio::test]
async fn always_interrupted_is_an_error_and_never_the_text() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::interrupted("SELECT * FROM customers"));
    let err = complete(&client(2), &openai(&llm)).await.unwrap_err();
    assert_eq!(err, LlmError::Incomplete { received_chars: 23 });
    assert!(err.is_retryable());
    assert_eq!(llm.request_count(), 3, "the first try and max_retries more");
    let text = err.to_string();
    assert!(text.contains("cut short") && text.contains("--interrupt_requests false"), "{text}");
    assert!(!text.contains("SELECT"), "{text}");
}

/// A server ignoring `stream: true` without a finish reason is not trusted either.
#[tokio::test]
async fn plain_reply_without_a_finish_reason_is_incomplete() {
    let llm = FakeLlm::start().await;
    let body = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"SELECT 5"},"finish_reason":null}]}"#;
    llm.set_default(Reply::raw(200, "application/json", body));
    let err = complete(&client(1), &openai(&llm)).await.unwrap_err();
    assert_eq!(err, LlmError::Incomplete { received_chars: 8 });
    assert_eq!(llm.request_count(), 2);
}

#[tokio::test]
async fn length_stop_is_asked_again_with_twice_the_limit() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::length_limit("SELECT id, name FROM"));
    llm.reply(Reply::text("SELECT id, name FROM users"));
    let done = complete(&client(0), &anthropic(&llm)).await.unwrap();
    assert_eq!(done.text, "SELECT id, name FROM users");
    let limits: Vec<_> = llm.requests().iter().map(|r| r.body["max_tokens"].clone()).collect();
    assert_eq!(limits, [512, 1024]);
}

#[tokio::test]
async fn length_stop_twice_is_truncated_not_a_reply() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::length_limit("SELECT id, name FROM"));
    let err = complete(&client(2), &openai(&llm)).await.unwrap_err();
    assert_eq!(err, LlmError::Truncated { max_tokens: 1024 });
    assert!(!err.is_retryable());
    assert_eq!(llm.request_count(), 2, "one larger try, no retries");
    assert!(err.to_string().contains("token limit (1024 tokens)"), "{err}");
}

#[tokio::test]
async fn length_stop_without_room_for_more_is_reported_at_once() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::length_limit("SELECT"));
    let at_the_cap = Prompt { max_tokens: 4096, ..prompt("q") };
    let err = client(0).complete(&openai(&llm), &at_the_cap, &|| {}).await.unwrap_err();
    assert_eq!(err, LlmError::Truncated { max_tokens: 4096 });
    // A known window leaves no more room than the prompt already asked for.
    let question = prompt("how many users?");
    let full = LlmEndpoint { context_window: Some((question.estimated_tokens() + 512) as u32), ..openai(&llm) };
    let err = client(0).complete(&full, &question, &|| {}).await.unwrap_err();
    assert_eq!(err, LlmError::Truncated { max_tokens: 512 });
    assert_eq!(llm.request_count(), 2);
}

/// llama-cpp-python's answer to a streamed prompt over its context window.
#[tokio::test]
async fn empty_stream_is_reported_as_a_likely_overflow_without_retry() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::empty_stream());
    let err = complete(&client(2), &openai(&llm)).await.unwrap_err();
    assert_eq!(err, LlmError::ContextOverflow(Overflow::EmptyStream));
    let text = err.to_string();
    assert!(text.contains("empty stream") && text.contains("most likely") && text.contains("context window"), "{text}");
    assert_eq!(llm.request_count(), 1);
}

#[tokio::test]
async fn overflow_refusals_are_context_overflows_without_retry() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::context_length_exceeded(2048));
    for endpoint in [openai(&llm), anthropic(&llm)] {
        let err = complete(&client(2), &endpoint).await.unwrap_err();
        let LlmError::ContextOverflow(Overflow::Refused { status: 400, message }) = &err else { panic!("{err:?}") };
        assert!(message.contains("2048"), "{message}");
        assert!(err.to_string().contains("too long for the model's context window"), "{err}");
    }
    assert_eq!(llm.request_count(), 2);
}

#[tokio::test]
async fn prompt_over_the_known_context_window_is_refused_before_sending() {
    let llm = FakeLlm::start().await;
    let endpoint = LlmEndpoint { context_window: Some(2048), ..openai(&llm) };
    let schema = "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT);\n".repeat(200);
    let long = Prompt { system: schema, ..prompt("how many rows?") };
    let err = client(2).complete(&endpoint, &long, &|| {}).await.unwrap_err();
    let LlmError::ContextOverflow(Overflow::Estimated { prompt_tokens, max_tokens: 512, context_window: 2048 }) = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(prompt_tokens, long.estimated_tokens());
    assert!(err.to_string().contains("exceed its 2048 tokens"), "{err}");
    assert_eq!(llm.request_count(), 0);
    // A prompt that fits is sent.
    complete(&client(0), &endpoint).await.unwrap();
    assert_eq!(llm.request_count(), 1);
}

/// An Anthropic model pointed at an OpenAI-only server (FastAPI's 404 body, as llama-cpp-python sends it).
#[tokio::test]
async fn wrong_provider_404_names_the_url_and_what_to_check() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::raw(404, "application/json", r#"{"detail":"Not Found"}"#));
    let err = complete(&client(2), &anthropic(&llm)).await.unwrap_err();
    assert!(matches!(err, LlmError::EndpointNotFound { status: 404, .. }), "{err:?}");
    assert_eq!(err.status(), Some(404));
    let text = err.to_string();
    assert!(text.contains(&format!("HTTP 404 to POST {}/v1/messages (Not Found)", llm.anthropic_base_url())), "{text}");
    assert!(text.contains("provider (anthropic)") && text.contains("end in /v1"), "{text}");
    assert!(text.contains("model named `claude-test`"), "{text}");
    assert_eq!(llm.request_count(), 1, "not retried");
}

#[tokio::test]
async fn html_page_is_a_protocol_error() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::raw(200, "text/html", "<html>login</html>"));
    let err = complete(&client(0), &openai(&llm)).await.unwrap_err();
    assert!(err.to_string().contains("text/html"), "{err}");
}

#[tokio::test]
async fn gateway_html_error_uses_the_status_reason() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::raw(502, "text/html", "<html>bad gateway</html>"));
    let err = complete(&client(0), &openai(&llm)).await.unwrap_err();
    assert_eq!(err, LlmError::Http { status: 502, message: "Bad Gateway".into() });
}

#[tokio::test]
async fn plain_json_reply_of_a_server_ignoring_stream() {
    let llm = FakeLlm::start().await;
    let body = r#"{"model":"local","choices":[{"index":0,"message":{"role":"assistant","content":"SELECT 5"},"finish_reason":"stop"}]}"#;
    llm.reply(Reply::raw(200, "application/json", body));
    let done = complete(&client(0), &openai(&llm)).await.unwrap();
    assert_eq!((done.text.as_str(), done.model.as_deref()), ("SELECT 5", Some("local")));
}

#[tokio::test]
async fn empty_reply_is_an_error() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::text(""));
    assert_eq!(complete(&client(0), &anthropic(&llm)).await.unwrap_err(), LlmError::EmptyReply);
}

#[tokio::test]
async fn error_messages_never_show_the_key() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::error(401, format!("Incorrect API key provided: {KEY}.")));
    let err = complete(&client(0), &openai(&llm)).await.unwrap_err();
    let text = err.to_string();
    assert!(!text.contains(KEY), "{text}");
    assert!(text.contains("***"), "{text}");
    assert!(!format!("{err:?}").contains(KEY));
}

#[tokio::test]
async fn invalid_base_url_fails_before_any_request() {
    let llm = FakeLlm::start().await;
    let mut endpoint = openai(&llm);
    endpoint.base_url = "localhost:8000/v1".into();
    let err = complete(&client(0), &endpoint).await.unwrap_err();
    assert!(matches!(err, LlmError::InvalidEndpoint { .. }), "{err:?}");
    assert_eq!(llm.request_count(), 0);
}

#[tokio::test]
async fn keyless_endpoint_sends_no_auth_header() {
    let llm = FakeLlm::start().await;
    let mut endpoint = openai(&llm);
    endpoint.api_key = None;
    complete(&client(0), &endpoint).await.unwrap();
    assert_eq!(llm.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn dropping_the_future_cancels_the_call() {
    let llm = FakeLlm::start().await;
    llm.reply(Reply::hang());
    let client = client(0);
    let endpoint = openai(&llm);
    let call = complete(&client, &endpoint);
    assert!(tokio::time::timeout(Duration::from_millis(200), call).await.is_err());
    // The client stays usable and the next request gets the next reply.
    llm.reply(Reply::text("SELECT 6"));
    assert_eq!(complete(&client, &endpoint).await.unwrap().text, "SELECT 6");
}

#[tokio::test]
async fn concurrent_calls_are_routed_by_marker() {
    let llm = FakeLlm::start().await;
    for i in 0..20 {
        llm.on_prompt_containing(format!("[case-{i}]"), Reply::text(format!("SELECT {i}")));
    }
    let client = client(0);
    let endpoint = openai(&llm);
    let calls = (0..20).map(|i| {
        let (client, endpoint) = (&client, &endpoint);
        async move { client.complete(endpoint, &prompt(&format!("question [case-{i}]")), &|| {}).await }
    });
    let results = futures::future::join_all(calls).await;
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(result.unwrap().text, format!("SELECT {i}"));
    }
}

/// Thousands of calls in flight on a single-threaded runtime: no thread per call, one shared pool.
#[tokio::test(flavor = "current_thread")]
async fn thousands_of_concurrent_calls_on_one_thread() {
    let llm = FakeLlm::start().await;
    llm.set_recording(false);
    // Generous timeouts: 2000 simultaneous connects can overflow the listen backlog and wait for a SYN retry.
    let client = LlmClient::new(LlmSettings {
        request_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        max_retries: 0,
        network: LOCAL_ONLY,
    })
    .unwrap();
    let endpoint = openai(&llm);
    let calls = (0..2000).map(|_| complete(&client, &endpoint));
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|c| c.text.contains("SELECT 1"))));
    assert_eq!(llm.request_count(), 2000);
}

#[test]
fn complete_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let client = client(0);
    let endpoint = LlmEndpoint {
        provider: Provider::Openai,
        base_url: "http://x/v1".into(),
        api_key: None,
        model: "m".into(),
        context_window: None,
    };
    let prompt = prompt("q");
    let future = client.complete(&endpoint, &prompt, &|| {});
    assert_send(&future);
}

#[tokio::test]
async fn the_default_policy_refuses_internal_endpoints_before_any_request() {
    let llm = FakeLlm::start().await;
    let strict = LlmClient::new(LlmSettings { max_retries: 2, ..LlmSettings::default() }).unwrap();
    // By name (through the guarded resolver) and by IP literal, in the spellings the C resolver accepts.
    let port = url::Url::parse(&llm.openai_base_url()).unwrap().port().unwrap();
    for host in ["localhost", "127.0.0.1", "127.1", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]", "169.254.169.254"]
    {
        let endpoint = LlmEndpoint { base_url: format!("http://{host}:{port}/v1"), ..openai(&llm) };
        let err = complete(&strict, &endpoint).await.unwrap_err();
        assert!(matches!(err, LlmError::Blocked(_)), "{host}: {err:?}");
    }
    assert_eq!(llm.request_count(), 0);
}

/// With a limit per model, calls beyond it wait their turn: five calls of 300 ms, two at a time, take three rounds.
#[tokio::test]
async fn calls_per_model_are_limited() {
    let llm = FakeLlm::start().await;
    llm.set_default(Reply::delayed(Duration::from_millis(300), Reply::text("SELECT 1")));
    let client = client(0).with_max_calls_per_model(2);
    let endpoint = openai(&llm);
    let started = Instant::now();
    let results = futures::future::join_all((0..5).map(|_| complete(&client, &endpoint))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(850), "5 calls, 2 at a time, took only {took:?}");
    // Another model is not held up by this one's queue.
    let other = LlmEndpoint { model: "another-model".into(), ..openai(&llm) };
    let started = Instant::now();
    let both = futures::future::join(
        futures::future::join_all((0..2).map(|_| complete(&client, &endpoint))),
        futures::future::join_all((0..2).map(|_| complete(&client, &other))),
    )
    .await;
    assert!(both.0.iter().chain(&both.1).all(Result::is_ok));
    assert!(started.elapsed() < Duration::from_millis(550), "two models, two slots each: one round");
}
