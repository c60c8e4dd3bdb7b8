//! The worker: takes query jobs from the bus and answers them, many at once on a few threads.
//!
//! A job goes through stages, each announced to the client by a `progress` event:
//! analyzing (load model, connection, schema, history) -> generating_sql (prompt, LLM call, SQL extraction,
//! validation) -> executing (read-only, bounded execution, chart) -> the answer is stored, then published
//! (`result`, `visualization`, `done`) and the job acked. See [`job`] for what a redelivered job does.

pub mod cancel;
pub mod chart;
pub mod events;
pub mod job;
pub mod prompt;
mod runner;
pub mod schemas;

pub use runner::{Worker, WorkerDeps};
