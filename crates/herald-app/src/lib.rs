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
//! - `start`: [`App::start`] opens the store ([`stores`]), checks the secrets
//!   key, and starts the delivery engine, the janitors, the monitor scheduler
//!   and, on PostgreSQL, the wake relay; [`RunningApp::stop`] stops them.
//! - `error`: [`AppError`] and its [`ErrorKind`].
//!
//! An operation validates its whole input before it writes anything, so a
//! refused call changes nothing. Hooks that react to a write ("a `repo:push`
//! was published": fetch that repository now) run after the commit, and not
//! for an idempotent replay.

pub mod deliveries;
mod error;
pub mod event_types;
pub mod events;
pub mod monitors;
pub mod receivers;
pub mod repositories;
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
    /// Where code hosts and people reach this server, without a trailing slash.
    external_url: String,
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
                guard: AddressGuard::new(config.delivery.allow_cidrs),
                catalogue,
                unverified: receivers::budget::UnverifiedBudget::new(&config.limits.ingest),
                limits: config.limits,
                external_url: config.external_url.trim_end_matches('/').to_owned(),
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
}
