//! The API end to end: the real router served by `herald_server::run` on
//! 127.0.0.1:0, a real SQLite store, a real delivery engine and real receivers.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

mod harness;

mod auth;
mod code_hosts;
mod deliveries;
mod event_types;
mod events;
mod monitors;
mod openapi;
mod receivers;
mod routing;
mod webhooks;
