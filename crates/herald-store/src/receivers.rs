//! Incoming webhook receivers: the receivers themselves, the log of the
//! requests code hosts send them, the host delivery ids seen (dedupe), and the
//! changeset records that pull/merge request activity keeps up to date.
//!
//! The store interprets none of the code-host specifics: a receiver's kind is a
//! name, its credentials are sealed bytes, and a changeset's state is JSON text
//! the caller reads and writes. What the store guarantees is atomicity:
//! [`ReceiverStore::ingest`] checks and records the delivery id, reads the
//! changeset records the request concerns, lets the caller's pure function turn
//! them into new states and events, writes those, publishes the events with the
//! same fan-out as [`Store::publish`](crate::Store::publish), and logs the
//! request, all in one transaction. A crash therefore loses or repeats none of
//! it, and two requests about the same repository never interleave their
//! read-modify-write.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use herald_core::id::EventId;
pub use herald_core::id::{ReceiverId, ReceiverRequestId};
use herald_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{NewEvent, StoreResult};

/// A receiver as stored. Credentials are sealed by the caller (a shared secret,
/// or a basic-auth pair); the store never sees them in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverRecord {
    pub id: ReceiverId,
    pub name: Option<String>,
    /// The code host kind's wire name, e.g. `github`.
    pub kind: String,
    /// The code host's base URL, e.g. `https://github.com`.
    pub urn: String,
    pub credentials_sealed: Vec<u8>,
    /// The credentials a rotation replaced, which still verify until
    /// `previous_valid_until`.
    pub previous_credentials_sealed: Option<Vec<u8>>,
    pub previous_valid_until: Option<Timestamp>,
    pub github_legacy_sha1: bool,
    pub gitlab_standard_webhooks: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Unverified requests deleted from the log to keep it within its cap
    /// ([`ReceiverStore::record_unverified`]).
    pub unverified_dropped: u64,
}

#[derive(Debug, Clone)]
pub struct NewReceiver {
    pub id: ReceiverId,
    pub name: Option<String>,
    pub kind: String,
    pub urn: String,
    pub credentials_sealed: Vec<u8>,
    pub github_legacy_sha1: bool,
    pub gitlab_standard_webhooks: bool,
}

/// Fields to change; `None` leaves a field as it is. The kind never changes:
/// credentials have its shape.
#[derive(Debug, Clone, Default)]
pub struct ReceiverPatch {
    /// `Some(None)` removes the name.
    pub name: Option<Option<String>>,
    pub urn: Option<String>,
    /// New credentials, in force at once: any previous ones stop verifying.
    pub credentials_sealed: Option<Vec<u8>>,
    pub github_legacy_sha1: Option<bool>,
    pub gitlab_standard_webhooks: Option<bool>,
}

/// What became of a request, as the log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOutcome {
    /// Verified and normalized; its events (maybe none) were published.
    Processed,
    /// A delivery id seen before: not processed again.
    Duplicate,
    /// A connectivity test.
    Ping,
    /// Verified, but of an event kind Herald does not handle.
    Ignored,
    /// Refused: the signature, token or credentials did not match.
    Unverified,
    /// Verified, but the payload could not be read.
    Invalid,
    /// Refused: the body was over the size limit.
    TooLarge,
}

impl RequestOutcome {
    pub const ALL: [RequestOutcome; 7] = [
        Self::Processed,
        Self::Duplicate,
        Self::Ping,
        Self::Ignored,
        Self::Unverified,
        Self::Invalid,
        Self::TooLarge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Processed => "processed",
            Self::Duplicate => "duplicate",
            Self::Ping => "ping",
            Self::Ignored => "ignored",
            Self::Unverified => "unverified",
            Self::Invalid => "invalid",
            Self::TooLarge => "too_large",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// One request to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceiverRequest {
    pub id: ReceiverRequestId,
    pub receiver_id: ReceiverId,
    /// With credentials redacted by the caller.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// True when `body` is only the start of what was sent.
    pub body_truncated: bool,
    pub verified: bool,
    /// How the request was verified, or why it was not.
    pub verification: String,
    /// The status Herald answered with.
    pub status_code: u16,
    /// The host's event name, once the request was verified and identified.
    pub event_name: Option<String>,
    /// The host's delivery id, the dedupe key.
    pub delivery_id: Option<String>,
    pub outcome: RequestOutcome,
    /// Why an event was ignored or a payload refused.
    pub message: Option<String>,
}

/// A logged request without its headers and body, as lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverRequestSummary {
    pub id: ReceiverRequestId,
    pub receiver_id: ReceiverId,
    pub received_at: Timestamp,
    pub verified: bool,
    pub verification: String,
    pub status_code: u16,
    pub event_name: Option<String>,
    pub delivery_id: Option<String>,
    pub outcome: RequestOutcome,
    pub message: Option<String>,
    /// The events it produced, in publishing order.
    pub event_ids: Vec<EventId>,
}

