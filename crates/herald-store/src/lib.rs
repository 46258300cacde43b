//! The store interface.
//!
//! Layout:
//! - [`Store`]: every durable operation Herald performs. SQLite (`herald-sqlite`)
//!   and PostgreSQL implement it; nothing above this crate knows which one runs.
//! - [`model`]: the records that cross the interface. They are not wire types:
//!   the server maps them to its own response types.
//! - [`contract`] (feature `contract`): the suite of behaviours every
//!   implementation must pass, run by each store crate's tests.
//! - [`metrics`]: the stores' metric names (group commits, the writer's
//!   queue, the pool), shared by both backends.
//! - [`keys`]: what [`Store::adopt_key`] takes and answers: the database's
//!   secrets key check.
//! - [`event_types`]: [`EventTypeStore`], the custom event types producers
//!   register; [`contract_event_types`] (feature `contract`) is its suite.
//! - [`receivers`]: [`ReceiverStore`], incoming webhook receivers, their request
//!   log, delivery-id dedupe and changeset records, with atomic ingest;
//!   [`contract_receivers`] (feature `contract`) is its suite.
//! - [`monitors`]: [`MonitorStore`], code monitors' repositories, monitors with
//!   their action webhooks, searched heads and runs, with the search recorded
//!   atomically; [`contract_monitors`] (feature `contract`) is its suite.
//! - [`rules`]: the rules both stores apply, written once: fan-out
//!   ([`receives`]) and how a [`WebhookPatch`] or a [`RepositoryPatch`] changes
//!   its record.
//! - [`rules::ordered_key`]: ordered delivery, which the stores keep by
//!   publishing a delivery *waiting* behind an earlier pending one of its
//!   (webhook, key), so claims see only each key's head;
//!   [`contract_ordering`] (feature `contract`) is its suite.
//! - [`health`]: endpoint health per webhook ([`WebhookHealth`]) and the one
//!   rule that moves it and gates claims.
//! - [`tokens`]: [`TokenStore`], API tokens kept as digests with their scope,
//!   last use and expiry; [`contract_tokens`] (feature `contract`) is its suite.
//!
//! Design rules every implementation keeps:
//! - A call returns only after its writes are durable (committed, fsynced).
//! - Deliveries are claimed by lease: a claim moves `next_attempt_at` to the lease's
//!   end and sets a fresh lease token. An expired lease therefore makes a delivery
//!   due again with no extra column or sweeper, and a late `record_attempt` with a
//!   stale token changes nothing but the attempt log.
//! - Time comes from the store's own clock (the database's, for PostgreSQL), never
//!   from a caller, so several nodes agree on lease expiry.

pub mod event_types;
pub mod health;
pub mod keys;
pub mod metrics;
pub mod model;
pub mod monitors;
pub mod receivers;
pub mod rules;
pub mod tokens;

#[cfg(feature = "contract")]
#[allow(clippy::unwrap_used)] // test suites: a failed step is a failed test
pub mod contract;
#[cfg(feature = "contract")]
#[allow(clippy::unwrap_used)] // test suites: a failed step is a failed test
pub mod contract_event_types;
#[cfg(feature = "contract")]
#[allow(clippy::unwrap_used)] // test suites: a failed step is a failed test
pub mod contract_health;
#[cfg(feature = "contract")]
#[allow(clippy::unwrap_used)] // test suites: a failed step is a failed test
pub mod contract_monitors;
#[cfg(feature = "contract")]
#[allow(clippy::unwrap_used)] // test suites: a failed step is a failed test
pub mod contract_ordering;
#[cfg(feature = "contract")]
#[allow(clippy::unwrap_used)] // test suites: a failed step is a failed test
pub mod contract_receivers;
#[cfg(feature = "contract")]
#[allow(clippy::unwrap_used)] // test suites: a failed step is a failed test
pub mod contract_tokens;

use std::time::Duration;

use async_trait::async_trait;
use herald_core::id::{DeliveryId, WebhookId};
use herald_core::time::Timestamp;

