//! Failures of an LLM call, worded for the people who see them.

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
            LlmError::Http { status, .. } => Some(*status),
            LlmError::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}
