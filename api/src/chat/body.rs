//! The SSE body of a question, live or resumed: events in sequence order without duplicates, each with the id
//! `<job_id>:<seq>`, ending after the terminal event, on timeout, or on shutdown.
//!
//! A stream that breaks does not cancel its job at once: the client has `jobs.resume_grace_secs` to come back with
//! `Last-Event-ID` (to this node or any other), and only a job nobody resumed is cancelled.

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use querygpt_common::ErrorCode;
use querygpt_common::messages::{CancelReason, CancelRequest, ChatEvent, JobEvent};
use querygpt_common::telemetry::SSE_STREAMS_OPEN;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

/// The shared-state key naming the owner of a job, so that any node can check who may resume its stream.
pub(super) fn owner_key(job_id: Uuid) -> String {
    format!("chat:job-owner:{job_id}")
}

/// What the owner key holds: whose job it is, and its conversation.
pub(super) struct Owner {
    pub user_id: Uuid,
    pub conversation_id: Uuid,
}

impl Owner {
    pub(super) fn encode(&self) -> [u8; 32] {
        let mut bytes = [0; 32];
        bytes[..16].copy_from_slice(self.user_id.as_bytes());
        bytes[16..].copy_from_slice(self.conversation_id.as_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<Owner> {
        let (user, conversation) = (bytes.get(..16)?, bytes.get(16..32)?);
        Some(Owner { user_id: Uuid::from_slice(user).ok()?, conversation_id: Uuid::from_slice(conversation).ok()? })
    }
}

/// The shared-state key that says a job's stream was resumed: its first stream's departure does not cancel it.
fn resumed_key(job_id: Uuid) -> String {
    format!("chat:job-resumed:{job_id}")
}

/// `Last-Event-ID` parsed: the job and the last sequence number the client has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ResumePoint {
    pub job_id: Uuid,
    pub seq: u32,
}

impl ResumePoint {
    /// `<job_id>:<seq>`, as this service writes event ids.
    pub(super) fn parse(text: &str) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::invalid_field(
                "last_event_id",
                "invalid",
                "Last-Event-ID must be the `id` of an event of this API: `<job_id>:<seq>`",
            )
        };
        let (job_id, seq) = text.trim().split_once(':').ok_or_else(invalid)?;
        Ok(ResumePoint { job_id: job_id.parse().map_err(|_| invalid())?, seq: seq.parse().map_err(|_| invalid())? })
    }
}

/// Who a stream is for, and what its departure should do.
pub(super) struct StreamGuard {
    pub state: Arc<AppState>,
    pub job_id: Uuid,
    pub user_id: Uuid,
    pub conversation_id: Uuid,
    /// The job ended (or goes on by design): nothing to cancel.
    pub finished: bool,
    /// The user's open-stream slot, given back with the stream (a resumed stream takes none).
    pub _slot: Option<super::OpenSlot>,
}

impl StreamGuard {
    /// The guard of a stream that opens now (counted in `querygpt_sse_streams_open` until it drops).
    pub fn open(
        state: Arc<AppState>,
        job_id: Uuid,
        user_id: Uuid,
        conversation_id: Uuid,
        slot: Option<super::OpenSlot>,
    ) -> StreamGuard {
        metrics::gauge!(SSE_STREAMS_OPEN).increment(1);
        StreamGuard { state, job_id, user_id, conversation_id, finished: false, _slot: slot }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        metrics::gauge!(SSE_STREAMS_OPEN).decrement(1);
        self.state.chat.streams.remove(&self.job_id);
        if self.finished {
            return;
        }
        let cancel =
            CancelRequest::new(self.user_id, self.conversation_id, Some(self.job_id), CancelReason::ClientGone);
        let state = self.state.clone();
        let grace = Duration::from_secs(state.settings.jobs.resume_grace_secs);
        let job_id = self.job_id;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // A resumed stream wants the answer: leave the job alone. When the shared state cannot say, cancelling
            // would lose an answer the client may still be waiting for, so the job goes on.
            match state.shared.get(&resumed_key(job_id)).await {
                Ok(None) => {}
                Ok(Some(_)) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot tell whether a stream was resumed; its job goes on");
                    return;
                }
            }
            if let Err(e) = state.bus.publish_cancel(&cancel).await {
                tracing::warn!(error = %e, "cannot cancel the job of a departed client");
            }
        });
    }
}

