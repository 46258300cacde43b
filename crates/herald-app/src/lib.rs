//! Herald's application layer: every operation a front end performs (the JSON
//! API, the console, the CLI through the API), in one place, between the front
//! ends and the engine, the monitors and the stores.
//!
//! Layout:
//! - [`App`]: what front ends hold. Its operations take typed inputs and
//!   return typed results or an [`AppError`]; a front end only maps them to
//!   its own terms. Each resource has a module adding its operations to `App`:
//!   `webhooks`, `events` (publishing, with validation against the catalogue
//!   and the post-commit hooks), `deliveries`, `event_types`, `receivers`
//!   (incoming webhooks: sealed credentials, ingest, the request log),
//!   `repositories` and `monitors` (code monitors; [`monitors::MonitorService`]
//!   is the scheduler that fetches and searches).
//! - `tokens`: API tokens, and who may do what: the [`tokens::Principal`]
//!   every webhook, delivery and token operation takes, its
//!   [`tokens::Scope`], and the confinement of a `project:<key>` token to that
//!   project's webhooks.
//! - `sessions`: console sessions sealed into their cookie with the secrets
//!   key (no table); each request authenticates the token inside again.
//! - `start`: [`App::start`] opens the store ([`stores`]), checks the secrets
//!   key, and starts the delivery engine, the janitors, the monitor scheduler
//!   and, on PostgreSQL, the wake relay; [`RunningApp::stop`] stops them.
//! - `error`: [`AppError`] and its [`ErrorKind`].
//! - [`metrics`]: the application's metric names, one function per thing it
//!   reports, and the gauges a scrape refreshes from the store.
//!
//! An operation validates its whole input before it writes anything, so a
//! refused call changes nothing. Hooks that react to a write ("a `repo:push`
//! was published": fetch that repository now) run after the commit, and not
//! for an idempotent replay.

pub mod deliveries;
mod error;
pub mod event_types;
pub mod events;
pub mod metrics;
pub mod monitors;
pub mod overview;
pub mod receivers;
pub mod repositories;
pub mod sessions;
mod start;
pub mod stores;
pub mod tokens;
pub mod webhooks;

use std::sync::Arc;

use herald_core::cipher::SecretCipher;
use herald_delivery::{AddressGuard, EngineHandle, LiveCatalogue};
use herald_store::{ReceiverStore, Store, TokenStore};

pub use error::{AppError, ErrorDetails, ErrorKind};
pub use start::{AppConfig, Retention, RunningApp, StartError};

pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
pub const DEFAULT_MAX_WEBHOOKS_PER_SCOPE: u32 = 10;

/// Limits on what callers may store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest event payload accepted.
    pub max_payload_bytes: usize,
    /// Webhooks allowed per project, and globally.
    pub max_webhooks_per_scope: u32,
    /// What requests to receivers may hold before they are verified.
    pub ingest: receivers::IngestLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            max_webhooks_per_scope: DEFAULT_MAX_WEBHOOKS_PER_SCOPE,
            ingest: receivers::IngestLimits::default(),
        }
    }
}

/// The application: cheap to clone, shared by every front end.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
    tokens: Arc<dyn TokenStore>,
    /// When this node last wrote each API token's use.
    token_uses: tokens::UseRecorder,
    monitors: monitors::MonitorService,
    cipher: SecretCipher,
    engine: EngineHandle,
    /// The address guard deliveries pass, to warn about endpoints it refuses.
    guard: AddressGuard,
    /// The event catalogue, shared with the engine (which reads families from it).
    catalogue: Arc<LiveCatalogue>,
    limits: Limits,
    /// What unverified requests to receivers hold now, against `limits.ingest`.
    unverified: receivers::budget::UnverifiedBudget,
    /// The receivers code hosts' requests named in the last moment.
    receivers_seen: receivers::cache::ReceiverCache,
    /// Where code hosts and people reach this server, without a trailing slash.
    external_url: String,
    /// The open store as its own type, for what only one backend has (a pool).
    opened: stores::OpenedStore,
    /// The engine's request timeout, which bounds its leases: the horizon
    /// the backlog snapshot looks within for leased deliveries.
    request_timeout: std::time::Duration,
    snapshots: metrics::SnapshotCache,
    outcomes: overview::OutcomesCache,
}

