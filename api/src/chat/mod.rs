//! The chat API: `GET /chat/stream` (SSE) and `POST /chat/stop`.
//!
//! A question becomes a [`QueryJob`] on the bus; the job's events come back to this node on one subscription
//! ([`ChatHub::run`]) and are routed to the stream that waits for them. The stream drops events it has already
//! sent (a job re-run after a worker crash repeats them), ends after `done` or `error`, and cancels the job when
//! the client goes away and does not come back ([`body`]). A request with `Last-Event-ID` resumes a stream
//! instead, on whichever node it reaches, from the events the bus keeps.

use crate::AppState;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResponse};
use crate::extract::{ValidJson, ValidQuery};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use futures::StreamExt;
use querygpt_bus::Bus;
use querygpt_common::messages::{
    CancelReason, CancelRequest, ChatEvent, JobEvent, QueryJob, Question, RecordRevisions,
};
use querygpt_common::telemetry::{self, TraceParent};
use querygpt_store::{Model, QuestionRefs};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::openapi::{CommonErrors, Envelope, RateLimitedError};
use body::{ResumePoint, StreamGuard};

mod body;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Longest question accepted, in characters.
const MAX_QUESTION_CHARS: usize = 4000;
/// Events buffered per stream: a job emits at most six.
const STREAM_BUFFER: usize = 16;

/// A stream waiting for its job's events.
struct LiveStream {
    job: QueryJob,
    /// Boxed: a channel allocates its slots in blocks of 32, and an unboxed event (a `result` inline) is about
    /// 300 bytes, which made the buffer the largest part of an idle stream (about 9 KB).
    events: mpsc::Sender<Box<JobEvent>>,
}

/// Routes the events addressed to this node to the SSE streams waiting for them.
pub struct ChatHub {
    streams: DashMap<Uuid, LiveStream>,
    /// Open question streams per user (`jobs.max_streams_per_user`).
    open_per_user: DashMap<Uuid, usize>,
    /// Ends every open stream on graceful shutdown (idle SSE streams would otherwise hold it up).
    shutdown: CancellationToken,
}

impl ChatHub {
    pub fn new(shutdown: CancellationToken) -> Self {
        ChatHub { streams: DashMap::new(), open_per_user: DashMap::new(), shutdown }
    }

    /// Forwards this node's job events and everyone's cancellations to the open streams until shutdown.
    pub async fn run(&self, bus: Arc<dyn Bus>, node_id: &str) -> Result<(), querygpt_bus::BusError> {
        let mut events = bus.subscribe_events(node_id).await?;
        let mut cancels = bus.subscribe_cancels().await?;
        loop {
            tokio::select! {
                Some(event) = events.next() => self.route(event),
                Some(cancel) = cancels.next() => self.stop_matching(&cancel),
                _ = self.shutdown.cancelled() => return Ok(()),
                else => return Ok(()),
            }
        }
    }

    fn route(&self, event: JobEvent) {
        if let Some(stream) = self.streams.get(&event.job_id) {
            // A full or closed buffer means the client is gone; its drop guard cleans up.
            let _ = stream.events.try_send(Box::new(event));
        }
    }

    /// Takes one of `user_id`'s `max` stream slots on this node (0: no limit), or says how many are open.
    fn admit(&self, user_id: Uuid, max: usize) -> Result<(), usize> {
        let mut open = self.open_per_user.entry(user_id).or_insert(0);
        if max > 0 && *open >= max {
            return Err(*open);
        }
        *open += 1;
        Ok(())
    }

    fn release(&self, user_id: Uuid) {
        if let Some(mut open) = self.open_per_user.get_mut(&user_id) {
            *open = open.saturating_sub(1);
        }
        self.open_per_user.remove_if(&user_id, |_, open| *open == 0);
    }

    /// Ends the streams of the conversation a user stopped, at once, whichever node the stop reached.
    fn stop_matching(&self, cancel: &CancelRequest) {
        if cancel.reason != CancelReason::UserStopped {
            return;
        }
        for stream in self.streams.iter().filter(|s| cancel.matches(&s.job)) {
            let stopped = JobEvent::new(stream.job.job_id, ChatEvent::stopped(stream.job.language));
            let _ = stream.events.try_send(Box::new(stopped));
        }
    }
}

pub(crate) fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(stream)).routes(routes!(stop))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamParams {
    /// The question (required).
    query: Option<String>,
    /// A model's id, its `model_id` (e.g. `gpt-4o`) or its name; default: the user's default model.
    model: Option<String>,
    /// Continue this conversation; default: a new one.
    conversation_id: Option<String>,
    /// Default: the conversation's connection, else the user's default connection.
    connection_id: Option<String>,
    /// `zh` or `en`; default: the user's `language` setting.
    language: Option<String>,
    /// Resume a stream after this event `id` (`<job_id>:<seq>`) instead of asking: the same as a `Last-Event-ID`
    /// header, for clients that cannot set one. `query` is then ignored.
    last_event_id: Option<String>,
}

