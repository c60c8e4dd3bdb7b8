//! Messages on the bus. Every message carries `v` (the schema version): a reader refuses versions newer than it
//! knows instead of misreading them, so API nodes and workers can be upgraded one at a time.
//!
//! Flow: an API node publishes a [`QueryJob`] (durable), a worker answers with [`JobEvent`]s on the job's
//! `events_subject`, and anyone may publish a [`CancelRequest`] that stops the job wherever it runs.
//!
//! Requests that need a worker at once (model test, connection test, schema) are a [`WorkerRequest`] answered by
//! one [`WorkerReply`]. They carry ids only: the worker loads the row, secrets included, from the store.

use crate::prompts::PromptSet;
use crate::schema::DbSchema;
use crate::{Driver, ErrorCode, Language, ViewMode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Current version of every message defined here.
pub const MESSAGE_VERSION: u16 = 1;

/// Error decoding a bus message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("message version {0} is newer than this node understands ({MESSAGE_VERSION})")]
    UnsupportedVersion(u16),
}

/// Implemented by every versioned bus message: encode to JSON bytes, decode with a version check.
pub trait BusMessage: Serialize + for<'de> Deserialize<'de> {
    fn version(&self) -> u16;

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("bus messages always serialize")
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let msg: Self = serde_json::from_slice(bytes)?;
        match msg.version() {
            v if v > MESSAGE_VERSION => Err(DecodeError::UnsupportedVersion(v)),
            _ => Ok(msg),
        }
    }

    /// Several messages sent as one payload (a JSON array of encoded messages), each version-checked like
    /// [`BusMessage::decode`].
    fn decode_batch(bytes: &[u8]) -> Result<Vec<Self>, DecodeError> {
        let messages: Vec<Self> = serde_json::from_slice(bytes)?;
        match messages.iter().map(Self::version).max() {
            Some(v) if v > MESSAGE_VERSION => Err(DecodeError::UnsupportedVersion(v)),
            _ => Ok(messages),
        }
    }
}

fn current_version() -> u16 {
    MESSAGE_VERSION
}

/// A question accepted by an API node, to be answered by exactly one worker.
///
/// Every id the answer needs is assigned here, by the API node, so that a job delivered twice (worker crash,
/// redelivery) writes the same rows and emits the same events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryJob {
    #[serde(default = "current_version")]
    pub v: u16,
    pub job_id: Uuid,
    pub user_id: Uuid,
    pub conversation_id: Uuid,
    /// The conversation does not exist yet; the worker creates it with the answer.
    pub new_conversation: bool,
    pub user_message_id: Uuid,
    pub assistant_message_id: Uuid,
    pub question: String,
    pub language: Language,
    pub model_id: Uuid,
    pub connection_id: Uuid,
    /// Earlier question/SQL pairs of the conversation to give the model (the user's `context_rounds`); `None`:
    /// the worker's `worker.context_rounds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_rounds: Option<u32>,
    /// The user's own prompt templates; the defaults of `language` for the others.
    #[serde(default, skip_serializing_if = "PromptSet::is_empty")]
    pub prompts: PromptSet,
    /// `developer` adds [`DeveloperInfo`] to the result.
    #[serde(default)]
    pub view_mode: ViewMode,
    /// The `updated_at` of the model and of the connection as the API node read them (see [`RecordRevisions`]).
    #[serde(default, skip_serializing_if = "RecordRevisions::is_empty")]
    pub revisions: RecordRevisions,
    /// Core NATS subject (or in-process route) the worker publishes this job's events to.
    pub events_subject: String,
    pub accepted_at: DateTime<Utc>,
    /// The trace of the request that asked the question. It travels as the bus message's `traceparent` header,
    /// not in the body, so that tracing tools that read headers see it.
    #[serde(skip)]
    pub trace: Option<crate::telemetry::TraceParent>,
}

/// Which revision of its model and connection a job was asked with: a worker that keeps a record of that
/// `updated_at` uses it without reading the store again, so the secrets in it never travel on the bus. `None` (a
/// job from an older API node): the worker reads the record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordRevisions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<DateTime<Utc>>,
}