/// The SSE response for `events`, sent from after sequence `after` on.
pub(super) fn response(
    events: BoxStream<'static, JobEvent>,
    guard: StreamGuard,
    after: u32,
    shutdown: CancellationToken,
) -> Response {
    let timeout = Duration::from_secs(guard.state.settings.jobs.stream_timeout_secs);
    Sse::new(event_stream(events, guard, after, timeout, shutdown)).keep_alive(KeepAlive::default()).into_response()
}

/// Marks `job_id` as resumed (its first stream's departure will not cancel it) and returns its events (all of
/// them: the body skips those up to the resume point) with its conversation, once the caller is known to own it.
/// `NOT_FOUND` for a job that is unknown, too old or another user's.
pub(super) async fn resume(
    state: &Arc<AppState>,
    user_id: Uuid,
    point: ResumePoint,
) -> Result<(BoxStream<'static, JobEvent>, Uuid), ApiError> {
    let unavailable = |e: querygpt_cache::CacheError| {
        tracing::error!(error = %e, "cannot check who owns a job");
        ApiError::Unavailable {
            reason: "shared_state_unavailable",
            message: "cannot resume the stream right now (the shared state is unreachable); try again".into(),
        }
    };
    let owner = state.shared.get(&owner_key(point.job_id)).await.map_err(unavailable)?;
    let Some(owner) = owner.as_deref().and_then(Owner::decode).filter(|owner| owner.user_id == user_id) else {
        return Err(ApiError::NotFound(
            "no stream to resume for this Last-Event-ID (unknown, expired or not yours); the answer, if any, is in \
             the conversation"
                .into(),
        ));
    };
    let ttl = querygpt_bus::EVENTS_MAX_AGE;
    state.shared.set(&resumed_key(point.job_id), b"1", ttl).await.map_err(unavailable)?;
    Ok((state.bus.replay_events(point.job_id).await?, owner.conversation_id))
}

/// State of one SSE body.
struct StreamState {
    events: BoxStream<'static, JobEvent>,
    guard: StreamGuard,
    last_seq: u32,
    ended: bool,
    deadline: tokio::time::Instant,
    shutdown: CancellationToken,
}

fn event_stream(
    events: BoxStream<'static, JobEvent>,
    guard: StreamGuard,
    after: u32,
    timeout: Duration,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let state = StreamState { events, guard, last_seq: after, ended: false, deadline, shutdown };
    futures::stream::unfold(state, |mut st| async move {
        if st.ended {
            return None;
        }
        loop {
            let job_id = st.guard.job_id;
            // `None`: the node is shutting down, and the client should resume elsewhere.
            let next = tokio::select! {
                event = st.events.next() => match event {
                    Some(event) => {
                        // The job ended by itself, or by a stop that every worker has received: nothing to cancel.
                        st.guard.finished |= event.event.is_terminal();
                        Some(event)
                    }
                    None => return None,
                },
                // The guard stays unfinished: dropping it cancels the abandoned job.
                _ = tokio::time::sleep_until(st.deadline) => Some(JobEvent::new(
                    job_id,
                    ChatEvent::error(ErrorCode::InternalError, "no answer in time; the query was abandoned"),
                )),
                _ = st.shutdown.cancelled() => {
                    // The job goes on; the client resumes its stream on another node.
                    st.guard.finished = true;
                    None
                }
            };
            let Some(event) = next else {
                st.ended = true;
                return Some((Ok(reconnect_event()), st));
            };
            if event.seq <= st.last_seq {
                continue;
            }
            st.last_seq = event.seq;
            st.ended = event.event.is_terminal();
            let sse = Event::default()
                .event(event.event.name())
                .id(format!("{job_id}:{}", event.seq))
                .json_data(&event.event)
                .expect("chat events always serialize");
            return Some((Ok(sse), st));
        }
    })
}

/// The last event of a stream cut by a shutdown: not an answer, and without an `id`, so that the client's
/// `Last-Event-ID` stays the last real event.
fn reconnect_event() -> Event {
    Event::default().event("reconnect").data(
        r#"{"type":"reconnect","message":"this server is restarting: reconnect with Last-Event-ID to get the rest of the answer"}"#,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_points_are_job_and_sequence() {
        let job = Uuid::new_v4();
        assert_eq!(ResumePoint::parse(&format!(" {job}:12 ")).unwrap(), ResumePoint { job_id: job, seq: 12 });
        for bad in ["12", "x:1", &format!("{job}:"), &format!("{job}:-1"), ""] {
            assert!(ResumePoint::parse(bad).is_err(), "{bad}");
        }
    }
}
