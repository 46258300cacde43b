//! The SQLite store: Herald's default, embedded, single-node [`Store`].
//!
//! Layout:
//! - [`SqliteStore`] (this file): opens the database and routes each `Store`
//!   call to the writer or to the readers.
//! - `writer`: the one thread that writes. Jobs arrive on a channel and are
//!   committed in groups (group commit): one `BEGIN IMMEDIATE ... COMMIT`, one
//!   fsync, for everything queued; a failing job rolls the group back and the
//!   rest run again without it. Replies go out only after the commit. Claims and attempt records are writes too.
//! - `readers`: a few threads with read-only connections for gets and lists;
//!   in WAL mode they never wait for the writer.
//! - `schema`: connection settings (WAL, `synchronous=FULL`, foreign keys) and
//!   the migrations, versioned by `PRAGMA user_version`.
//! - `cleanup`: bulk work done one bounded batch per write job (deleting a
//!   webhook or a receiver, failing a disabled webhook's backlog), hidden from
//!   reads and claims from its first job on.
//! - `webhooks`, `events`, `work`, `log`, `purge`: the SQL of each group of
//!   operations. `webhooks` also holds the writer's in-memory copy of the
//!   webhooks, which fan-out and claims read instead of the table; every
//!   webhook write goes through the writer and drops it.
//! - `health`: each webhook's endpoint health columns, and noting an
//!   attempt's signal on the writer (claims gate on the cached copy).
//! - `flow`: each webhook's own flow limits columns (the engine enforces them).
//! - `event_types`: the custom event types ([`herald_store::EventTypeStore`]).
//! - `tokens`: API tokens as digests ([`herald_store::TokenStore`]).
//! - `receivers`: incoming webhook receivers ([`herald_store::ReceiverStore`]):
//!   receivers, request log, delivery-id dedupe, changeset records, and the
//!   ingest job that commits all of a request's work together.
//! - `monitors`: code monitors ([`herald_store::MonitorStore`]): repositories,
//!   monitors with their action webhooks, searched heads, runs; a search's heads,
//!   run and events commit in one job.
//! - `rows`: how records map to columns (ids as 16-byte blobs, times as
//!   integer milliseconds, lists and maps as JSON text).
//! - `error`: [`SqliteError`], which reaches `Store` callers as
//!   `StoreError::Backend` with no stored value in its message.
//!
//! One process owns a database file: the webhook cache notices another
//! connection's commits (`PRAGMA data_version`), but leases and group commit
//! assume one writer.

mod cleanup;
mod error;
mod event_types;
mod events;
mod flow;
mod health;
mod keys;
mod log;
mod monitors;
mod ordering;
mod purge;
mod readers;
mod receivers;
mod rows;
mod schema;
mod tokens;
mod webhooks;
mod work;
mod writer;

