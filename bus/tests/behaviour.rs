//! Behaviour of the bus. The shared cases run against both backends: NATS JetStream at `QUERYGPT_TEST_NATS_URL`
//! (a fresh subject prefix, hence fresh streams, per test) and the in-process bus. Cases that depend on the ack wait
//! or on raw bytes on the jobs or request subjects only exist on NATS.

use async_nats::jetstream;
use futures::StreamExt;
use futures::stream::BoxStream;
use querygpt_bus::{
    Bus, BusError, DEAD_REASON_HEADER, InProcessBus, JobDelivery, NatsBus, NatsJobOptions, QueueDepth,
    WORKERS_CONSUMER, dead_letter_stream,
};
use querygpt_common::messages::{
    BusMessage, CancelReason, CancelRequest, ChatEvent, ConnectionTestReport, JobEvent, MESSAGE_VERSION, QueryJob,
    Question, Stage, WorkerOutcome, WorkerReply, WorkerRequest, WorkerTask,
};
use querygpt_common::subjects::Subjects;
use querygpt_common::telemetry::TraceParent;
use querygpt_common::{ErrorCode, Language};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Long enough that nothing is redelivered by timeout during a test.
const LONG_ACK_WAIT: Duration = Duration::from_secs(30);
const SHORT_ACK_WAIT: Duration = Duration::from_secs(1);
/// How long a test waits for something that must arrive.
const PATIENCE: Duration = Duration::from_secs(10);
/// How long a test watches for something that must not arrive.
const QUIET: Duration = Duration::from_millis(600);
/// What "at once" means for a request nobody listens to (a round trip to the server, no timeout).
const AT_ONCE: Duration = Duration::from_millis(500);

