//! Shared vocabulary of QueryGPT-rs: the messages that travel between API nodes and workers, the NATS subject
//! names, the configuration and the error codes of both API documents.

pub mod config;
pub mod error_code;
pub mod kinds;
pub mod messages;
pub mod netguard;
pub mod paths;
#[cfg(feature = "pool")]
pub mod pool;
pub mod prompts;
pub mod schema;
pub mod subjects;
pub mod telemetry;

pub use error_code::ErrorCode;
pub use kinds::{Driver, Language, Provider, Theme, ViewMode};

/// An error and its causes on one line (`failure: cause: root cause`), for logs. Our errors' `Display` names the
/// failure only; what caused it is their `source()` chain, which a plain `%error` in a log would leave out.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot reach the bus")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_lists_every_cause() {
        let error = Outer(std::io::Error::other("connection refused"));
        assert_eq!(super::error_chain(&error), "cannot reach the bus: connection refused");
    }
}
