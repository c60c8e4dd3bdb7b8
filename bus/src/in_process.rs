//! The in-process backend of the embedded mode: API and worker in one process, no NATS server.

mod requests;

use crate::{
    Bus, BusError, DUPLICATE_WINDOW, EVENTS_MAX_AGE, ExhaustedJob, JobAcker, JobDelivery, QueueDepth,
    WorkerRequestDelivery,
};
use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use querygpt_common::messages::{CancelRequest, JobEvent, QueryJob, WorkerReply, WorkerRequest};
use querygpt_common::subjects::Subjects;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, error, warn};
use uuid::Uuid;

/// Events buffered per subscriber before new ones are dropped (the default of a NATS subscription).
const EVENT_BUFFER: usize = 65_536;
/// Cancellations buffered per subscriber before the oldest are dropped.
const CANCEL_BUFFER: usize = 1_024;
/// Jobs whose events are kept for [`Bus::replay_events`] (besides [`EVENTS_MAX_AGE`]): results can be large, and
/// in one process a client resumes within seconds or not at all.
const KEPT_JOBS: usize = 1_024;

/// Limits of the in-process bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InProcessOptions {
    /// Jobs waiting for a worker at most; beyond, `submit_job` fails with [`BusError::QueueFull`].
    pub queue_capacity: usize,
    /// Deliveries of one job before it is given up (logged as dead); 0 for no limit.
    pub max_deliver: u64,
}

impl Default for InProcessOptions {
    fn default() -> Self {
        InProcessOptions { queue_capacity: 1_024, max_deliver: 5 }
    }
}

/// The bus inside one process, for the embedded mode. Clones share the same queue and subscribers.
///
/// Limits, by design:
/// - One process only: nothing crosses a process boundary, so another process (API node or worker) would see none
///   of these jobs, events, cancellations or worker requests.
/// - Not durable: queued jobs live in memory and are lost when the process exits or crashes.
/// - No ack wait: a job is redelivered when its delivery is dropped without being settled (the worker task panicked
///   or gave it up), not after a timeout, so `in_progress` is a no-op.
/// - Events and cancellations are dropped, as with core NATS, when a subscriber falls too far behind.
#[derive(Clone)]
pub struct InProcessBus {
    shared: Arc<Shared>,
}

struct Queued {
    job: QueryJob,
    attempt: u64,
}

struct Shared {
    subjects: Subjects,
    max_deliver: u64,
    jobs_tx: mpsc::Sender<Queued>,
    /// Every worker stream takes jobs from this one receiver, in turn.
    jobs_rx: tokio::sync::Mutex<mpsc::Receiver<Queued>>,
    recent: Mutex<RecentIds>,
    /// Event subscribers by API node id.
    events: Mutex<HashMap<String, Vec<mpsc::Sender<JobEvent>>>>,
    /// Recent jobs' events, and who follows them (`replay_events`).
    kept: Mutex<KeptEvents>,
    cancels: broadcast::Sender<CancelRequest>,
    exhausted: broadcast::Sender<ExhaustedJob>,
    requests: requests::Listeners,
    /// Deliveries not settled yet ([`Bus::job_queue`]).
    unacked: AtomicU64,
}

impl InProcessBus {
    /// A bus with the default [`InProcessOptions`].
    pub fn new(subjects: Subjects) -> Self {
        Self::with_options(subjects, InProcessOptions::default())
    }

    pub fn with_options(subjects: Subjects, options: InProcessOptions) -> Self {
        let (jobs_tx, jobs_rx) = mpsc::channel(options.queue_capacity.max(1));
        let (cancels, _) = broadcast::channel(CANCEL_BUFFER);
        let (exhausted, _) = broadcast::channel(CANCEL_BUFFER);
        InProcessBus {
            shared: Arc::new(Shared {
                subjects,
                max_deliver: options.max_deliver,
                jobs_tx,
                jobs_rx: tokio::sync::Mutex::new(jobs_rx),
                recent: Mutex::new(RecentIds::default()),
                events: Mutex::new(HashMap::new()),
                kept: Mutex::new(KeptEvents::default()),
                cancels,
                exhausted,
                requests: requests::Listeners::default(),
                unacked: AtomicU64::new(0),
            }),
        }
    }
}