fn nats_url() -> String {
    std::env::var("QUERYGPT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn options(ack_wait: Duration) -> NatsJobOptions {
    NatsJobOptions { ack_wait, max_deliver: 5, max_pending: -1, replicas: 1 }
}

enum Backend {
    Nats { url: String, options: NatsJobOptions, _cleanup: StreamCleanup },
    InProcess(InProcessBus),
}

/// One deployment under test.
struct Harness {
    subjects: Subjects,
    backend: Backend,
}

impl Harness {
    fn nats(options: NatsJobOptions) -> Self {
        let subjects = Subjects::new(format!("qgtest{}", Uuid::new_v4().simple()));
        let url = nats_url();
        let cleanup = StreamCleanup {
            url: url.clone(),
            streams: vec![subjects.jobs_stream(), dead_letter_stream(&subjects), subjects.events_stream()],
        };
        Harness { subjects, backend: Backend::Nats { url, options, _cleanup: cleanup } }
    }

    fn in_process() -> Self {
        let subjects = Subjects::new("qg");
        Harness { backend: Backend::InProcess(InProcessBus::new(subjects.clone())), subjects }
    }

    /// One node of the deployment: its own connection on NATS, as another process would have; the one shared bus
    /// in process.
    async fn node(&self) -> Arc<dyn Bus> {
        match &self.backend {
            Backend::Nats { url, options, .. } => {
                Arc::new(NatsBus::connect(url, self.subjects.clone(), *options).await.expect("connect to NATS"))
            }
            Backend::InProcess(bus) => Arc::new(bus.clone()),
        }
    }

    /// A plain JetStream client on the test's server, for looking behind the bus (NATS only).
    async fn jetstream(&self) -> Option<jetstream::Context> {
        match &self.backend {
            Backend::Nats { url, .. } => Some(jetstream::new(async_nats::connect(url).await.expect("raw connect"))),
            Backend::InProcess(_) => None,
        }
    }

    /// On NATS, checks that acked jobs really left the work queue.
    async fn assert_jobs_stream_empty(&self) {
        if let Some(js) = self.jetstream().await {
            let mut stream = js.get_stream(self.subjects.jobs_stream()).await.expect("jobs stream");
            assert_eq!(stream.info().await.expect("stream info").state.messages, 0, "jobs left in the stream");
        }
    }
}

/// Deletes a test's streams when the test ends, passed or failed (hence a thread with its own runtime: `Drop`
/// cannot await).
struct StreamCleanup {
    url: String,
    streams: Vec<String>,
}

impl Drop for StreamCleanup {
    fn drop(&mut self) {
        let url = self.url.clone();
        let streams = std::mem::take(&mut self.streams);
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                if let Ok(client) = async_nats::connect(&url).await {
                    let js = jetstream::new(client);
                    for stream in streams {
                        // Absent when the test failed before connecting: nothing to clean.
                        let _ = js.delete_stream(&stream).await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

fn new_job(bus: &dyn Bus) -> QueryJob {
    let question = Question {
        user_id: Uuid::new_v4(),
        conversation_id: None,
        text: "how many orders last week?".into(),
        language: Language::En,
        model_id: Uuid::new_v4(),
        connection_id: Uuid::new_v4(),
        context_rounds: None,
        prompts: Default::default(),
        view_mode: Default::default(),
    };
    QueryJob::accept(question, |job_id| bus.events_subject("node-1", job_id))
}

fn progress(job_id: Uuid, seq: u32) -> JobEvent {
    JobEvent {
        v: MESSAGE_VERSION,
        job_id,
        seq,
        event: ChatEvent::Progress {
            stage: Stage::Analyzing,
            message: "analyzing".into(),
            conversation_id: None,
            attempt: None,
        },
    }
}

async fn next_within<T>(stream: &mut BoxStream<'static, T>, wait: Duration) -> Option<T> {
    tokio::time::timeout(wait, stream.next()).await.ok().flatten()
}

async fn expect_next<T>(stream: &mut BoxStream<'static, T>, what: &str) -> T {
    next_within(stream, PATIENCE).await.unwrap_or_else(|| panic!("no {what} within {PATIENCE:?}"))
}

async fn expect_no_job(jobs: &mut BoxStream<'static, JobDelivery>, wait: Duration) {
    if let Some(delivery) = next_within(jobs, wait).await {
        panic!("unexpected delivery {} of job {}", delivery.attempt, delivery.job.job_id);
    }
}

async fn expect_silence<T: std::fmt::Debug>(stream: &mut BoxStream<'static, T>, what: &str) {
    if let Some(item) = next_within(stream, QUIET).await {
        panic!("unexpected {what}: {item:?}");
    }
}

// ---- cases run on both backends ----

async fn submitted_job_is_delivered_and_acked(h: &Harness) {
    let bus = h.node().await;
    let mut jobs = bus.job_deliveries(4).await.unwrap();
    let job = new_job(&*bus);
    bus.submit_job(&job).await.unwrap();

    let delivery = expect_next(&mut jobs, "job").await;
    assert_eq!(delivery.job, job);
    assert_eq!(delivery.attempt, 1);
    delivery.acker.ack().await.unwrap();

    expect_no_job(&mut jobs, QUIET).await;
    h.assert_jobs_stream_empty().await;
}

/// A job's trace context reaches its worker (on NATS as the message's `traceparent` header, checked below).
async fn the_trace_context_travels_with_the_job(h: &Harness) {
    let bus = h.node().await;
    let mut jobs = bus.job_deliveries(4).await.unwrap();
    let trace = TraceParent::new_root();
    let job = QueryJob { trace: Some(trace), ..new_job(&*bus) };
    bus.submit_job(&job).await.unwrap();

    let delivery = expect_next(&mut jobs, "job").await;
    assert_eq!(delivery.job.trace, Some(trace));
    delivery.acker.ack().await.unwrap();
}

/// The queue's depth, once it reads `expected` (NATS settles acks asynchronously).
async fn until_the_queue_reads(bus: &dyn Bus, expected: QueueDepth) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let depth = bus.job_queue().await.unwrap();
        if depth == expected {
            return;
        }
        assert!(Instant::now() < deadline, "queue reads {depth:?}, expected {expected:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The queue counts jobs nobody took yet, then jobs out with a worker, then nothing once they are acked.
async fn the_queue_depth_counts_waiting_and_unsettled_jobs(h: &Harness) {
    let bus = h.node().await;
    until_the_queue_reads(&*bus, QueueDepth::default()).await;
    for _ in 0..2 {
        bus.submit_job(&new_job(&*bus)).await.unwrap();
    }
    until_the_queue_reads(&*bus, QueueDepth { pending: 2, unacked: 0 }).await;

    let mut jobs = bus.job_deliveries(4).await.unwrap();
    let first = expect_next(&mut jobs, "first job").await;
    let second = expect_next(&mut jobs, "second job").await;
    until_the_queue_reads(&*bus, QueueDepth { pending: 0, unacked: 2 }).await;
    first.acker.ack().await.unwrap();
    second.acker.ack().await.unwrap();
    until_the_queue_reads(&*bus, QueueDepth::default()).await;
}

async fn each_job_goes_to_one_of_two_competing_workers(h: &Harness) {
    let api = h.node().await;
    let a = h.node().await;
    let b = h.node().await;
    let mut a_jobs = a.job_deliveries(1).await.unwrap();
    let mut b_jobs = b.job_deliveries(1).await.unwrap();

    // A worker holding a job with prefetch 1 buffers nothing more: the other worker gets all the rest.
    let first: Vec<QueryJob> = (0..5).map(|_| new_job(&*api)).collect();
    for job in &first {
        api.submit_job(job).await.unwrap();
    }
    let held = expect_next(&mut a_jobs, "job for A").await;
    let mut seen = vec![held.job.job_id];
    for _ in 1..first.len() {
        let delivery = expect_next(&mut b_jobs, "job for B").await;
        seen.push(delivery.job.job_id);
        delivery.acker.ack().await.unwrap();
    }
    held.acker.ack().await.unwrap();
    let expected: HashSet<Uuid> = first.iter().map(|job| job.job_id).collect();
    assert_eq!(seen.len(), expected.len());
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);

    // Both pulling at once: every job exactly once between them.
    let second: Vec<QueryJob> = (0..12).map(|_| new_job(&*api)).collect();
    for job in &second {
        api.submit_job(job).await.unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < second.len() {
        let delivery = tokio::time::timeout(PATIENCE, async {
            tokio::select! {
                Some(delivery) = a_jobs.next() => delivery,
                Some(delivery) = b_jobs.next() => delivery,
            }
        })
        .await
        .expect("all jobs delivered in time");
        assert_eq!(delivery.attempt, 1);
        seen.push(delivery.job.job_id);
        delivery.acker.ack().await.unwrap();
    }
    let expected: HashSet<Uuid> = second.iter().map(|job| job.job_id).collect();
    assert_eq!(seen.len(), expected.len(), "a job was delivered twice");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);
    expect_no_job(&mut a_jobs, QUIET).await;
    expect_no_job(&mut b_jobs, Duration::ZERO).await;
    h.assert_jobs_stream_empty().await;
}

async fn retry_later_redelivers_after_the_delay(h: &Harness) {
    let bus = h.node().await;
    let mut jobs = bus.job_deliveries(2).await.unwrap();
    let job = new_job(&*bus);
    bus.submit_job(&job).await.unwrap();

    let delivery = expect_next(&mut jobs, "job").await;
    assert_eq!(delivery.attempt, 1);
    let delay = Duration::from_millis(400);
    let given_back = Instant::now();
    delivery.acker.retry_later(delay).await.unwrap();

    let again = expect_next(&mut jobs, "redelivery").await;
    assert!(given_back.elapsed() >= delay - Duration::from_millis(50), "redelivered after {:?}", given_back.elapsed());
    assert_eq!(again.job, job);
    assert_eq!(again.attempt, 2);
    again.acker.ack().await.unwrap();
    expect_no_job(&mut jobs, QUIET).await;
}

async fn same_job_submitted_twice_is_delivered_once(h: &Harness) {
    let first_node = h.node().await;
    let second_node = h.node().await;
    let mut jobs = first_node.job_deliveries(4).await.unwrap();
    let job = new_job(&*first_node);
    first_node.submit_job(&job).await.unwrap();
    // An API node retrying the submission, or another node submitting it, changes nothing.
    first_node.submit_job(&job).await.unwrap();
    second_node.submit_job(&job).await.unwrap();

    let delivery = expect_next(&mut jobs, "job").await;
    assert_eq!(delivery.job, job);
    delivery.acker.ack().await.unwrap();
    expect_no_job(&mut jobs, QUIET).await;
    h.assert_jobs_stream_empty().await;
}

async fn events_reach_only_the_addressed_node(h: &Harness) {
    let node_1 = h.node().await;
    let node_2 = h.node().await;
    let worker = h.node().await;
    let mut events_1 = node_1.subscribe_events("node-1").await.unwrap();
    let mut events_2 = node_2.subscribe_events("node-2").await.unwrap();

    let (job_1, job_2) = (Uuid::new_v4(), Uuid::new_v4());
    if let Some(js) = h.jetstream().await {
        // Garbage on a node's subject is dropped, not yielded.
        js.client().publish(worker.events_subject("node-1", job_1), "{not an event".into()).await.unwrap();
        js.client().flush().await.unwrap();
    }
    let for_1 = progress(job_1, 1);
    let for_2 = progress(job_2, 1);
    worker.publish_event(&worker.events_subject("node-1", job_1), &for_1).await.unwrap();
    worker.publish_event(&worker.events_subject("node-2", job_2), &for_2).await.unwrap();
    worker.flush().await.unwrap();

    assert_eq!(expect_next(&mut events_1, "event for node 1").await, for_1);
    // Published after node 1's event: had that one reached node 2 too, it would have come first.
    assert_eq!(expect_next(&mut events_2, "event for node 2").await, for_2);
    expect_silence(&mut events_1, "event on node 1").await;
    expect_silence(&mut events_2, "event on node 2").await;
}

async fn cancels_reach_every_subscriber(h: &Harness) {
    let a = h.node().await;
    let b = h.node().await;
    let mut cancels_a = a.subscribe_cancels().await.unwrap();
    let mut cancels_b = b.subscribe_cancels().await.unwrap();

    let cancel = CancelRequest::new(Uuid::new_v4(), Uuid::new_v4(), Some(Uuid::new_v4()), CancelReason::UserStopped);
    a.publish_cancel(&cancel).await.unwrap();
    a.flush().await.unwrap();

    assert_eq!(expect_next(&mut cancels_a, "own cancellation").await, cancel);
    assert_eq!(expect_next(&mut cancels_b, "cancellation").await, cancel);
    expect_silence(&mut cancels_a, "cancellation").await;
    expect_silence(&mut cancels_b, "cancellation").await;
}

async fn job_survives_a_worker_dropping_it_unacked(h: &Harness) {
    let api = h.node().await;
    let a = h.node().await;
    let b = h.node().await;
    let mut a_jobs = a.job_deliveries(1).await.unwrap();
    let job = new_job(&*api);
    api.submit_job(&job).await.unwrap();

    let delivery = expect_next(&mut a_jobs, "job").await;
    assert_eq!(delivery.attempt, 1);
    // The worker goes away mid-job.
    drop(delivery);
    drop(a_jobs);

    let mut b_jobs = b.job_deliveries(1).await.unwrap();
    let again = expect_next(&mut b_jobs, "redelivery").await;
    assert_eq!(again.job, job);
    assert_eq!(again.attempt, 2);
    again.acker.ack().await.unwrap();
    expect_no_job(&mut b_jobs, QUIET).await;
    h.assert_jobs_stream_empty().await;
}

fn worker_request() -> WorkerRequest {
    WorkerRequest::new(Uuid::new_v4(), WorkerTask::TestConnection { connection_id: Uuid::new_v4() })
}

/// The reply of the listener `name` to `request`: its name as the version, the request's connection id as the
/// error, so a reply shows who answered what.
fn echo(name: &str, request: &WorkerRequest) -> WorkerReply {
    let WorkerTask::TestConnection { connection_id } = request.task else {
        panic!("unexpected task {:?}", request.task);
    };
    WorkerReply::new(WorkerOutcome::ConnectionTested(ConnectionTestReport {
        connected: true,
        latency_ms: 1,
        version: Some(name.to_owned()),
        tables_count: None,
        warnings: Vec::new(),
        error: Some(connection_id.to_string()),
    }))
}

/// Answers every request `bus` receives with [`echo`]; the counter says how many it answered.
async fn serve_echo(bus: &Arc<dyn Bus>, name: &'static str) -> Arc<AtomicUsize> {
    let mut requests = bus.worker_requests().await.unwrap();
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        while let Some(delivery) = requests.next().await {
            count.fetch_add(1, Ordering::SeqCst);
            delivery.replier.reply(&echo(name, &delivery.request)).await.unwrap();
        }
    });
    answered
}

async fn worker_request_is_answered(h: &Harness) {
    let api = h.node().await;
    let worker = h.node().await;
    serve_echo(&worker, "w").await;
    let request = worker_request();
    assert_eq!(api.request_worker(&request, PATIENCE).await.unwrap(), echo("w", &request));
}

async fn worker_request_without_a_listener_fails_at_once(h: &Harness) {
    let api = h.node().await;
    let worker = h.node().await;
    let started = Instant::now();
    let result = api.request_worker(&worker_request(), PATIENCE).await;
    assert!(matches!(result, Err(BusError::NoResponders)), "{result:?}");
    assert!(started.elapsed() < AT_ONCE, "NoResponders after {:?}", started.elapsed());

    // The only listener goes away.
    drop(worker.worker_requests().await.unwrap());
    worker.flush().await.unwrap();
    let started = Instant::now();
    let result = api.request_worker(&worker_request(), PATIENCE).await;
    assert!(matches!(result, Err(BusError::NoResponders)), "{result:?}");
    assert!(started.elapsed() < AT_ONCE, "NoResponders after {:?}", started.elapsed());
}

async fn worker_request_nobody_answers_times_out(h: &Harness) {
    let api = h.node().await;
    let worker = h.node().await;
    let mut requests = worker.worker_requests().await.unwrap();
    let (request, timeout) = (worker_request(), Duration::from_millis(500));
    let started = Instant::now();
    let (result, held) = tokio::join!(api.request_worker(&request, timeout), expect_next(&mut requests, "request"));
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(BusError::TimedOut(after)) if after == timeout), "{result:?}");
    assert!(elapsed >= timeout - Duration::from_millis(50), "timed out early, after {elapsed:?}");
    assert!(elapsed < timeout + Duration::from_secs(1), "timed out late, after {elapsed:?}");
    // A reply after the requester gave up goes nowhere, harmlessly.
    held.replier.reply(&echo("late", &held.request)).await.unwrap();
}

async fn each_worker_request_goes_to_one_of_two_listeners(h: &Harness) {
    let api = h.node().await;
    let a = h.node().await;
    let b = h.node().await;
    let answered_by_a = serve_echo(&a, "a").await;
    let answered_by_b = serve_echo(&b, "b").await;

    let requests: Vec<WorkerRequest> = (0..20).map(|_| worker_request()).collect();
    let replies = futures::future::join_all(requests.iter().map(|r| api.request_worker(r, PATIENCE))).await;
    for (request, reply) in requests.iter().zip(replies) {
        let reply = reply.unwrap();
        let WorkerOutcome::ConnectionTested(report) = &reply.outcome else { panic!("unexpected reply {reply:?}") };
        let name = report.version.clone().expect("the listener's name");
        assert_eq!(reply, echo(&name, request), "a reply to another request");
    }
    // Late duplicates would show in the counts.
    tokio::time::sleep(QUIET).await;
    let (by_a, by_b) = (answered_by_a.load(Ordering::SeqCst), answered_by_b.load(Ordering::SeqCst));
    assert_eq!(by_a + by_b, requests.len(), "a: {by_a}, b: {by_b}");
    assert!(by_a > 0 && by_b > 0, "one listener got everything (a: {by_a}, b: {by_b})");
}

async fn replayed_events_start_from_the_first_and_follow(h: &Harness) {
    let bus = h.node().await;
    let job = new_job(&*bus);
    let other = new_job(&*bus);
    bus.publish_event(&job.events_subject, &progress(job.job_id, 1)).await.unwrap();
    bus.publish_event(&other.events_subject, &progress(other.job_id, 1)).await.unwrap();
    bus.publish_event(&job.events_subject, &progress(job.job_id, 11)).await.unwrap();

    // From another node too: replays are not tied to the node the events were addressed to.
    let elsewhere = h.node().await;
    let mut replay = elsewhere.replay_events(job.job_id).await.unwrap();
    assert_eq!(expect_next(&mut replay, "first event").await.seq, 1);
    assert_eq!(expect_next(&mut replay, "second event").await.seq, 11);
    let done =
        JobEvent::new(job.job_id, ChatEvent::Done { conversation_id: job.conversation_id, message_id: Uuid::nil() });
    bus.publish_events(&job.events_subject, std::slice::from_ref(&done)).await.unwrap();
    let followed = expect_next(&mut replay, "a later event").await;
    assert_eq!((followed.job_id, followed.seq), (job.job_id, 102));
    expect_silence(&mut replay, "event of another job").await;
}

/// An answer's events published together (on NATS, one message) arrive as separate events in order, live and
/// replayed.
async fn an_answers_events_arrive_one_by_one_live_and_replayed(h: &Harness) {
    let bus = h.node().await;
    let mut live = bus.subscribe_events("node-1").await.unwrap();
    let job = new_job(&*bus);
    let answer = [
        JobEvent::new(job.job_id, ChatEvent::Visualization { chart: serde_json::json!({"type": "bar"}) }),
        JobEvent::new(job.job_id, ChatEvent::Done { conversation_id: job.conversation_id, message_id: Uuid::nil() }),
    ];
    bus.publish_events(&job.events_subject, &answer).await.unwrap();
    for expected in &answer {
        assert_eq!(&expect_next(&mut live, "live event").await, expected);
    }
    let mut replay = h.node().await.replay_events(job.job_id).await.unwrap();
    for expected in &answer {
        assert_eq!(&expect_next(&mut replay, "replayed event").await, expected);
    }
}

macro_rules! on_both_backends {
    ($($case:ident($ack_wait:expr)),* $(,)?) => {
        mod nats {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&Harness::nats(options($ack_wait))).await;
                }
            )*
        }
        mod in_process {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&Harness::in_process()).await;
                }
            )*
        }
    };
}

