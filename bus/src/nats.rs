//! The NATS JetStream backend: durable jobs on a work-queue stream, events on a limits stream that keeps them for a
//! while, core NATS for cancellations and worker requests.

mod requests;

use crate::{
    BoxError, Bus, BusError, DUPLICATE_WINDOW, EVENTS_MAX_AGE, ExhaustedJob, JobAcker, JobDelivery, QueueDepth,
    WorkerRequestDelivery,
};
use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    context::{PublishError, PublishErrorKind},
    message::PublishMessage,
    stream::{self, RetentionPolicy, StorageType},
};
use async_nats::{ConnectOptions, Event, HeaderMap};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use querygpt_common::error_chain;
use querygpt_common::messages::{BusMessage, CancelRequest, ChatEvent, JobEvent, QueryJob, WorkerReply, WorkerRequest};
use querygpt_common::subjects::Subjects;
use querygpt_common::telemetry::TraceParent;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

/// Name of the durable pull consumer that all workers share.
pub const WORKERS_CONSUMER: &str = "workers";
/// Header of a dead-lettered copy: why the job was given up.
pub const DEAD_REASON_HEADER: &str = "QueryGPT-Dead-Reason";
/// Header of a dead-lettered copy: the job's sequence in the jobs stream.
pub const DEAD_SEQUENCE_HEADER: &str = "QueryGPT-Dead-Stream-Sequence";
/// Header of a dead-lettered copy: how many times the job had been delivered.
pub const DEAD_DELIVERIES_HEADER: &str = "QueryGPT-Dead-Deliveries";
/// How long the dead-letter stream keeps a job.
pub const DEAD_LETTER_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);

/// Jobs delivered but not yet acked, over all workers, before the server stops delivering. Far above any real
/// worker pool: the limit that matters is each worker's own concurrency.
const MAX_ACK_PENDING: i64 = 10_000;
/// Life of one pull request; the client renews it, so this only bounds how long a lost request goes unnoticed.
const PULL_EXPIRES: Duration = Duration::from_secs(30);
/// The server sends a heartbeat this often while a pull request waits; two missed ones mean the pull is lost.
const PULL_HEARTBEAT: Duration = Duration::from_secs(5);
/// How long [`NatsBus::round_trip`] waits for the server.
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Events the events stream keeps at most; the oldest go first. A bound in messages rather than bytes: JetStream
/// reserves a stream's `max_bytes` from the server's storage up front, for every deployment prefix.
const EVENTS_MAX_MESSAGES: i64 = 10_000_000;
/// Exhausted jobs buffered per listener before the oldest are dropped.
const EXHAUSTED_BUFFER: usize = 1024;
/// Header values cannot hold line breaks and should stay small.
const MAX_REASON_LEN: usize = 512;

/// The events of one message of the events stream: one event, or an answer's events published together.
fn decode_events(payload: &[u8]) -> Result<Vec<JobEvent>, querygpt_common::messages::DecodeError> {
    match payload.first() {
        Some(b'[') => JobEvent::decode_batch(payload),
        _ => JobEvent::decode(payload).map(|event| vec![event]),
    }
}

/// Settings of the shared job consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatsJobOptions {
    /// A delivered job not acked (nor marked in progress) within this time goes to another worker.
    pub ack_wait: Duration,
    /// Deliveries of one job before it is given up and moved to the dead-letter stream; -1 for no limit.
    pub max_deliver: i64,
    /// Jobs the jobs stream holds at most, waiting or running (a job leaves when it is acked); beyond, a job is
    /// refused with [`BusError::QueueFull`]. -1 for no limit.
    pub max_pending: i64,
    /// Copies of each stream a NATS cluster keeps (1 on a single server; 3 in a three-node cluster, so that a
    /// server lost loses no job or event).
    pub replicas: usize,
}

/// Name of the dead-letter stream of a deployment, next to [`Subjects::jobs_stream`].
pub fn dead_letter_stream(subjects: &Subjects) -> String {
    let jobs = subjects.jobs_stream();
    let base = jobs.strip_suffix("_JOBS").unwrap_or(&jobs);
    format!("{base}_DEAD")
}