pub use event_types::{EventTypeRecord, EventTypeStore, NewEventType, PutEventType};
pub use health::{
    Gate, HealthChange, HealthNote, HealthOverrides, HealthPolicy, HealthSignal, HealthState,
    Recorded, ShownHealth, WebhookHealth,
};
pub use keys::{KeyVerdict, Rebind, SEALED_COLUMNS};
pub use model::*;
pub use monitors::{
    ActionChange, ActionKind, FetchResult, HeadsMap, MonitorAction, MonitorEvent, MonitorId,
    MonitorPatch, MonitorRecord, MonitorRunId, MonitorRunRecord, MonitorState, MonitorStore,
    MonitorWrite, NewAction, NewMonitor, NewMonitorRun, NewRepository, RUNS_KEPT_PER_MONITOR,
    RepositoryId, RepositoryPatch, RepositoryRecord, RepositoryWrite, RunNotification,
    SearchRecord, SearchRecorded, monitor_project,
};
pub use receivers::{
    ChangesetFn, ChangesetLookup, ChangesetPlan, ChangesetWork, Ingest, IngestOutcome, NewReceiver,
    NewReceiverRequest, ReceiverId, ReceiverPatch, ReceiverPurgePolicy, ReceiverPurgeReport,
    ReceiverRecord, ReceiverRequestDetail, ReceiverRequestId, ReceiverRequestPage,
    ReceiverRequestQuery, ReceiverRequestSummary, ReceiverStore, RequestOutcome, StoredChangeset,
};
pub use rules::{ordered_key, receives};
pub use tokens::{LAST_USED_GRANULARITY, NewToken, TokenId, TokenRecord, TokenStore};

