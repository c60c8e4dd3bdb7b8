//! The worker: takes query jobs from the bus and answers them, many at once on a few threads.
//!
//! A job goes through stages, each announced to the client by a `progress` event:
//! analyzing (load model, connection, schema, history) -> generating_sql (prompt, LLM call, SQL extraction,
//! validation) -> executing (read-only, bounded execution, chart) -> the answer is stored, then published
//! (`result`, `visualization`, `done`) and the job acked. See [`job`] for what a redelivered job does.
//!
//! Next to the jobs, a worker answers the requests API nodes cannot answer themselves because they never reach a
//! user's model or database: model tests, connection tests, schemas, and the Text2SQL API's statements
//! (`generate`).

mod attempts;
pub mod cancel;
pub mod chart;
pub mod events;
mod failure;
mod generate;
pub mod job;
mod localize;
mod measure;
mod pool;
pub mod prompt;
mod records;
mod requests;
mod runner;
pub mod schemas;
mod specs;

pub use runner::{Worker, WorkerDeps};
