//! What can go wrong for a user of the client, each as one line for stderr, and the exit status it gives.

use std::fmt;

/// Exit status of a question stopped with Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// A failed command, as the user is told about it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No credentials, or the server refused them (401).
    #[error("not logged in or session expired: run querygpt login")]
    NotLoggedIn,
    /// `--server` is not an http(s) URL.
    #[error("invalid server URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// The server could not be reached (refused, unknown host, timeout, TLS...).
    #[error("cannot reach the server at {url}: {cause}")]
    Unreachable { url: String, cause: String },
    /// The server answered with the error envelope.
    #[error("{}", api_message(.code, .message, .status))]
    Api { status: u16, code: String, message: String },
    /// The server answered something that is not the QueryGPT API.
    #[error("unexpected answer from {url}: {what}")]
    Protocol { url: String, what: String },
    /// The question ended with an `error` event.
    #[error("the question failed: {message} ({code})")]
    Chat { code: String, message: String },
    /// The user stopped the question (Ctrl-C).
    #[error("{0}")]
    Interrupted(String),
    /// A name or argument the user gave does not work (unknown or ambiguous name, no terminal to prompt...).
    #[error("{0}")]
    Usage(String),
    /// The credentials file or its directory.
    #[error("{0}")]
    Local(String),
}

fn api_message(code: &str, message: &str, status: &u16) -> String {
    if code.is_empty() {
        format!("the server answered HTTP {status}: {message}")
    } else {
        format!("{message} ({code})")
    }
}

impl ClientError {
    /// The process exit status for this error: 130 for an interrupted question, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::Interrupted(_) => EXIT_INTERRUPTED,
            _ => 1,
        }
    }

    /// A local file error, with what was being done.
    pub(crate) fn local(what: impl fmt::Display, err: impl fmt::Display) -> Self {
        ClientError::Local(format!("{what}: {err}"))
    }

    /// A transport error of `reqwest`, to the server at `url`, described by its innermost cause
    /// ("Connection refused (os error 111)" rather than "error sending request").
    pub(crate) fn transport(url: &str, err: &reqwest::Error) -> Self {
        let mut cause: &dyn std::error::Error = err;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        let mut text = cause.to_string();
        if err.is_timeout() && !text.to_lowercase().contains("timed out") {
            text = format!("timed out ({text})");
        }
        ClientError::Unreachable { url: url.to_owned(), cause: text }
    }
}

/// A command's outcome.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