/// The bus on a NATS server with JetStream (2.9 or later). Clones share one connection.
///
/// Topology, created or updated by [`NatsBus::connect`] so that any node may start first:
/// - `<PREFIX>_JOBS` ([`Subjects::jobs_stream`]): work-queue stream on `subjects.jobs()`, file storage, deduplicated
///   by `Nats-Msg-Id` (the job id) over [`DUPLICATE_WINDOW`]; one durable pull consumer, [`WORKERS_CONSUMER`],
///   shared by every worker, with explicit acks.
/// - `<PREFIX>_DEAD` ([`dead_letter_stream`]): limits stream on `subjects.dead_letter()` keeping dead jobs for
///   [`DEAD_LETTER_MAX_AGE`], each with a [`DEAD_REASON_HEADER`]. Jobs land there when unreadable, when a worker
///   dead-letters them, and when they exhaust `max_deliver` (a job stream watches the server's advisories).
/// - `<PREFIX>_EVENTS` ([`Subjects::events_stream`]): limits stream on `<prefix>.events.>`, file storage, keeping
///   every event for [`EVENTS_MAX_AGE`]. Each API node reads its own events through an ordered consumer, which
///   resumes after the last event it saw when the connection or the server comes back: an event published while
///   the node was cut off is delivered when it reconnects. Workers await the publish ack of an answer's events
///   before they ack the job. [`Bus::replay_events`] reads one job's events from the start, on any node.
/// - Cancellations are core NATS messages: fire-and-forget.
/// - Worker requests are core NATS request/reply on `subjects.worker_requests()`; workers subscribe in the queue
///   group `workers`, so each request reaches one of them.
#[derive(Clone)]
pub struct NatsBus {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    subjects: Subjects,
    options: NatsJobOptions,
    consumer: PullConsumer,
    /// Counts the connections to the server: each change is a reconnect.
    connections: Arc<watch::Sender<u64>>,
    /// Jobs this process found exhausted (see [`Bus::exhausted_jobs`]).
    exhausted: tokio::sync::broadcast::Sender<ExhaustedJob>,
}

impl NatsBus {
    /// Connects (retrying a few times), then creates or updates the jobs stream, its consumer and the dead-letter
    /// stream. After the first connection the client reconnects forever.
    pub async fn connect(url: &str, subjects: Subjects, options: NatsJobOptions) -> Result<Self, BusError> {
        let connections = Arc::new(watch::channel(0).0);
        let client = connect_with_retry(url, &subjects, connections.clone()).await?;
        warn_if_outdated(&client.server_info().version);
        let jetstream = jetstream::new(client.clone());
        ensure_dead_letter_stream(&jetstream, &subjects, options).await?;
        ensure_events_stream(&jetstream, &subjects, options).await?;
        let consumer = ensure_jobs_topology(&jetstream, &subjects, options).await?;
        info!(url, stream = %subjects.jobs_stream(), "connected to the NATS bus");
        let exhausted = tokio::sync::broadcast::channel(EXHAUSTED_BUFFER).0;
        let inner = Inner { client, jetstream, subjects, options, consumer, connections, exhausted };
        Ok(NatsBus { inner: Arc::new(inner) })
    }

    /// The subjects this bus uses.
    pub fn subjects(&self) -> &Subjects {
        &self.inner.subjects
    }

    /// Confirms that the server has processed everything this connection sent before (a subscription in
    /// particular): the server handles one connection's messages in order, so its answer to a later request proves
    /// it. `Client::flush` would not: in async-nats 0.51 it only writes the socket, it does not wait for a PONG.
    /// The request goes to a fresh inbox nobody listens to, so the answer is the server's own "no responders".
    async fn round_trip(&self) -> Result<(), BusError> {
        let client = &self.inner.client;
        let probe = async_nats::Request::new().timeout(Some(ROUND_TRIP_TIMEOUT));
        match client.send_request(client.new_inbox(), probe).await {
            Err(err) if err.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
            Ok(_) => Ok(()),
            Err(err) => Err(BusError::unavailable("the server did not confirm a round trip", err)),
        }
    }
}

/// The oldest nats-server this bus is meant for: 2.10.20-2.10.22 could lose a stream after a crash.
const MIN_SERVER_VERSION: (u64, u64, u64) = (2, 10, 23);

/// Logs a warning when the server is older than [`MIN_SERVER_VERSION`] (or its version cannot be read).
fn warn_if_outdated(version: &str) {
    match parse_version(version) {
        Some(found) if found >= MIN_SERVER_VERSION => info!(version, "NATS server"),
        _ => warn!(
            version,
            "nats-server is older than 2.10.23 (or its version is unknown): 2.10.20-2.10.22 could lose a stream after \
             a crash, and older servers lack features this service relies on; upgrade it"
        ),
    }
}

/// `major.minor.patch` of a version such as `2.10.24` or `2.11.0-beta.1`.
fn parse_version(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.trim().trim_start_matches('v').split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|part| part.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0)))
}