impl Shared {
    /// Puts a job back for delivery number `attempt`, or gives it up when that exceeds `max_deliver`.
    async fn requeue(&self, job: QueryJob, attempt: u64) {
        if self.exhausted(&job, attempt) {
            return;
        }
        // The queue cannot close: `self` holds its receiver.
        if self.jobs_tx.send(Queued { job, attempt }).await.is_err() {
            error!("in-process job queue closed");
        }
    }

    fn exhausted(&self, job: &QueryJob, attempt: u64) -> bool {
        let exhausted = self.max_deliver > 0 && attempt > self.max_deliver;
        if exhausted {
            error!(job_id = %job.job_id, deliveries = attempt - 1, ?job, "job exhausted its deliveries; dropped");
            let _ = self.exhausted.send(ExhaustedJob { job: job.clone(), deliveries: Some(attempt - 1) });
        }
        exhausted
    }

    /// The API node an events subject is addressed to: `<prefix>.events.<node>.<job>`.
    fn event_node<'a>(&self, subject: &'a str) -> Option<&'a str> {
        let rest = subject.strip_prefix(self.subjects.prefix())?.strip_prefix(".events.")?;
        let (node, job) = rest.split_once('.')?;
        (!node.is_empty() && !job.is_empty() && !job.contains('.')).then_some(node)
    }
}

/// The events of the last [`KEPT_JOBS`] jobs of the last [`EVENTS_MAX_AGE`], and the replays that follow them.
#[derive(Default)]
struct KeptEvents {
    /// When each job's first event came, oldest first.
    order: VecDeque<(Instant, Uuid)>,
    jobs: HashMap<Uuid, KeptJob>,
}

#[derive(Default)]
struct KeptJob {
    events: Vec<JobEvent>,
    followers: Vec<mpsc::Sender<JobEvent>>,
}

impl KeptEvents {
    fn record(&mut self, event: &JobEvent) {
        let now = Instant::now();
        while let Some((at, job_id)) = self.order.front().copied() {
            if self.order.len() < KEPT_JOBS && now.duration_since(at) < EVENTS_MAX_AGE {
                break;
            }
            self.order.pop_front();
            self.jobs.remove(&job_id);
        }
        let job = self.jobs.entry(event.job_id).or_insert_with(|| {
            self.order.push_back((now, event.job_id));
            KeptJob::default()
        });
        job.events.push(event.clone());
        job.followers.retain(|follower| follower.try_send(event.clone()).is_ok());
    }

    /// The kept events of `job_id`, and a receiver of the ones to come.
    fn follow(&mut self, job_id: Uuid) -> (Vec<JobEvent>, mpsc::Receiver<JobEvent>) {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER.min(1024));
        let job = self.jobs.entry(job_id).or_insert_with(|| {
            self.order.push_back((Instant::now(), job_id));
            KeptJob::default()
        });
        job.followers.push(tx);
        (job.events.clone(), rx)
    }
}

/// Job ids submitted within the duplicate window, oldest first.
#[derive(Default)]
struct RecentIds {
    order: VecDeque<(Instant, Uuid)>,
    ids: HashSet<Uuid>,
}

impl RecentIds {
    /// Records `id`; false when it was already recorded within the window.
    fn insert(&mut self, id: Uuid, now: Instant) -> bool {
        while let Some(&(at, old)) = self.order.front() {
            if now.duration_since(at) < DUPLICATE_WINDOW {
                break;
            }
            self.order.pop_front();
            self.ids.remove(&old);
        }
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back((now, id));
        true
    }
}

