//! The job loop: bounded concurrency, progress acks, cancellation and graceful shutdown.

use crate::cancel::CancelRegistry;
use crate::events::EventSink;
use crate::job::{Failure, JobContext};
use crate::measure;
use crate::pool;
use crate::requests::RequestHandler;
use crate::schemas::Schemas;
use futures::StreamExt;
use querygpt_bus::{Bus, BusError, ExhaustedJob, JobDelivery};
use querygpt_cache::SharedCache;
use querygpt_common::config::{JobSettings, WorkerSettings};
use querygpt_common::messages::ChatEvent;
use querygpt_common::{ErrorCode, error_chain};
use querygpt_llm::{LlmClient, LlmError};
use querygpt_store::Store;
use querygpt_targets::Targets;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Jobs taken from the bus but not started yet, at most. Small, because a buffered job ages against the ack wait.
const MAX_PREFETCH: usize = 64;
/// How long in-flight jobs and requests may run on after shutdown is requested before they are given back to the
/// queue (jobs) or dropped (requests, which then time out at their API node).
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// What a worker needs from the outside world.
pub struct WorkerDeps {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn Bus>,
    pub llm: LlmClient,
    pub targets: Targets,
    /// Where schemas are kept for every worker (`worker.schema_cache_ttl_secs`).
    pub cache: Arc<dyn SharedCache>,
    pub settings: WorkerSettings,
    pub jobs: JobSettings,
}

/// A worker process's job runner and request server. Run it with [`Worker::run`].
pub struct Worker {
    context: JobContext,
    requests: Arc<RequestHandler>,
    bus: Arc<dyn Bus>,
    cancels: CancelRegistry,
    concurrency: usize,
    jobs: JobSettings,
}

/// How a job's run ended.
enum Outcome {
    Finished(Result<(), Failure>),
    /// A user or a departed client stopped it.
    Cancelled,
    /// The worker is shutting down: the job goes back to the queue for another worker.
    Interrupted,
}

impl Worker {
    /// Fails only when the HTTP client of model tests cannot be built.
    pub fn new(deps: WorkerDeps) -> Result<Arc<Self>, LlmError> {
        let targets = Arc::new(deps.targets);
        let ttl = Duration::from_secs(deps.settings.schema_cache_ttl_secs);
        let schemas = Schemas::new(targets.clone(), deps.cache, ttl);
        let requests =
            RequestHandler::new(deps.store.clone(), targets.clone(), schemas.clone(), &deps.llm, &deps.settings)?;
        Ok(Arc::new(Worker {
            concurrency: deps.settings.concurrency,
            context: JobContext::new(deps.store, deps.llm, targets, schemas, deps.settings),
            requests: Arc::new(requests),
            bus: deps.bus,
            cancels: CancelRegistry::default(),
            jobs: deps.jobs,
        }))
    }

