//! The bus between API nodes and workers, behind one trait with two implementations:
//! NATS JetStream (production, any number of processes) and an in-process one (embedded mode, one process).
//!
//! - Jobs are durable and delivered to exactly one worker at a time, at least once: a worker acks a job when its
//!   answer is stored and published; a worker that dies lets the job be redelivered after the ack wait.
//! - Events are addressed to the API node that holds the job's SSE stream, and kept for a while so that a stream
//!   can resume on any node. An answer's events, once published, survive a reconnect of either side.
//! - Cancellations are broadcast to every node.
//! - Worker requests (model and connection tests, schemas) go to exactly one listening worker, which answers the
//!   waiting API node directly; with no worker listening the API node knows at once.

mod in_process;
mod nats;

pub use in_process::{InProcessBus, InProcessOptions};
pub use nats::{
    DEAD_DELIVERIES_HEADER, DEAD_LETTER_MAX_AGE, DEAD_REASON_HEADER, DEAD_SEQUENCE_HEADER, NatsBus, NatsJobOptions,
    WORKERS_CONSUMER, dead_letter_stream,
};

use async_trait::async_trait;
use futures::stream::BoxStream;
use querygpt_common::messages::{CancelRequest, JobEvent, QueryJob, WorkerReply, WorkerRequest};
use std::time::Duration;

/// A job that ran out of deliveries (see [`Bus::exhausted_jobs`]).
#[derive(Debug, Clone)]
pub struct ExhaustedJob {
    pub job: QueryJob,
    /// How many times it was delivered, when the bus knows.
    pub deliveries: Option<u64>,
}

/// Window in which a second submission of the same job id is dropped (`Bus::submit_job`).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long events are kept for a client to resume its stream ([`Bus::replay_events`]).
pub const EVENTS_MAX_AGE: Duration = Duration::from_secs(15 * 60);

