//! Publishing a job's events. Each kind of event has a fixed sequence number, so a job that is run again after a
//! worker crash emits the same numbers for the same events and the API node can drop what it already forwarded.
//!
//! | event                      | seq |
//! |----------------------------|-----|
//! | progress `analyzing`       | 1   |
//! | progress `generating_sql`  | 2   |
//! | progress `executing`       | 3   |
//! | result                     | 4   |
//! | visualization              | 5   |
//! | done / error (terminal)    | 6   |

use querygpt_bus::{Bus, BusError};
use querygpt_common::ErrorCode;
use querygpt_common::messages::{ChatEvent, JobEvent, MESSAGE_VERSION, QueryJob, Stage};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// Sequence number of the terminal event (`done` or `error`).
pub const TERMINAL_SEQ: u32 = 6;

fn seq_of(event: &ChatEvent) -> u32 {
    match event {
        ChatEvent::Progress { stage: Stage::Analyzing, .. } => 1,
        ChatEvent::Progress { stage: Stage::GeneratingSql, .. } => 2,
        ChatEvent::Progress { stage: Stage::Executing, .. } => 3,
        ChatEvent::Result { .. } => 4,
        ChatEvent::Visualization { .. } => 5,
        ChatEvent::Error { .. } | ChatEvent::Done { .. } => TERMINAL_SEQ,
    }
}

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
        let seq = seq_of(&event);
        self.bus.publish_event(&self.subject, &JobEvent { v: MESSAGE_VERSION, job_id: self.job_id, seq, event }).await
    }

    /// A `progress` event; the first one also tells the client its conversation id (needed for `/chat/stop`).
    pub async fn progress(&self, stage: Stage) -> Result<(), BusError> {
        let conversation_id = (stage == Stage::Analyzing).then_some(self.conversation_id);
        self.publish(ChatEvent::Progress { stage, message: stage.message(self.language).to_string(), conversation_id })
            .await
    }

    /// The whole answer: result, optional chart, done.
    pub async fn answer(&self, result: ChatEvent, chart: Option<Value>, message_id: Uuid) -> Result<(), BusError> {
        self.publish(result).await?;
        if let Some(chart) = chart {
            self.publish(ChatEvent::Visualization { chart }).await?;
        }
        self.publish(ChatEvent::Done { conversation_id: self.conversation_id, message_id }).await
    }

    pub async fn error(&self, code: ErrorCode, message: String, details: Option<Value>) -> Result<(), BusError> {
        self.publish(ChatEvent::Error { code, message, details }).await
    }
}