/// Settles one in-process delivery. Dropped unsettled, it puts the job back.
struct InProcessAcker {
    shared: Arc<Shared>,
    /// The job until it is settled; taken by the first of ack, retry_later and dead_letter.
    job: Mutex<Option<QueryJob>>,
    attempt: u64,
}

impl InProcessAcker {
    fn take(&self) -> Option<QueryJob> {
        let job = self.job.lock().unwrap_or_else(PoisonError::into_inner).take();
        match job {
            Some(_) => self.shared.unacked.fetch_sub(1, Ordering::Relaxed),
            None => {
                debug!("in-process delivery already settled");
                0
            }
        };
        job
    }
}

#[async_trait]
impl JobAcker for InProcessAcker {
    async fn ack(&self) -> Result<(), BusError> {
        self.take();
        Ok(())
    }

    async fn in_progress(&self) -> Result<(), BusError> {
        Ok(())
    }

    async fn retry_later(&self, delay: Duration) -> Result<(), BusError> {
        if let Some(job) = self.take() {
            let shared = Arc::clone(&self.shared);
            let attempt = self.attempt + 1;
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                shared.requeue(job, attempt).await;
            });
        }
        Ok(())
    }

    async fn dead_letter(&self, reason: &str) -> Result<(), BusError> {
        if let Some(job) = self.take() {
            error!(job_id = %job.job_id, reason, ?job, "job dead-lettered");
        }
        Ok(())
    }
}

