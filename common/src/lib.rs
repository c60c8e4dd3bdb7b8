//! Shared vocabulary of QueryGPT-rs: the messages that travel between API nodes and workers, the NATS subject
//! names, the configuration and the error codes of both API documents.

pub mod config;
pub mod error_code;
pub mod kinds;
pub mod messages;
pub mod netguard;
pub mod paths;
pub mod prompts;
pub mod schema;
pub mod subjects;

pub use error_code::ErrorCode;
pub use kinds::{Driver, Language, Provider, Theme, ViewMode};