on_both_backends!(
    submitted_job_is_delivered_and_acked(LONG_ACK_WAIT),
    the_trace_context_travels_with_the_job(LONG_ACK_WAIT),
    the_queue_depth_counts_waiting_and_unsettled_jobs(LONG_ACK_WAIT),
    each_job_goes_to_one_of_two_competing_workers(LONG_ACK_WAIT),
    retry_later_redelivers_after_the_delay(LONG_ACK_WAIT),
    same_job_submitted_twice_is_delivered_once(LONG_ACK_WAIT),
    events_reach_only_the_addressed_node(LONG_ACK_WAIT),
    cancels_reach_every_subscriber(LONG_ACK_WAIT),
    // A long ack wait: a dropped delivery comes back at once on both buses, not after the ack wait.
    job_survives_a_worker_dropping_it_unacked(LONG_ACK_WAIT),
    worker_request_is_answered(LONG_ACK_WAIT),
    worker_request_without_a_listener_fails_at_once(LONG_ACK_WAIT),
    worker_request_nobody_answers_times_out(LONG_ACK_WAIT),
    each_worker_request_goes_to_one_of_two_listeners(LONG_ACK_WAIT),
    replayed_events_start_from_the_first_and_follow(LONG_ACK_WAIT),
    an_answers_events_arrive_one_by_one_live_and_replayed(LONG_ACK_WAIT),
);

