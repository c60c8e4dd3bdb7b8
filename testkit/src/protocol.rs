//! Wire formats of the two protocols: request text extraction, JSON replies, SSE events, error bodies.

use crate::reply::Stop;
use serde_json::{Value, json};

/// Which API a request came in through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    Anthropic,
}

/// Everything a rendered reply needs to know about its request.
pub struct ReplyContext {
    pub protocol: Protocol,
    pub id: String,
    pub model: String,
    pub prompt_tokens: u64,
    /// The request's `max_tokens` (or OpenAI's `max_completion_tokens`), if it had one.
    pub max_tokens: Option<u64>,
    pub include_usage: bool,
}

/// Rough token count (about four bytes per token), good enough for usage figures of a fake.
pub fn approx_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// The concatenated text of a request: Anthropic's `system` and every message content, one per line.
pub fn prompt_text(body: &Value) -> String {
    let mut out = String::new();
    push_content(&mut out, body.get("system"));
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        for message in messages {
            push_content(&mut out, message.get("content"));
        }
    }
    out
}

/// Appends a content value: a plain string or an array of `{type: "text", text}` parts.
fn push_content(out: &mut String, content: Option<&Value>) {
    match content {
        Some(Value::String(s)) => {
            out.push_str(s);
            out.push('\n');
        }
        Some(Value::Array(parts)) => {
            for text in parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)) {
                out.push_str(text);
                out.push('\n');
            }
        }
        _ => {}
    }
}

/// The reason each protocol gives for `stop` (`null` for [`Stop::Interrupted`]).
fn stop_reason(protocol: Protocol, stop: Stop) -> Value {
    match (stop, protocol) {
        (Stop::Finished, Protocol::OpenAi) => json!("stop"),
        (Stop::Finished, Protocol::Anthropic) => json!("end_turn"),
        (Stop::Length, Protocol::OpenAi) => json!("length"),
        (Stop::Length, Protocol::Anthropic) => json!("max_tokens"),
        (Stop::Interrupted, _) => Value::Null,
    }
}

/// A non-streamed completion.
pub fn completion_json(ctx: &ReplyContext, text: &str, stop: Stop) -> Value {
    let completion_tokens = approx_tokens(text);
    let reason = stop_reason(ctx.protocol, stop);
    match ctx.protocol {
        Protocol::OpenAi => json!({
            "id": ctx.id,
            "object": "chat.completion",
            "created": 0,
            "model": ctx.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": null,
                "finish_reason": reason
            }],
            "usage": {
                "prompt_tokens": ctx.prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": ctx.prompt_tokens + completion_tokens
            }
        }),
        Protocol::Anthropic => json!({
            "id": ctx.id,
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": reason,
            "stop_sequence": null,
            "usage": {"input_tokens": ctx.prompt_tokens, "output_tokens": completion_tokens}
        }),
    }
}

