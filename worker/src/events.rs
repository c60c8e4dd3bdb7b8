//! Publishing a job's events, each under its fixed sequence number (see [`JobEvent`]).

use querygpt_bus::{Bus, BusError};
use querygpt_common::ErrorCode;
use querygpt_common::messages::{ChatEvent, JobEvent, QueryJob, Stage};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// Publishes the events of one job to the API node that streams them.
pub struct EventSink {
    bus: Arc<dyn Bus>,
    subject: String,
    job_id: Uuid,
    conversation_id: Uuid,
    language: querygpt_common::Language,
}

impl EventSink {
    pub fn new(bus: Arc<dyn Bus>, job: &QueryJob) -> Self {
        EventSink {
            bus,
            subject: job.events_subject.clone(),
            job_id: job.job_id,
            conversation_id: job.conversation_id,
            language: job.language,
        }
    }

    /// Publishes `event` under its fixed sequence number.
    pub async fn publish(&self, event: ChatEvent) -> Result<(), BusError> {
        self.bus.publish_event(&self.subject, &JobEvent::new(self.job_id, event)).await
    }

    /// A `progress` event of `attempt` (1 for the first, and for `analyzing`); the first event also tells the
    /// client its conversation id (needed for `/chat/stop`).
    pub async fn progress(&self, stage: Stage, attempt: u32) -> Result<(), BusError> {
        let analyzing = stage == Stage::Analyzing;
        let conversation_id = analyzing.then_some(self.conversation_id);
        let message = stage.message(self.language, attempt);
        let attempt = (!analyzing).then_some(attempt);
        self.publish(ChatEvent::Progress { stage, message, conversation_id, attempt }).await
    }

    /// The whole answer: result, optional chart, done, in one batch whose acks are awaited together. `Ok` means the
    /// bus holds all of them: the job may be acked.
    pub async fn answer(&self, result: ChatEvent, chart: Option<Value>, message_id: Uuid) -> Result<(), BusError> {
        let done = ChatEvent::Done { conversation_id: self.conversation_id, message_id };
        let events: Vec<JobEvent> = [Some(result), chart.map(|chart| ChatEvent::Visualization { chart }), Some(done)]
            .into_iter()
            .flatten()
            .map(|event| JobEvent::new(self.job_id, event))
            .collect();
        self.bus.publish_events(&self.subject, &events).await
    }

    /// An `error` event, its message in the question's language (see `localize`).
    pub async fn error(&self, code: ErrorCode, message: String, details: Option<Value>) -> Result<(), BusError> {
        let (message, details) = crate::localize::error(self.language, code, message, details);
        self.publish(ChatEvent::Error { code, message, details }).await
    }
}