/// What caused a bus failure: kept as the error's `source()`, so logs show it and callers can look into it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the bus. `Display` names the failure; its cause, when there is one, is the `source()`.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus cannot be reached, or it did not confirm an operation.
    #[error("cannot reach the message bus: {context}")]
    Unavailable {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The job queue refused a job.
    #[error("the job queue did not accept the job: {context}")]
    Rejected {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The job queue holds as many jobs as it may (`jobs.max_pending`): the job was not queued.
    #[error("the job queue is full")]
    QueueFull,
    /// No worker listens for requests (known at once, not after a timeout).
    #[error("no worker is listening for requests")]
    NoResponders,
    /// A worker had the request, but no reply came within the time given.
    #[error("no worker answered within {0:?}")]
    TimedOut(Duration),
    #[error("bus error: {context}")]
    Other {
        context: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl BusError {
    /// [`BusError::Unavailable`] because of `source` (an error, or a text when the cause is not an error value).
    pub fn unavailable(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        BusError::Unavailable { context: context.into(), source: Some(source.into()) }
    }

    /// [`BusError::Rejected`] because of `source`.
    pub fn rejected(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        BusError::Rejected { context: context.into(), source: Some(source.into()) }
    }

    /// [`BusError::Other`] because of `source`.
    pub fn other(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        BusError::Other { context: context.into(), source: Some(source.into()) }
    }
}

/// Acknowledgement handle of one delivered job.
#[async_trait]
pub trait JobAcker: Send + Sync {
    /// The job is finished: remove it from the queue.
    async fn ack(&self) -> Result<(), BusError>;
    /// Still working: restart the ack-wait clock (sent during long LLM calls).
    async fn in_progress(&self) -> Result<(), BusError>;
    /// Give the job back to be redelivered after `delay` (graceful shutdown, transient failure).
    async fn retry_later(&self, delay: Duration) -> Result<(), BusError>;
    /// Never deliver it again; a copy goes to the dead-letter subject first.
    async fn dead_letter(&self, reason: &str) -> Result<(), BusError>;
}

/// The state of the job queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepth {
    /// Queued, not yet delivered to any worker.
    pub pending: u64,
    /// Delivered to a worker and not settled yet.
    pub unacked: u64,
}

/// A job handed to a worker.
pub struct JobDelivery {
    pub job: QueryJob,
    /// 1 for the first delivery, 2 after one redelivery, ...
    pub attempt: u64,
    pub acker: Box<dyn JobAcker>,
}

/// Sends the reply to one [`WorkerRequest`]. Dropping it without replying leaves the requester waiting until its
/// timeout, on every backend.
#[async_trait]
pub trait Replier: Send + Sync {
    async fn reply(self: Box<Self>, reply: &WorkerReply) -> Result<(), BusError>;
}

/// A request handed to a worker, with the way back to the API node that waits for it.
pub struct WorkerRequestDelivery {
    pub request: WorkerRequest,
    pub replier: Box<dyn Replier>,
}

/// The bus. Cheap to share behind an `Arc`.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Enqueues a job durably; returns once the queue has accepted it. Submitting the same `job_id` twice within
    /// the dedup window enqueues it once.
    async fn submit_job(&self, job: &QueryJob) -> Result<(), BusError>;

    /// Jobs for this worker. At most `prefetch` undelivered jobs are buffered locally (they age against the ack
    /// wait while they wait). Malformed jobs are dead-lettered inside the bus and never yielded.
    async fn job_deliveries(&self, prefetch: usize) -> Result<BoxStream<'static, JobDelivery>, BusError>;

    /// How many jobs wait in the queue and how many are out with workers (for metrics and autoscaling).
    async fn job_queue(&self) -> Result<QueueDepth, BusError>;

    /// Publishes one event to `subject` (the job's `events_subject`). Once a terminal event (`done`, `error`) or an
    /// answer's `result` / `visualization` is published, it reaches its API node even across a reconnect of either
    /// side (NATS: it is stored in the events stream, and the publish ack awaited). Progress events are sent
    /// without waiting.
    async fn publish_event(&self, subject: &str, event: &JobEvent) -> Result<(), BusError>;

    /// Publishes `events` in order, as [`Bus::publish_event`] would one by one, but waiting for the bus only once
    /// (the acks of a batch are awaited together).
    async fn publish_events(&self, subject: &str, events: &[JobEvent]) -> Result<(), BusError> {
        for event in events {
            self.publish_event(subject, event).await?;
        }
        Ok(())
    }

    /// Events addressed to API node `node_id` (all its jobs, one subscription). On NATS the subscription survives
    /// a server restart without losing a stored event: it resumes after the last event it delivered.
    async fn subscribe_events(&self, node_id: &str) -> Result<BoxStream<'static, JobEvent>, BusError>;

    /// Every event of job `job_id` still kept (NATS: the last [`EVENTS_MAX_AGE`]), from its first, then the ones
    /// that follow, whichever API node they were addressed to: how a client resumes its stream on another node.
    async fn replay_events(&self, job_id: uuid::Uuid) -> Result<BoxStream<'static, JobEvent>, BusError>;

    /// Jobs given up after their last delivery ended without a word (the worker died), in this process, once
    /// each job is dead-lettered: a worker tells their clients, after looking for an answer the last delivery may
    /// have stored. (A worker that fails a job on its last delivery tells the client itself.) On NATS only a
    /// process that takes jobs sees them, and every such process does.
    async fn exhausted_jobs(&self) -> Result<BoxStream<'static, ExhaustedJob>, BusError>;

    /// Broadcasts a cancellation to every node.
    async fn publish_cancel(&self, cancel: &CancelRequest) -> Result<(), BusError>;

    /// Cancellations published by anyone, including this node.
    async fn subscribe_cancels(&self) -> Result<BoxStream<'static, CancelRequest>, BusError>;

    /// The subject to put in a job's `events_subject` for API node `node_id`.
    fn events_subject(&self, node_id: &str, job_id: uuid::Uuid) -> String;

    /// Sends `request` to one worker and waits up to `timeout` for its reply. `BusError::NoResponders` at once when
    /// no worker listens; `BusError::TimedOut` when none answered in time.
    async fn request_worker(&self, request: &WorkerRequest, timeout: Duration) -> Result<WorkerReply, BusError>;

    /// Requests for this worker; each request goes to exactly one of the workers listening. Listening starts before
    /// this returns; dropping the stream stops it. Malformed requests are logged and dropped (answered with a
    /// `Failed` reply when the requester can be told).
    async fn worker_requests(&self) -> Result<BoxStream<'static, WorkerRequestDelivery>, BusError>;

    /// Flushes what this node published and waits for the server to confirm it: one round trip, so it also tells
    /// whether the bus answers (graceful shutdown, readiness probes).
    async fn flush(&self) -> Result<(), BusError>;
}

/// The messages of a broadcast receiver; those a slow listener missed are logged (as `what`) and skipped.
fn broadcast_stream<T: Clone + Send + 'static>(
    receiver: tokio::sync::broadcast::Receiver<T>,
    what: &'static str,
) -> BoxStream<'static, T> {
    use futures::StreamExt;
    use tokio_stream::wrappers::{BroadcastStream, errors::BroadcastStreamRecvError};
    BroadcastStream::new(receiver)
        .filter_map(move |received| {
            futures::future::ready(match received {
                Ok(item) => Some(item),
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "{what} listener lagged; messages lost");
                    None
                }
            })
        })
        .boxed()
}
