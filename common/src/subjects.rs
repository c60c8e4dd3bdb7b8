//! NATS subject names. All of them hang off one configurable prefix so that several deployments (or test runs)
//! can share a NATS server without seeing each other's jobs.

use uuid::Uuid;

/// Subject names of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    pub fn new(prefix: impl Into<String>) -> Self {
        Subjects { prefix: prefix.into() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Work-queue subject of query jobs (captured by the JetStream jobs stream).
    pub fn jobs(&self) -> String {
        format!("{}.jobs", self.prefix)
    }

    /// Where jobs go after exhausting their deliveries or failing to decode, for an operator to inspect.
    pub fn dead_letter(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    /// Core subject on which cancellation requests are broadcast to every worker and API node.
    pub fn cancel(&self) -> String {
        format!("{}.cancel", self.prefix)
    }

    /// Events of one job, addressed to the API node that holds its SSE stream.
    pub fn job_events(&self, node_id: &str, job_id: Uuid) -> String {
        format!("{}.events.{node_id}.{job_id}", self.prefix)
    }

    /// Wildcard an API node subscribes to once, to receive the events of all its jobs.
    pub fn node_events(&self, node_id: &str) -> String {
        format!("{}.events.{node_id}.*", self.prefix)
    }

    /// Events of one job, whichever node streams them (for resuming a stream on another node).
    pub fn events_of_job(&self, job_id: Uuid) -> String {
        format!("{}.events.*.{job_id}", self.prefix)
    }

    /// Every event of the deployment (captured by the JetStream events stream).
    pub fn all_events(&self) -> String {
        format!("{}.events.>", self.prefix)
    }

    /// Core subject of [`crate::messages::WorkerRequest`]s: workers listen on it in one queue group, so each request
    /// reaches one of them.
    pub fn worker_requests(&self) -> String {
        format!("{}.rpc.worker", self.prefix)
    }

    /// JetStream stream name derived from the prefix (stream names cannot contain dots).
    pub fn jobs_stream(&self) -> String {
        format!("{}_JOBS", self.stream_base())
    }

    /// Name of the JetStream stream that keeps every event for a while (see [`Subjects::all_events`]).
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.stream_base())
    }

    fn stream_base(&self) -> String {
        self.prefix.replace(['.', '-', '*', '>'], "_").to_ascii_uppercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_wildcard_covers_job_subjects() {
        let s = Subjects::new("qg");
        let job = Uuid::nil();
        assert_eq!(s.job_events("n1", job), format!("qg.events.n1.{job}"));
        assert_eq!(s.node_events("n1"), "qg.events.n1.*");
        assert_eq!(Subjects::new("qg.test-1").jobs_stream(), "QG_TEST_1_JOBS");
        assert_eq!(s.worker_requests(), "qg.rpc.worker");
        assert_eq!(s.events_of_job(job), format!("qg.events.*.{job}"));
        assert_eq!((s.all_events().as_str(), s.events_stream().as_str()), ("qg.events.>", "QG_EVENTS"));
    }
}