use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use herald_core::id::{DeliveryId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::{
    AttemptOutcome, Backlog, ClaimRequest, ClaimedDelivery, DeliveryDetail, DeliveryPage,
    DeliveryQuery, DeliveryRecord, FinishedCounts, HealthChange, HealthNote, HealthPolicy,
    HealthSignal, KeyVerdict, LeaseToken, NewEvent, NewWebhook, Published, PurgePolicy,
    PurgeReport, Readiness, Rebind, Recorded, Store, StoreResult, WebhookPatch, WebhookRecord,
};

pub use error::SqliteError;
pub use schema::{SCHEMA_VERSION, applied_version};

use cleanup::Cleanup;
use readers::ReaderPool;
use writer::WriterHandle;

/// How the store uses SQLite.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// Read-only connections, each on its own thread (at least one is opened).
    pub readers: usize,
    /// `synchronous=FULL`: every commit is fsynced before any caller hears of
    /// it. `false` gives `NORMAL`, which in WAL mode never corrupts the
    /// database but may lose the last commits on power loss.
    pub synchronous_full: bool,
    /// The most write jobs committed in one transaction.
    pub max_batch: usize,
    /// How long a connection waits for a lock held by another process.
    pub busy_timeout: Duration,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            readers: 4,
            synchronous_full: true,
            max_batch: 512,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

pub struct SqliteStore {
    // Field order matters: dropping the two senders first lets the threads
    // finish their queues and exit, then `_threads` joins them.
    writer: WriterHandle,
    readers: ReaderPool,
    _threads: Threads,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path`, creating it and its parent directory if
    /// needed, and brings its schema up to date.
    pub fn open(path: &Path, config: SqliteConfig) -> Result<Self, SqliteError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| SqliteError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let write_conn = schema::open_writer(path, &config)?;
        // Absolute, so that a later change of directory cannot pass for the
        // database having vanished.
        let path = std::fs::canonicalize(path).map_err(|source| SqliteError::Locate {
            path: path.to_owned(),
            source,
        })?;
        let (readers, mut threads) = ReaderPool::spawn(&path, &config)?;
        let (writer, writer_thread) =
            WriterHandle::spawn(write_conn, path.clone(), config.max_batch)?;
        // Joined last, so the writer's connection closes after the readers' and
        // checkpoints the WAL into the database file.
        threads.push(writer_thread);
        Ok(Self {
            writer,
            readers,
            _threads: Threads(threads),
        })
    }
}

impl SqliteStore {
    /// Runs what the first batch of some bulk work left, if anything.
    pub(crate) async fn finish(&self, rest: Option<Cleanup>) -> StoreResult<()> {
        if let Some(cleanup) = rest {
            self.run_cleanup(cleanup).await?;
        }
        Ok(())
    }

    /// Records the attempt and, when it moved its delivery on, notes `note`,
    /// in one writer job; then runs what a 410's disabling left.
    async fn record(
        &self,
        outcome: AttemptOutcome,
        note: Option<HealthNote>,
    ) -> StoreResult<(bool, Vec<HealthChange>)> {
        let (moved_on, changes, rest) = self
            .writer
            .run(move |w| {
                let (moved_on, rest) = work::record_attempt(w, &outcome)?;
                let changes = match &note {
                    Some(note) if moved_on => {
                        health::note(w, note.webhook, &note.signal, &note.policy)?
                    }
                    _ => Vec::new(),
                };
                Ok((moved_on, changes, rest))
            })
            .await?;
        self.finish(rest).await?;
        Ok((moved_on, changes))
    }

    /// Runs a piece of bulk work to its end, one write job per batch so that
    /// other writes get their turn in between; returns the rows it touched.
    async fn run_cleanup(&self, cleanup: Cleanup) -> StoreResult<u64> {
        let mut rows = 0;
        loop {
            let batch = self.writer.run(move |w| cleanup.run_batch(w)).await?;
            rows += batch.rows;
            if batch.finished {
                return Ok(rows);
            }
        }
    }
}

/// Waits for the store's threads when the store is dropped, so the database is
/// closed by the time `drop` returns.
struct Threads(Vec<JoinHandle<()>>);

impl Drop for Threads {
    fn drop(&mut self) {
        for thread in self.0.drain(..) {
            // A thread that panicked has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn adopt_key(&self, check: [u8; 32], rebind: Rebind) -> StoreResult<KeyVerdict> {
        self.writer
            .run(move |w| keys::adopt(w, check, &rebind))
            .await
    }

    async fn create_webhook(
        &self,
        new: NewWebhook,
        max_per_scope: u32,
    ) -> StoreResult<WebhookRecord> {
        self.writer
            .run(move |w| webhooks::create(w, new.clone(), max_per_scope))
            .await
    }

    async fn get_webhook(&self, id: WebhookId) -> StoreResult<Option<WebhookRecord>> {
        self.readers.run(move |conn| webhooks::get(conn, id)).await
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<WebhookRecord>> {
        self.readers.run(|conn| webhooks::list(conn)).await
    }

    async fn update_webhook(
        &self,
        id: WebhookId,
        patch: WebhookPatch,
        max_per_scope: u32,
    ) -> StoreResult<Option<WebhookRecord>> {
        let (record, rest) = self
            .writer
            .run(move |w| webhooks::update(w, id, patch.clone(), max_per_scope))
            .await?;
        self.finish(rest).await?;
        Ok(record)
    }

    async fn delete_webhook(&self, id: WebhookId) -> StoreResult<bool> {
        match self.writer.run(move |w| webhooks::delete(w, id)).await? {
            Some(rest) => {
                self.finish(rest).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn disable_webhook(&self, id: WebhookId, reason: &str) -> StoreResult<()> {
        let reason = reason.to_owned();
        let rest = self
            .writer
            .run(move |w| webhooks::disable(w, id, &reason))
            .await?;
        self.finish(rest).await?;
        Ok(())
    }

    async fn finish_cleanups(&self) -> StoreResult<u64> {
        let work = self.readers.run(|conn| cleanup::unfinished(conn)).await?;
        let mut rows = 0;
        for cleanup in work {
            rows += self.run_cleanup(cleanup).await?;
        }
        Ok(rows)
    }

    async fn publish(
        &self,
        event: NewEvent,
        idempotency_key: Option<String>,
    ) -> StoreResult<Published> {
        self.writer
            .run(move |w| events::publish(w, &event, idempotency_key.as_deref()))
            .await
    }

    async fn claim_due(&self, request: ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>> {
        if request.limit == 0 {
            return Ok(Vec::new());
        }
        self.writer.run(move |w| work::claim_due(w, &request)).await
    }

    async fn record_attempt(&self, outcome: AttemptOutcome) -> StoreResult<bool> {
        let (moved_on, _) = self.record(outcome, None).await?;
        Ok(moved_on)
    }

    async fn record_attempt_noting_health(
        &self,
        outcome: AttemptOutcome,
        note: HealthNote,
    ) -> StoreResult<Recorded> {
        let (moved_on, changes) = self.record(outcome, Some(note)).await?;
        Ok(Recorded {
            moved_on,
            health: Ok(changes),
        })
    }

    async fn release(&self, delivery: DeliveryId, lease: LeaseToken) -> StoreResult<bool> {
        self.writer
            .run(move |w| work::release(w, delivery, lease))
            .await
    }

    async fn note_health(
        &self,
        webhook: WebhookId,
        signal: HealthSignal,
        policy: HealthPolicy,
    ) -> StoreResult<Vec<HealthChange>> {
        self.writer
            .run(move |w| health::note(w, webhook, &signal, &policy))
            .await
    }

    async fn next_due_at(&self) -> StoreResult<Option<Timestamp>> {
        self.readers.run(|conn| work::next_due_at(conn)).await
    }

    async fn backlog(&self, longest_lease: Duration) -> StoreResult<Backlog> {
        self.readers
            .run(move |conn| work::backlog(conn, longest_lease))
            .await
    }

    async fn finished_within(&self, window: Duration) -> StoreResult<FinishedCounts> {
        self.readers
            .run(move |conn| work::finished_within(conn, window))
            .await
    }

    async fn readiness(&self) -> StoreResult<Readiness> {
        self.readers.run(|conn| keys::readiness(conn)).await
    }

    async fn get_delivery(&self, id: DeliveryId) -> StoreResult<Option<DeliveryDetail>> {
        self.readers
            .run(move |conn| log::get_delivery(conn, id))
            .await
    }

    async fn list_deliveries(&self, query: DeliveryQuery) -> StoreResult<DeliveryPage> {
        self.readers
            .run(move |conn| log::list_deliveries(conn, &query))
            .await
    }

    async fn redeliver(&self, id: DeliveryId) -> StoreResult<Option<DeliveryRecord>> {
        self.writer.run(move |w| log::redeliver(w, id)).await
    }

    async fn recover(&self, webhook: WebhookId, since: Timestamp) -> StoreResult<u64> {
        // One write job per batch, so no transaction grows with the backlog and
        // other writes get their turn between batches.
        let mut total = 0;
        let mut after = log::BEFORE_ALL_IDS;
        loop {
            let batch = self
                .writer
                .run(move |w| log::recover_batch(w, webhook, since, after))
                .await?;
            total += batch.requeued;
            match batch.resume_after {
                Some(last) => after = last,
                None => return Ok(total),
            }
        }
    }

    async fn purge(&self, policy: PurgePolicy) -> StoreResult<PurgeReport> {
        let mut total = PurgeReport::default();
        loop {
            let batch = self
                .writer
                .run(move |w| purge::purge_batch(w, &policy))
                .await?;
            total.events += batch.events;
            total.deliveries += batch.deliveries;
            total.attempts += batch.attempts;
            total.idempotency_keys += batch.idempotency_keys;
            if !purge::batch_was_full(&batch, &policy) {
                return Ok(total);
            }
        }
    }
}
