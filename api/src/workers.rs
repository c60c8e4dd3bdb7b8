//! Requests only a worker can answer, because they reach an LLM or a user's database (model and connection tests,
//! schemas). They go over the bus with a timeout; when no worker listens the client is told at once.

use querygpt_common::ErrorCode;
use querygpt_common::messages::{MESSAGE_VERSION, WorkerOutcome, WorkerRequest, WorkerTask};
use std::time::Duration;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

/// Runs `task` for `user_id` on a worker and returns its outcome as it is, `Failed` included; waits `timeout` at
/// most.
pub(crate) async fn request(
    state: &AppState,
    user_id: Uuid,
    task: WorkerTask,
    timeout: Duration,
) -> Result<WorkerOutcome, ApiError> {
    let request = WorkerRequest { v: MESSAGE_VERSION, user_id, task };
    Ok(state.bus.request_worker(&request, timeout).await?.outcome)
}

/// Runs `task` for `user_id` on a worker within `jobs.request_timeout_secs` and returns its outcome; a task the
/// worker could not run is an error.
pub(crate) async fn ask(state: &AppState, user_id: Uuid, task: WorkerTask) -> Result<WorkerOutcome, ApiError> {
    let timeout = Duration::from_secs(state.settings.jobs.request_timeout_secs.max(1));
    match request(state, user_id, task, timeout).await? {
        // The row went away between this node's check and the worker's read.
        WorkerOutcome::Failed { code: ErrorCode::NotFound, message } => Err(ApiError::NotFound(message.into())),
        WorkerOutcome::Failed { code: ErrorCode::DatabaseError, message } => Err(ApiError::Database(message.into())),
        WorkerOutcome::Failed { code, message } => {
            Err(ApiError::internal(anyhow::anyhow!("a worker could not run the request ({code:?}): {message}")))
        }
        outcome => Ok(outcome),
    }
}

/// A reply of the wrong kind: a worker of another version, or a bug.
pub(crate) fn unexpected(outcome: &WorkerOutcome) -> ApiError {
    ApiError::internal(anyhow::anyhow!("unexpected worker reply: {outcome:?}"))
}