impl RecordRevisions {
    fn is_empty(&self) -> bool {
        self.model.is_none() && self.connection.is_none()
    }
}

impl BusMessage for QueryJob {
    fn version(&self) -> u16 {
        self.v
    }
}

/// A question an API node has checked (its model, connection and conversation exist and belong to the user).
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub user_id: Uuid,
    /// The conversation it continues; `None` starts a new one.
    pub conversation_id: Option<Uuid>,
    pub text: String,
    pub language: Language,
    pub model_id: Uuid,
    pub connection_id: Uuid,
    /// See [`QueryJob::context_rounds`].
    pub context_rounds: Option<u32>,
    pub prompts: PromptSet,
    pub view_mode: ViewMode,
}

impl QueryJob {
    /// Accepts `question` as a job: assigns the job, conversation and message ids (time-ordered UUIDv7) and the
    /// subject its events go to, which `events_subject` derives from the job id.
    pub fn accept(question: Question, events_subject: impl FnOnce(Uuid) -> String) -> Self {
        let job_id = Uuid::now_v7();
        QueryJob {
            v: MESSAGE_VERSION,
            job_id,
            user_id: question.user_id,
            conversation_id: question.conversation_id.unwrap_or_else(Uuid::now_v7),
            new_conversation: question.conversation_id.is_none(),
            user_message_id: Uuid::now_v7(),
            assistant_message_id: Uuid::now_v7(),
            question: question.text,
            language: question.language,
            model_id: question.model_id,
            connection_id: question.connection_id,
            context_rounds: question.context_rounds,
            prompts: question.prompts,
            view_mode: question.view_mode,
            revisions: RecordRevisions::default(),
            events_subject: events_subject(job_id),
            accepted_at: Utc::now(),
            trace: None,
        }
    }
}

/// Most attempts a question may take (`worker.max_attempts` is clamped to it): the sequence numbers of
/// [`JobEvent`] leave room for this many.
pub const MAX_ATTEMPTS: u32 = 9;

/// One event of a job's answer, numbered in the order the client must see them.
///
/// Each event has a fixed sequence number that depends only on what it is (and, for the stages of an attempt, on
/// the attempt's number), so a job run again after a worker crash emits the same numbers for the same events, and
/// an API node forwards only numbers higher than the last one it forwarded:
///
/// | event                                   | seq                        |
/// |-----------------------------------------|----------------------------|
/// | progress `analyzing`                    | 1                          |
/// | progress `generating_sql`, attempt *a*  | 10·*a* + 1 (11, 21, ... 91) |
/// | progress `executing`, attempt *a*       | 10·*a* + 2 (12, 22, ... 92) |
/// | result                                  | 100                        |
/// | visualization                           | 101                        |
/// | done / error (terminal)                 | 102                        |
///
/// A re-run that needs fewer attempts than the first run skips ahead (its early attempts' numbers were seen and
/// are dropped); one that needs more continues where the client is. The answer's numbers are above every attempt's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    #[serde(default = "current_version")]
    pub v: u16,
    pub job_id: Uuid,
    pub seq: u32,
    pub event: ChatEvent,
}

impl BusMessage for JobEvent {
    fn version(&self) -> u16 {
        self.v
    }
}

impl JobEvent {
    /// `event` of job `job_id` under its fixed sequence number. An event an API node makes up itself (a stop, a
    /// timeout) is terminal too, so the worker's own terminal event, if it comes later, is dropped as a duplicate.
    pub fn new(job_id: Uuid, event: ChatEvent) -> Self {
        let attempt_base = |attempt: &Option<u32>| 10 * attempt.unwrap_or(1).clamp(1, MAX_ATTEMPTS);
        let seq = match &event {
            ChatEvent::Progress { stage: Stage::Analyzing, .. } => 1,
            ChatEvent::Progress { stage: Stage::GeneratingSql, attempt, .. } => attempt_base(attempt) + 1,
            ChatEvent::Progress { stage: Stage::Executing, attempt, .. } => attempt_base(attempt) + 2,
            ChatEvent::Result { .. } => 100,
            ChatEvent::Visualization { .. } => 101,
            ChatEvent::Error { .. } | ChatEvent::Done { .. } => 102,
        };
        JobEvent { v: MESSAGE_VERSION, job_id, seq, event }
    }
}

