//! Integration tests of herald-monitor against real git repositories.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

mod history;
mod http_server;
mod support;

mod golden;
mod mirror;
mod oracle;
mod query;
mod search;
mod sources;