/// Asks a question and streams its answer as Server-Sent Events: `progress` (analyzing, generating_sql,
/// executing), `result`, `visualization`, then `done` or `error`. Each event has an `id:` (`<job_id>:<seq>`):
/// with it as `Last-Event-ID` (or `last_event_id`), the request resumes that stream on any node instead.
/// A stream cut by a server restart ends with a `reconnect` event.
#[utoipa::path(get, path = "/chat/stream", tag = "chat", security(("bearer" = [])), params(StreamParams),
    responses((status = 200, description = "The event stream", content_type = "text/event-stream", body = String),
        CommonErrors, RateLimitedError))]
async fn stream(
    State(state): State<Arc<AppState>>,
    user: AuthUser,
    headers: HeaderMap,
    ValidQuery(params): ValidQuery<StreamParams>,
) -> Result<Response, ApiError> {
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(last) = last_event_id.or_else(|| params.last_event_id.clone()).filter(|id| !id.trim().is_empty()) {
        return resume(&state, user, ResumePoint::parse(&last)?).await;
    }
    let question = params.query.as_deref().map(str::trim).unwrap_or_default();
    if question.is_empty() {
        return Err(ApiError::invalid_field("query", "required", "query must not be empty"));
    }
    if question.chars().count() > MAX_QUESTION_CHARS {
        return Err(ApiError::invalid_field(
            "query",
            "too_long",
            format!("query is longer than {MAX_QUESTION_CHARS} characters"),
        ));
    }
    state.rate_limit(crate::rate_limit::Limited::Chat(user.user_id)).await.inspect_err(|_| refused("rate_limited"))?;
    let slot = OpenSlot::take(&state, user.user_id).inspect_err(|_| refused("too_many_streams"))?;
    let conversation_id = optional_uuid("conversation_id", params.conversation_id.as_deref())?;
    let connection_id = optional_uuid("connection_id", params.connection_id.as_deref())?;
    let model_asked = params.model.as_deref().map(str::trim).filter(|m| !m.is_empty());
    // A model named by its id comes with the rest, in one round trip; one named otherwise is looked up after.
    let model_id = model_asked.and_then(|m| m.parse::<Uuid>().ok());
    let refs = QuestionRefs { model: model_id, connection: connection_id, conversation: conversation_id };
    let context = state.store.question_context(user.user_id, refs).await?;
    if conversation_id.is_some() && context.conversation.is_none() {
        return Err(ApiError::not_found("conversation"));
    }
    let model = match (model_asked, model_id) {
        (Some(wanted), None) => model_named(&state, user.user_id, wanted).await?,
        (Some(_), Some(_)) => context.model.ok_or_else(|| ApiError::not_found("model"))?,
        (None, _) => context.model.ok_or_else(|| {
            ApiError::invalid_field("model", "required", "no model is configured: add one with POST /api/v1/models")
        })?,
    };
    // A conversation's connection is always one of the user's (deleting it clears the reference).
    let connection = match (context.connection, connection_id) {
        (Some(connection), _) => connection,
        (None, Some(_)) => return Err(ApiError::not_found("connection")),
        (None, None) => {
            return Err(ApiError::invalid_field(
                "connection_id",
                "required",
                "no connection is configured: add one with POST /api/v1/connections",
            ));
        }
    };
    let settings = context.settings;
    let language = match params.language.as_deref().map(str::trim) {
        None | Some("") => settings.language.unwrap_or_default(),
        Some(l) => l.parse().map_err(|e: String| ApiError::invalid_field("language", "invalid", e))?,
    };

    let asked = Question {
        user_id: user.user_id,
        conversation_id: context.conversation,
        text: question.to_string(),
        language,
        model_id: model.id,
        connection_id: connection.id,
        context_rounds: Some(crate::user_config::effective_context_rounds(&state, &settings)),
        prompts: settings.prompts,
        view_mode: settings.view_mode.unwrap_or_default(),
    };
    let mut job = QueryJob::accept(asked, |job_id| state.bus.events_subject(&state.node_id, job_id));
    job.revisions = RecordRevisions { model: Some(model.updated_at), connection: Some(connection.updated_at) };
    let job_id = job.job_id;
    let traceparent = headers.get(TraceParent::HEADER).and_then(|v| v.to_str().ok());
    let trace = querygpt_telemetry::request_trace(&tracing::Span::current(), traceparent);
    job.trace = Some(trace);
    tracing::info!(%job_id, trace_id = %trace.trace_id_hex(), "question accepted");

    // Register before publishing: the first event can arrive before `submit_job` returns.
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    state.chat.streams.insert(job_id, LiveStream { job: job.clone(), events: sender });
    let guard = StreamGuard::open(state.clone(), job_id, job.user_id, job.conversation_id, Some(slot));
    // Who may resume this stream, for every node; at the same time as the job goes out.
    let owner = body::owner_key(job_id);
    let owned = body::Owner { user_id: job.user_id, conversation_id: job.conversation_id }.encode();
    let (submitted, recorded) =
        tokio::join!(state.bus.submit_job(&job), state.shared.set(&owner, &owned, querygpt_bus::EVENTS_MAX_AGE));
    submitted.inspect_err(|e| {
        if matches!(e, querygpt_bus::BusError::QueueFull) {
            refused("queue_full");
        }
    })?;
    metrics::counter!(telemetry::JOBS_SUBMITTED).increment(1);
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "cannot record the job's owner: its stream cannot be resumed");
    }

    let events = tokio_stream::wrappers::ReceiverStream::new(receiver).map(|event| *event).boxed();
    let response = body::response(events, guard, 0, state.chat.shutdown.clone());
    Ok(with_stream_headers(response, job.conversation_id))
}