impl App {
    fn assemble(
        opened: &stores::OpenedStore,
        engine: EngineHandle,
        catalogue: Arc<LiveCatalogue>,
        monitors: monitors::MonitorService,
        config: AppConfig,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: opened.store(),
                receivers: opened.receivers(),
                tokens: opened.tokens(),
                token_uses: tokens::UseRecorder::default(),
                monitors,
                cipher: config.cipher,
                engine,
                opened: opened.clone(),
                request_timeout: config.delivery.request_timeout,
                guard: AddressGuard::new(config.delivery.allow_cidrs),
                catalogue,
                unverified: receivers::budget::UnverifiedBudget::new(&config.limits.ingest),
                receivers_seen: receivers::cache::ReceiverCache::default(),
                limits: config.limits,
                external_url: config.external_url.trim_end_matches('/').to_owned(),
                snapshots: metrics::SnapshotCache::default(),
                outcomes: overview::OutcomesCache::default(),
            }),
        }
    }

    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Where code hosts and people reach this server, without a trailing slash.
    pub fn external_url(&self) -> &str {
        &self.inner.external_url
    }

    fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    fn receiver_store(&self) -> &dyn ReceiverStore {
        &*self.inner.receivers
    }

    fn token_store(&self) -> &dyn TokenStore {
        &*self.inner.tokens
    }

    fn cipher(&self) -> &SecretCipher {
        &self.inner.cipher
    }

    fn engine(&self) -> &EngineHandle {
        &self.inner.engine
    }

    fn guard(&self) -> &AddressGuard {
        &self.inner.guard
    }

    fn catalogue(&self) -> &LiveCatalogue {
        &self.inner.catalogue
    }

    fn monitor_service(&self) -> &monitors::MonitorService {
        &self.inner.monitors
    }
}

impl App {
    /// Whether this node can serve: its secrets key has opened every sealed
    /// value it met (see `EngineHandle::fault`) and its store answers.
    pub async fn check_health(&self) -> Result<(), AppError> {
        if let Some(fault) = self.engine().fault() {
            return Err(AppError::unavailable(fault));
        }
        match self.store().next_due_at().await {
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::warn!(%error, "health check: the store did not answer");
                Err(AppError::unavailable("the store is not answering"))
            }
        }
    }

    /// Whether this node should be sent traffic: healthy (above), and the
    /// database is still the one it started with: its schema is this build's
    /// (another node may have migrated it further) and its key check is this
    /// node's key's. Each failure says which, never with a secret.
    pub async fn check_readiness(&self) -> Result<(), AppError> {
        self.check_health().await?;
        let readiness = self.store().readiness().await.map_err(|error| {
            tracing::warn!(%error, "readiness check: the store did not answer");
            AppError::unavailable("the store is not answering")
        })?;
        readiness_verdict(&readiness, &self.cipher().key_check()).map_err(AppError::unavailable)
    }
}

/// Why a node whose store answered is not ready, if it is not.
fn readiness_verdict(readiness: &herald_store::Readiness, key_check: &[u8]) -> Result<(), String> {
    if readiness.schema_version != readiness.expected_schema_version {
        return Err(format!(
            "the database schema is version {}, and this build runs version {}",
            readiness.schema_version, readiness.expected_schema_version
        ));
    }
    match &readiness.key_check {
        Some(stored) if stored.as_slice() != key_check => {
            Err("this node's secrets key is not the one the database was sealed with".to_owned())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use herald_store::Readiness;

    use super::readiness_verdict;

    fn readiness(schema_version: i64, key_check: Option<Vec<u8>>) -> Readiness {
        Readiness {
            schema_version,
            expected_schema_version: 10,
            key_check,
        }
    }

    #[test]
    fn a_node_is_ready_with_this_builds_schema_and_its_own_key() {
        assert_eq!(
            readiness_verdict(&readiness(10, Some(vec![1; 32])), &[1; 32]),
            Ok(())
        );
        let newer = readiness_verdict(&readiness(11, Some(vec![1; 32])), &[1; 32]);
        assert!(newer.unwrap_err().contains("version 11"));
        let other_key = readiness_verdict(&readiness(10, Some(vec![2; 32])), &[1; 32]);
        assert!(other_key.unwrap_err().contains("secrets key"));
    }
}
