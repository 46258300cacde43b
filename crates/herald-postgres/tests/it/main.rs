//! PostgreSQL store tests, in one binary: the shared store contract, and what
//! only several nodes on one database can show. See `support` for how the
//! server is found and when the tests skip.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

mod contract;
mod event_types;
mod monitors;
mod multi_node;
mod postgres_only;
mod receivers;
mod support;
mod tokens;