/// Connects to `url`; `connections` counts every (re)connection from then on.
async fn connect_with_retry(
    url: &str,
    subjects: &Subjects,
    connections: Arc<watch::Sender<u64>>,
) -> Result<async_nats::Client, BusError> {
    let mut backoff = Backoff::new();
    let mut attempt = 1;
    loop {
        let connections = connections.clone();
        let options = ConnectOptions::new()
            .name(format!("querygpt {}", subjects.prefix()))
            .max_reconnects(None)
            .event_callback(move |event| {
                let connections = connections.clone();
                async move {
                    match event {
                        Event::Connected => {
                            info!("NATS connection (re)established");
                            connections.send_modify(|count| *count += 1);
                        }
                        Event::Disconnected => warn!("NATS connection lost; reconnecting"),
                        Event::SlowConsumer(sid) => warn!(sid, "NATS subscription too slow: messages were dropped"),
                        other => warn!(event = %other, "NATS connection event"),
                    }
                }
            });
        match options.connect(url).await {
            Ok(client) => return Ok(client),
            Err(err) if attempt < CONNECT_ATTEMPTS => {
                let delay = backoff.next_delay();
                warn!(url, attempt, error = %err, ?delay, "cannot connect to NATS; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(err) => return Err(BusError::unavailable(format!("cannot connect to NATS at {url}"), err)),
        }
    }
}

async fn ensure_dead_letter_stream(
    js: &jetstream::Context,
    subjects: &Subjects,
    options: NatsJobOptions,
) -> Result<(), BusError> {
    let dead_subject = subjects.dead_letter();
    ensure_stream(js, &dead_letter_stream(subjects), |config| {
        config.num_replicas = options.replicas.max(1);
        config.subjects = vec![dead_subject.clone()];
        config.retention = RetentionPolicy::Limits;
        config.storage = StorageType::File;
        config.max_age = DEAD_LETTER_MAX_AGE;
        config.duplicate_window = DUPLICATE_WINDOW;
    })
    .await
    .map(drop)
}

async fn ensure_events_stream(
    js: &jetstream::Context,
    subjects: &Subjects,
    options: NatsJobOptions,
) -> Result<(), BusError> {
    let events = subjects.all_events();
    ensure_stream(js, &subjects.events_stream(), |config| {
        config.num_replicas = options.replicas.max(1);
        config.subjects = vec![events.clone()];
        config.retention = RetentionPolicy::Limits;
        config.storage = StorageType::File;
        config.max_age = EVENTS_MAX_AGE;
        config.max_messages = EVENTS_MAX_MESSAGES;
        config.discard = stream::DiscardPolicy::Old;
    })
    .await
    .map(drop)
}

async fn ensure_jobs_topology(
    js: &jetstream::Context,
    subjects: &Subjects,
    options: NatsJobOptions,
) -> Result<PullConsumer, BusError> {
    let jobs_subject = subjects.jobs();
    let stream = ensure_stream(js, &subjects.jobs_stream(), |config| {
        config.subjects = vec![jobs_subject.clone()];
        config.num_replicas = options.replicas.max(1);
        config.retention = RetentionPolicy::WorkQueue;
        config.storage = StorageType::File;
        config.duplicate_window = DUPLICATE_WINDOW;
        // Refuse new jobs when full (never drop queued ones).
        config.max_messages = options.max_pending;
        config.discard = stream::DiscardPolicy::New;
    })
    .await?;
    ensure_consumer(&stream, options).await
}

/// Creates the stream, or brings the fields `apply` sets up to date on an existing one; other fields keep whatever
/// an operator tuned. Retried because two nodes starting together race to create it.
async fn ensure_stream(
    js: &jetstream::Context,
    name: &str,
    apply: impl Fn(&mut stream::Config),
) -> Result<stream::Stream, BusError> {
    let mut attempts_left = 3;
    loop {
        let result = match js.get_stream(name).await {
            Ok(existing) => {
                let current = existing.cached_info().config.clone();
                let mut wanted = current.clone();
                apply(&mut wanted);
                if wanted == current {
                    return Ok(existing);
                }
                info!(stream = name, "updating the stream configuration");
                match js.update_stream(&wanted).await {
                    Ok(_) => js.get_stream(name).await.map_err(BoxError::from),
                    Err(err) => Err(format!("cannot update it (some settings cannot change): {err}").into()),
                }
            }
            Err(err) if is_not_found(&err) => {
                let mut config = stream::Config { name: name.to_owned(), ..Default::default() };
                apply(&mut config);
                info!(stream = name, "creating the stream");
                js.create_stream(config).await.map_err(BoxError::from)
            }
            Err(err) => Err(err.into()),
        };
        attempts_left -= 1;
        match result {
            Ok(stream) => return Ok(stream),
            Err(err) if attempts_left > 0 => debug!(stream = name, error = %err, "stream setup failed; retrying"),
            Err(err) => return Err(BusError::unavailable(format!("cannot set up stream {name}"), err)),
        }
    }
}

fn is_not_found(err: &jetstream::context::GetStreamError) -> bool {
    matches!(err.kind(), jetstream::context::GetStreamErrorKind::JetStream(e)
        if e.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

fn apply_consumer_options(config: &mut pull::Config, options: NatsJobOptions) {
    config.durable_name = Some(WORKERS_CONSUMER.to_owned());
    config.deliver_policy = DeliverPolicy::All;
    config.ack_policy = AckPolicy::Explicit;
    config.ack_wait = options.ack_wait;
    config.max_deliver = options.max_deliver;
    config.max_ack_pending = MAX_ACK_PENDING;
}

/// Creates the shared consumer, or updates the settings this bus owns on an existing one. A server that refuses the
/// update leaves the existing consumer working: that is logged, not fatal.
async fn ensure_consumer(stream: &stream::Stream, options: NatsJobOptions) -> Result<PullConsumer, BusError> {
    let existing = match stream.consumer_info(WORKERS_CONSUMER).await {
        Ok(info) => Some(info.config),
        Err(err) if matches!(err.kind(), jetstream::context::ConsumerInfoErrorKind::NotFound) => None,
        Err(err) => return Err(BusError::unavailable(format!("cannot read consumer {WORKERS_CONSUMER}"), err)),
    };
    let current = match existing {
        Some(config) => {
            let current = <pull::Config as jetstream::consumer::FromConsumer>::try_from_consumer_config(config)
                .map_err(|err| BusError::other(format!("consumer {WORKERS_CONSUMER} is not a pull consumer"), err))?;
            Some(current)
        }
        None => None,
    };
    let mut wanted = current.clone().unwrap_or_default();
    apply_consumer_options(&mut wanted, options);
    if current.as_ref() == Some(&wanted) {
        return stream.get_consumer(WORKERS_CONSUMER).await.map_err(consumer_unavailable);
    }
    match stream.create_consumer(wanted).await {
        Ok(consumer) => Ok(consumer),
        Err(err) if current.is_some() => {
            warn!(error = %err, "the server refused to update the job consumer; using it as it is");
            stream.get_consumer(WORKERS_CONSUMER).await.map_err(consumer_unavailable)
        }
        Err(err) => Err(BusError::unavailable(format!("cannot create consumer {WORKERS_CONSUMER}"), err)),
    }
}

fn consumer_unavailable(err: BoxError) -> BusError {
    BusError::unavailable(format!("cannot get consumer {WORKERS_CONSUMER}"), err)
}

impl Inner {
    /// The events on `subject` from the events stream: the ones stored from now on (`from_start == false`) or all
    /// of them. Read through an ordered consumer (no acks), reopened after the last event it delivered whenever
    /// the connection comes back or the consumer fails, so nothing stored in between is missed.
    async fn ordered_events(
        &self,
        subject: String,
        from_start: bool,
    ) -> Result<BoxStream<'static, JobEvent>, BusError> {
        let open = {
            let (jetstream, stream_name) = (self.jetstream.clone(), self.subjects.events_stream());
            move |after: u64| {
                let (jetstream, stream_name, filter_subject) =
                    (jetstream.clone(), stream_name.clone(), subject.clone());
                async move {
                    let unavailable = |err: BoxError| BusError::unavailable("cannot read the events stream", err);
                    let stream = jetstream.get_stream_no_info(&stream_name).await.map_err(|e| unavailable(e.into()))?;
                    let deliver_policy = DeliverPolicy::ByStartSequence { start_sequence: after + 1 };
                    let config = pull::OrderedConfig { filter_subject, deliver_policy, ..Default::default() };
                    let consumer = stream.create_consumer(config).await.map_err(|e| unavailable(e.into()))?;
                    consumer.messages().await.map_err(|e| unavailable(e.into()))
                }
            }
        };
        // "From now on" is "after the last event stored now": nothing published later can be missed.
        let last = match from_start {
            true => 0,
            false => {
                let mut stream = self
                    .jetstream
                    .get_stream(self.subjects.events_stream())
                    .await
                    .map_err(|err| BusError::unavailable("cannot open the events stream", err))?;
                let info =
                    stream.info().await.map_err(|err| BusError::unavailable("cannot read the events stream", err))?;
                info.state.last_sequence
            }
        };
        let messages = open(last).await?;
        let mut connections = self.connections.subscribe();
        connections.mark_unchanged();
        let state = (Some(messages), last, Backoff::new(), connections);
        let events = futures::stream::unfold(state, move |(mut messages, mut last, mut backoff, mut connections)| {
            let open = open.clone();
            async move {
                loop {
                    let Some(current) = messages.as_mut() else {
                        match open(last).await {
                            Ok(reopened) => messages = Some(reopened),
                            Err(err) => {
                                warn!(error = error_chain(&err), "cannot reopen the events stream; retrying");
                                tokio::time::sleep(backoff.next_delay()).await;
                            }
                        }
                        continue;
                    };
                    let next = tokio::select! {
                        next = current.next() => next,
                        changed = connections.changed() => {
                            if changed.is_ok() {
                                debug!(last, "reconnected: reading the events stream again after the last event seen");
                                messages = None;
                            }
                            continue;
                        }
                    };
                    match next {
                        Some(Ok(message)) => {
                            backoff.reset();
                            if let Ok(info) = message.info() {
                                last = info.stream_sequence;
                            }
                            match decode_events(&message.payload) {
                                Ok(events) => return Some((events, (messages, last, backoff, connections))),
                                Err(err) => {
                                    warn!(subject = %message.subject, error = %err, "dropping an unreadable event")
                                }
                            }
                        }
                        Some(Err(err)) => {
                            debug!(error = %err, "the events consumer failed; reopening it after the last event seen");
                            messages = None;
                        }
                        None => messages = None,
                    }
                }
            }
        });
        Ok(events.flat_map(futures::stream::iter).boxed())
    }

    /// Publishes a copy of a job to the dead-letter stream and waits for the server to store it. The message id makes
    /// a repeated attempt for the same stored job harmless.
    async fn publish_dead_copy(
        &self,
        payload: Bytes,
        reason: &str,
        stream_sequence: Option<u64>,
        deliveries: Option<i64>,
    ) -> Result<(), BusError> {
        let mut headers = HeaderMap::new();
        headers.insert(DEAD_REASON_HEADER, header_safe(reason));
        if let Some(sequence) = stream_sequence {
            headers.insert(DEAD_SEQUENCE_HEADER, sequence.to_string());
            headers.insert(async_nats::header::NATS_MESSAGE_ID, format!("{}:{sequence}", self.subjects.jobs_stream()));
        }
        if let Some(deliveries) = deliveries {
            headers.insert(DEAD_DELIVERIES_HEADER, deliveries.to_string());
        }
        let publish = PublishMessage::build().payload(payload).headers(headers);
        let ack = self.jetstream.send_publish(self.subjects.dead_letter(), publish).await.map_err(publish_error)?;
        ack.await.map_err(publish_error)?;
        Ok(())
    }

    /// Dead-letters a delivered message: the copy first, then `Term` so it is never delivered again (under work-queue
    /// retention that also deletes it).
    async fn dead_letter_message(&self, message: &jetstream::Message, reason: &str) -> Result<(), BusError> {
        let (sequence, deliveries) = match message.info() {
            Ok(info) => (Some(info.stream_sequence), Some(info.delivered)),
            Err(_) => (None, None),
        };
        self.publish_dead_copy(message.payload.clone(), reason, sequence, deliveries).await?;
        message
            .double_ack_with(AckKind::Term)
            .await
            .map_err(|err| BusError::unavailable("termination not confirmed", err))
    }

    /// Turns a pulled message into a delivery, or dead-letters it when it cannot be read.
    async fn accept(self: &Arc<Self>, message: jetstream::Message) -> Option<JobDelivery> {
        let attempt = match message.info() {
            Ok(info) => u64::try_from(info.delivered).unwrap_or(1).max(1),
            Err(err) => {
                warn!(subject = %message.subject, error = %err, "ignoring a message that is not a JetStream delivery");
                return None;
            }
        };
        match QueryJob::decode(&message.payload) {
            Ok(mut job) => {
                job.trace = message
                    .headers
                    .as_ref()
                    .and_then(|headers| headers.get(TraceParent::HEADER))
                    .and_then(|value| TraceParent::parse(value.as_str()));
                Some(JobDelivery { job, attempt, acker: Box::new(NatsAcker::new(message, Arc::clone(self))) })
            }
            Err(err) => {
                let reason = format!("undecodable job: {err}");
                warn!(%reason, "dead-lettering a job this worker cannot read");
                if let Err(err) = self.dead_letter_message(&message, &reason).await {
                    // Left unacked, it comes back after the ack wait and the dead-lettering is tried again.
                    error!(error = error_chain(&err), "cannot dead-letter an unreadable job");
                }
                None
            }
        }
    }

    /// Moves a job that exhausted its deliveries (reported by a server advisory) to the dead-letter stream: under
    /// work-queue retention it would otherwise stay in the jobs stream, never delivered again. Every worker sees the
    /// advisory; the dead copy is deduplicated by sequence and a second delete finds nothing.
    async fn bury_exhausted(&self, sequence: u64, deliveries: Option<i64>) -> Result<(), BusError> {
        let stream = self
            .jetstream
            .get_stream_no_info(self.subjects.jobs_stream())
            .await
            .map_err(|err| BusError::unavailable("cannot open the jobs stream", err))?;
        let message = match stream.get_raw_message(sequence).await {
            Ok(message) => message,
            Err(err) if matches!(err.kind(), jetstream::stream::RawMessageErrorKind::NoMessageFound) => return Ok(()),
            Err(err) => return Err(BusError::unavailable(format!("cannot read job {sequence}"), err)),
        };
        let reason = match deliveries {
            Some(n) => format!("delivered {n} times without being acknowledged"),
            None => "delivered the maximum number of times without being acknowledged".to_owned(),
        };
        self.publish_dead_copy(message.payload.clone(), &reason, Some(sequence), deliveries).await?;
        if let Ok(job) = QueryJob::decode(&message.payload) {
            // Nobody listening is fine: a process without a worker has nobody to tell.
            let _ =
                self.exhausted.send(ExhaustedJob { job, deliveries: deliveries.and_then(|n| u64::try_from(n).ok()) });
        }
        if let Err(err) = stream.delete_message(sequence).await {
            debug!(sequence, error = %err, "exhausted job already removed by another worker");
        }
        warn!(sequence, %reason, "job moved to the dead-letter stream");
        Ok(())
    }
}

/// Follows the server's max-deliveries advisories of the job consumer and buries the exhausted jobs.
async fn watch_exhausted(bus: Arc<Inner>, mut advisories: async_nats::Subscriber) {
    while let Some(message) = advisories.next().await {
        let advisory: serde_json::Value = match serde_json::from_slice(&message.payload) {
            Ok(advisory) => advisory,
            Err(err) => {
                warn!(error = %err, "unreadable max-deliveries advisory");
                continue;
            }
        };
        let Some(sequence) = advisory.get("stream_seq").and_then(serde_json::Value::as_u64) else {
            warn!(%advisory, "max-deliveries advisory without a stream sequence");
            continue;
        };
        let deliveries = advisory.get("deliveries").and_then(serde_json::Value::as_i64);
        if let Err(err) = bus.bury_exhausted(sequence, deliveries).await {
            error!(sequence, error = error_chain(&err), "cannot move an exhausted job to the dead-letter stream");
        }
    }
}

/// Aborts a background task when the job stream that owns it is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Pull messages are requested in batches of this size. The client asks for the next batch once half of the
/// current one has arrived, so up to one and a half batches are requested but not yet handed out: two thirds of
/// `prefetch` keeps that within `prefetch`.
fn batch_for_prefetch(prefetch: usize) -> usize {
    (prefetch.saturating_mul(2) / 3).max(1)
}

/// State of one worker's job stream: the pull subscription, reopened whenever it breaks.
struct Puller {
    bus: Arc<Inner>,
    consumer: PullConsumer,
    batch: usize,
    messages: Option<pull::Stream>,
    backoff: Backoff,
    _exhausted_watcher: AbortOnDrop,
}

impl Puller {
    async fn open(consumer: &PullConsumer, batch: usize) -> Result<pull::Stream, BusError> {
        consumer
            .stream()
            .max_messages_per_batch(batch)
            .expires(PULL_EXPIRES)
            .heartbeat(PULL_HEARTBEAT)
            .messages()
            .await
            .map_err(|err| BusError::unavailable("cannot pull jobs", err))
    }

    /// Waits for the next readable job. Never gives up: pull failures are logged and the pull is reopened (after
    /// re-creating the consumer if it was deleted), with a growing delay while it keeps failing.
    async fn next_delivery(&mut self) -> JobDelivery {
        loop {
            let Some(messages) = self.messages.as_mut() else {
                self.reopen().await;
                continue;
            };
            match messages.next().await {
                Some(Ok(message)) => {
                    self.backoff.reset();
                    if let Some(delivery) = self.bus.accept(message).await {
                        return delivery;
                    }
                }
                Some(Err(err)) => match err.kind() {
                    // The pull stream itself renews its request after these.
                    pull::MessagesErrorKind::Pull | pull::MessagesErrorKind::Other => {
                        warn!(error = %err, "job pull failed; continuing");
                    }
                    _ => {
                        warn!(error = %err, "job pull broken; reopening it");
                        self.messages = None;
                    }
                },
                None => {
                    warn!("job pull ended; reopening it");
                    self.messages = None;
                }
            }
        }
    }

    async fn reopen(&mut self) {
        tokio::time::sleep(self.backoff.next_delay()).await;
        let bus = &self.bus;
        match ensure_jobs_topology(&bus.jetstream, &bus.subjects, bus.options).await {
            Ok(consumer) => self.consumer = consumer,
            Err(err) => warn!(error = error_chain(&err), "cannot check the job consumer; reusing it"),
        }
        match Self::open(&self.consumer, self.batch).await {
            Ok(messages) => self.messages = Some(messages),
            Err(err) => warn!(error = error_chain(&err), "cannot reopen the job pull; retrying"),
        }
    }
}

/// Doubling delay between attempts, capped.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff { next: FIRST_BACKOFF }
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        delay
    }

    fn reset(&mut self) {
        self.next = FIRST_BACKOFF;
    }
}

/// Acknowledgement of one JetStream delivery.
///
/// Dropped without being settled (its task panicked, or was dropped), it gives the job back at once (`Nak`), as
/// the in-process bus does, rather than leaving it to the ack wait.
struct NatsAcker {
    message: jetstream::Message,
    bus: Arc<Inner>,
    settled: std::sync::atomic::AtomicBool,
}

impl NatsAcker {
    fn new(message: jetstream::Message, bus: Arc<Inner>) -> Self {
        NatsAcker { message, bus, settled: std::sync::atomic::AtomicBool::new(false) }
    }

    /// Marks the delivery settled when `result` says the server took the answer.
    fn settled_if_ok(&self, result: Result<(), BusError>) -> Result<(), BusError> {
        if result.is_ok() {
            self.settled.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }
}

#[async_trait]
impl JobAcker for NatsAcker {
    async fn ack(&self) -> Result<(), BusError> {
        let acked = self.message.double_ack().await.map_err(|err| BusError::unavailable("ack not confirmed", err));
        self.settled_if_ok(acked)
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        self.message.ack_with(AckKind::Progress).await.map_err(|err| BusError::unavailable("cannot send progress", err))
    }

    async fn retry_later(&self, delay: Duration) -> Result<(), BusError> {
        let given_back = self
            .message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|err| BusError::unavailable("cannot give the job back", err));
        self.settled_if_ok(given_back)
    }

    async fn dead_letter(&self, reason: &str) -> Result<(), BusError> {
        let buried = self.bus.dead_letter_message(&self.message, reason).await;
        self.settled_if_ok(buried)
    }
}

impl Drop for NatsAcker {
    fn drop(&mut self) {
        if self.settled.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let message = self.message.clone();
        runtime.spawn(async move {
            if let Err(err) = message.ack_with(AckKind::Nak(None)).await {
                debug!(error = %err, "cannot give back a dropped job; it returns after the ack wait");
            }
        });
    }
}

/// Whether a refused publish means that the stream holds its `max_messages` (discard policy `new`): the server's
/// error 10077, "maximum messages exceeded".
fn is_queue_full(err: &PublishError) -> bool {
    let api_error = std::error::Error::source(err).and_then(|source| source.downcast_ref::<jetstream::Error>());
    api_error.is_some_and(|api| {
        api.error_code() == jetstream::ErrorCode(10077) || api.to_string().contains("maximum messages")
    })
}

fn publish_error(err: PublishError) -> BusError {
    match err.kind() {
        PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::MaxAckPending
        | PublishErrorKind::StreamNotFound => BusError::unavailable("publish not confirmed", err),
        _ => BusError::rejected("publish refused", err),
    }
}

/// A header value: no line breaks, bounded length.
fn header_safe(text: &str) -> String {
    let mut value: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if value.len() > MAX_REASON_LEN {
        let mut end = MAX_REASON_LEN;
        while !value.is_char_boundary(end) {
            end -= 1;
        }
        value.truncate(end);
    }
    value
}

fn subscribe_failed(what: &str, err: async_nats::SubscribeError) -> BusError {
    BusError::unavailable(format!("cannot subscribe to {what}"), err)
}

/// Decodes a core subscription, dropping (with a warning) what this node cannot read.
fn decoded<T: BusMessage + Send + 'static>(
    subscriber: async_nats::Subscriber,
    kind: &'static str,
) -> BoxStream<'static, T> {
    subscriber
        .filter_map(move |message| {
            let decoded = match T::decode(&message.payload) {
                Ok(value) => Some(value),
                Err(err) => {
                    warn!(subject = %message.subject, error = %err, "dropping an unreadable {kind}");
                    None
                }
            };
            futures::future::ready(decoded)
        })
        .boxed()
}