impl Drop for InProcessAcker {
    fn drop(&mut self) {
        let Some(job) = self.job.get_mut().unwrap_or_else(PoisonError::into_inner).take() else {
            return;
        };
        self.shared.unacked.fetch_sub(1, Ordering::Relaxed);
        let attempt = self.attempt + 1;
        warn!(job_id = %job.job_id, "job delivery dropped without being settled; redelivering it");
        if self.shared.exhausted(&job, attempt) {
            return;
        }
        match self.shared.jobs_tx.try_send(Queued { job, attempt }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(queued)) => match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let shared = Arc::clone(&self.shared);
                    runtime.spawn(async move { shared.requeue(queued.job, queued.attempt).await });
                }
                Err(_) => error!(job_id = %queued.job.job_id, "queue full outside the runtime; job lost"),
            },
            Err(mpsc::error::TrySendError::Closed(queued)) => {
                error!(job_id = %queued.job.job_id, "in-process job queue closed; job lost");
            }
        }
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn submit_job(&self, job: &QueryJob) -> Result<(), BusError> {
        let fresh =
            self.shared.recent.lock().unwrap_or_else(PoisonError::into_inner).insert(job.job_id, Instant::now());
        if !fresh {
            debug!(job_id = %job.job_id, "job already queued; the duplicate was dropped");
            return Ok(());
        }
        self.shared.jobs_tx.try_send(Queued { job: job.clone(), attempt: 1 }).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => BusError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => {
                BusError::Unavailable { context: "the in-process job queue is closed".into(), source: None }
            }
        })
    }

    /// Jobs are taken from the shared queue one at a time as the stream is polled, so nothing is buffered and
    /// `prefetch` has nothing to bound.
    async fn job_deliveries(&self, _prefetch: usize) -> Result<BoxStream<'static, JobDelivery>, BusError> {
        let shared = Arc::clone(&self.shared);
        Ok(futures::stream::unfold(shared, |shared| async move {
            // `recv` is cancel-safe: a stream dropped while waiting loses no job.
            let queued = shared.jobs_rx.lock().await.recv().await?;
            shared.unacked.fetch_add(1, Ordering::Relaxed);
            let acker = InProcessAcker {
                shared: Arc::clone(&shared),
                job: Mutex::new(Some(queued.job.clone())),
                attempt: queued.attempt,
            };
            Some((JobDelivery { job: queued.job, attempt: queued.attempt, acker: Box::new(acker) }, shared))
        })
        .boxed())
    }

    async fn job_queue(&self) -> Result<QueueDepth, BusError> {
        let jobs = &self.shared.jobs_tx;
        let pending = (jobs.max_capacity() - jobs.capacity()) as u64;
        Ok(QueueDepth { pending, unacked: self.shared.unacked.load(Ordering::Relaxed) })
    }

    async fn publish_event(&self, subject: &str, event: &JobEvent) -> Result<(), BusError> {
        let Some(node) = self.shared.event_node(subject) else {
            warn!(subject, "event subject addresses no API node; dropped");
            return Ok(());
        };
        self.shared.kept.lock().unwrap_or_else(PoisonError::into_inner).record(event);
        let mut events = self.shared.events.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(subscribers) = events.get_mut(node) {
            subscribers.retain(|subscriber| match subscriber.try_send(event.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn!(node, job_id = %event.job_id, seq = event.seq, "event subscriber too slow; event dropped");
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            if subscribers.is_empty() {
                events.remove(node);
            }
        }
        Ok(())
    }

    async fn subscribe_events(&self, node_id: &str) -> Result<BoxStream<'static, JobEvent>, BusError> {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let mut events = self.shared.events.lock().unwrap_or_else(PoisonError::into_inner);
        let subscribers = events.entry(node_id.to_owned()).or_default();
        subscribers.retain(|subscriber| !subscriber.is_closed());
        subscribers.push(tx);
        Ok(ReceiverStream::new(rx).boxed())
    }

    async fn replay_events(&self, job_id: Uuid) -> Result<BoxStream<'static, JobEvent>, BusError> {
        let (kept, following) = self.shared.kept.lock().unwrap_or_else(PoisonError::into_inner).follow(job_id);
        Ok(futures::stream::iter(kept).chain(ReceiverStream::new(following)).boxed())
    }

    async fn publish_cancel(&self, cancel: &CancelRequest) -> Result<(), BusError> {
        // An error only means that nobody listens right now, as with core NATS.
        let _ = self.shared.cancels.send(cancel.clone());
        Ok(())
    }

    async fn subscribe_cancels(&self) -> Result<BoxStream<'static, CancelRequest>, BusError> {
        Ok(crate::broadcast_stream(self.shared.cancels.subscribe(), "cancellation"))
    }

    async fn exhausted_jobs(&self) -> Result<BoxStream<'static, ExhaustedJob>, BusError> {
        Ok(crate::broadcast_stream(self.shared.exhausted.subscribe(), "exhausted job"))
    }

    fn events_subject(&self, node_id: &str, job_id: Uuid) -> String {
        self.shared.subjects.job_events(node_id, job_id)
    }

    async fn request_worker(&self, request: &WorkerRequest, timeout: Duration) -> Result<WorkerReply, BusError> {
        self.shared.requests.request(request, timeout).await
    }

    async fn worker_requests(&self) -> Result<BoxStream<'static, WorkerRequestDelivery>, BusError> {
        Ok(self.shared.requests.listen())
    }

    async fn flush(&self) -> Result<(), BusError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_forgotten_after_the_window() {
        let mut recent = RecentIds::default();
        let id = Uuid::new_v4();
        let start = Instant::now();
        assert!(recent.insert(id, start));
        assert!(!recent.insert(id, start + Duration::from_secs(1)));
        assert!(recent.insert(id, start + DUPLICATE_WINDOW + Duration::from_secs(1)));
        assert_eq!(recent.order.len(), 1);
    }

    #[test]
    fn event_subjects_route_to_their_node() {
        let bus = InProcessBus::new(Subjects::new("qg"));
        let job = Uuid::new_v4();
        assert_eq!(bus.shared.event_node(&bus.events_subject("n1", job)), Some("n1"));
        assert_eq!(bus.shared.event_node("qg.events.n1"), None);
        assert_eq!(bus.shared.event_node("qg.events.n1.a.b"), None);
        assert_eq!(bus.shared.event_node("other.events.n1.x"), None);
    }
}
