//! Integration tests of the whole service, each run in both modes: embedded (one process) and distributed (real
//! `api` and `worker` processes, NATS, PostgreSQL store). Only the LLM is fake.

mod support;

mod chat_failures;
mod cli;
mod console;
mod crash;
mod faults;
mod journey;
mod large_schema;
mod redis_chat;
mod self_correction;
mod shared_state;
mod stop;
mod telemetry;
mod text2sql;
mod validate_cli;
mod workers_answer;

/// Generates `embedded` and `distributed` variants of an `async fn(Mode)` test.
macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name($crate::support::Mode::Embedded).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn distributed() {
                super::$name($crate::support::Mode::Distributed).await
            }
        }
    )*};
}
pub(crate) use in_both_modes;