/// The SSE events of a streamed completion, each a complete `event:`/`data:` frame ending in a blank line.
/// An interrupted one has no event carrying the stop reason (nor usage), only the end marker.
pub fn stream_events(ctx: &ReplyContext, chunks: &[String], stop: Stop) -> Vec<String> {
    let completion_tokens: u64 = chunks.iter().map(|c| approx_tokens(c)).sum();
    let reason = stop_reason(ctx.protocol, stop);
    let interrupted = stop == Stop::Interrupted;
    match ctx.protocol {
        Protocol::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                data_frame(&json!({
                    "id": ctx.id,
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": ctx.model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
                }))
            };
            let mut events = Vec::with_capacity(chunks.len() + 4);
            events.push(chunk(json!({"role": "assistant", "content": ""}), Value::Null));
            events.extend(chunks.iter().map(|c| chunk(json!({"content": c}), Value::Null)));
            if !interrupted {
                events.push(chunk(json!({}), reason));
            }
            if ctx.include_usage && !interrupted {
                events.push(data_frame(&json!({
                    "id": ctx.id,
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": ctx.model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": ctx.prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": ctx.prompt_tokens + completion_tokens
                    }
                })));
            }
            events.push("data: [DONE]\n\n".to_owned());
            events
        }
        Protocol::Anthropic => {
            let mut events = Vec::with_capacity(chunks.len() + 6);
            events.push(event_frame(
                "message_start",
                &json!({
                    "type": "message_start",
                    "message": {
                        "id": ctx.id,
                        "type": "message",
                        "role": "assistant",
                        "model": ctx.model,
                        "content": [],
                        "stop_reason": null,
                        "stop_sequence": null,
                        "usage": {"input_tokens": ctx.prompt_tokens, "output_tokens": 1}
                    }
                }),
            ));
            events.push(event_frame(
                "content_block_start",
                &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ));
            events.push(event_frame("ping", &json!({"type": "ping"})));
            events.extend(chunks.iter().map(|c| {
                event_frame(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": c}}),
                )
            }));
            events.push(event_frame("content_block_stop", &json!({"type": "content_block_stop", "index": 0})));
            if !interrupted {
                events.push(event_frame(
                    "message_delta",
                    &json!({
                        "type": "message_delta",
                        "delta": {"stop_reason": reason, "stop_sequence": null},
                        "usage": {"output_tokens": completion_tokens}
                    }),
                ));
            }
            events.push(event_frame("message_stop", &json!({"type": "message_stop"})));
            events
        }
    }
}

fn data_frame(data: &Value) -> String {
    format!("data: {data}\n\n")
}

fn event_frame(event: &str, data: &Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// The HTTP 400 body of a prompt over a context window of `context_window` tokens.
pub fn context_overflow_json(ctx: &ReplyContext, context_window: u64) -> Value {
    match ctx.protocol {
        Protocol::OpenAi => {
            let completion = ctx.max_tokens.unwrap_or(0);
            let message = format!(
                "This model's maximum context length is {context_window} tokens. However, you requested {} tokens \
                 ({} in the messages, {completion} in the completion). Please reduce the length of the messages or \
                 completion.",
                ctx.prompt_tokens + completion,
                ctx.prompt_tokens,
            );
            json!({"error": {
                "message": message,
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded"
            }})
        }
        Protocol::Anthropic => error_json(
            Protocol::Anthropic,
            400,
            &format!("prompt is too long: {} tokens > {context_window} maximum", ctx.prompt_tokens),
        ),
    }
}

/// The error body each provider sends with a failing status.
pub fn error_json(protocol: Protocol, status: u16, message: &str) -> Value {
    match protocol {
        Protocol::OpenAi => {
            let (kind, code) = match status {
                401 => ("invalid_request_error", json!("invalid_api_key")),
                404 => ("invalid_request_error", json!("model_not_found")),
                429 => ("requests", json!("rate_limit_exceeded")),
                500..=599 => ("server_error", Value::Null),
                _ => ("invalid_request_error", Value::Null),
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        }
        Protocol::Anthropic => {
            let kind = match status {
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                500..=599 => "api_error",
                _ => "invalid_request_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_text_covers_system_strings_and_parts() {
        let body = json!({
            "system": "be brief",
            "messages": [
                {"role": "user", "content": "first"},
                {"role": "user", "content": [{"type": "text", "text": "second"}, {"type": "image"}]}
            ]
        });
        assert_eq!(prompt_text(&body), "be brief\nfirst\nsecond\n");
    }

    #[test]
    fn anthropic_stream_has_the_documented_event_order() {
        let ctx = ReplyContext {
            protocol: Protocol::Anthropic,
            id: "msg_1".into(),
            model: "claude".into(),
            prompt_tokens: 3,
            max_tokens: Some(16),
            include_usage: false,
        };
        let events = stream_events(&ctx, &["a".into(), "b".into()], Stop::Finished);
        let names: Vec<&str> =
            events.iter().map(|e| e.lines().next().and_then(|l| l.strip_prefix("event: ")).unwrap_or("")).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "ping",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
    }
}
