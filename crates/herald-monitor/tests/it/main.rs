//! Integration tests of herald-monitor against real git repositories.

mod history;
mod http_server;
mod support;

mod golden;
mod mirror;
mod oracle;
mod query;
mod search;
mod sources;
