//! The PostgreSQL store: several Herald nodes sharing one database.
//!
//! Layout:
//! - [`PgStore`] ([`PgConfig`]): a connection pool and the `Store` implementation;
//!   every call is a few statements on a pooled connection, except `publish`.
//! - `publish`: group commit. Concurrent publishes queue to writer tasks that store
//!   whole batches in one transaction with array inserts.
//! - `work`: claiming due deliveries by lease, and recording one attempt.
//! - `record`: group commit for attempts. Concurrent `record_attempt`s queue to
//!   writer tasks that record whole batches in one transaction.
//! - `cleanup`: deleting webhooks and receivers and failing a disabled
//!   webhook's backlog in short statements of a bounded batch each, hidden
//!   from reads and claims from the first, committed mark on.
//! - `webhooks`, `log`, `purge`: registration with the scope limit, the delivery
//!   log and requeueing, retention in bounded batches.
//! - `schema`: embedded migrations (under an advisory lock), the schema version
//!   and [`DoctorReport`]; `migrations/` holds the SQL.
//! - `listen`: [`WorkListener`], `LISTEN`/`NOTIFY` wake-ups for idle workers.
//! - `event_types`: the custom event types ([`herald_store::EventTypeStore`]).
//! - `tokens`: API tokens as digests ([`herald_store::TokenStore`]).
//! - `receivers`: incoming webhook receivers ([`herald_store::ReceiverStore`]);
//!   an ingest's dedupe, changeset read-modify-write (under a per-repository
//!   advisory lock), publish and log row share one transaction.
//! - `monitors`: code monitors ([`herald_store::MonitorStore`]); a search's
//!   searched heads (compare-and-set, `FOR UPDATE`), run and events share one
//!   transaction.
//! - `keys`: the secrets key check, and binding values sealed before bindings.
//! - `health`: each webhook's endpoint health: noting an attempt under the
//!   webhook's row lock, and the claim's view (closed webhooks, probes taken
//!   by compare-and-set so one node probes).
//! - `floor`: the due floor, where claims start their walk of the due
//!   indexes, past the dead entries at their left end.
//! - `rows`: column lists and row conversions; `error`: [`PgError`].
//!
//! Invariants:
//! - The database owns the clock. Every time the store writes or compares —
//!   `created_at`, `updated_at`, `next_attempt_at`, lease ends, purge cutoffs —
//!   comes from `herald_now_ms()`, the database's `now()` in milliseconds, never
//!   from a node, so nodes with skewed clocks still agree on when a lease ends.
//!   (An attempt's `started_at` is the one exception: the node measured it.)
//! - The lease: a claim sets `next_attempt_at` to the lease's end and draws a new
//!   `lease_token`; only a `record_attempt` carrying the current token moves the
//!   delivery on, and it clears the token. A delivery is therefore attempted by
//!   at most one node at a time while its lease lasts, and an expired lease makes
//!   it due again with no sweeper. Leases outlive the HTTP timeout
//!   ([`herald_store::lease_for`]), so a slow receiver never sees a second
//!   concurrent attempt.
//! - A call returns only after its transaction committed (with the server's
//!   `synchronous_commit`, on by default, that means flushed to the WAL).
//! - No transaction is held across anything but its own statements.
//!
//! Queries are checked at run time (`sqlx::query`, no `macros` feature), so
//! building this crate needs neither a database nor offline query data.

mod cleanup;
mod error;
mod event_types;
mod floor;
mod health;
mod keys;
mod listen;
mod log;
mod monitors;
mod ordering;
mod pool;
mod publish;
mod purge;
mod receivers;
mod record;
mod rows;
mod schema;
mod tokens;
mod webhooks;
mod work;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use herald_core::id::{DeliveryId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::{
    AttemptOutcome, Backlog, ClaimRequest, ClaimedDelivery, DeliveryDetail, DeliveryPage,
    DeliveryQuery, DeliveryRecord, FinishedCounts, HealthChange, HealthNote, HealthPolicy,
    HealthSignal, KeyVerdict, LeaseToken, NewEvent, NewWebhook, Published, PurgePolicy,
    PurgeReport, Readiness, Rebind, Recorded, Store, StoreError, StoreResult, WebhookPatch,
    WebhookRecord,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};

use crate::pool::Pool;

pub use error::PgError;
pub use listen::WorkListener;
pub use schema::{DoctorReport, SCHEMA_VERSION, SchemaStatus};

/// How a [`PgStore`] connects.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// Connections in this node's pool. Publish writers, claims and API calls
    /// share them; PostgreSQL's `max_connections` must cover every node's pool.
    pub max_connections: u32,
    /// How long a call waits for a free connection (or a new one) before failing.
    pub acquire_timeout: Duration,
    /// The schema Herald's tables live in; `None` uses the server's default
    /// `search_path` (normally `public`). Tests give each store its own.
    pub schema: Option<String>,
    /// Writer tasks committing publish batches: one gathers the next batch while
    /// another commits.
    pub publish_writers: usize,
    /// The most events one publish transaction carries.
    pub publish_batch: usize,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            schema: None,
            publish_writers: 2,
            publish_batch: 1000,
        }
    }
}