/// A logged request in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverRequestDetail {
    pub summary: ReceiverRequestSummary,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub body_truncated: bool,
}

#[derive(Debug, Clone)]
pub struct ReceiverRequestQuery {
    pub receiver_id: ReceiverId,
    /// The last id of the previous page.
    pub cursor: Option<ReceiverRequestId>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct ReceiverRequestPage {
    /// Newest first.
    pub items: Vec<ReceiverRequestSummary>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<ReceiverRequestId>,
}

/// One changeset record: its key, the head commit checks are matched against,
/// and the caller's state as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChangeset {
    pub urn: String,
    pub repository: String,
    pub external_id: String,
    pub head_sha: Option<String>,
    pub state: String,
}

/// Which changeset records a request concerns. Every lookup stays inside one
/// repository of one code host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangesetLookup {
    /// The record of one pull/merge request, if there is one.
    Key {
        urn: String,
        repository: String,
        external_id: String,
    },
    /// Candidates for a commit check: the records whose head commit may be
    /// `sha` (they share its first seven characters, case-insensitively; the
    /// caller decides), and those whose external id is listed.
    Commit {
        urn: String,
        repository: String,
        sha: String,
        external_ids: Vec<String>,
    },
}

impl ChangesetLookup {
    pub fn urn(&self) -> &str {
        match self {
            Self::Key { urn, .. } | Self::Commit { urn, .. } => urn,
        }
    }

    pub fn repository(&self) -> &str {
        match self {
            Self::Key { repository, .. } | Self::Commit { repository, .. } => repository,
        }
    }
}

/// How many leading characters of a commit id the store indexes; hosts
/// abbreviate to no fewer than this.
pub const HEAD_PREFIX_LEN: usize = 7;

/// The indexed prefix of a commit id: its first [`HEAD_PREFIX_LEN`]
/// characters, lower-cased.
pub fn head_prefix(sha: &str) -> String {
    sha.chars()
        .take(HEAD_PREFIX_LEN)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// What the caller's function makes of the records it was given: records to
/// insert or replace (by key), and events to publish.
#[derive(Debug, Clone, Default)]
pub struct ChangesetPlan {
    pub writes: Vec<StoredChangeset>,
    pub events: Vec<NewEvent>,
}

/// Turns the records found (in no particular order) into a plan. It runs inside
/// the store's transaction, so it must be quick and do no IO. An `Err` rolls
/// the whole ingest back. A store may run it more than once (the SQLite
/// writer re-runs a group that another job's failure rolled back), each time
/// on what it finds then.
pub type ChangesetFn = Box<dyn Fn(Vec<StoredChangeset>) -> Result<ChangesetPlan, String> + Send>;

/// Changeset work of one request.
pub struct ChangesetWork {
    pub lookup: ChangesetLookup,
    pub apply: ChangesetFn,
}

impl fmt::Debug for ChangesetWork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangesetWork")
            .field("lookup", &self.lookup)
            .finish_non_exhaustive()
    }
}

