//! herald-app against real parts: git repositories, SQLite, the delivery
//! engine and receivers on 127.0.0.1.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

mod keys;
mod monitors;
