//! The API end to end: Herald started with `Herald::start` on 127.0.0.1:0
//! (`TestApp::spawn()`), a real SQLite store, a real delivery engine and real
//! endpoints and code-host requests.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

mod harness;

mod auth;
mod code_hosts;
mod console;
mod deliveries;
mod event_types;
mod events;
mod ingest_budget;
mod limits;
mod monitors;
mod observability;
mod openapi;
mod ordering;
mod receivers;
mod routing;
mod tokens;
mod webhooks;
