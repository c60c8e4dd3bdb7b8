//! Why a job ended without an answer, and how each kind of trouble is told (or retried).

use querygpt_bus::BusError;
use querygpt_common::ErrorCode;
use querygpt_llm::LlmError;
use querygpt_store::StoreError;
use querygpt_targets::TargetError;
use serde_json::Value;

/// Why a job ended without an answer.
#[derive(Debug)]
pub enum Failure {
    /// An error the user is told about (bad SQL from the model, unreachable database...); the job is finished.
    User { code: ErrorCode, message: String, details: Option<Value> },
    /// Trouble in the service's own infrastructure (store, bus): the job is retried, on another worker if need be.
    /// Carries the cause with its own causes (`{:#}` prints them all; `downcast_ref` finds a `BusError`...).
    Transient(anyhow::Error),
}

impl Failure {
    pub(crate) fn user(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure::User { code, message: message.into(), details: None }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Transient(anyhow::Error::new(e).context("store"))
    }
}

impl From<BusError> for Failure {
    fn from(e: BusError) -> Self {
        Failure::Transient(anyhow::Error::new(e).context("bus"))
    }
}

impl From<TargetError> for Failure {
    fn from(e: TargetError) -> Self {
        Failure::User { code: ErrorCode::DatabaseError, message: e.to_string(), details: None }
    }
}

impl From<LlmError> for Failure {
    fn from(e: LlmError) -> Self {
        Failure::User { code: ErrorCode::LlmError, message: e.to_string(), details: None }
    }
}