/// Stage names of the `progress` event, as in the QueryGPT v2 document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Analyzing,
    GeneratingSql,
    Executing,
}

impl Stage {
    /// Human-readable progress message in the requested language; attempts after the first say that the model is
    /// correcting its statement.
    pub fn message(self, language: Language, attempt: u32) -> String {
        match (self, language, attempt) {
            (Stage::GeneratingSql, Language::Zh, 2..) => format!("正在修正 SQL（第 {attempt} 次尝试）..."),
            (Stage::GeneratingSql, Language::En, 2..) => format!("Correcting the SQL (attempt {attempt})..."),
            (Stage::Executing, Language::Zh, 2..) => format!("正在执行修正后的查询（第 {attempt} 次尝试）..."),
            (Stage::Executing, Language::En, 2..) => format!("Running the corrected query (attempt {attempt})..."),
            _ => self.first_message(language).to_owned(),
        }
    }

    fn first_message(self, language: Language) -> &'static str {
        match (self, language) {
            (Stage::Analyzing, Language::Zh) => "正在分析查询...",
            (Stage::GeneratingSql, Language::Zh) => "正在生成 SQL...",
            (Stage::Executing, Language::Zh) => "正在执行查询...",
            (Stage::Analyzing, Language::En) => "Analyzing the question...",
            (Stage::GeneratingSql, Language::En) => "Generating SQL...",
            (Stage::Executing, Language::En) => "Running the query...",
        }
    }
}

/// An SSE event of `/chat/stream`. Serialized, it is exactly the `data:` line of the document
/// (`{"type": "progress", ...}`); the SSE `event:` name is [`ChatEvent::name`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatEvent {
    Progress {
        stage: Stage,
        message: String,
        /// Set on the first event so that a client can call `/chat/stop` before `done`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        conversation_id: Option<Uuid>,
        /// The attempt a `generating_sql` or `executing` stage belongs to (1, then 2... after a correction).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attempt: Option<u32>,
    },
    Result {
        /// The statement as the model wrote it (what ran is this, checked, with the row cap applied).
        sql: String,
        /// Rows as JSON objects keyed by column name.
        data: Vec<serde_json::Map<String, Value>>,
        rows_count: usize,
        /// Column names in result order (objects lose order in some clients).
        columns: Vec<String>,
        /// More rows existed than the row cap allowed.
        truncated: bool,
        /// Seconds spent executing the query on the target.
        execution_time: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        explanation: Option<String>,
        /// The tables whose schema the model was given (all of them, or the most relevant of a large schema).
        #[serde(default)]
        tables: Vec<String>,
        /// Only for users in `view_mode: developer`: tokens, attempts, time per stage, the executed text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        developer: Option<DeveloperInfo>,
    },
    Visualization {
        chart: Value,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        details: Option<Value>,
    },
    Done {
        conversation_id: Uuid,
        message_id: Uuid,
    },
}

/// What `view_mode: developer` shows of how an answer was made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeveloperInfo {
    /// Tokens of the prompts and replies, summed over attempts, as the provider reported them.
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// Attempts the answer took (1 without a correction).
    pub attempts: u32,
    /// Milliseconds spent per stage: `analyzing`, `generating_sql` (LLM calls and checks, all attempts) and
    /// `executing` (the database).
    pub stage_ms: StageTimes,
    /// The exact text that ran: the model's statement after the validator applied the row cap.
    pub executed_sql: String,
}

/// Milliseconds per stage of an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    pub analyzing: u64,
    pub generating_sql: u64,
    pub executing: u64,
}