/// Submits jobs to a queue that holds two: the third is refused at once.
async fn a_full_queue_refuses_jobs(bus: Arc<dyn Bus>) {
    for _ in 0..2 {
        bus.submit_job(&new_job(&*bus)).await.unwrap();
    }
    let started = Instant::now();
    assert!(matches!(bus.submit_job(&new_job(&*bus)).await, Err(BusError::QueueFull)));
    assert!(started.elapsed() < AT_ONCE, "refused at once, not after a wait");
}

#[tokio::test]
async fn nats_a_full_queue_refuses_jobs() {
    let h = Harness::nats(NatsJobOptions { ack_wait: LONG_ACK_WAIT, max_deliver: 5, max_pending: 2, replicas: 1 });
    a_full_queue_refuses_jobs(h.node().await).await;
}

#[tokio::test]
async fn in_process_a_full_queue_refuses_jobs() {
    let options = querygpt_bus::InProcessOptions { queue_capacity: 2, max_deliver: 5 };
    a_full_queue_refuses_jobs(Arc::new(InProcessBus::with_options(Subjects::new("qg"), options))).await;
}

// ---- NATS only: the ack wait, raw bytes on the jobs subject, the server-side topology ----

#[tokio::test]
async fn nats_unacked_job_goes_to_another_worker_after_the_ack_wait() {
    let h = Harness::nats(options(SHORT_ACK_WAIT));
    let a = h.node().await;
    let b = h.node().await;
    let mut a_jobs = a.job_deliveries(1).await.unwrap();
    let job = new_job(&*a);
    a.submit_job(&job).await.unwrap();

    let stuck = expect_next(&mut a_jobs, "job").await;
    let delivered_at = Instant::now();
    let mut b_jobs = b.job_deliveries(1).await.unwrap();
    let again = expect_next(&mut b_jobs, "redelivery").await;
    assert!(delivered_at.elapsed() >= SHORT_ACK_WAIT - Duration::from_millis(100), "redelivered before the ack wait");
    assert_eq!(again.job, job);
    assert_eq!(again.attempt, 2);
    again.acker.ack().await.unwrap();
    drop(stuck);
    h.assert_jobs_stream_empty().await;
}

