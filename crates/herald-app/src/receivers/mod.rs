//! Incoming webhooks from code hosts, between the HTTP handlers and the store:
//!
//! - `credentials`: sealing a receiver's secret (or Azure DevOps username and
//!   password) at rest, and opening it, with the previous one during a
//!   rotation's grace period, for `herald_ingest::verify`.
//! - `plan`: turning a normalized request into store work: `repo:push` events,
//!   and the changeset read-modify-write the store runs atomically.
//! - `janitor`: retention of the request log and delivery ids.
//!
//! The handlers are `routes::receivers` (the admin API) and
//! `routes::incoming` (`POST /.api/webhooks/{id}`, what code hosts call).

pub mod credentials;
pub mod janitor;
pub mod plan;

use herald_store::ReceiverId;

/// The largest body a code host may send; GitHub caps its payloads at 25 MiB.
pub const MAX_INCOMING_BODY_BYTES: usize = 25 * 1024 * 1024;

/// The path code hosts post to, under the external URL.
pub fn receiver_path(id: ReceiverId) -> String {
    format!("/.api/webhooks/{id}")
}

/// The URL to configure on the code host.
pub fn receiver_url(external_url: &str, id: ReceiverId) -> String {
    format!(
        "{}{}",
        external_url.trim_end_matches('/'),
        receiver_path(id)
    )
}