impl ChatEvent {
    /// SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            ChatEvent::Progress { .. } => "progress",
            ChatEvent::Result { .. } => "result",
            ChatEvent::Visualization { .. } => "visualization",
            ChatEvent::Error { .. } => "error",
            ChatEvent::Done { .. } => "done",
        }
    }

    /// `error` and `done` end a stream.
    pub fn is_terminal(&self) -> bool {
        matches!(self, ChatEvent::Error { .. } | ChatEvent::Done { .. })
    }

    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ChatEvent::Error { code, message: message.into(), details: None }
    }

    /// The `error` event of a stopped question (`CANCELLED`).
    pub fn stopped(language: Language) -> Self {
        let message = match language {
            Language::Zh => "查询已停止",
            Language::En => "the query was stopped",
        };
        ChatEvent::error(ErrorCode::Cancelled, message)
    }
}

/// Ask whoever runs (or will run) the current job of a conversation to stop it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelRequest {
    #[serde(default = "current_version")]
    pub v: u16,
    /// Only jobs of this user are affected: a user cannot stop another user's conversation.
    pub user_id: Uuid,
    pub conversation_id: Uuid,
    /// Set when a specific job is meant (a client went away); `None` stops whatever runs in the conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    pub reason: CancelReason,
    /// Jobs accepted after this instant are not affected (a new question asked right after a stop runs).
    pub issued_at: DateTime<Utc>,
}

impl BusMessage for CancelRequest {
    fn version(&self) -> u16 {
        self.v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// `POST /chat/stop`.
    UserStopped,
    /// The SSE client disconnected.
    ClientGone,
}

impl CancelRequest {
    pub fn new(user_id: Uuid, conversation_id: Uuid, job_id: Option<Uuid>, reason: CancelReason) -> Self {
        CancelRequest { v: MESSAGE_VERSION, user_id, conversation_id, job_id, reason, issued_at: Utc::now() }
    }

    /// Whether this request stops `job`: same user and conversation, the named job (if any), and a job accepted
    /// before the request was issued.
    pub fn matches(&self, job: &QueryJob) -> bool {
        self.user_id == job.user_id
            && self.conversation_id == job.conversation_id
            && self.job_id.is_none_or(|id| id == job.job_id)
            && job.accepted_at <= self.issued_at
    }
}

/// A request an API node sends to one worker and waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRequest {
    #[serde(default = "current_version")]
    pub v: u16,
    /// The rows the task names are looked up for this user only.
    pub user_id: Uuid,
    pub task: WorkerTask,
}

impl BusMessage for WorkerRequest {
    fn version(&self) -> u16 {
        self.v
    }
}

impl WorkerRequest {
    pub fn new(user_id: Uuid, task: WorkerTask) -> Self {
        WorkerRequest { v: MESSAGE_VERSION, user_id, task }
    }
}

/// What a [`WorkerRequest`] asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerTask {
    /// One round trip to the model (`POST /models/{id}/test`).
    TestModel { model_id: Uuid },
    /// Connect to the database and describe the server (`POST /connections/{id}/test`).
    TestConnection { connection_id: Uuid },
    /// The database's tables (`GET /connections/{id}/schema`); `refresh` reads the catalog again instead of
    /// reusing a cached copy.
    Schema { connection_id: Uuid, refresh: bool },
    /// A statement for a schema the client describes (`POST /sql/generate`), written by the user's default model
    /// and validated, never run.
    GenerateSql(Box<GenerateRequest>),
}

/// What the Text2SQL API asks a worker to write. The API node has resolved the conversation: `schema`, `driver`
/// and `history` are what this turn uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub query: String,
    pub driver: Driver,
    /// As the client gave it (`8.0`, `14`); only shown to the model.
    pub version: Option<String>,
    pub schema: DbSchema,
    /// Earlier turns, oldest first; the last one holds the statement to edit (`previous_sql` when given).
    pub history: Vec<PriorTurn>,
}

/// One earlier turn of a conversation with the model: a question and the statement that answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorTurn {
    /// `None` when only the statement is known (a `previous_sql` without a conversation).
    pub question: Option<String>,
    pub sql: String,
}

