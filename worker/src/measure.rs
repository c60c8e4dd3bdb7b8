//! What a worker records about its jobs, in the metrics named in `querygpt_common::telemetry`.

use querygpt_common::telemetry::{JOBS_REDELIVERED, JOBS_RUNNING, JOBS_SETTLED, LLM_TOKENS, STAGE_DURATION};
use querygpt_llm::Usage;
use std::time::{Duration, Instant};

/// Records how long one stage (`llm`, `validation`, `execution`, `store`) took.
pub(crate) fn stage(stage: &'static str, elapsed: Duration) {
    metrics::histogram!(STAGE_DURATION, "stage" => stage).record(elapsed.as_secs_f64());
}

/// Runs `work` as stage `name`, recording its time whatever the outcome.
pub(crate) async fn timed<T>(name: &'static str, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let out = work.await;
    stage(name, started.elapsed());
    out
}

/// Counts the tokens of one LLM reply against its model.
pub(crate) fn tokens(model: &str, usage: Option<Usage>) {
    if let Some(usage) = usage {
        let model = model.to_owned();
        metrics::counter!(LLM_TOKENS, "model" => model.clone(), "kind" => "prompt").increment(usage.input_tokens);
        metrics::counter!(LLM_TOKENS, "model" => model, "kind" => "completion").increment(usage.output_tokens);
    }
}

/// How a job was settled with the bus.
pub(crate) fn settled(outcome: &'static str) {
    metrics::counter!(JOBS_SETTLED, "outcome" => outcome).increment(1);
}

/// Counts a running job until dropped; notes a redelivery.
pub(crate) struct Running;

impl Running {
    pub(crate) fn start(attempt: u64) -> Running {
        if attempt > 1 {
            metrics::counter!(JOBS_REDELIVERED).increment(1);
        }
        metrics::gauge!(JOBS_RUNNING).increment(1);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        metrics::gauge!(JOBS_RUNNING).decrement(1);
    }
}
