//! The two wire protocols: URLs, request bodies, stream events, plain JSON replies and error bodies.

use crate::sse::SseEvent;
use crate::{Completion, LlmEndpoint, LlmError, Prompt, Usage};
use querygpt_common::Provider;
use reqwest::Url;
use serde_json::{Value, json};

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
    /// The terminal event (`[DONE]`, `message_stop`) arrived.
    pub done: bool,
}

impl StreamState {
    pub fn new(provider: Provider) -> Self {
        StreamState { provider, text: String::new(), model: None, usage: None, finish_reason: None, done: false }
    }

    /// Applies one event; returns whether it carried generated content (text or reasoning).
    pub fn on_event(&mut self, event: &SseEvent) -> Result<bool, LlmError> {
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
            return Err(stream_error(status as u16, message_of(error).unwrap_or_else(|| "error in the stream".into())));
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
                let status = anthropic_status(error["type"].as_str().unwrap_or(""));
                Err(stream_error(status, message_of(error).unwrap_or_else(|| "error in the stream".into())))
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
        // Servers that skip the terminal event still say why generation stopped; with neither, the stream
        // was cut off.
        if !self.done && self.finish_reason.is_none() {
            return Err(LlmError::Protocol("the stream ended before the reply was complete".into()));
        }
        completion(self.text, self.model, self.usage, self.finish_reason)
    }
}

fn completion(
    text: String,
    model: Option<String>,
    usage: Option<Usage>,
    finish_reason: Option<String>,
) -> Result<Completion, LlmError> {
    if text.trim().is_empty() {
        return Err(LlmError::EmptyReply);
    }
    Ok(Completion { text, model, usage, finish_reason })
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

/// A reply sent as one JSON document (servers that ignore `stream: true`).
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

fn stream_error(status: u16, message: String) -> LlmError {
    if status == 429 {
        LlmError::RateLimited { message, retry_after: None }
    } else {
        LlmError::Http { status, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PromptMessage;
    use querygpt_common::config::SecretString;

    fn endpoint(provider: Provider, base_url: &str) -> LlmEndpoint {
        LlmEndpoint { provider, base_url: base_url.into(), api_key: Some(SecretString::new("k")), model: "m".into() }
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
    fn cut_off_stream_is_a_protocol_error() {
        let mut state = StreamState::new(Provider::Openai);
        state.on_event(&data(r#"{"choices":[{"delta":{"content":"SELECT"}}]}"#)).unwrap();
        assert!(matches!(state.finish(), Err(LlmError::Protocol(_))));
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
            parse_plain(Provider::Openai, br#"{"choices":[{"message":{"content":""}}]}"#),
            Err(LlmError::EmptyReply)
        );
    }
}
