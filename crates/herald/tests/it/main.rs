//! Herald's end-to-end tests: one integration-test binary that drives the real
//! `herald` executable over real HTTP on 127.0.0.1.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

mod api;
mod catalogue;
mod cli;
mod delivery;
mod harness;
mod monitors;
mod multinode;
mod observability;
mod ordering;
mod receivers;