#[tokio::test]
async fn nats_in_progress_postpones_redelivery() {
    let h = Harness::nats(options(SHORT_ACK_WAIT));
    let a = h.node().await;
    let b = h.node().await;
    let mut a_jobs = a.job_deliveries(1).await.unwrap();
    let job = new_job(&*a);
    a.submit_job(&job).await.unwrap();
    let working = expect_next(&mut a_jobs, "job").await;

    let mut b_jobs = b.job_deliveries(1).await.unwrap();
    // Three ack waits of work, reporting progress three times per ack wait.
    for _ in 0..9 {
        working.acker.in_progress().await.unwrap();
        expect_no_job(&mut b_jobs, SHORT_ACK_WAIT / 3).await;
    }
    working.acker.ack().await.unwrap();
    expect_no_job(&mut b_jobs, SHORT_ACK_WAIT + QUIET).await;
    h.assert_jobs_stream_empty().await;
}

#[tokio::test]
async fn nats_the_trace_context_is_the_messages_traceparent_header() {
    let h = Harness::nats(options(LONG_ACK_WAIT));
    let bus = h.node().await;
    let js = h.jetstream().await.unwrap();
    let trace = TraceParent::new_root();
    bus.submit_job(&QueryJob { trace: Some(trace), ..new_job(&*bus) }).await.unwrap();

    let stream = js.get_stream(h.subjects.jobs_stream()).await.unwrap();
    let message = stream.get_raw_message(1).await.unwrap();
    let header = message.headers.get(TraceParent::HEADER).map(|value| value.as_str().to_owned());
    assert_eq!(header, Some(trace.to_string()));
    let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
    assert!(body.get("trace").is_none(), "the trace is a header, not part of the job: {body}");
}

