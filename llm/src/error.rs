//! Failures of an LLM call, worded for the people who see them.

use querygpt_common::Provider;
use std::time::Duration;

/// Why a completion failed. Messages never contain the API key (provider messages are scrubbed of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The endpoint's base URL cannot be used.
    #[error("invalid LLM endpoint URL `{url}`: {reason}")]
    InvalidEndpoint { url: String, reason: String },
    /// No answer within the request timeout, or the stream stalled for the idle timeout.
    #[error("the LLM did not answer in time ({what} of {}s)", .after.as_secs_f64())]
    Timeout { what: TimeoutKind, after: Duration },
    /// The provider kept answering 429 after every retry.
    #[error("the LLM provider is rate limiting requests (HTTP 429): {message}")]
    RateLimited { message: String, retry_after: Option<Duration> },
    /// An HTTP error status (or an error event in the stream), with the provider's message.
    #[error("the LLM provider answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    /// HTTP 404 or 405: the server has nothing at the URL called, or not the model asked for. Usually the
    /// model's provider is not the API the server speaks (an Anthropic model pointed at an OpenAI-only
    /// server), its base URL lacks the `/v1` of OpenAI-compatible servers, or the model name is wrong.
    #[error(
        "the LLM endpoint answered HTTP {status} to POST {url} ({message}): check that the model's provider \
         ({provider}) is the API this server speaks (openai or anthropic), that its base URL is right \
         (OpenAI-compatible base URLs usually end in /v1), and that the server has a model named `{model}`"
    )]
    EndpointNotFound { status: u16, url: String, provider: Provider, model: String, message: String },
    /// The endpoint could not be reached or the connection broke.
    #[error("could not reach the LLM endpoint: {0}")]
    Transport(String),
    /// The response was not the expected protocol (malformed stream, unexpected content type...).
    #[error("unexpected response from the LLM endpoint: {0}")]
    Protocol(String),
    /// The endpoint is, or resolves to, an address the network policy refuses (loopback, private, metadata...).
    #[error("the LLM endpoint is not allowed: {0}")]
    Blocked(String),
    /// The model answered with no text at all.
    #[error("the LLM returned an empty reply")]
    EmptyReply,
    /// The response ended without saying why generation stopped (no `finish_reason`, no Anthropic
    /// `stop_reason`): the reply was cut short and its text is not used.
    #[error(
        "the LLM's reply was cut short: the response ended after {received_chars} characters without a finish \
         reason. Local servers such as llama-cpp-python stop a running reply when another request arrives: send \
         one request at a time, or start llama-cpp-python with `--interrupt_requests false`"
    )]
    Incomplete { received_chars: usize },
    /// Generation stopped at the token limit (`finish_reason: "length"`, Anthropic `max_tokens`): a statement in
    /// the reply would be cut off. `max_tokens` is the limit of the last try.
    #[error(
        "the LLM's reply hit its token limit ({max_tokens} tokens) before it was complete, so the SQL in it would \
         be cut off; ask for a simpler query, or use a model that answers more briefly"
    )]
    Truncated { max_tokens: u32 },
    /// The prompt does not fit in the model's context window (with room for the reply).
    #[error(
        "{0}; shorten the prompt (a new conversation, a smaller schema) or use a larger context window (a \
         bigger model, or a larger context size such as llama.cpp's n_ctx on a local server)"
    )]
    ContextOverflow(Overflow),
}

/// How a prompt over the context window showed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Overflow {
    /// The provider refused the prompt: HTTP 4xx with `context_length_exceeded`, "maximum context length",
    /// "prompt is too long" and the like.
    #[error("the prompt is too long for the model's context window (HTTP {status}: {message})")]
    Refused { status: u16, message: String },
    /// Refused before sending: the estimated prompt tokens (see [`crate::Prompt::estimated_tokens`]) plus the
    /// reply's `max_tokens` exceed the endpoint's `context_window`.
    #[error(
        "the prompt is too long for the model's context window: about {prompt_tokens} tokens (estimated) plus \
         {max_tokens} for the reply exceed its {context_window} tokens"
    )]
    Estimated { prompt_tokens: u64, max_tokens: u32, context_window: u32 },
    /// HTTP 200 with an event stream that carried no event at all, which llama.cpp-based servers
    /// (llama-cpp-python) send for a prompt over their context window.
    #[error(
        "the LLM endpoint answered with an empty stream, which most likely means the prompt exceeds the model's \
         context window"
    )]
    EmptyStream,
}

/// Which timeout expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// The whole attempt took longer than `request_timeout`.
    Request,
    /// No byte arrived for the idle timeout while waiting for the answer or between stream chunks.
    Idle,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutKind::Request => "request timeout",
            TimeoutKind::Idle => "no data for the idle timeout",
        })
    }
}

impl LlmError {
    /// The HTTP status behind the error, if there is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            LlmError::Http { status, .. }
            | LlmError::EndpointNotFound { status, .. }
            | LlmError::ContextOverflow(Overflow::Refused { status, .. }) => Some(*status),
            LlmError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Whether sending the same request again may succeed: 429, 408 and 5xx answers, transport failures and
    /// replies cut short. [`crate::LlmClient::complete`] retries exactly these (up to `max_retries`), so one
    /// returned by it means the retries were used up.
    ///
    /// Timeouts are not retried: a model too slow once is usually as slow again, and another try would
    /// double a wait the caller's own deadline already bounds. An empty stream is not either: the servers known
    /// to send one do so for a prompt over the context window, which another try cannot fix.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::RateLimited { .. } | LlmError::Transport(_) | LlmError::Incomplete { .. } => true,
            LlmError::Http { status, .. } => *status == 408 || *status >= 500,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_errors_are_those_another_try_may_fix() {
        let http = |status| LlmError::Http { status, message: "x".into() };
        let retried = [
            LlmError::RateLimited { message: "x".into(), retry_after: None },
            LlmError::Transport("reset".into()),
            LlmError::Incomplete { received_chars: 3 },
            http(408),
            http(500),
            http(529),
        ];
        assert!(retried.iter().all(LlmError::is_retryable));
        let not_found = LlmError::EndpointNotFound {
            status: 404,
            url: "http://h/v1/messages".into(),
            provider: Provider::Anthropic,
            model: "m".into(),
            message: "Not Found".into(),
        };
        let final_ = [
            http(400),
            http(401),
            not_found,
            LlmError::Timeout { what: TimeoutKind::Idle, after: Duration::from_secs(1) },
            LlmError::Protocol("html".into()),
            LlmError::Blocked("loopback".into()),
            LlmError::EmptyReply,
            LlmError::Truncated { max_tokens: 10 },
            LlmError::ContextOverflow(Overflow::EmptyStream),
            LlmError::ContextOverflow(Overflow::Refused { status: 400, message: "x".into() }),
            LlmError::InvalidEndpoint { url: "x".into(), reason: "y".into() },
        ];
        assert!(!final_.iter().any(LlmError::is_retryable));
    }
}
