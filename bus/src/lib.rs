//! The bus between API nodes and workers, behind one trait with two implementations:
//! NATS JetStream (production, any number of processes) and an in-process one (embedded mode, one process).
//!
//! - Jobs are durable and delivered to exactly one worker at a time, at least once: a worker acks a job when its
//!   answer is stored and published; a worker that dies lets the job be redelivered after the ack wait.
//! - Events are fire-and-forget messages addressed to the API node that holds the job's SSE stream.
//! - Cancellations are broadcast to every node.

mod in_process;
mod nats;

pub use in_process::{InProcessBus, InProcessOptions};
pub use nats::{
    DEAD_DELIVERIES_HEADER, DEAD_LETTER_MAX_AGE, DEAD_REASON_HEADER, DEAD_SEQUENCE_HEADER, NatsBus, NatsJobOptions,
    WORKERS_CONSUMER, dead_letter_stream,
};

use async_trait::async_trait;
use futures::stream::BoxStream;
use querygpt_common::messages::{CancelRequest, JobEvent, QueryJob};
use std::time::Duration;

/// Window in which a second submission of the same job id is dropped (`Bus::submit_job`).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Errors of the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot reach the message bus: {0}")]
    Unavailable(String),
    #[error("the job queue did not accept the job: {0}")]
    Rejected(String),
    #[error("bus error: {0}")]
    Other(String),
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

/// A job handed to a worker.
pub struct JobDelivery {
    pub job: QueryJob,
    /// 1 for the first delivery, 2 after one redelivery, ...
    pub attempt: u64,
    pub acker: Box<dyn JobAcker>,
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

    /// Publishes one event to `subject` (the job's `events_subject`).
    async fn publish_event(&self, subject: &str, event: &JobEvent) -> Result<(), BusError>;

    /// Events addressed to API node `node_id` (all its jobs, one subscription).
    async fn subscribe_events(&self, node_id: &str) -> Result<BoxStream<'static, JobEvent>, BusError>;

    /// Broadcasts a cancellation to every node.
    async fn publish_cancel(&self, cancel: &CancelRequest) -> Result<(), BusError>;

    /// Cancellations published by anyone, including this node.
    async fn subscribe_cancels(&self) -> Result<BoxStream<'static, CancelRequest>, BusError>;

    /// The subject to put in a job's `events_subject` for API node `node_id`.
    fn events_subject(&self, node_id: &str, job_id: uuid::Uuid) -> String;

    /// Flushes what this node published (graceful shutdown).
    async fn flush(&self) -> Result<(), BusError>;
}
