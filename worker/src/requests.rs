//! Worker requests: the model tests, connection tests and schemas API nodes ask a worker for (API nodes never reach
//! a user's model or database themselves). Served next to the jobs, with a concurrency of their own so that a busy
//! job pool does not keep a user waiting for a test.

use crate::failure::Failure;
use crate::generate::Generator;
use crate::job::truncate;
use crate::pool;
use crate::runner::SHUTDOWN_GRACE;
use crate::schemas::Schemas;
use crate::specs::{endpoint, target_key, target_spec};
use futures::stream::BoxStream;
use querygpt_bus::WorkerRequestDelivery;
use querygpt_common::config::WorkerSettings;
use querygpt_common::messages::{
    ConnectionTestReport, GenerateRequest, ModelTestReport, ProviderFailure, ProviderFailureKind, WorkerOutcome,
    WorkerReply, WorkerRequest, WorkerTask,
};
use querygpt_common::{ErrorCode, error_chain};
use querygpt_llm::{LlmClient, LlmError, LlmSettings, Prompt, PromptMessage};
use querygpt_store::{Store, StoreError};
use querygpt_targets::Targets;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// The model's reply is cut to this many characters in the report.
const MAX_REPLY_CHARS: usize = 200;
/// Room for "OK" from any model, reasoning models included, at next to no cost.
const TEST_MAX_TOKENS: u32 = 64;

/// Answers worker requests with the worker's store, targets and schemas.
pub(crate) struct RequestHandler {
    store: Arc<dyn Store>,
    targets: Arc<Targets>,
    schemas: Schemas,
    /// A client without retries whose one attempt is limited to the test timeout: a wrong key or a dead endpoint
    /// must come back at once, not after the retries a job would make.
    test_llm: LlmClient,
    /// The jobs' client (with retries), for Text2SQL generation.
    llm: LlmClient,
    /// Requests answered at once: `worker.concurrency`, as for jobs, since Text2SQL requests are LLM calls as
    /// long as a chat's. Each is bounded by its own time limits.
    concurrency: usize,
    schema_budget: usize,
    max_attempts: u32,
}

/// A task's outcome; `Err` is the `Failed` outcome, so that `?` can end a task early.
type TaskResult = Result<WorkerOutcome, WorkerOutcome>;

