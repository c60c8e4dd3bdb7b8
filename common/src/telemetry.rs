//! Names of the Prometheus metrics every part records (through the `metrics` facade), and the W3C trace context
//! that carries a question's trace from its API node to its worker.
//!
//! The names live here, in one list, so that the API node, the worker, the store and the README agree on them.

use std::fmt;

/// HTTP requests by `method`, `route` (the matched path template) and `status`.
pub const HTTP_REQUESTS: &str = "querygpt_http_requests_total";
/// Time to the response's head by `method`, `route` and `status` (for SSE: until the stream opens).
pub const HTTP_DURATION: &str = "querygpt_http_request_duration_seconds";
/// SSE chat streams open on this API node.
pub const SSE_STREAMS_OPEN: &str = "querygpt_sse_streams_open";
/// Jobs (questions) an API node put on the queue.
pub const JOBS_SUBMITTED: &str = "querygpt_jobs_submitted_total";
/// Questions refused before queueing, by `reason` (`queue_full`, `too_many_streams`, `rate_limited`).
pub const JOBS_REFUSED: &str = "querygpt_jobs_refused_total";
/// Jobs a worker is running now.
pub const JOBS_RUNNING: &str = "querygpt_jobs_running";
/// Jobs a worker settled, by `outcome`: `acked`, `retried` (given back for redelivery), `dead_lettered`.
pub const JOBS_SETTLED: &str = "querygpt_jobs_settled_total";
/// Deliveries of a job after its first (a worker died, or gave it back).
pub const JOBS_REDELIVERED: &str = "querygpt_jobs_redelivered_total";
/// Jobs queued and not yet delivered to any worker (read from the queue when metrics are scraped).
pub const JOB_QUEUE_PENDING: &str = "querygpt_job_queue_pending";
/// Jobs delivered to a worker and not acknowledged yet (read from the queue when metrics are scraped).
pub const JOB_QUEUE_UNACKED: &str = "querygpt_job_queue_unacked";
/// Time of one stage of a job, by `stage`: `llm`, `validation`, `execution`, `store`.
pub const STAGE_DURATION: &str = "querygpt_stage_duration_seconds";
/// LLM tokens by `model` and `kind` (`prompt`, `completion`).
pub const LLM_TOKENS: &str = "querygpt_llm_tokens_total";
/// Time spent waiting for a pooled resource, by `pool`: `store` (a connection of the service's own database),
/// `target` (a connection of a user's database), `llm` (a turn at a model, `worker.max_llm_calls_per_model`),
/// `requests` (an API node's turn to work on a request, `http.max_concurrent_requests`).
pub const POOL_WAIT: &str = "querygpt_pool_wait_seconds";

/// Every histogram above, for the exporter's bucket configuration.
pub const HISTOGRAMS: [&str; 3] = [HTTP_DURATION, STAGE_DURATION, POOL_WAIT];

/// The W3C `traceparent` of a job (<https://www.w3.org/TR/trace-context/>): version 00, a 16-byte trace id, the
/// parent span's 8-byte id and the flags. Parsed, so that a malformed header from a client never travels on.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: u128,
    pub parent_id: u64,
    pub sampled: bool,
}

impl TraceParent {
    /// Header and NATS header name.
    pub const HEADER: &'static str = "traceparent";

    /// A trace that starts here: fresh random ids, sampled.
    pub fn new_root() -> TraceParent {
        let id = uuid::Uuid::new_v4().as_u128();
        let parent_id = (uuid::Uuid::new_v4().as_u128() as u64) | 1;
        TraceParent { trace_id: id, parent_id, sampled: true }
    }

    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; `None` for anything else, for all-zero ids (invalid in the
    /// standard) and for version ff.
    pub fn parse(header: &str) -> Option<TraceParent> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2) {
            return None;
        }
        // Version 00 has exactly four fields; later versions may append more.
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let parent_id = u64::from_str_radix(parent, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && parent_id != 0).then_some(TraceParent { trace_id, parent_id, sampled: flags & 1 == 1 })
    }

    /// The same trace with `span_id` as the parent of what comes next.
    pub fn child(self, span_id: u64) -> TraceParent {
        TraceParent { parent_id: span_id, ..self }
    }

    /// The trace id as 32 hex digits, as log fields and trace backends show it.
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{:032x}-{:016x}-{:02x}", self.trace_id, self.parent_id, u8::from(self.sampled))
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::TraceParent;

    #[test]
    fn a_traceparent_round_trips() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse(header).expect("valid");
        assert_eq!(parsed.to_string(), header);
        assert_eq!(parsed.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(parsed.sampled);
        assert!(!TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap().sampled);
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_new_root_is_valid() {
        let root = TraceParent::new_root();
        assert_eq!(TraceParent::parse(&root.to_string()), Some(root));
        assert_eq!(root.child(7).trace_id, root.trace_id);
    }
}