    /// Takes and runs jobs, and answers worker requests, until `shutdown` is cancelled; then lets in-flight jobs and
    /// requests finish for a grace period and gives the remaining jobs back to the queue.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), BusError> {
        self.start(shutdown).await?.await
    }

    /// Subscribes to jobs, requests and cancellations, and returns the loop of [`Worker::run`]. Once this returns,
    /// the worker is listening: a process that also serves the API can open its port without a first request
    /// finding no worker.
    pub async fn start(
        self: Arc<Self>,
        shutdown: CancellationToken,
    ) -> Result<impl Future<Output = Result<(), BusError>> + Send + 'static, BusError> {
        let deliveries = self.bus.job_deliveries(self.concurrency.min(MAX_PREFETCH)).await?;
        let requests = self.bus.worker_requests().await?;
        let mut cancels = self.bus.subscribe_cancels().await?;
        let cancel_listener = {
            let worker = self.clone();
            tokio::spawn(async move {
                while let Some(cancel) = cancels.next().await {
                    worker.cancels.apply(cancel);
                }
            })
        };
        let mut exhausted = self.bus.exhausted_jobs().await?;
        let exhausted_listener = {
            let worker = self.clone();
            tokio::spawn(async move {
                while let Some(given_up) = exhausted.next().await {
                    let worker = worker.clone();
                    tokio::spawn(async move { worker.last_word(given_up).await });
                }
            })
        };
        tracing::info!(concurrency = self.concurrency, "worker started");
        Ok(async move {
            let jobs = pool::run_bounded(
                "jobs",
                deliveries,
                self.concurrency,
                &shutdown,
                SHUTDOWN_GRACE,
                |delivery, abort| {
                    let worker = self.clone();
                    let span = querygpt_telemetry::job_span(&delivery.job.job_id, delivery.attempt, delivery.job.trace);
                    async move { worker.handle(delivery, abort).await }.instrument(span)
                },
            );
            let requests = self.requests.clone().serve(requests, &shutdown);
            tokio::join!(jobs, requests);
            cancel_listener.abort();
            exhausted_listener.abort();
            self.bus.flush().await
        })
    }

    async fn handle(&self, delivery: JobDelivery, abort: CancellationToken) {
        let JobDelivery { job, attempt, acker } = delivery;
        let _running = measure::Running::start(attempt);
        let job = Arc::new(job);
        let sink = EventSink::new(self.bus.clone(), &job);

        let outcome = match self.cancels.start(job.clone()) {
            None => Outcome::Cancelled,
            Some(running) => {
                // Keep the job ours while it runs: a progress ack restarts the ack-wait clock.
                let heartbeat_every = Duration::from_secs(self.jobs.ack_wait_secs.max(3) / 3);
                let heartbeat = async {
                    loop {
                        tokio::time::sleep(heartbeat_every).await;
                        if let Err(e) = acker.in_progress().await {
                            tracing::warn!(error = error_chain(&e), "progress ack failed");
                        }
                    }
                };
                tokio::select! {
                    result = self.context.answer(&job, attempt, &sink) => Outcome::Finished(result),
                    _ = running.token.cancelled() => Outcome::Cancelled,
                    _ = abort.cancelled() => Outcome::Interrupted,
                    never = heartbeat => never,
                }
            }
        };

        let (outcome_name, settled) = match outcome {
            Outcome::Finished(Ok(())) => ("acked", acker.ack().await),
            Outcome::Finished(Err(Failure::User { code, message, details })) => {
                tracing::info!(%code, %message, "job answered with an error");
                match publish_error(&sink, code, message, details).await {
                    Ok(()) => ("acked", acker.ack().await),
                    // Unacked, it comes back and the client is told then: an answer is never lost on the way.
                    Err(()) => ("retried", acker.retry_later(Duration::from_secs(1)).await),
                }
            }
            Outcome::Finished(Err(Failure::Transient(cause))) if !self.jobs.is_last_delivery(attempt) => {
                tracing::warn!(reason = format!("{cause:#}"), "job failed on infrastructure; it will be retried");
                ("retried", acker.retry_later(Duration::from_secs(2u64.pow(attempt.min(5) as u32))).await)
            }
            Outcome::Finished(Err(Failure::Transient(cause))) => {
                let reason = format!("{cause:#}");
                tracing::error!(%reason, "job failed on its last delivery");
                let details = serde_json::json!({"reason": "deliveries_exhausted", "deliveries": attempt});
                let message = "the service could not answer on any delivery; try again".into();
                // Told or not (the bus is failing too), the job goes: it has had all its deliveries.
                let _ = publish_error(&sink, ErrorCode::InternalError, message, Some(details)).await;
                ("dead_lettered", acker.dead_letter(&reason).await)
            }
            Outcome::Cancelled => {
                // The API node has already ended the stream with `CANCELLED`; this one is for a resumed stream.
                if let Err(e) = sink.publish(ChatEvent::stopped(job.language)).await {
                    tracing::warn!(error = error_chain(&e), "could not publish the stop");
                }
                ("acked", acker.ack().await)
            }
            Outcome::Interrupted => ("retried", acker.retry_later(Duration::ZERO).await),
        };
        measure::settled(outcome_name);
        if let Err(e) = settled {
            tracing::warn!(error = error_chain(&e), "could not settle the job with the bus; it may be delivered again");
        }
    }
}

impl Worker {
    /// Tells the client of a job the bus gave up on (its worker died on the last delivery): the answer, if that
    /// delivery stored one before it died, else an `error` with `details.reason = "deliveries_exhausted"`. So a
    /// stored answer is never reported as a failure.
    async fn last_word(&self, given_up: ExhaustedJob) {
        let job = given_up.job;
        let sink = EventSink::new(self.bus.clone(), &job);
        match self.context.resend_stored(&job, &sink).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(failure) => tracing::warn!(job_id = %job.job_id, ?failure, "cannot look for the stored answer"),
        }
        let details = serde_json::json!({"reason": "deliveries_exhausted", "deliveries": given_up.deliveries});
        let message = "the service could not answer on any delivery; try again".into();
        let _ = publish_error(&sink, ErrorCode::InternalError, message, Some(details)).await;
    }
}

/// Publishes the `error` event of a job; `Err` (logged) when the bus did not take it.
async fn publish_error(
    sink: &EventSink,
    code: ErrorCode,
    message: String,
    details: Option<serde_json::Value>,
) -> Result<(), ()> {
    sink.error(code, message, details).await.map_err(|e| {
        tracing::warn!(error = error_chain(&e), "could not publish the error event");
    })
}