/// Counts a question refused before it was queued.
fn refused(reason: &'static str) {
    metrics::counter!(telemetry::JOBS_REFUSED, "reason" => reason).increment(1);
}

/// Resumes the stream of `point.job_id` after `point.seq`.
async fn resume(state: &Arc<AppState>, user: AuthUser, point: ResumePoint) -> Result<Response, ApiError> {
    let (events, conversation_id) = body::resume(state, user.user_id, point).await?;
    let guard = StreamGuard::open(state.clone(), point.job_id, user.user_id, conversation_id, None);
    let response = body::response(events, guard, point.seq, state.chat.shutdown.clone());
    Ok(with_stream_headers(response, conversation_id))
}

/// One of a user's open-stream slots on this node, given back when dropped.
pub(crate) struct OpenSlot {
    state: Arc<AppState>,
    user_id: Uuid,
}

impl OpenSlot {
    /// A slot, or 429 when the user has `jobs.max_streams_per_user` streams open here already.
    fn take(state: &Arc<AppState>, user_id: Uuid) -> Result<OpenSlot, ApiError> {
        let max = state.settings.jobs.max_streams_per_user;
        state.chat.admit(user_id, max).map_err(|open| ApiError::RateLimited {
            message: format!("too many questions at once: {open} are running, at most {max}; wait for one to end")
                .into(),
            retry_after_secs: Some(1),
        })?;
        Ok(OpenSlot { state: state.clone(), user_id })
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.state.chat.release(self.user_id);
    }
}

fn with_stream_headers(mut response: Response, conversation_id: Uuid) -> Response {
    if let Ok(value) = HeaderValue::from_str(&conversation_id.to_string()) {
        response.headers_mut().insert("x-conversation-id", value);
    }
    // Tell reverse proxies (nginx) not to buffer the stream.
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[derive(Debug, Deserialize, ToSchema)]
struct StopRequest {
    conversation_id: String,
}

#[derive(Serialize, ToSchema)]
struct Stopped {
    conversation_id: Uuid,
    stopped: bool,
}

/// Stops the running question of a conversation, on whichever node and worker it runs.
#[utoipa::path(post, path = "/chat/stop", tag = "chat", security(("bearer" = [])), request_body = StopRequest,
    responses((status = 200, body = Envelope<Stopped>), CommonErrors))]
async fn stop(
    State(state): State<Arc<AppState>>,
    user: AuthUser,
    ValidJson(body): ValidJson<StopRequest>,
) -> Result<Response, ApiError> {
    let conversation_id = parse_uuid("conversation_id", &body.conversation_id)?;
    let cancel = CancelRequest::new(user.user_id, conversation_id, None, CancelReason::UserStopped);
    state.bus.publish_cancel(&cancel).await?;
    Ok(ApiResponse::ok(Stopped { conversation_id, stopped: true }).with_message("已停止").into_response())
}

fn parse_uuid(field: &'static str, value: &str) -> Result<Uuid, ApiError> {
    value.trim().parse().map_err(|_| ApiError::invalid_field(field, "invalid", format!("{field} is not a valid id")))
}

fn optional_uuid(field: &'static str, value: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    value.map(str::trim).filter(|v| !v.is_empty()).map(|v| parse_uuid(field, v)).transpose()
}

/// The user's model whose provider model name (such as `gpt-4o`) or display name is `wanted`.
async fn model_named(state: &AppState, user_id: Uuid, wanted: &str) -> Result<Model, ApiError> {
    let models = state.store.list_models(user_id).await?;
    models.into_iter().find(|m| m.model_id == wanted || m.name == wanted).ok_or_else(|| ApiError::not_found("model"))
}