#[tokio::test]
async fn nats_unreadable_jobs_are_dead_lettered_not_yielded() {
    let h = Harness::nats(options(LONG_ACK_WAIT));
    let bus = h.node().await;
    let js = h.jetstream().await.unwrap();
    let mut jobs = bus.job_deliveries(4).await.unwrap();

    let garbage = bytes::Bytes::from_static(b"{\"job_id\": 42");
    let mut from_the_future = serde_json::to_value(new_job(&*bus)).unwrap();
    from_the_future["v"] = (MESSAGE_VERSION + 1).into();
    let from_the_future = bytes::Bytes::from(serde_json::to_vec(&from_the_future).unwrap());
    for payload in [garbage.clone(), from_the_future.clone()] {
        js.publish(h.subjects.jobs(), payload).await.unwrap().await.unwrap();
    }
    let job = new_job(&*bus);
    bus.submit_job(&job).await.unwrap();

    let delivery = expect_next(&mut jobs, "the readable job").await;
    assert_eq!(delivery.job, job);
    delivery.acker.ack().await.unwrap();
    expect_no_job(&mut jobs, QUIET).await;
    h.assert_jobs_stream_empty().await;

    let dead = js.get_stream(dead_letter_stream(&h.subjects)).await.unwrap();
    let first = dead.get_raw_message(1).await.unwrap();
    let second = dead.get_raw_message(2).await.unwrap();
    assert_eq!(first.payload, garbage);
    assert_eq!(second.payload, from_the_future);
    let reason = |message: &jetstream::message::StreamMessage| {
        message.headers.get(DEAD_REASON_HEADER).map(|value| value.as_str().to_owned()).unwrap_or_default()
    };
    assert!(reason(&first).contains("malformed"), "reason: {}", reason(&first));
    assert!(reason(&second).contains("newer"), "reason: {}", reason(&second));
}

