//! The two wire protocols: URLs, request bodies, stream events, plain JSON replies and error bodies.

use crate::sse::SseEvent;
use crate::{Completion, LlmEndpoint, LlmError, Overflow, Prompt, Usage};
use querygpt_common::Provider;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use std::time::Duration;

/// The Anthropic API version the request and event formats here follow.
pub(crate) const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The full request URL of an endpoint.
pub(crate) fn request_url(endpoint: &LlmEndpoint) -> Result<Url, LlmError> {
    let base = endpoint.base_url.trim().trim_end_matches('/');
    let full = match endpoint.provider {
        Provider::Openai => format!("{base}/chat/completions"),
        Provider::Anthropic if base.ends_with("/v1") => format!("{base}/messages"),
        Provider::Anthropic => format!("{base}/v1/messages"),
    };
    let invalid = |reason: String| LlmError::InvalidEndpoint { url: without_userinfo(base), reason };
    let url = Url::parse(&full).map_err(|e| invalid(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https".into()));
    }
    Ok(url)
}

/// Hides `user:password@` in a URL shown to users.
fn without_userinfo(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}***{}", &url[..scheme_end + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

/// The streaming request body.
pub(crate) fn request_body(endpoint: &LlmEndpoint, prompt: &Prompt, url: &Url) -> Value {
    let messages = prompt.messages.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content}));
    let mut body = match endpoint.provider {
        Provider::Openai => {
            let system = (!prompt.system.is_empty()).then(|| json!({"role": "system", "content": prompt.system}));
            // OpenAI's own API deprecated `max_tokens` (reasoning models reject it); compatible servers
            // (vLLM, Ollama, LiteLLM...) all understand the old name.
            let max_tokens_key =
                if url.host_str() == Some("api.openai.com") { "max_completion_tokens" } else { "max_tokens" };
            let mut body = json!({
                "model": endpoint.model,
                "messages": system.into_iter().chain(messages).collect::<Vec<_>>(),
                "stream": true,
                "stream_options": {"include_usage": true},
            });
            body[max_tokens_key] = json!(prompt.max_tokens);
            body
        }
        Provider::Anthropic => {
            let mut body = json!({
                "model": endpoint.model,
                "max_tokens": prompt.max_tokens,
                "messages": messages.collect::<Vec<_>>(),
                "stream": true,
            });
            if !prompt.system.is_empty() {
                body["system"] = json!(prompt.system);
            }
            body
        }
    };
    if let Some(temperature) = prompt.temperature {
        body["temperature"] = json!(temperature);
    }
    body
}

/// The reply being assembled from stream events.
#[derive(Debug)]
pub(crate) struct StreamState {
    provider: Provider,
    text: String,
    model: Option<String>,
    usage: Option<Usage>,
    finish_reason: Option<String>,
    /// How many events arrived (`[DONE]` included).
    events: usize,
    /// The terminal event (`[DONE]`, `message_stop`) arrived.
    pub done: bool,
}

impl StreamState {
    pub fn new(provider: Provider) -> Self {
        StreamState {
            provider,
            text: String::new(),
            model: None,
            usage: None,
            finish_reason: None,
            events: 0,
            done: false,
        }
    }

    /// Applies one event; returns whether it carried generated content (text or reasoning).
    pub fn on_event(&mut self, event: &SseEvent) -> Result<bool, LlmError> {
        self.events += 1;
        match self.provider {
            Provider::Openai => self.openai_event(event),
            Provider::Anthropic => self.anthropic_event(event),
        }
    }