/// One verified request to process.
#[derive(Debug)]
pub struct Ingest {
    /// The log row. Its `delivery_id` is the dedupe key; on a repeat the store
    /// logs it with [`RequestOutcome::Duplicate`] and does nothing else.
    pub request: NewReceiverRequest,
    /// Events that need no stored state (pushes), published first.
    pub events: Vec<NewEvent>,
    pub changesets: Option<ChangesetWork>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    pub request: ReceiverRequestSummary,
    /// True when the delivery id had been seen: nothing was processed.
    pub duplicate: bool,
    /// Deliveries created by the events published, over all webhooks.
    pub deliveries: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct ReceiverPurgePolicy {
    /// Request log rows older than this go.
    pub retention: Duration,
    /// Delivery ids older than this go (and would be processed again).
    pub dedupe_ttl: Duration,
    /// The most rows of each kind one transaction deletes.
    pub batch: u32,
}

/// How long delivery ids are remembered by default: the hosts' own redelivery
/// windows are shorter.
pub const DEFAULT_DEDUPE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverPurgeReport {
    pub requests: u64,
    pub dedupe_keys: u64,
}

#[async_trait]
pub trait ReceiverStore: Send + Sync + 'static {
    // ---- receivers ----

    async fn create_receiver(&self, new: NewReceiver) -> StoreResult<ReceiverRecord>;
    async fn get_receiver(&self, id: ReceiverId) -> StoreResult<Option<ReceiverRecord>>;
    /// All receivers, oldest first.
    async fn list_receivers(&self) -> StoreResult<Vec<ReceiverRecord>>;
    /// Applies the fields that are `Some`. New credentials also drop any previous ones.
    async fn update_receiver(
        &self,
        id: ReceiverId,
        patch: ReceiverPatch,
    ) -> StoreResult<Option<ReceiverRecord>>;
    /// Makes `credentials_sealed` current and keeps the replaced ones verifying
    /// for `grace` more (by the store's clock); a zero grace drops them at once.
    async fn rotate_receiver_credentials(
        &self,
        id: ReceiverId,
        credentials_sealed: Vec<u8>,
        grace: Duration,
    ) -> StoreResult<Option<ReceiverRecord>>;
    /// Deletes a receiver with its request log and delivery ids. Changeset
    /// records stay: they belong to the code host, which other receivers may share.
    /// The receiver and its log vanish from every read at once; the rows go in
    /// transactions of at most [`crate::CLEANUP_BATCH`] each, and what an
    /// interrupted call leaves is finished by [`crate::Store::finish_cleanups`].
    async fn delete_receiver(&self, id: ReceiverId) -> StoreResult<bool>;

    // ---- requests ----

    /// Processes one verified request atomically (see the module docs).
    async fn ingest(&self, ingest: Ingest) -> StoreResult<IngestOutcome>;
    /// Logs a request that produces nothing: unverified, invalid, too large, a
    /// ping or an ignored event.
    async fn record_request(
        &self,
        request: NewReceiverRequest,
    ) -> StoreResult<ReceiverRequestSummary>;
    /// Logs a request that did not verify, and keeps at most `keep` unverified
    /// rows for its receiver: in the same transaction, the oldest beyond `keep`
    /// are deleted and added to the receiver's `unverified_dropped`. Verified
    /// rows are never touched.
    async fn record_unverified(
        &self,
        request: NewReceiverRequest,
        keep: u32,
    ) -> StoreResult<ReceiverRequestSummary>;
    /// A receiver's requests, newest first, paged by cursor.
    async fn list_requests(&self, query: ReceiverRequestQuery) -> StoreResult<ReceiverRequestPage>;
    async fn get_request(
        &self,
        receiver: ReceiverId,
        id: ReceiverRequestId,
    ) -> StoreResult<Option<ReceiverRequestDetail>>;

    // ---- changesets ----

    /// The changeset records a lookup finds, as `ingest` would read them.
    async fn find_changesets(&self, lookup: ChangesetLookup) -> StoreResult<Vec<StoredChangeset>>;

    // ---- retention ----

    /// Deletes request log rows older than `policy.retention` and delivery ids
    /// older than `policy.dedupe_ttl`, in transactions of at most `policy.batch`
    /// rows of each.
    async fn purge_receivers(
        &self,
        policy: ReceiverPurgePolicy,
    ) -> StoreResult<ReceiverPurgeReport>;
}