/// A statement written for a [`GenerateRequest`], as the model wrote it, after the validator accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedSql {
    /// SQL, or Redis commands one per line.
    pub sql: String,
    pub explanation: String,
    /// The tables (or Redis key patterns) whose schema the prompt carried.
    pub tables: Vec<String>,
    /// Attempts it took (a refused statement goes back to the model once).
    pub attempts: u32,
}

/// A worker's answer to a [`WorkerRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerReply {
    #[serde(default = "current_version")]
    pub v: u16,
    pub outcome: WorkerOutcome,
}

impl BusMessage for WorkerReply {
    fn version(&self) -> u16 {
        self.v
    }
}

impl WorkerReply {
    pub fn new(outcome: WorkerOutcome) -> Self {
        WorkerReply { v: MESSAGE_VERSION, outcome }
    }

    /// A reply saying the task could not run.
    pub fn failed(code: ErrorCode, message: impl Into<String>) -> Self {
        WorkerReply::new(WorkerOutcome::Failed { code, message: message.into() })
    }
}

/// The result of a [`WorkerTask`]. A test that reached the model or the database and failed there is a report
/// (`ok: false`, `connected: false`), not `Failed`: the test itself ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WorkerOutcome {
    ModelTested(ModelTestReport),
    ConnectionTested(ConnectionTestReport),
    Schema(DbSchema),
    Generated(GeneratedSql),
    /// The task could not run: e.g. NOT_FOUND (the row was deleted meanwhile), INTERNAL_ERROR.
    Failed {
        code: ErrorCode,
        message: String,
    },
}

/// What one round trip to a model showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelTestReport {
    /// The model answered with some text.
    pub ok: bool,
    /// Time of the round trip, failed or not.
    pub latency_ms: u64,
    /// The model's reply text, cut to about 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ProviderFailure>,
}

/// Why a model test failed, as far as the provider let us see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderFailure {
    pub kind: ProviderFailureKind,
    /// HTTP status when the provider answered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What went wrong, with the provider's own message; never the API key.
    pub message: String,
}

/// Classes of model-test failures, each pointing the user at a different fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderFailureKind {
    /// HTTP 401 or 403: the API key is wrong or lacks access.
    Unauthorized,
    /// HTTP 404: no such model (or a wrong base URL).
    ModelNotFound,
    /// HTTP 429.
    RateLimited,
    /// No answer within the test's time limit.
    Timeout,
    /// Connection refused, DNS or TLS failure, or a base URL that cannot be used.
    Unreachable,
    /// The network policy refuses the endpoint's address (the SSRF guard).
    Blocked,
    /// Any other HTTP error status.
    ProviderError,
    /// The answer was not the expected protocol, or it was empty.
    InvalidReply,
}

