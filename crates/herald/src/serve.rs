//! `herald serve`: prepares the data directory, opens the store, starts the
//! delivery engine, the janitor and the code monitor scheduler, and serves the
//! API until SIGINT or SIGTERM.
//! On PostgreSQL it also listens for work other nodes publish (`database`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use herald_delivery::{Engine, EngineHandle, JanitorConfig, LiveCatalogue, spawn_janitor};
use herald_monitors_service::{MonitorService, MonitorsConfig};
use herald_postgres::PgStore;
use herald_server::{AppState, ReceiverJanitorConfig, ServerConfig, spawn_receiver_janitor};
use herald_sqlite::{SqliteConfig, SqliteStore};
use herald_store::receivers::DEFAULT_DEDUPE_TTL;
use herald_store::{
    EventTypeStore, MonitorStore, PurgePolicy, ReceiverPurgePolicy, ReceiverStore, Store, lease_for,
};
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, Settings};
use crate::database::{self, PostgresTarget};
use crate::datadir::{self, TokenSource};

/// Rows the janitor deletes per transaction, so a purge never holds the writer long.
const PURGE_BATCH: u32 = 1000;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let store_choice = choose_store(&settings)?;
    let dir = &settings.data_dir;
    datadir::prepare(dir)?;
    eprintln!("data directory: {}", dir.display());
    let cipher = datadir::load_or_create_cipher(&settings.secret_key_file)?;
    let (admin_token, source) = datadir::admin_token(dir, settings.admin_token.clone())?;
    announce_token(&source);
    let opened = open_store(store_choice).await?;
    let store = opened.store();
    database::check_key_opens_secrets(store.as_ref(), &cipher, &settings.secret_key_file).await?;
    tracing::info!(
        request_timeout = ?settings.delivery.request_timeout,
        lease = ?lease_for(settings.delivery.request_timeout),
        "delivery engine starting"
    );

    let shutdown = CancellationToken::new();
    let catalogue = LiveCatalogue::load(opened.event_types())
        .await
        .context("cannot read the custom event types")?;
    let engine = Engine::start(
        store.clone(),
        cipher.clone(),
        settings.delivery.clone(),
        Arc::new(catalogue),
        shutdown.clone(),
    )
    .context("cannot start the delivery engine")?;
    let janitor = spawn_janitor(store.clone(), janitor_config(&settings), shutdown.clone());
    let receiver_janitor = spawn_receiver_janitor(
        opened.receivers(),
        receiver_janitor_config(&settings),
        shutdown.clone().cancelled_owned(),
    );
    let wake_listener = opened.spawn_wake_listener(&engine, &shutdown);
    let monitors = MonitorService::new(
        opened.monitors(),
        store.clone(),
        cipher.clone(),
        engine.clone(),
        monitors_config(&settings),
    );
    let scheduler = monitors.spawn(shutdown.clone());

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let bound = listener
        .local_addr()
        .context("cannot read the bound address")?;
    eprintln!("listening on http://{bound}");
    tracing::info!(external_url = %external_url(&settings, bound), "Herald is ready");

    let server_config = ServerConfig {
        max_payload_bytes: settings.limits.max_payload_bytes,
        max_webhooks_per_scope: settings.limits.max_webhooks_per_scope,
        admin_token: admin_token.0,
        external_url: Some(external_url(&settings, bound)),
    };
    let state = AppState::new(store, cipher, engine.clone(), server_config)
        .with_receivers(opened.receivers())
        .with_monitors(monitors);
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let served = herald_server::run(listener, state, shutdown.clone().cancelled_owned()).await;

    // The server may also have stopped on an error; everything else stops with it.
    shutdown.cancel();
    engine.join().await;
    if let Err(error) = janitor.await {
        tracing::warn!(%error, "the janitor task failed");
    }
    if let Err(error) = receiver_janitor.await {
        tracing::warn!(%error, "the receiver janitor task failed");
    }
    if let Err(error) = scheduler.await {
        tracing::warn!(%error, "the code monitor scheduler failed");
    }
    if let Some(listener) = wake_listener
        && let Err(error) = listener.await
    {
        tracing::warn!(%error, "the work listener failed");
    }
    opened.close().await;
    served.context("the HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// The stores this build can open.
pub(crate) enum StoreChoice {
    Sqlite(PathBuf),
    Postgres(PostgresTarget),
}

/// The one place that chooses the store from the configuration; it runs before
/// anything touches the disk, so a refused choice leaves nothing behind.
pub(crate) fn choose_store(settings: &Settings) -> Result<StoreChoice, ConfigError> {
    match &settings.database_url {
        None => Ok(StoreChoice::Sqlite(
            settings.data_dir.join(datadir::DATABASE_FILE),
        )),
        Some(url) if url.0.starts_with("postgres://") || url.0.starts_with("postgresql://") => Ok(
            StoreChoice::Postgres(PostgresTarget::new(url, &settings.postgres)),
        ),
        Some(_) => Err(ConfigError::key(
            "database_url",
            "must be a postgres:// URL, or empty for SQLite in the data directory",
        )),
    }
}

/// An open store, kept as its own type so that every store trait it
/// implements can be handed out.
enum OpenedStore {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

impl OpenedStore {
    /// Webhooks, events, deliveries and the delivery log.
    fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// The custom event types, which the catalogue is built from.
    fn event_types(&self) -> Arc<dyn EventTypeStore> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// Code monitors' repositories, monitors, searched heads and runs.
    fn monitors(&self) -> Arc<dyn MonitorStore> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// Incoming webhook receivers, their request log and changeset records.
    fn receivers(&self) -> Arc<dyn ReceiverStore> {
        match self {
            Self::Sqlite(store) => store.clone(),
            Self::Postgres(store) => store.clone(),
        }
    }

    /// On PostgreSQL, wakes `engine` when any node publishes; SQLite has one
    /// node, whose API wakes its engine directly.
    fn spawn_wake_listener(
        &self,
        engine: &EngineHandle,
        shutdown: &CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        match self {
            Self::Sqlite(_) => None,
            Self::Postgres(store) => Some(database::spawn_wake_listener(
                store.clone(),
                engine.clone(),
                shutdown.clone(),
            )),
        }
    }

    /// Closes PostgreSQL's pool; SQLite closes when its last handle is dropped.
    async fn close(&self) {
        if let Self::Postgres(store) = self {
            store.close().await;
        }
    }
}

async fn open_store(choice: StoreChoice) -> anyhow::Result<OpenedStore> {
    match choice {
        StoreChoice::Sqlite(path) => {
            datadir::prepare_sqlite(&path)?;
            let store = SqliteStore::open(&path, SqliteConfig::default())
                .with_context(|| format!("cannot open the SQLite database {}", path.display()))?;
            Ok(OpenedStore::Sqlite(Arc::new(store)))
        }
        StoreChoice::Postgres(target) => Ok(OpenedStore::Postgres(Arc::new(
            database::open_postgres(&target).await?,
        ))),
    }
}

fn janitor_config(settings: &Settings) -> JanitorConfig {
    JanitorConfig {
        interval: settings.retention.purge_interval,
        policy: PurgePolicy {
            retention: settings.retention.max_age,
            idempotency_ttl: settings.retention.idempotency_ttl,
            batch: PURGE_BATCH,
        },
    }
}

/// The receivers' request log follows the delivery log's retention; delivery
/// ids are remembered for the dedupe window.
fn receiver_janitor_config(settings: &Settings) -> ReceiverJanitorConfig {
    ReceiverJanitorConfig {
        interval: settings.retention.purge_interval,
        policy: ReceiverPurgePolicy {
            retention: settings.retention.max_age,
            dedupe_ttl: DEFAULT_DEDUPE_TTL,
            batch: PURGE_BATCH,
        },
    }
}

/// `monitorURL` links take the server's external URL (set with the routes).
fn monitors_config(settings: &Settings) -> MonitorsConfig {
    MonitorsConfig {
        fetch_interval: settings.monitors.fetch_interval,
        fetch_timeout: settings.monitors.fetch_timeout,
        ..MonitorsConfig::new(settings.monitors.mirror_dir.clone(), None)
    }
}

/// Tells where the token is, never what it is: stderr may end up in a log.
fn announce_token(source: &TokenSource) {
    match source {
        TokenSource::Configured => {
            eprintln!("admin token: from HERALD_ADMIN_TOKEN or the config file")
        }
        TokenSource::Generated(path) => {
            eprintln!(
                "admin token: generated and saved in {} (mode 0600)",
                path.display()
            );
        }
        TokenSource::Reused(path) => eprintln!("admin token: read from {}", path.display()),
    }
}

fn external_url(settings: &Settings, bound: SocketAddr) -> String {
    match &settings.external_url {
        Some(url) => url.to_string(),
        None => format!("http://{bound}"),
    }
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    tokio::select! {
        () = wait_for_signal() => {
            tracing::info!("shutting down: finishing requests and attempts in flight");
            shutdown.cancel();
        }
        () = shutdown.cancelled() => {}
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
