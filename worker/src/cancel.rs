//! Which jobs this worker runs, so that a broadcast [`CancelRequest`] can stop the right one, and which
//! cancellations arrived recently, so that a job still queued when its stop arrived is dropped when it is picked.

use chrono::{Duration as ChronoDuration, Utc};
use dashmap::DashMap;
use querygpt_common::messages::{CancelRequest, QueryJob};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a cancellation is remembered for jobs that have not started yet.
const REMEMBER_FOR: ChronoDuration = ChronoDuration::minutes(10);
/// Bound on remembered cancellations (they are rare; this only guards memory against a flood).
const REMEMBER_AT_MOST: usize = 10_000;

struct RunningJob {
    job: Arc<QueryJob>,
    token: CancellationToken,
}

/// Running jobs and recent cancellations of one worker process.
#[derive(Default)]
pub struct CancelRegistry {
    running: DashMap<Uuid, RunningJob>,
    recent: Mutex<VecDeque<CancelRequest>>,
}

/// Registration of a running job; dropping it forgets the job.
pub struct RunningGuard<'a> {
    registry: &'a CancelRegistry,
    job_id: Uuid,
    /// Cancelled when a matching [`CancelRequest`] arrives.
    pub token: CancellationToken,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.registry.running.remove(&self.job_id);
    }
}

impl CancelRegistry {
    /// Registers `job` as running. `None` if a cancellation for it arrived before it started.
    pub fn start(&self, job: Arc<QueryJob>) -> Option<RunningGuard<'_>> {
        if self.recent.lock().expect("cancel list poisoned").iter().any(|c| c.matches(&job)) {
            return None;
        }
        let token = CancellationToken::new();
        let job_id = job.job_id;
        self.running.insert(job_id, RunningJob { job, token: token.clone() });
        Some(RunningGuard { registry: self, job_id, token })
    }

    /// Stops the running jobs `cancel` matches and remembers it for jobs not started yet.
    pub fn apply(&self, cancel: CancelRequest) {
        for entry in self.running.iter() {
            if cancel.matches(&entry.job) {
                entry.token.cancel();
            }
        }
        let mut recent = self.recent.lock().expect("cancel list poisoned");
        let horizon = Utc::now() - REMEMBER_FOR;
        while recent.front().is_some_and(|c| c.issued_at < horizon) || recent.len() >= REMEMBER_AT_MOST {
            recent.pop_front();
        }
        recent.push_back(cancel);
    }

    /// Number of jobs running now.
    pub fn running(&self) -> usize {
        self.running.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use querygpt_common::Language;
    use querygpt_common::messages::{CancelReason, Question};

    fn job() -> Arc<QueryJob> {
        let question = Question {
            user_id: Uuid::new_v4(),
            conversation_id: None,
            text: "q".into(),
            language: Language::En,
            model_id: Uuid::new_v4(),
            connection_id: Uuid::new_v4(),
            context_rounds: None,
            prompts: Default::default(),
            view_mode: Default::default(),
        };
        Arc::new(QueryJob::accept(question, |_| "s".into()))
    }

    #[test]
    fn cancel_stops_the_running_job_of_that_conversation_only() {
        let registry = CancelRegistry::default();
        let (a, b) = (job(), job());
        let guard_a = registry.start(a.clone()).unwrap();
        let guard_b = registry.start(b.clone()).unwrap();
        registry.apply(CancelRequest::new(a.user_id, a.conversation_id, None, CancelReason::UserStopped));
        assert!(guard_a.token.is_cancelled());
        assert!(!guard_b.token.is_cancelled());
        drop(guard_a);
        assert_eq!(registry.running(), 1);
    }

    #[test]
    fn a_job_cancelled_while_queued_does_not_start() {
        let registry = CancelRegistry::default();
        let queued = job();
        registry.apply(CancelRequest::new(queued.user_id, queued.conversation_id, None, CancelReason::UserStopped));
        assert!(registry.start(queued).is_none());
        assert!(registry.start(job()).is_some());
    }
}