    fn openai_event(&mut self, event: &SseEvent) -> Result<bool, LlmError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(false);
        }
        let chunk = parse_event(data)?;
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            let status = error.get("code").and_then(Value::as_u64).filter(|c| (400..600).contains(c)).unwrap_or(500);
            return Err(stream_error(status as u16, error));
        }
        self.note_model(&chunk["model"]);
        if let Some(usage) = openai_usage(&chunk["usage"]) {
            self.usage = Some(usage);
        }
        let choice = &chunk["choices"][0];
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        let delta = &choice["delta"];
        let mut progressed = false;
        if let Some(content) = delta["content"].as_str().filter(|c| !c.is_empty()) {
            self.text.push_str(content);
            progressed = true;
        }
        // DeepSeek (`reasoning_content`) and vLLM/OpenRouter (`reasoning`) stream the model's thinking apart
        // from the answer: it is progress, not reply text.
        if ["reasoning_content", "reasoning"].iter().any(|k| delta[k].as_str().is_some_and(|r| !r.is_empty())) {
            progressed = true;
        }
        Ok(progressed)
    }

    fn anthropic_event(&mut self, event: &SseEvent) -> Result<bool, LlmError> {
        let data = parse_event(&event.data)?;
        match data["type"].as_str().or(event.event.as_deref()).unwrap_or("") {
            "message_start" => {
                let message = &data["message"];
                self.note_model(&message["model"]);
                if let Some(input) = message["usage"]["input_tokens"].as_u64() {
                    self.usage = Some(Usage { input_tokens: input, ..self.usage.unwrap_or_default() });
                }
                Ok(false)
            }
            "content_block_start" => Ok(self.push_text(data["content_block"]["text"].as_str())),
            "content_block_delta" => {
                let delta = &data["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => Ok(self.push_text(delta["text"].as_str())),
                    // thinking, signatures and tool input: progress without reply text
                    _ => Ok(true),
                }
            }
            "message_delta" => {
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    self.finish_reason = Some(reason.to_owned());
                }
                if let Some(output) = data["usage"]["output_tokens"].as_u64() {
                    let usage = self.usage.unwrap_or_default();
                    let input = data["usage"]["input_tokens"].as_u64().unwrap_or(usage.input_tokens);
                    self.usage = Some(Usage { input_tokens: input, output_tokens: output });
                }
                Ok(false)
            }
            "message_stop" => {
                self.done = true;
                Ok(false)
            }
            "error" => {
                let error = &data["error"];
                Err(stream_error(anthropic_status(error["type"].as_str().unwrap_or("")), error))
            }
            // ping, content_block_stop and event types added after this was written
            _ => Ok(false),
        }
    }

    fn push_text(&mut self, text: Option<&str>) -> bool {
        match text.filter(|t| !t.is_empty()) {
            Some(t) => {
                self.text.push_str(t);
                true
            }
            None => false,
        }
    }

    fn note_model(&mut self, model: &Value) {
        if self.model.is_none()
            && let Some(m) = model.as_str().filter(|m| !m.is_empty())
        {
            self.model = Some(m.to_owned());
        }
    }

    /// The completion once the body ended.
    pub fn finish(self) -> Result<Completion, LlmError> {
        // llama.cpp-based servers answer a prompt over their context window with a 200 and no event; every
        // other cut-off stream has at least one.
        if self.events == 0 {
            return Err(LlmError::ContextOverflow(Overflow::EmptyStream));
        }
        completion(self.text, self.model, self.usage, self.finish_reason)
    }
}

/// The reply, if it says why generation stopped.
///
/// OpenAI-compatible servers and Anthropic say it in every complete reply, streamed or plain; without it the
/// reply was cut short (llama-cpp-python interrupting it for another request, a proxy closing the stream),
/// even after a `[DONE]`, and its text cannot be trusted. A reply stopped by the token limit may have no
/// text at all (reasoning models spend the budget thinking): it is returned for the client to report.
fn completion(
    text: String,
    model: Option<String>,
    usage: Option<Usage>,
    finish_reason: Option<String>,
) -> Result<Completion, LlmError> {
    let Some(finish_reason) = finish_reason else {
        return Err(LlmError::Incomplete { received_chars: text.chars().count() });
    };
    let completion = Completion { text, model, usage, finish_reason };
    if completion.text.trim().is_empty() && !completion.truncated() {
        return Err(LlmError::EmptyReply);
    }
    Ok(completion)
}

fn parse_event(data: &str) -> Result<Value, LlmError> {
    serde_json::from_str(data).map_err(|e| LlmError::Protocol(format!("malformed stream event ({e})")))
}

fn openai_usage(usage: &Value) -> Option<Usage> {
    Some(Usage {
        input_tokens: usage.get("prompt_tokens")?.as_u64()?,
        output_tokens: usage.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0),
    })
}