/// Errors a store returns. Callers map `ScopeFull` to a 4xx answer; the others
/// are internal failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{scope} already has {limit} webhooks, the most allowed; delete one or raise the limit"
    )]
    ScopeFull { scope: String, limit: u32 },
    #[error("the store is shutting down")]
    Closed,
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- the secrets key ----

    /// Compares `check` (the node's [`SecretCipher::key_check`]) with the one
    /// the database holds. With none stored yet, binds every sealed value in
    /// the database (webhooks, receivers, repositories) to its place with
    /// `rebind` and stores `check`, all in one transaction that nodes starting
    /// together take in turn: the first adopts, the others compare. A value
    /// `rebind` cannot open rolls everything back ([`KeyVerdict::Unopenable`]).
    ///
    /// [`SecretCipher::key_check`]: herald_core::cipher::SecretCipher::key_check
    async fn adopt_key(&self, check: [u8; 32], rebind: Rebind) -> StoreResult<KeyVerdict>;

    // ---- webhooks ----

    /// Creates a webhook unless its scope (its project, or global) already holds
    /// `max_per_scope` webhooks.
    async fn create_webhook(
        &self,
        new: NewWebhook,
        max_per_scope: u32,
    ) -> StoreResult<WebhookRecord>;
    async fn get_webhook(&self, id: WebhookId) -> StoreResult<Option<WebhookRecord>>;
    /// All webhooks, oldest first.
    async fn list_webhooks(&self) -> StoreResult<Vec<WebhookRecord>>;
    /// Applies the fields that are `Some` (see [`WebhookPatch::apply_to`]). Moving a
    /// webhook to another scope obeys `max_per_scope`. Disabling fails the
    /// webhook's pending deliveries with the error "webhook disabled", in
    /// transactions of at most [`CLEANUP_BATCH`] deliveries; none of them is
    /// claimed once the webhook is disabled, and a call interrupted half-way
    /// leaves the rest to [`Store::finish_cleanups`].
    async fn update_webhook(
        &self,
        id: WebhookId,
        patch: WebhookPatch,
        max_per_scope: u32,
    ) -> StoreResult<Option<WebhookRecord>>;
    /// Deletes a webhook with its deliveries and their attempts. The webhook and
    /// its deliveries vanish from every read, and from claims, at once; the rows
    /// go in transactions of at most [`CLEANUP_BATCH`] deliveries each, so a
    /// caller that stops waiting, or a crash, leaves the rest to
    /// [`Store::finish_cleanups`].
    async fn delete_webhook(&self, id: WebhookId) -> StoreResult<bool>;
    /// Disables a webhook and records why (a 410 Gone, a policy); fails its pending
    /// deliveries like `update_webhook` does.
    async fn disable_webhook(&self, id: WebhookId, reason: &str) -> StoreResult<()>;
    /// Finishes the bulk work that an interrupted call left behind (a crash, or
    /// a caller that stopped waiting): deleting webhooks and receivers, and
    /// failing the pending deliveries of disabled webhooks, in transactions of
    /// at most [`CLEANUP_BATCH`] rows. Until it is done, that work is already
    /// invisible: deleted records are gone from every read, and no delivery of
    /// a disabled webhook is claimed. Returns how many rows it deleted or failed.
    async fn finish_cleanups(&self) -> StoreResult<u64>;

    // ---- events ----

    /// Stores the event and one pending delivery, due now, for every enabled
    /// webhook whose patterns match its type and whose scope is global or the
    /// event's project. With an idempotency key seen before (within its TTL), stores
    /// nothing and returns the first answer with `replayed: true`.
    async fn publish(
        &self,
        event: NewEvent,
        idempotency_key: Option<String>,
    ) -> StoreResult<Published>;

    // ---- delivery work ----

    /// Leases up to `limit` due deliveries (oldest due first), skipping the webhooks
    /// in `skip_webhooks`. Each comes back with its event and webhook. A
    /// webhook's health gates its deliveries ([`WebhookHealth::gate`]): closed
    /// (paused, throttled, disabled, probing), none is claimed and none
    /// changes; due for a probe, only its oldest due delivery is claimed, and
    /// the webhook is marked probing until that lease ends, on every node.
    async fn claim_due(&self, request: ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Appends the attempt to the log. If the lease is still held, also moves the
    /// delivery on as `outcome.next` says and returns `true`; a stale lease returns
    /// `false` and leaves the delivery to whoever holds it now.
    async fn record_attempt(&self, outcome: AttemptOutcome) -> StoreResult<bool>;
    /// Gives a claimed delivery back unattempted: if `lease` is still current,
    /// drops it and makes the delivery due now, with no attempt logged or
    /// counted and its status unchanged. For a node that cannot attempt it (its
    /// key does not open the webhook's sealed values), so that another can.
    /// False when the lease was no longer current.
    async fn release(&self, delivery: DeliveryId, lease: LeaseToken) -> StoreResult<bool>;
    /// Applies one attempt's health signal to the webhook's stored health
    /// by the store's clock, with `policy` in force ([`WebhookHealth::note`]),
    /// in its own short transaction, and returns the changes to report. Each
    /// change is returned to exactly one caller. Nothing for a webhook that
    /// is gone.
    async fn note_health(
        &self,
        webhook: WebhookId,
        signal: HealthSignal,
        policy: HealthPolicy,
    ) -> StoreResult<Vec<HealthChange>>;
    /// Records the attempt as [`Store::record_attempt`] does and, when that
    /// moved the delivery on, notes `note` as [`Store::note_health`] does. The
    /// delivery engine records every attempt this way. A store that can do
    /// both in one transaction does (the attempt then waits for one commit,
    /// not two, and a note that fails takes the record with it, so the caller
    /// tries both again); by default they are the two calls in turn.
    async fn record_attempt_noting_health(
        &self,
        outcome: AttemptOutcome,
        note: HealthNote,
    ) -> StoreResult<Recorded> {
        let moved_on = self.record_attempt(outcome).await?;
        let health = if moved_on {
            self.note_health(note.webhook, note.signal, note.policy)
                .await
        } else {
            Ok(Vec::new())
        };
        Ok(Recorded { moved_on, health })
    }
    /// When the earliest pending delivery falls due (past for due ones), if any.
    /// A store may look only at or above a floor it keeps below every pending
    /// delivery; one written below it all the same (a clock stepped back) is
    /// seen again within a second.
    async fn next_due_at(&self) -> StoreResult<Option<Timestamp>>;
    /// The pending deliveries by state. Leases end at most `longest_lease`
    /// after they were taken, so only deliveries due within that horizon are
    /// looked at to tell leased from scheduled: the cost grows with the due
    /// backlog's index range, not with the table.
    async fn backlog(&self, longest_lease: Duration) -> StoreResult<Backlog>;
    /// The deliveries created within `window` of the store's now that have
    /// finished, by outcome. The cost grows with the window's finished
    /// deliveries (an index range each), not with the table.
    async fn finished_within(&self, window: Duration) -> StoreResult<FinishedCounts>;
    /// The schema version and key check, for the readiness probe.
    async fn readiness(&self) -> StoreResult<Readiness>;

    // ---- delivery log ----

    async fn get_delivery(&self, id: DeliveryId) -> StoreResult<Option<DeliveryDetail>>;
    /// A webhook's deliveries, newest first, filtered and paged by cursor.
    async fn list_deliveries(&self, query: DeliveryQuery) -> StoreResult<DeliveryPage>;
    /// Queues one more attempt now with a fresh retry schedule. A delivery that is
    /// pending and leased is left as it is: it is being attempted already.
    async fn redeliver(&self, id: DeliveryId) -> StoreResult<Option<DeliveryRecord>>;
    /// Requeues every failed delivery of a webhook created at or after `since`;
    /// returns how many. It walks the webhook's deliveries in id order, in
    /// transactions of at most [`RECOVER_BATCH`] deliveries each, so it is not
    /// atomic as a whole: a concurrent reader may see part of a recovery done.
    /// Each delivery is requeued at most once per call, even if it fails again
    /// while the call is still running.
    async fn recover(&self, webhook: WebhookId, since: Timestamp) -> StoreResult<u64>;

    // ---- retention ----

    /// Deletes finished deliveries (with their attempts) and events older than
    /// `policy.retention`, and idempotency keys older than `policy.idempotency_ttl`,
    /// in transactions of at most `policy.batch` rows each. Pending deliveries, and
    /// the events they need, are kept whatever their age.
    async fn purge(&self, policy: PurgePolicy) -> StoreResult<PurgeReport>;
}