/// What [`PgStore::pool_status`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub in_use: usize,
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// A [`Store`] on PostgreSQL. Several nodes may share one database (and schema).
pub struct PgStore {
    pool: Pool,
    options: PgConnectOptions,
    schema: Option<String>,
    publisher: publish::Publisher,
    recorder: record::Recorder,
    due_floor: floor::DueFloor,
}

impl PgStore {
    /// Opens a pool on `url` (a `postgres://` connection string) and checks that
    /// the database answers. Does not touch the schema: see [`PgStore::migrate`].
    pub async fn connect(url: &str, config: PgConfig) -> Result<PgStore, PgError> {
        if let Some(schema) = &config.schema {
            schema::validate_schema_name(schema)?;
        }
        let options = PgConnectOptions::from_str(url)
            .map_err(PgError::Connect)?
            .application_name("herald")
            // After a statement's fifth run PostgreSQL may switch to a generic
            // plan, which guesses `LIMIT $1` as a tenth of the table: claims on a
            // grown table then sorted every due row (1,356 against 4,472 dl/s at
            // fan-out 10 in herald-bench). Planning each statement for its
            // arguments costs little per batch.
            .options([("plan_cache_mode", "force_custom_plan")]);
        // The pool retries a failing connect until its acquire timeout and then
        // reports only the timeout; one direct attempt first says why (refused,
        // authentication, no such database).
        let probe = PgConnection::connect_with(&options)
            .await
            .map_err(PgError::Connect)?;
        let _ = probe.close().await;
        let schema: Option<Arc<str>> = config.schema.as_deref().map(Arc::from);
        let search_path = schema.clone();
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .acquire_timeout(config.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let search_path = search_path.clone();
                Box::pin(async move {
                    if let Some(schema) = search_path {
                        sqlx::query("SELECT set_config('search_path', quote_ident($1), false)")
                            .bind(&*schema)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await
            .map_err(PgError::Connect)?;
        let pool = Pool::new(pool);
        let publisher =
            publish::Publisher::start(pool.clone(), config.publish_writers, config.publish_batch);
        let recorder = record::Recorder::start(pool.clone());
        Ok(PgStore {
            pool,
            options,
            schema: config.schema,
            publisher,
            recorder,
            due_floor: floor::DueFloor::new(),
        })
    }

    /// Brings the schema up to date (creating the configured schema if needed).
    /// Safe to run from every node at start: nodes wait for each other on an
    /// advisory lock, and a current schema is left as it is.
    pub async fn migrate(&self) -> Result<(), PgError> {
        schema::migrate(&self.pool, self.schema.as_deref()).await
    }

    /// The applied schema version against the one this build knows.
    pub async fn schema_version(&self) -> Result<SchemaStatus, PgError> {
        schema::status(&self.pool).await
    }

    /// Connectivity, server version, schema version and clock skew, for `herald doctor`.
    pub async fn doctor(&self) -> Result<DoctorReport, PgError> {
        schema::doctor(&self.pool).await
    }

    /// Subscribes to wake-ups on new work, on a connection of its own.
    pub async fn listen_for_work(&self) -> Result<WorkListener, PgError> {
        let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&mut *self.pool.acquire().await?)
            .await?;
        let dedicated = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.options.clone())
            .await
            .map_err(PgError::Connect)?;
        WorkListener::start(dedicated, schema.unwrap_or_default()).await
    }

    /// The pool now: connections in use and idle, and callers waiting for one.
    pub fn pool_status(&self) -> PoolStatus {
        let (open, idle) = self.pool.open_and_idle();
        let open = usize::try_from(open).unwrap_or(usize::MAX);
        PoolStatus {
            in_use: open.saturating_sub(idle),
            idle,
            waiting: self.pool.waiting(),
        }
    }

    /// Sets the pool's gauges from [`PgStore::pool_status`].
    pub fn record_pool_metrics(&self) {
        let PoolStatus {
            in_use,
            idle,
            waiting,
        } = self.pool_status();
        herald_store::metrics::record_pool(in_use, idle, waiting);
    }

    /// Closes the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for PgStore {
    async fn adopt_key(&self, check: [u8; 32], rebind: Rebind) -> StoreResult<KeyVerdict> {
        Ok(keys::adopt(&self.pool, self.schema.as_deref(), check, &rebind).await?)
    }

    async fn create_webhook(
        &self,
        new: NewWebhook,
        max_per_scope: u32,
    ) -> StoreResult<WebhookRecord> {
        Ok(webhooks::create(&self.pool, new, max_per_scope).await?)
    }

    async fn get_webhook(&self, id: WebhookId) -> StoreResult<Option<WebhookRecord>> {
        Ok(webhooks::get(&self.pool, id).await?)
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<WebhookRecord>> {
        Ok(webhooks::list(&self.pool).await?)
    }

    async fn update_webhook(
        &self,
        id: WebhookId,
        patch: WebhookPatch,
        max_per_scope: u32,
    ) -> StoreResult<Option<WebhookRecord>> {
        Ok(webhooks::update(&self.pool, id, patch, max_per_scope).await?)
    }

    async fn delete_webhook(&self, id: WebhookId) -> StoreResult<bool> {
        Ok(webhooks::delete(&self.pool, id).await?)
    }

    async fn disable_webhook(&self, id: WebhookId, reason: &str) -> StoreResult<()> {
        Ok(webhooks::disable(&self.pool, id, reason).await?)
    }

    async fn finish_cleanups(&self) -> StoreResult<u64> {
        Ok(cleanup::finish_all(&self.pool).await?)
    }

    async fn publish(
        &self,
        event: NewEvent,
        idempotency_key: Option<String>,
    ) -> StoreResult<Published> {
        self.publisher.publish(event, idempotency_key).await
    }

    async fn claim_due(&self, request: ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>> {
        Ok(work::claim_due(&self.pool, &self.due_floor, request).await?)
    }

    async fn record_attempt(&self, outcome: AttemptOutcome) -> StoreResult<bool> {
        Ok(self.recorder.record(outcome, None).await?.moved_on)
    }

    /// Notes in its own short transaction after the record's, as the
    /// trait's default does, but with the webhook's health read by the
    /// record batch (once for all of its attempts) rather than by each.
    async fn record_attempt_noting_health(
        &self,
        outcome: AttemptOutcome,
        note: HealthNote,
    ) -> StoreResult<Recorded> {
        let answer = self.recorder.record(outcome, Some(note.webhook)).await?;
        if !answer.moved_on {
            return Ok(Recorded {
                moved_on: false,
                health: Ok(Vec::new()),
            });
        }
        let health = health::note_seen(
            &self.pool,
            note.webhook,
            &note.signal,
            &note.policy,
            answer.seen,
        )
        .await
        .map_err(StoreError::from);
        Ok(Recorded {
            moved_on: true,
            health,
        })
    }

    async fn release(&self, delivery: DeliveryId, lease: LeaseToken) -> StoreResult<bool> {
        Ok(work::release(&self.pool, delivery, lease).await?)
    }

    async fn note_health(
        &self,
        webhook: WebhookId,
        signal: HealthSignal,
        policy: HealthPolicy,
    ) -> StoreResult<Vec<HealthChange>> {
        Ok(health::note(&self.pool, webhook, &signal, &policy).await?)
    }

    async fn next_due_at(&self) -> StoreResult<Option<Timestamp>> {
        Ok(work::next_due_at(&self.pool, &self.due_floor).await?)
    }

    async fn backlog(&self, longest_lease: Duration) -> StoreResult<Backlog> {
        Ok(work::backlog(&self.pool, longest_lease).await?)
    }

    async fn finished_within(&self, window: Duration) -> StoreResult<FinishedCounts> {
        Ok(work::finished_within(&self.pool, window).await?)
    }

    async fn readiness(&self) -> StoreResult<Readiness> {
        Ok(keys::readiness(&self.pool).await?)
    }

    async fn get_delivery(&self, id: DeliveryId) -> StoreResult<Option<DeliveryDetail>> {
        Ok(log::get_delivery(&self.pool, id).await?)
    }

    async fn list_deliveries(&self, query: DeliveryQuery) -> StoreResult<DeliveryPage> {
        Ok(log::list_deliveries(&self.pool, query).await?)
    }

    async fn redeliver(&self, id: DeliveryId) -> StoreResult<Option<DeliveryRecord>> {
        Ok(log::redeliver(&self.pool, id).await?)
    }

    async fn recover(&self, webhook: WebhookId, since: Timestamp) -> StoreResult<u64> {
        Ok(log::recover(&self.pool, webhook, since).await?)
    }

    async fn purge(&self, policy: PurgePolicy) -> StoreResult<PurgeReport> {
        Ok(purge::purge(&self.pool, policy).await?)
    }
}
