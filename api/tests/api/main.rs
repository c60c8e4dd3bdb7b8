//! Integration tests of the HTTP API: the real router over a real SQLite store and the in-process bus, called
//! through `tower::ServiceExt::oneshot`. One test binary (modules below) keeps link time down.

mod auth;
mod conversations;
mod envelope;
mod openapi;
mod ownership;
mod resources;
mod settings;
mod support;