/// The most deliveries one transaction of [`Store::recover`] requeues. A backlog
/// of a million failed deliveries must not become one transaction: SQLite keeps
/// a write job's statement journal in memory, and PostgreSQL nodes hold no long
/// transactions. 5,000 bounds what one batch touches to a few thousand pages,
/// while a million deliveries still take only 200 commits.
pub const RECOVER_BATCH: u32 = 5_000;

/// The most deliveries (with their attempts) or request log rows one
/// transaction of a deletion, or of failing a disabled webhook's backlog,
/// touches. On SQLite each batch is a write job that publishes queue behind
/// (a publish can wait for two), so it must stay a few milliseconds long:
/// 1,000 took 72 ms each on a loaded machine, which put a concurrent publish
/// stream's p99 at 190 ms (`delete_under_load` in herald-sqlite's examples).
/// A million deliveries take 4,000 batches.
pub const CLEANUP_BATCH: u32 = 250;

/// How long a claim holds a delivery. It must outlive the HTTP timeout (which
/// bounds the whole attempt), so a slow receiver never sees a second concurrent
/// attempt of the same delivery; the margin covers recording the attempt.
pub fn lease_for(request_timeout: Duration) -> Duration {
    request_timeout + (request_timeout / 2).max(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_always_outlives_the_timeout_by_at_least_five_seconds() {
        for secs in [0, 1, 10, 60] {
            let timeout = Duration::from_secs(secs);
            assert!(lease_for(timeout) >= timeout + Duration::from_secs(5));
        }
        assert_eq!(lease_for(Duration::from_secs(10)), Duration::from_secs(15));
    }
}
