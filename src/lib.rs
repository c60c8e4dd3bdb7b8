//! Assembly of the QueryGPT-rs processes: which store, bus, API node and worker a role needs, started and
//! stopped together. `main.rs` parses the command line; the integration tests start the same [`app`] in-process.

pub mod app;