impl RequestHandler {
    /// `llm` is the jobs' client: the test client uses its network policy and connect timeout.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        targets: Arc<Targets>,
        schemas: Schemas,
        llm: &LlmClient,
        settings: &WorkerSettings,
    ) -> Result<Self, LlmError> {
        let test_timeout = Duration::from_secs(settings.test_timeout_secs.max(1));
        let jobs = llm.settings();
        let test_llm = LlmClient::new(LlmSettings {
            request_timeout: test_timeout,
            connect_timeout: jobs.connect_timeout.min(test_timeout),
            max_retries: 0,
            network: jobs.network,
        })?;
        Ok(RequestHandler {
            store,
            targets,
            schemas,
            test_llm,
            llm: llm.clone(),
            concurrency: settings.concurrency,
            schema_budget: settings.schema_budget,
            max_attempts: settings.max_attempts,
        })
    }

    /// Answers `requests` until `shutdown`. Then it stops listening, so that new requests go to other workers (or
    /// fail at once when there are none), and lets the requests in flight finish for the shutdown grace period.
    pub(crate) async fn serve(
        self: Arc<Self>,
        requests: BoxStream<'static, WorkerRequestDelivery>,
        shutdown: &CancellationToken,
    ) {
        pool::run_bounded(
            "worker requests",
            requests,
            self.concurrency,
            shutdown,
            SHUTDOWN_GRACE,
            |delivery, abort| {
                let handler = self.clone();
                let span =
                    tracing::info_span!("request", user_id = %delivery.request.user_id, task = ?delivery.request.task);
                async move {
                    tokio::select! {
                        () = handler.answer(delivery) => {}
                        // Dropped unanswered: its API node times out, as it would had this worker died.
                        () = abort.cancelled() => tracing::warn!("worker request abandoned at shutdown"),
                    }
                }
                .instrument(span)
            },
        )
        .await;
    }

    async fn answer(&self, delivery: WorkerRequestDelivery) {
        let reply = WorkerReply::new(self.outcome(&delivery.request).await);
        if let Err(err) = delivery.replier.reply(&reply).await {
            tracing::warn!(error = error_chain(&err), "could not send the reply to a worker request");
        }
    }

    async fn outcome(&self, request: &WorkerRequest) -> WorkerOutcome {
        let user_id = request.user_id;
        let result = match &request.task {
            WorkerTask::TestModel { model_id } => self.test_model(user_id, *model_id).await,
            WorkerTask::TestConnection { connection_id } => self.test_connection(user_id, *connection_id).await,
            WorkerTask::Schema { connection_id, refresh } => self.schema(user_id, *connection_id, *refresh).await,
            WorkerTask::GenerateSql(generate) => self.generate(user_id, generate).await,
        };
        result.unwrap_or_else(|failed| failed)
    }

    /// One real round trip to the model. A provider that refuses or fails is a report with `ok: false`.
    async fn test_model(&self, user_id: Uuid, model_id: Uuid) -> TaskResult {
        let model = found(self.store.model(user_id, model_id).await, "model")?;
        let prompt = Prompt {
            system: "Reply with the single word OK.".into(),
            messages: vec![PromptMessage::user("ping")],
            max_tokens: TEST_MAX_TOKENS,
            // Some reasoning models refuse any temperature but their default.
            temperature: None,
        };
        let started = Instant::now();
        let result = self.test_llm.complete(&endpoint(&model), &prompt, &|| {}).await;
        let latency_ms = millis_since(started);
        let report = match result {
            Ok(completion) => ModelTestReport {
                ok: true,
                latency_ms,
                reply: Some(truncate(completion.text.trim(), MAX_REPLY_CHARS)),
                error: None,
            },
            // A chatty model that talks past the test's few tokens has answered: it is reachable.
            Err(LlmError::Truncated { .. }) => ModelTestReport { ok: true, latency_ms, reply: None, error: None },
            Err(error) => ModelTestReport { ok: false, latency_ms, reply: None, error: Some(provider_failure(&error)) },
        };
        Ok(WorkerOutcome::ModelTested(report))
    }

    /// Connects to the database. A database that cannot be reached is a report with `connected: false`.
    async fn test_connection(&self, user_id: Uuid, connection_id: Uuid) -> TaskResult {
        let connection = found(self.store.connection(user_id, connection_id).await, "connection")?;
        let started = Instant::now();
        let result = self.targets.test(&target_key(&connection), &target_spec(&connection)).await;
        let latency_ms = millis_since(started);
        let report = match result {
            Ok(info) => ConnectionTestReport {
                connected: true,
                latency_ms,
                version: Some(info.version),
                tables_count: Some(info.tables_count),
                warnings: info.warnings,
                error: None,
            },
            // The target layer's messages never carry the password.
            Err(error) => ConnectionTestReport {
                connected: false,
                latency_ms,
                version: None,
                tables_count: None,
                warnings: Vec::new(),
                error: Some(error.to_string()),
            },
        };
        Ok(WorkerOutcome::ConnectionTested(report))
    }

    async fn generate(&self, user_id: Uuid, request: &GenerateRequest) -> TaskResult {
        let generator = Generator {
            store: &*self.store,
            llm: &self.llm,
            schema_budget: self.schema_budget,
            max_attempts: self.max_attempts,
        };
        match generator.generate(user_id, request).await {
            Ok(generated) => Ok(WorkerOutcome::Generated(generated)),
            Err(Failure::User { code, message, .. }) => Err(failed(code, message)),
            Err(Failure::Transient(error)) => {
                tracing::error!(error = format!("{error:#}"), "a Text2SQL request failed in the service");
                Err(failed(ErrorCode::InternalError, "the service could not read its data; try again"))
            }
        }
    }

    async fn schema(&self, user_id: Uuid, connection_id: Uuid, refresh: bool) -> TaskResult {
        let connection = found(self.store.connection(user_id, connection_id).await, "connection")?;
        match self.schemas.get(&connection, refresh).await {
            Ok(schema) => Ok(WorkerOutcome::Schema(schema)),
            Err(error) => Err(failed(ErrorCode::DatabaseError, error.to_string())),
        }
    }
}