/// A reply sent as one JSON document (servers that ignore `stream: true`). One without a finish reason is
/// [`LlmError::Incomplete`], as a stream would be.
pub(crate) fn parse_plain(provider: Provider, body: &[u8]) -> Result<Completion, LlmError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| LlmError::Protocol(format!("the reply is not valid JSON ({e})")))?;
    let model = value["model"].as_str().filter(|m| !m.is_empty()).map(str::to_owned);
    match provider {
        Provider::Openai => {
            let choice = &value["choices"][0];
            let text = choice["message"]["content"]
                .as_str()
                .ok_or_else(|| LlmError::Protocol("the reply has no choices[0].message.content".into()))?;
            let finish = choice["finish_reason"].as_str().map(str::to_owned);
            completion(text.to_owned(), model, openai_usage(&value["usage"]), finish)
        }
        Provider::Anthropic => {
            let blocks = value["content"]
                .as_array()
                .ok_or_else(|| LlmError::Protocol("the reply has no content blocks".into()))?;
            let text: String =
                blocks.iter().filter(|b| b["type"] == "text").filter_map(|b| b["text"].as_str()).collect();
            let usage = value["usage"]["input_tokens"].as_u64().map(|input| Usage {
                input_tokens: input,
                output_tokens: value["usage"]["output_tokens"].as_u64().unwrap_or(0),
            });
            completion(text, model, usage, value["stop_reason"].as_str().map(str::to_owned))
        }
    }
}

/// The human-readable message of a provider error body: OpenAI and Anthropic (`error.message`), Ollama
/// (`error` as a string), vLLM and others (`message`, `detail`). Falls back to a short plain-text body.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    const MAX_CHARS: usize = 300;
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        return value.get("error").and_then(message_of).or_else(|| message_of(&value));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() || text.starts_with('<') {
        return None; // an HTML error page says nothing useful
    }
    Some(text.chars().take(MAX_CHARS).collect())
}

fn message_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Object(map) => ["message", "detail", "msg", "error"].iter().find_map(|k| {
            match map.get(*k)? {
                // FastAPI validation errors: `detail: [{msg: ...}, ...]`
                Value::Array(items) => items.first().and_then(message_of),
                other => message_of(other),
            }
        }),
        _ => None,
    }
}

/// The error of a failing HTTP response, from its status and the provider's body. `url` is the URL that was
/// called, shown (without credentials) when nothing answers there.
pub(crate) fn http_error(
    endpoint: &LlmEndpoint,
    url: &Url,
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
) -> LlmError {
    let message =
        error_message(body).unwrap_or_else(|| status.canonical_reason().unwrap_or("no error message").to_owned());
    match status {
        StatusCode::TOO_MANY_REQUESTS => LlmError::RateLimited { message, retry_after },
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
            let mut shown = url.clone();
            // Both fail only for URLs that cannot have credentials, which then have none to hide.
            let _ = shown.set_username("");
            let _ = shown.set_password(None);
            LlmError::EndpointNotFound {
                status: status.as_u16(),
                url: shown.to_string(),
                provider: endpoint.provider,
                model: endpoint.model.clone(),
                message,
            }
        }
        _ => {
            let value = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
            refusal(status.as_u16(), value.get("error").unwrap_or(&value), message)
        }
    }
}

/// An error event in the stream: `error` is its error object.
fn stream_error(status: u16, error: &Value) -> LlmError {
    refusal(status, error, message_of(error).unwrap_or_else(|| "error in the stream".into()))
}

/// A provider's refusal with `status`: its error object (or whole body) and message tell a prompt over the
/// context window from other errors.
fn refusal(status: u16, error: &Value, message: String) -> LlmError {
    if status == 429 {
        LlmError::RateLimited { message, retry_after: None }
    } else if (400..500).contains(&status) && reports_overflow(error, &message) {
        LlmError::ContextOverflow(Overflow::Refused { status, message })
    } else {
        LlmError::Http { status, message }
    }
}

