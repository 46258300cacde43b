//! [`App::start`]: opens the store and starts everything that works in the
//! background (the delivery engine, the janitors, the code monitor scheduler
//! and, on PostgreSQL, the wake relay), and [`RunningApp`], which stops them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use herald_core::cipher::{SealedColumn, SecretCipher};
use herald_delivery::{
    DeliveryConfig, DeliveryError, Engine, EngineHandle, JanitorConfig, LiveCatalogue,
    spawn_janitor,
};
use herald_store::receivers::DEFAULT_DEDUPE_TTL;
use herald_store::{KeyVerdict, PurgePolicy, Rebind, ReceiverPurgePolicy, Store, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::monitors::{MonitorService, MonitorsConfig};
use crate::receivers::janitor::{ReceiverJanitorConfig, spawn_receiver_janitor};
use crate::stores::{OpenError, OpenedStore, StoreChoice};
use crate::{App, Limits};

/// Rows the janitors delete per transaction, so a purge never holds the writer long.
const PURGE_BATCH: u32 = 1000;

/// Everything [`App::start`] needs.
#[derive(Debug)]
pub struct AppConfig {
    pub store: StoreChoice,
    /// Seals webhook URLs and secrets, receiver credentials and repository sources.
    pub cipher: SecretCipher,
    /// Where `cipher` came from, to name it when it does not fit the store.
    pub secret_key_file: PathBuf,
    pub delivery: DeliveryConfig,
    pub limits: Limits,
    pub retention: Retention,
    pub monitors: MonitorsConfig,
    /// Where code hosts and people reach this server, for receiver URLs and
    /// `monitorURL` links.
    pub external_url: String,
}

/// How long the delivery log, the receivers' request log and idempotency keys are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub max_age: Duration,
    pub purge_interval: Duration,
    pub idempotency_ttl: Duration,
}

/// Why Herald could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("cannot read the custom event types: {0}")]
    Catalogue(StoreError),
    #[error("cannot check the secrets key against the database: {0}")]
    KeyCheck(StoreError),
    #[error(
        "the secrets key {} is not the key this database's secrets are sealed with. \
         Every node sharing a database needs the same key: copy secret.key from \
         a node that works, or point secret_key_file at it",
        key_file.display()
    )]
    KeyMismatch { key_file: PathBuf },
    #[error("cannot start the delivery engine: {0}")]
    Engine(#[from] DeliveryError),
}

/// A started application: the [`App`] front ends call, and the background
/// work that stops with [`RunningApp::stop`].
pub struct RunningApp {
    app: App,
    opened: OpenedStore,
    engine: EngineHandle,
    shutdown: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

impl App {
    /// Opens the store (migrating it), checks that the secrets key is the
    /// database's (adopting it on first start),
    /// and starts the engine, the janitors, the monitor scheduler and the wake
    /// relay. Everything stops when `shutdown` is cancelled; then await
    /// [`RunningApp::stop`].
    pub async fn start(
        config: AppConfig,
        shutdown: CancellationToken,
    ) -> Result<RunningApp, StartError> {
        let opened = OpenedStore::open(&config.store).await?;
        let store = opened.store();
        adopt_key(store.as_ref(), &config.cipher, &config.secret_key_file).await?;
        let catalogue = LiveCatalogue::load(opened.event_types())
            .await
            .map_err(StartError::Catalogue)?;
        let catalogue = Arc::new(catalogue);
        let engine = Engine::start(
            store.clone(),
            config.cipher.clone(),
            config.delivery.clone(),
            catalogue.clone(),
            shutdown.clone(),
        )?;
        let monitors = MonitorService::new(
            opened.monitors(),
            store.clone(),
            config.cipher.clone(),
            engine.clone(),
            config.monitors.clone(),
        );
        monitors.default_external_url(&config.external_url);
        let tasks = spawn_background(&opened, &engine, &monitors, &config, &shutdown);
        let app = App::assemble(&opened, engine.clone(), catalogue, monitors, config);
        Ok(RunningApp {
            app,
            opened,
            engine,
            shutdown,
            tasks,
        })
    }
}

fn spawn_background(
    opened: &OpenedStore,
    engine: &EngineHandle,
    monitors: &MonitorService,
    config: &AppConfig,
    shutdown: &CancellationToken,
) -> Vec<(&'static str, JoinHandle<()>)> {
    let retention = config.retention;
    let mut tasks = vec![
        (
            "the janitor",
            spawn_janitor(opened.store(), janitor_config(retention), shutdown.clone()),
        ),
        (
            "the receiver janitor",
            spawn_receiver_janitor(
                opened.receivers(),
                receiver_janitor_config(retention),
                shutdown.clone().cancelled_owned(),
            ),
        ),
        (
            "the code monitor scheduler",
            monitors.spawn(shutdown.clone()),
        ),
    ];
    if let Some(relay) = opened.spawn_wake_relay(engine, shutdown) {
        tasks.push(("the PostgreSQL wake relay", relay));
    }
    tasks
}

impl RunningApp {
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The open store, for the store commands and for tests that play another
    /// node writing to it.
    pub fn opened_store(&self) -> &OpenedStore {
        &self.opened
    }

    /// Cancels the background work (if the caller has not already) and waits
    /// for it: attempts in flight finish or keep their leases, which expire.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.engine.join().await;
        for (name, task) in self.tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "{name} failed");
            }
        }
        self.opened.close().await;
    }
}

/// Refuses a secrets key that is not the database's: every node on one
/// database must share one key, and a node with another would fail every
/// delivery it claims. The first node to start (or the first since sealed
/// values were bound to their rows) makes its key the database's, binding the
/// values already stored under the store's migration lock.
async fn adopt_key(
    store: &dyn Store,
    cipher: &SecretCipher,
    key_file: &std::path::Path,
) -> Result<(), StartError> {
    let rebind_with = cipher.clone();
    let rebind: Rebind = Arc::new(move |column: SealedColumn, row, sealed: &[u8]| {
        rebind_with.rebind(sealed, &column.of(row)).ok()
    });
    let verdict = store
        .adopt_key(cipher.key_check(), rebind)
        .await
        .map_err(StartError::KeyCheck)?;
    match verdict {
        KeyVerdict::Matches => Ok(()),
        KeyVerdict::Adopted { rebound } => {
            tracing::info!(
                rebound,
                "this node's secrets key is now the database's; sealed values bound to their rows"
            );
            Ok(())
        }
        KeyVerdict::Unopenable { column, row } => {
            tracing::error!(
                column = column.name(),
                %row,
                "this node's secrets key cannot open a value already stored"
            );
            Err(StartError::KeyMismatch {
                key_file: key_file.to_owned(),
            })
        }
        KeyVerdict::Mismatch => Err(StartError::KeyMismatch {
            key_file: key_file.to_owned(),
        }),
    }
}

fn janitor_config(retention: Retention) -> JanitorConfig {
    JanitorConfig {
        interval: retention.purge_interval,
        policy: PurgePolicy {
            retention: retention.max_age,
            idempotency_ttl: retention.idempotency_ttl,
            batch: PURGE_BATCH,
        },
    }
}

/// The receivers' request log follows the delivery log's retention; delivery
/// ids are remembered for the dedupe window.
fn receiver_janitor_config(retention: Retention) -> ReceiverJanitorConfig {
    ReceiverJanitorConfig {
        interval: retention.purge_interval,
        policy: ReceiverPurgePolicy {
            retention: retention.max_age,
            dedupe_ttl: DEFAULT_DEDUPE_TTL,
            batch: PURGE_BATCH,
        },
    }
}
