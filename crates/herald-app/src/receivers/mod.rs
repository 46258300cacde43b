//! Incoming webhooks from code hosts:
//!
//! - `admin`: the operations that manage receivers (create, list, read,
//!   change, delete, rotate a secret) and read their request log.
//! - `ingest`: [`App::ingest`](crate::App::ingest), a code host's request:
//!   verify, identify, normalize, store with its log row, then the
//!   post-commit hooks.
//! - `cache`: the receivers that requests named in the last second, so that
//!   ingest does not read its receiver from the store on every request.
//! - `budget`: what requests not yet verified may hold of the node (bytes
//!   in all, bodies per receiver), and reading a body within it.
//! - `credentials`: sealing a receiver's secret (or Azure DevOps username and
//!   password) at rest, and opening it, with the previous one during a
//!   rotation's grace period, for `herald_ingest::verify`.
//! - `plan`: turning a normalized request into store work: `repo:push` events,
//!   and the changeset read-modify-write the store runs atomically.
//! - `janitor`: retention of the request log and delivery ids.

pub mod admin;
pub mod budget;
pub(crate) mod cache;
pub mod credentials;
pub mod ingest;
pub mod janitor;
pub mod plan;

pub use admin::{
    ReceiverCreate, ReceiverUpdate, ReceiverView, ReceiverViewWithSecret, RequestFilter,
    SecretRotation,
};
pub use budget::{BodySource, IngestLimits, UnreadBody};
pub use ingest::IngestAnswer;

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