/// Whether an error says the prompt exceeds the context window: OpenAI's (and llama-cpp-python's, Groq's...)
/// `context_length_exceeded` code, llama.cpp server's `exceed_context_size_error` type, or the wording of
/// vLLM ("maximum context length"), Anthropic ("prompt is too long", "exceed context limit"), Ollama and
/// others.
fn reports_overflow(error: &Value, message: &str) -> bool {
    const CODES: [&str; 2] = ["context_length_exceeded", "exceed_context_size_error"];
    const PHRASES: [&str; 5] =
        ["context length", "context window", "context size", "context limit", "prompt is too long"];
    let coded =
        ["code", "type"].iter().any(|k| error.get(*k).and_then(Value::as_str).is_some_and(|c| CODES.contains(&c)));
    let message = message.to_ascii_lowercase();
    coded || PHRASES.iter().any(|p| message.contains(p))
}

/// The HTTP status Anthropic documents for each error type.
fn anthropic_status(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PromptMessage;
    use querygpt_common::config::SecretString;

    fn endpoint(provider: Provider, base_url: &str) -> LlmEndpoint {
        LlmEndpoint {
            provider,
            base_url: base_url.into(),
            api_key: Some(SecretString::new("k")),
            model: "m".into(),
            context_window: None,
        }
    }

    #[test]
    fn urls_follow_each_providers_convention() {
        let url = |p, b| request_url(&endpoint(p, b)).unwrap().to_string();
        assert_eq!(url(Provider::Openai, "https://api.openai.com/v1"), "https://api.openai.com/v1/chat/completions");
        assert_eq!(url(Provider::Openai, "http://localhost:11434/v1/"), "http://localhost:11434/v1/chat/completions");
        assert_eq!(url(Provider::Anthropic, "https://api.anthropic.com"), "https://api.anthropic.com/v1/messages");
        assert_eq!(url(Provider::Anthropic, "https://api.anthropic.com/"), "https://api.anthropic.com/v1/messages");
        assert_eq!(url(Provider::Anthropic, "https://proxy.example/v1/"), "https://proxy.example/v1/messages");
    }

    #[test]
    fn bad_urls_are_rejected_without_showing_credentials() {
        let err = request_url(&endpoint(Provider::Openai, "not a url")).unwrap_err();
        assert!(matches!(err, LlmError::InvalidEndpoint { .. }));
        let err = request_url(&endpoint(Provider::Openai, "ftp://user:secret@host/v1")).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn openai_body_has_system_first_and_streams_with_usage() {
        let prompt = Prompt {
            system: "sys".into(),
            messages: vec![PromptMessage::user("q1"), PromptMessage::assistant("a1"), PromptMessage::user("q2")],
            max_tokens: 100,
            temperature: Some(0.0),
        };
        let ep = endpoint(Provider::Openai, "http://localhost:8000/v1");
        let body = request_body(&ep, &prompt, &request_url(&ep).unwrap());
        assert_eq!(body["messages"][0], json!({"role": "system", "content": "sys"}));
        assert_eq!(body["messages"][2], json!({"role": "assistant", "content": "a1"}));
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["max_tokens"], 100);
        assert_eq!(body["temperature"], 0.0);

        let official = endpoint(Provider::Openai, "https://api.openai.com/v1");
        let body = request_body(&official, &prompt, &request_url(&official).unwrap());
        assert_eq!(body["max_completion_tokens"], 100);
        assert!(body.get("max_tokens").is_none());
    }

    #[test]
    fn anthropic_body_puts_system_at_top_level() {
        let prompt = Prompt { system: "sys".into(), messages: vec![PromptMessage::user("q")], ..Prompt::default() };
        let ep = endpoint(Provider::Anthropic, "https://api.anthropic.com");
        let body = request_body(&ep, &prompt, &request_url(&ep).unwrap());
        assert_eq!(body["system"], "sys");
        assert_eq!(body["messages"], json!([{"role": "user", "content": "q"}]));
        assert_eq!(body["max_tokens"], 2048);
        assert!(body.get("temperature").is_none());
    }

    fn data(d: &str) -> SseEvent {
        SseEvent { event: None, data: d.into() }
    }

    #[test]
    fn openai_reasoning_is_progress_but_not_text() {
        let mut state = StreamState::new(Provider::Openai);
        assert!(state.on_event(&data(r#"{"choices":[{"delta":{"reasoning_content":"hmm"}}]}"#)).unwrap());
        assert!(state.on_event(&data(r#"{"model":"ds","choices":[{"delta":{"content":"SELECT 1"}}]}"#)).unwrap());
        assert!(!state.on_event(&data(r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#)).unwrap());
        state.on_event(&data("[DONE]")).unwrap();
        let done = state.finish().unwrap();
        assert_eq!(done.text, "SELECT 1");
        assert_eq!(done.model.as_deref(), Some("ds"));
        assert!(done.truncated());
    }

    #[test]
    fn openai_error_in_stream_becomes_http_error() {
        let mut state = StreamState::new(Provider::Openai);
        let err = state.on_event(&data(r#"{"error":{"message":"model overloaded","code":503}}"#)).unwrap_err();
        assert_eq!(err, LlmError::Http { status: 503, message: "model overloaded".into() });
    }

    #[test]
    fn anthropic_error_event_maps_its_type() {
        let mut state = StreamState::new(Provider::Anthropic);
        let event = SseEvent {
            event: Some("error".into()),
            data: r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.into(),
        };
        assert_eq!(state.on_event(&event).unwrap_err(), LlmError::Http { status: 529, message: "Overloaded".into() });
    }

    #[test]
    fn stream_without_a_finish_reason_is_incomplete_even_after_done() {
        let mut state = StreamState::new(Provider::Openai);
        state.on_event(&data(r#"{"choices":[{"delta":{"content":"SELECT * FROM customers"}}]}"#)).unwrap();
        state.on_event(&data("[DONE]")).unwrap();
        assert!(state.done);
        assert_eq!(state.finish(), Err(LlmError::Incomplete { received_chars: 23 }));

        let mut only_done = StreamState::new(Provider::Openai);
        only_done.on_event(&data("[DONE]")).unwrap();
        assert_eq!(only_done.finish(), Err(LlmError::Incomplete { received_chars: 0 }));

        let mut anthropic = StreamState::new(Provider::Anthropic);
        anthropic
            .on_event(&data(r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"SEL"}}"#))
            .unwrap();
        anthropic.on_event(&data(r#"{"type":"message_stop"}"#)).unwrap();
        assert_eq!(anthropic.finish(), Err(LlmError::Incomplete { received_chars: 3 }));
    }

    #[test]
    fn stream_without_any_event_is_a_likely_overflow() {
        let state = StreamState::new(Provider::Openai);
        assert_eq!(state.finish(), Err(LlmError::ContextOverflow(Overflow::EmptyStream)));
    }

    #[test]
    fn length_stop_without_text_is_returned_for_the_client_to_report() {
        let mut state = StreamState::new(Provider::Anthropic);
        state
            .on_event(&data(r#"{"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"h"}}"#))
            .unwrap();
        state.on_event(&data(r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"}}"#)).unwrap();
        let done = state.finish().unwrap();
        assert!(done.truncated() && done.text.is_empty());
    }

    #[test]
    fn finish_reason_without_done_is_accepted() {
        let mut state = StreamState::new(Provider::Openai);
        state.on_event(&data(r#"{"choices":[{"delta":{"content":"SELECT 1"},"finish_reason":"stop"}]}"#)).unwrap();
        assert_eq!(state.finish().unwrap().text, "SELECT 1");
    }

    #[test]
    fn malformed_event_is_a_protocol_error() {
        let mut state = StreamState::new(Provider::Anthropic);
        assert!(matches!(state.on_event(&data("{oops")), Err(LlmError::Protocol(_))));
    }

    #[test]
    fn error_messages_of_known_shapes() {
        let msg = |b: &str| error_message(b.as_bytes());
        assert_eq!(
            msg(r#"{"error":{"message":"Invalid model","type":"invalid_request_error"}}"#).unwrap(),
            "Invalid model"
        );
        assert_eq!(msg(r#"{"type":"error","error":{"type":"x","message":"bad"}}"#).unwrap(), "bad");
        assert_eq!(msg(r#"{"error":"model 'llama9' not found"}"#).unwrap(), "model 'llama9' not found");
        assert_eq!(msg(r#"{"object":"error","message":"vllm says no"}"#).unwrap(), "vllm says no");
        assert_eq!(msg(r#"{"detail":[{"msg":"field required"}]}"#).unwrap(), "field required");
        assert_eq!(msg("upstream connect error").unwrap(), "upstream connect error");
        assert_eq!(msg("<html><body>502</body></html>"), None);
        assert_eq!(msg(""), None);
    }

    #[test]
    fn plain_json_replies_are_understood() {
        let openai = br#"{"model":"gpt","choices":[{"message":{"content":"SELECT 1"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#;
        let c = parse_plain(Provider::Openai, openai).unwrap();
        assert_eq!((c.text.as_str(), c.usage), ("SELECT 1", Some(Usage { input_tokens: 5, output_tokens: 2 })));
        let anthropic = br#"{"model":"claude","content":[{"type":"thinking","thinking":"x"},{"type":"text","text":"SELECT 2"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}"#;
        assert_eq!(parse_plain(Provider::Anthropic, anthropic).unwrap().text, "SELECT 2");
        assert_eq!(
            parse_plain(Provider::Openai, br#"{"choices":[{"message":{"content":""},"finish_reason":"stop"}]}"#),
            Err(LlmError::EmptyReply)
        );
    }

    #[test]
    fn plain_replies_without_a_finish_reason_are_incomplete() {
        let openai = br#"{"choices":[{"message":{"content":"SELECT 1"},"finish_reason":null}]}"#;
        assert_eq!(parse_plain(Provider::Openai, openai), Err(LlmError::Incomplete { received_chars: 8 }));
        let anthropic = br#"{"content":[{"type":"text","text":"SELECT"}],"stop_reason":null}"#;
        assert_eq!(parse_plain(Provider::Anthropic, anthropic), Err(LlmError::Incomplete { received_chars: 6 }));
    }

    fn status_error(status: u16, body: &str) -> LlmError {
        let ep = endpoint(Provider::Openai, "http://user:pw@localhost:8001/v1");
        let url = request_url(&ep).unwrap();
        http_error(&ep, &url, StatusCode::from_u16(status).unwrap(), body.as_bytes(), None)
    }

    #[test]
    fn overflow_refusals_of_known_servers() {
        let bodies = [
            // OpenAI, llama-cpp-python
            r#"{"error":{"message":"This model's maximum context length is 2048 tokens. However, you requested 2600 tokens (2088 in the messages, 512 in the completion).","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            // vLLM
            r#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.","type":"BadRequestError","code":400}"#,
            // llama.cpp server
            r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error"}}"#,
            // Anthropic
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"input length and `max_tokens` exceed context limit: 197000 + 8192 > 200000"}}"#,
            // coded, with a message that does not say it
            r#"{"error":{"message":"too long","code":"context_length_exceeded"}}"#,
        ];
        for body in bodies {
            let err = status_error(400, body);
            assert!(matches!(err, LlmError::ContextOverflow(Overflow::Refused { status: 400, .. })), "{body}: {err:?}");
            assert_eq!(err.status(), Some(400));
            assert!(!err.is_retryable());
        }
        let other =
            status_error(400, r#"{"error":{"message":"max_tokens: 999999 > 8192, which is the maximum allowed"}}"#);
        assert!(matches!(other, LlmError::Http { status: 400, .. }), "{other:?}");
    }

    #[test]
    fn overflow_in_a_stream_error_event() {
        let mut state = StreamState::new(Provider::Openai);
        let event = data(r#"{"error":{"message":"This model's maximum context length is 8192 tokens","code":400}}"#);
        assert!(matches!(state.on_event(&event), Err(LlmError::ContextOverflow(Overflow::Refused { .. }))));
    }

    #[test]
    fn not_found_names_the_url_without_credentials_and_what_to_check() {
        let err = status_error(404, r#"{"detail":"Not Found"}"#);
        let text = err.to_string();
        assert!(matches!(err, LlmError::EndpointNotFound { status: 404, .. }), "{err:?}");
        assert!(text.contains("POST http://localhost:8001/v1/chat/completions (Not Found)"), "{text}");
        assert!(text.contains("provider (openai)") && text.contains("/v1") && text.contains("`m`"), "{text}");
        assert!(!text.contains("pw"), "{text}");
        let LlmError::EndpointNotFound { status: 405, message, .. } = status_error(405, "") else { panic!("not 405") };
        assert_eq!(message, "Method Not Allowed");
    }
}
