//! `herald serve`: prepares the data directory, turns the settings into a
//! [`HeraldConfig`] and runs [`Herald::start`] until SIGINT or SIGTERM.

use anyhow::Context;
use herald_app::AppConfig;
use herald_app::monitors::MonitorsConfig;
use herald_app::stores::{PostgresTarget, StoreChoice};
use herald_delivery::AddressGuard;
use herald_monitor::SourcePolicy;
use herald_postgres::PgConfig;
use herald_server::{Herald, HeraldConfig};
use herald_store::lease_for;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, Settings};
use crate::datadir::{self, TokenSource};

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let store = choose_store(&settings)?;
    let dir = &settings.data_dir;
    datadir::prepare(dir)?;
    if let StoreChoice::Sqlite(path) = &store {
        // Created private before SQLite opens it: its WAL and SHM files take its mode.
        datadir::prepare_sqlite(path)?;
    }
    eprintln!("data directory: {}", dir.display());
    let cipher = datadir::load_or_create_cipher(&settings.secret_key_file)?;
    let (admin_token, source) = datadir::admin_token(dir, settings.admin_token.clone())?;
    announce_token(&source);
    tracing::info!(
        request_timeout = ?settings.delivery.request_timeout,
        lease = ?lease_for(settings.delivery.request_timeout),
        "delivery engine starting"
    );
    let config = HeraldConfig {
        listen: settings.listen,
        admin_token: admin_token.0,
        http: settings.http,
        metrics_listen: settings.metrics_listen,
        metrics_enabled: settings.metrics_enabled,
        app: AppConfig {
            store,
            cipher,
            secret_key_file: settings.secret_key_file.clone(),
            delivery: settings.delivery.clone(),
            limits: settings.limits,
            retention: settings.retention,
            monitors: monitors_config(&settings),
            // Empty: the address actually bound.
            external_url: settings
                .external_url
                .as_ref()
                .map(url::Url::to_string)
                .unwrap_or_default(),
        },
    };
    let shutdown = CancellationToken::new();
    let running = Herald::start(config, shutdown.clone()).await?;
    eprintln!("listening on http://{}", running.local_addr());
    tracing::info!(external_url = %running.app().external_url(), "Herald is ready");
    tokio::spawn(cancel_on_signal(shutdown));
    running.wait().await.context("the HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// The one place that chooses the store from the configuration; it runs before
/// anything touches the disk, so a refused choice leaves nothing behind.
pub(crate) fn choose_store(settings: &Settings) -> Result<StoreChoice, ConfigError> {
    match &settings.database_url {
        None => Ok(StoreChoice::Sqlite(
            settings.data_dir.join(datadir::DATABASE_FILE),
        )),
        Some(url) if url.0.starts_with("postgres://") || url.0.starts_with("postgresql://") => {
            let config = PgConfig {
                max_connections: settings.postgres.max_connections,
                acquire_timeout: settings.postgres.acquire_timeout,
                schema: settings.postgres.schema.clone(),
                ..PgConfig::default()
            };
            Ok(StoreChoice::Postgres(PostgresTarget::new(&url.0, config)))
        }
        Some(_) => Err(ConfigError::key(
            "database_url",
            "must be a postgres:// URL, or empty for SQLite in the data directory",
        )),
    }
}

/// `monitorURL` links take the server's external URL; repository sources
/// pass the same address guard as deliveries.
fn monitors_config(settings: &Settings) -> MonitorsConfig {
    MonitorsConfig {
        fetch_interval: settings.monitors.fetch_interval,
        fetch_timeout: settings.monitors.fetch_timeout,
        sources: SourcePolicy {
            guard: AddressGuard::new(settings.delivery.allow_cidrs.clone()),
            local_roots: settings.monitors.local_roots.clone(),
            allow_ssh: settings.monitors.allow_ssh,
        },
        notification_limits: settings.monitors.notification_limits,
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