#[async_trait]
impl Bus for NatsBus {
    async fn submit_job(&self, job: &QueryJob) -> Result<(), BusError> {
        let mut publish = PublishMessage::build().payload(job.encode().into()).message_id(job.job_id.to_string());
        if let Some(trace) = job.trace {
            publish = publish.header(TraceParent::HEADER, trace.to_string());
        }
        let ack =
            self.inner.jetstream.send_publish(self.inner.subjects.jobs(), publish).await.map_err(publish_error)?;
        let ack = ack.await.map_err(|err| match is_queue_full(&err) {
            true => BusError::QueueFull,
            false => publish_error(err),
        })?;
        if ack.duplicate {
            debug!(job_id = %job.job_id, "job already queued; the duplicate was dropped");
        }
        Ok(())
    }

    async fn job_deliveries(&self, prefetch: usize) -> Result<BoxStream<'static, JobDelivery>, BusError> {
        let bus = Arc::clone(&self.inner);
        let advisory_subject =
            format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{WORKERS_CONSUMER}", bus.subjects.jobs_stream());
        let advisories =
            bus.client.subscribe(advisory_subject).await.map_err(|err| subscribe_failed("advisories", err))?;
        let batch = batch_for_prefetch(prefetch);
        let messages = Puller::open(&bus.consumer, batch).await?;
        let watcher = AbortOnDrop(tokio::spawn(watch_exhausted(Arc::clone(&bus), advisories)));
        let puller = Puller {
            consumer: bus.consumer.clone(),
            bus,
            batch,
            messages: Some(messages),
            backoff: Backoff::new(),
            _exhausted_watcher: watcher,
        };
        Ok(futures::stream::unfold(puller, |mut puller| async move {
            let delivery = puller.next_delivery().await;
            Some((delivery, puller))
        })
        .boxed())
    }

    async fn job_queue(&self) -> Result<QueueDepth, BusError> {
        let info = self
            .inner
            .consumer
            .get_info()
            .await
            .map_err(|err| BusError::unavailable(format!("cannot read consumer {WORKERS_CONSUMER}"), err))?;
        Ok(QueueDepth { pending: info.num_pending, unacked: u64::try_from(info.num_ack_pending).unwrap_or(0) })
    }

    async fn publish_event(&self, subject: &str, event: &JobEvent) -> Result<(), BusError> {
        self.publish_events(subject, std::slice::from_ref(event)).await
    }

    async fn publish_events(&self, subject: &str, events: &[JobEvent]) -> Result<(), BusError> {
        let (progress, answer): (Vec<&JobEvent>, Vec<&JobEvent>) =
            events.iter().partition(|event| matches!(event.event, ChatEvent::Progress { .. }));
        for event in progress {
            // Stored by the events stream all the same; only nobody waits for it.
            self.inner
                .client
                .publish(subject.to_owned(), event.encode().into())
                .await
                .map_err(|err| BusError::unavailable("cannot publish an event", err))?;
        }
        // An answer's events (result, chart, done) travel as one message: one write to the stream, one ack, one
        // delivery to the API node, and they arrive together or not at all.
        let payload: Bytes = match answer.as_slice() {
            [] => return Ok(()),
            [event] => event.encode().into(),
            several => {
                // A JSON array of the encoded events (a result can be megabytes: it is not copied to build it).
                let mut batch = vec![b'['];
                for (n, event) in several.iter().enumerate() {
                    if n > 0 {
                        batch.push(b',');
                    }
                    batch.extend(event.encode());
                }
                batch.push(b']');
                batch.into()
            }
        };
        let ack = self.inner.jetstream.publish(subject.to_owned(), payload).await.map_err(publish_error)?;
        ack.await.map_err(publish_error)?;
        Ok(())
    }

    async fn subscribe_events(&self, node_id: &str) -> Result<BoxStream<'static, JobEvent>, BusError> {
        let subject = self.inner.subjects.node_events(node_id);
        self.inner.ordered_events(subject, false).await
    }

    async fn replay_events(&self, job_id: uuid::Uuid) -> Result<BoxStream<'static, JobEvent>, BusError> {
        let subject = self.inner.subjects.events_of_job(job_id);
        self.inner.ordered_events(subject, true).await
    }

    async fn exhausted_jobs(&self) -> Result<BoxStream<'static, ExhaustedJob>, BusError> {
        Ok(crate::broadcast_stream(self.inner.exhausted.subscribe(), "exhausted job"))
    }

    async fn publish_cancel(&self, cancel: &CancelRequest) -> Result<(), BusError> {
        self.inner
            .client
            .publish(self.inner.subjects.cancel(), cancel.encode().into())
            .await
            .map_err(|err| BusError::unavailable("cannot publish a cancellation", err))
    }

    async fn subscribe_cancels(&self) -> Result<BoxStream<'static, CancelRequest>, BusError> {
        let subscriber = self
            .inner
            .client
            .subscribe(self.inner.subjects.cancel())
            .await
            .map_err(|err| subscribe_failed("cancellations", err))?;
        self.round_trip().await?;
        Ok(decoded(subscriber, "cancellation"))
    }

    fn events_subject(&self, node_id: &str, job_id: uuid::Uuid) -> String {
        self.inner.subjects.job_events(node_id, job_id)
    }

    async fn request_worker(&self, request: &WorkerRequest, timeout: Duration) -> Result<WorkerReply, BusError> {
        self.send_worker_request(request, timeout).await
    }

    async fn worker_requests(&self) -> Result<BoxStream<'static, WorkerRequestDelivery>, BusError> {
        self.listen_for_worker_requests().await
    }

    async fn flush(&self) -> Result<(), BusError> {
        self.round_trip().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_are_compared_by_number() {
        assert_eq!(parse_version("2.10.23"), Some((2, 10, 23)));
        assert_eq!(parse_version("v2.11.0-beta.1"), Some((2, 11, 0)));
        assert!(parse_version("2.9.10").unwrap() < MIN_SERVER_VERSION);
        assert!(parse_version("2.10.100").unwrap() > MIN_SERVER_VERSION);
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn batches_never_request_more_than_prefetch() {
        for prefetch in 0..50 {
            let batch = batch_for_prefetch(prefetch);
            assert!(batch >= 1);
            // Outstanding at most: what is left of one batch when the next is asked for, plus that next batch.
            assert!(batch / 2 + batch <= prefetch.max(1), "prefetch {prefetch} batch {batch}");
        }
    }

    #[test]
    fn header_values_are_single_line_and_bounded() {
        assert_eq!(header_safe("bad\r\njob"), "bad  job");
        let long = "é".repeat(MAX_REASON_LEN);
        let safe = header_safe(&long);
        assert!(safe.len() <= MAX_REASON_LEN && safe.chars().all(|c| c == 'é'));
    }

    #[test]
    fn dead_letter_stream_sits_next_to_the_jobs_stream() {
        assert_eq!(dead_letter_stream(&Subjects::new("qg.test-1")), "QG_TEST_1_DEAD");
    }
}