#[tokio::test]
async fn nats_dead_letter_keeps_a_copy_and_stops_deliveries() {
    let h = Harness::nats(options(SHORT_ACK_WAIT));
    let bus = h.node().await;
    let js = h.jetstream().await.unwrap();
    let mut jobs = bus.job_deliveries(1).await.unwrap();
    let job = new_job(&*bus);
    bus.submit_job(&job).await.unwrap();

    let delivery = expect_next(&mut jobs, "job").await;
    delivery.acker.dead_letter("the model keeps failing\r\non this one").await.unwrap();
    expect_no_job(&mut jobs, SHORT_ACK_WAIT + QUIET).await;
    h.assert_jobs_stream_empty().await;

    let dead = js.get_stream(dead_letter_stream(&h.subjects)).await.unwrap();
    let copy = dead.get_raw_message(1).await.unwrap();
    assert_eq!(QueryJob::decode(&copy.payload).unwrap(), job);
    assert_eq!(copy.headers.get(DEAD_REASON_HEADER).unwrap().as_str(), "the model keeps failing  on this one");
}

#[tokio::test]
async fn nats_job_exhausting_its_deliveries_moves_to_the_dead_letter_stream() {
    let h = Harness::nats(NatsJobOptions { ack_wait: SHORT_ACK_WAIT, max_deliver: 2, max_pending: -1, replicas: 1 });
    let bus = h.node().await;
    let js = h.jetstream().await.unwrap();
    let mut jobs = bus.job_deliveries(1).await.unwrap();
    let mut given_up = bus.exhausted_jobs().await.unwrap();
    let job = new_job(&*bus);
    bus.submit_job(&job).await.unwrap();

    for attempt in 1..=2 {
        let delivery = expect_next(&mut jobs, "job").await;
        assert_eq!(delivery.attempt, attempt);
        delivery.acker.retry_later(Duration::from_millis(50)).await.unwrap();
    }
    expect_no_job(&mut jobs, SHORT_ACK_WAIT).await;

    let mut dead = js.get_stream(dead_letter_stream(&h.subjects)).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    while dead.info().await.unwrap().state.messages == 0 {
        assert!(Instant::now() < deadline, "exhausted job never reached the dead-letter stream");
        // Any worker's job stream buries exhausted jobs; this one stays open meanwhile.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let copy = dead.get_raw_message(1).await.unwrap();
    assert_eq!(QueryJob::decode(&copy.payload).unwrap(), job);
    h.assert_jobs_stream_empty().await;
    // The process is told, so that a worker can tell the job's client.
    let exhausted = expect_next(&mut given_up, "exhausted job").await;
    assert_eq!((exhausted.job, exhausted.deliveries), (job, Some(2)));
}

#[tokio::test]
async fn nats_reconnecting_with_new_options_updates_the_consumer() {
    let h = Harness::nats(options(LONG_ACK_WAIT));
    let _first = h.node().await;
    let updated = NatsJobOptions { ack_wait: Duration::from_secs(7), max_deliver: 3, max_pending: -1, replicas: 1 };
    let _second = NatsBus::connect(&nats_url(), h.subjects.clone(), updated).await.unwrap();

    let js = h.jetstream().await.unwrap();
    let stream = js.get_stream(h.subjects.jobs_stream()).await.unwrap();
    let info = stream.consumer_info(WORKERS_CONSUMER).await.unwrap();
    assert_eq!(info.config.ack_wait, updated.ack_wait);
    assert_eq!(info.config.max_deliver, updated.max_deliver);
    let config = stream.cached_info().config.clone();
    assert_eq!(config.retention, jetstream::stream::RetentionPolicy::WorkQueue);
    assert_eq!(config.duplicate_window, querygpt_bus::DUPLICATE_WINDOW);
}

#[tokio::test]
async fn nats_unreadable_worker_requests_are_refused_not_yielded() {
    let h = Harness::nats(options(LONG_ACK_WAIT));
    let worker = h.node().await;
    let mut requests = worker.worker_requests().await.unwrap();
    // The stream answers unreadable requests while it is polled, as a worker does all the time.
    let yielded = Arc::new(AtomicUsize::new(0));
    let count = yielded.clone();
    tokio::spawn(async move {
        while requests.next().await.is_some() {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    let client = h.jetstream().await.unwrap().client();

    let mut from_the_future = serde_json::to_value(worker_request()).unwrap();
    from_the_future["v"] = (MESSAGE_VERSION + 1).into();
    for payload in [bytes::Bytes::from_static(b"{\"task\": 42"), serde_json::to_vec(&from_the_future).unwrap().into()] {
        let answer = client.request(h.subjects.worker_requests(), payload).await.unwrap();
        let reply = WorkerReply::decode(&answer.payload).unwrap();
        assert!(
            matches!(&reply.outcome, WorkerOutcome::Failed { code: ErrorCode::InternalError, message }
                if message.contains("cannot read")),
            "{reply:?}"
        );
    }
    // Nobody waits for a request without a reply subject: it is dropped.
    client.publish(h.subjects.worker_requests(), worker_request().encode().into()).await.unwrap();
    client.flush().await.unwrap();
    tokio::time::sleep(QUIET).await;
    assert_eq!(yielded.load(Ordering::SeqCst), 0, "a request was yielded");
}

#[tokio::test]
async fn nats_a_reply_too_large_for_the_server_becomes_a_failure() {
    use querygpt_common::schema::{DbSchema, TableInfo, TableKind};
    let h = Harness::nats(options(LONG_ACK_WAIT));
    let api = h.node().await;
    let worker = h.node().await;
    let mut requests = worker.worker_requests().await.unwrap();
    // About 2 MB of JSON, over the server's default max_payload of 1 MB.
    let table = |i: usize| TableInfo {
        name: format!("table_{i:05}_{}", "x".repeat(80)),
        kind: TableKind::Table,
        comment: None,
        columns: Vec::new(),
        foreign_keys: Vec::new(),
        row_count: None,
    };
    let huge = WorkerReply::new(WorkerOutcome::Schema(DbSchema { tables: (0..20_000).map(table).collect() }));
    assert!(huge.encode().len() > 1024 * 1024);
    tokio::spawn(async move {
        let delivery = requests.next().await.expect("a request");
        delivery.replier.reply(&huge).await.unwrap();
    });

    let reply = api.request_worker(&worker_request(), PATIENCE).await.unwrap();
    assert!(matches!(reply.outcome, WorkerOutcome::Failed { code: ErrorCode::InternalError, .. }), "{reply:?}");
}

#[tokio::test]
async fn in_process_job_exhausting_its_deliveries_is_reported() {
    let options = querygpt_bus::InProcessOptions { queue_capacity: 8, max_deliver: 2 };
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::with_options(Subjects::new("qg"), options));
    let mut jobs = bus.job_deliveries(1).await.unwrap();
    let mut given_up = bus.exhausted_jobs().await.unwrap();
    let job = new_job(&*bus);
    bus.submit_job(&job).await.unwrap();
    for attempt in 1..=2 {
        let delivery = expect_next(&mut jobs, "job").await;
        assert_eq!(delivery.attempt, attempt);
        delivery.acker.retry_later(Duration::ZERO).await.unwrap();
    }
    let exhausted = expect_next(&mut given_up, "exhausted job").await;
    assert_eq!((exhausted.job, exhausted.deliveries), (job, Some(2)));
    expect_no_job(&mut jobs, QUIET).await;
}