/// The row a task names. A missing row (deleted meanwhile, or another user's) is NOT_FOUND; a store failure is
/// logged and reported without its cause, which may name the service's own infrastructure.
fn found<T>(row: Result<Option<T>, StoreError>, what: &'static str) -> Result<T, WorkerOutcome> {
    match row {
        Ok(Some(row)) => Ok(row),
        Ok(None) => Err(failed(ErrorCode::NotFound, format!("{what} not found"))),
        Err(err) => {
            tracing::error!(error = error_chain(&err), what, "cannot read a worker request's row from the store");
            Err(failed(ErrorCode::InternalError, "the service could not read its data; try again"))
        }
    }
}

fn failed(code: ErrorCode, message: impl Into<String>) -> WorkerOutcome {
    WorkerOutcome::Failed { code, message: message.into() }
}

fn millis_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What a failed model call tells the user to fix.
fn provider_failure(error: &LlmError) -> ProviderFailure {
    let kind = match error {
        LlmError::Http { status: 401 | 403, .. } => ProviderFailureKind::Unauthorized,
        LlmError::Http { status: 404, .. } | LlmError::EndpointNotFound { .. } => ProviderFailureKind::ModelNotFound,
        LlmError::Http { status: 429, .. } | LlmError::RateLimited { .. } => ProviderFailureKind::RateLimited,
        LlmError::Http { .. } | LlmError::ContextOverflow(_) => ProviderFailureKind::ProviderError,
        LlmError::Timeout { .. } => ProviderFailureKind::Timeout,
        // A base URL that cannot be used cannot be reached either.
        LlmError::Transport(_) | LlmError::InvalidEndpoint { .. } => ProviderFailureKind::Unreachable,
        LlmError::Blocked(_) => ProviderFailureKind::Blocked,
        LlmError::Protocol(_) | LlmError::EmptyReply | LlmError::Incomplete { .. } | LlmError::Truncated { .. } => {
            ProviderFailureKind::InvalidReply
        }
    };
    // The client scrubs the API key from every message.
    ProviderFailure { kind, status: error.status(), message: error.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use querygpt_llm::TimeoutKind;

    #[test]
    fn llm_errors_map_to_the_fix_they_call_for() {
        let http = |status| LlmError::Http { status, message: "x".into() };
        let cases = [
            (http(401), ProviderFailureKind::Unauthorized, Some(401)),
            (http(403), ProviderFailureKind::Unauthorized, Some(403)),
            (http(404), ProviderFailureKind::ModelNotFound, Some(404)),
            (http(429), ProviderFailureKind::RateLimited, Some(429)),
            (
                LlmError::RateLimited { message: "x".into(), retry_after: None },
                ProviderFailureKind::RateLimited,
                Some(429),
            ),
            (http(500), ProviderFailureKind::ProviderError, Some(500)),
            (
                LlmError::Timeout { what: TimeoutKind::Request, after: Duration::from_secs(1) },
                ProviderFailureKind::Timeout,
                None,
            ),
            (LlmError::Transport("refused".into()), ProviderFailureKind::Unreachable, None),
            (LlmError::InvalidEndpoint { url: "x".into(), reason: "y".into() }, ProviderFailureKind::Unreachable, None),
            (LlmError::Blocked("loopback".into()), ProviderFailureKind::Blocked, None),
            (LlmError::Protocol("html".into()), ProviderFailureKind::InvalidReply, None),
            (LlmError::EmptyReply, ProviderFailureKind::InvalidReply, None),
        ];
        for (error, kind, status) in cases {
            let failure = provider_failure(&error);
            assert_eq!((failure.kind, failure.status), (kind, status), "{error:?}");
            assert_eq!(failure.message, error.to_string());
        }
    }
}
