//! Integration tests of herald-monitor against real git repositories.

mod history;
mod support;

mod golden;
mod mirror;
mod oracle;
mod query;
mod search;