/// What connecting to a database showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTestReport {
    pub connected: bool,
    /// Time of the test, failed or not.
    pub latency_ms: u64,
    /// Product and version, e.g. `PostgreSQL 15.20`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tables_count: Option<usize>,
    /// Layer-2 warnings: what the login can do beyond reading (superuser, write or file privileges).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Why it failed, passwords redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_event_serializes_like_the_document() {
        let event = ChatEvent::Progress {
            stage: Stage::GeneratingSql,
            message: "x".into(),
            conversation_id: None,
            attempt: None,
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"type": "progress", "stage": "generating_sql", "message": "x"})
        );
    }

    #[test]
    fn sequence_numbers_leave_room_for_every_attempt_and_keep_the_answer_last() {
        let job = Uuid::nil();
        let stage = |stage, attempt| ChatEvent::Progress {
            stage,
            message: String::new(),
            conversation_id: None,
            attempt: Some(attempt),
        };
        let mut order = vec![JobEvent::new(job, stage(Stage::Analyzing, 1)).seq];
        for attempt in 1..=MAX_ATTEMPTS {
            order.push(JobEvent::new(job, stage(Stage::GeneratingSql, attempt)).seq);
            order.push(JobEvent::new(job, stage(Stage::Executing, attempt)).seq);
        }
        order.push(JobEvent::new(job, ChatEvent::Visualization { chart: Value::Null }).seq);
        order.push(JobEvent::new(job, ChatEvent::error(ErrorCode::InternalError, "x")).seq);
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert_eq!(&order[..5], [1, 11, 12, 21, 22]);
        assert_eq!(order.last(), Some(&102));
        assert_eq!(
            JobEvent::new(job, stage(Stage::GeneratingSql, 40)).seq,
            91,
            "attempts beyond the limit share its numbers"
        );
    }

    #[test]
    fn newer_versions_are_refused() {
        let cancel = CancelRequest {
            v: MESSAGE_VERSION + 1,
            ..CancelRequest::new(Uuid::nil(), Uuid::nil(), None, CancelReason::UserStopped)
        };
        assert!(matches!(CancelRequest::decode(&cancel.encode()), Err(DecodeError::UnsupportedVersion(_))));
    }

    #[test]
    fn cancel_matches_only_the_owner() {
        let job = QueryJob::accept(
            Question {
                user_id: Uuid::new_v4(),
                conversation_id: None,
                text: "q".into(),
                language: Language::En,
                model_id: Uuid::new_v4(),
                connection_id: Uuid::new_v4(),
                context_rounds: None,
                prompts: PromptSet::default(),
                view_mode: ViewMode::User,
            },
            |_| "s".into(),
        );
        let mine = CancelRequest::new(job.user_id, job.conversation_id, None, CancelReason::UserStopped);
        let other = CancelRequest::new(Uuid::new_v4(), job.conversation_id, None, CancelReason::UserStopped);
        assert!(mine.matches(&job));
        assert!(!other.matches(&job));
        let later_job = QueryJob { accepted_at: mine.issued_at + chrono::Duration::seconds(1), ..job };
        assert!(!mine.matches(&later_job), "a question asked after the stop must run");
    }

    #[test]
    fn worker_messages_round_trip_with_their_tags() {
        let request =
            WorkerRequest::new(Uuid::new_v4(), WorkerTask::Schema { connection_id: Uuid::new_v4(), refresh: true });
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["task"]["kind"], "schema");
        assert_eq!(json["task"]["refresh"], true);
        assert_eq!(WorkerRequest::decode(&request.encode()).unwrap(), request);

        let replies = [
            WorkerReply::new(WorkerOutcome::ModelTested(ModelTestReport {
                ok: false,
                latency_ms: 12,
                reply: None,
                error: Some(ProviderFailure {
                    kind: ProviderFailureKind::ModelNotFound,
                    status: Some(404),
                    message: "no such model".into(),
                }),
            })),
            WorkerReply::new(WorkerOutcome::ConnectionTested(ConnectionTestReport {
                connected: true,
                latency_ms: 3,
                version: Some("SQLite 3.50.4".into()),
                tables_count: Some(1),
                warnings: vec!["can write".into()],
                error: None,
            })),
            WorkerReply::new(WorkerOutcome::Schema(DbSchema::default())),
            WorkerReply::failed(ErrorCode::NotFound, "the connection no longer exists"),
        ];
        for reply in replies {
            assert_eq!(WorkerReply::decode(&reply.encode()).unwrap(), reply);
        }
        let failed = serde_json::to_value(WorkerReply::failed(ErrorCode::NotFound, "gone")).unwrap();
        assert_eq!(failed["outcome"], serde_json::json!({"kind": "failed", "code": "NOT_FOUND", "message": "gone"}));
        let kind = serde_json::to_value(ProviderFailureKind::ModelNotFound).unwrap();
        assert_eq!(kind, "model_not_found");
    }

    #[test]
    fn newer_worker_messages_are_refused() {
        let request = WorkerRequest {
            v: MESSAGE_VERSION + 1,
            ..WorkerRequest::new(Uuid::nil(), WorkerTask::TestModel { model_id: Uuid::nil() })
        };
        assert!(matches!(WorkerRequest::decode(&request.encode()), Err(DecodeError::UnsupportedVersion(_))));
        let reply = WorkerReply { v: MESSAGE_VERSION + 1, ..WorkerReply::failed(ErrorCode::InternalError, "x") };
        assert!(matches!(WorkerReply::decode(&reply.encode()), Err(DecodeError::UnsupportedVersion(_))));
    }
}
