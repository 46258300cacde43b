//! [`Herald::start`]: one call that runs a whole Herald: the application with
//! its background work, and the API on a listener. The binary's `serve` and
//! every test start Herald this way.

use std::net::SocketAddr;

use herald_app::{App, AppConfig, RunningApp};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::serve::{HttpLimits, serve};
use crate::{AppState, served};

/// Everything [`Herald::start`] needs.
#[derive(Debug)]
pub struct HeraldConfig {
    /// Where to listen; port 0 picks a free one ([`RunningHerald::local_addr`]).
    pub listen: SocketAddr,
    /// The bearer token that grants every access. An empty token lets nobody in.
    pub admin_token: String,
    pub http: HttpLimits,
    /// Where to serve `GET /metrics` without a token, besides the API's
    /// `/metrics` (which needs the `read` scope); `None` for nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Whether metrics are recorded at all (`[metrics] enabled`). Off, no
    /// recorder is installed, every recording is a no-op, and `/metrics`
    /// answers 404. The recorder is per process: once one Herald in a
    /// process installed it, all of them record.
    pub metrics_enabled: bool,
    /// The application's settings. An empty `external_url` becomes
    /// `http://<the address served on>`.
    pub app: AppConfig,
}

/// Why Herald could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    App(#[from] herald_app::StartError),
}

/// A running Herald.
pub struct RunningHerald {
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    app: RunningApp,
}

/// Namespace of [`Herald::start`].
pub struct Herald;

impl Herald {
    /// Binds the listener, starts the application and serves the API, all of
    /// which stop when `shutdown` is cancelled; then [`RunningHerald::wait`]
    /// lets requests and attempts in flight finish.
    pub async fn start(
        mut config: HeraldConfig,
        shutdown: CancellationToken,
    ) -> Result<RunningHerald, StartError> {
        // Before anything records: handles registered earlier would go nowhere.
        if config.metrics_enabled {
            crate::metrics::recorder();
        }
        let listen = config.listen;
        let listener = bind(listen).await?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let metrics_addr = metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok());
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: listen,
            source,
        })?;
        if config.app.external_url.is_empty() {
            config.app.external_url = format!("http://{local_addr}");
        }
        let app = App::start(config.app, shutdown.clone()).await?;
        let state = AppState::new(app.app().clone(), &config.admin_token, &config.http);
        crate::metrics::spawn_upkeep(shutdown.clone());
        if let Some(listener) = metrics_listener {
            let metrics = crate::metrics_router(state.clone());
            let serving = serve(listener, metrics, config.http, shutdown.clone());
            tokio::spawn(stop_all_when_done(serving, shutdown.clone()));
        }
        let serving = serve(
            listener,
            served(state, &config.http),
            config.http,
            shutdown.clone(),
        );
        let server = tokio::spawn(stop_all_when_done(serving, shutdown.clone()));
        Ok(RunningHerald {
            local_addr,
            metrics_addr,
            shutdown,
            server,
            app,
        })
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })
}

/// Awaits a server; one that stops on an error stops the rest too.
async fn stop_all_when_done(
    serving: impl Future<Output = std::io::Result<()>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let outcome = serving.await;
    shutdown.cancel();
    outcome
}

impl RunningHerald {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where `[metrics] listen` serves `/metrics`, if it was set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    pub fn app(&self) -> &App {
        self.app.app()
    }

    /// The open store, for commands and for tests that play another node.
    pub fn opened_store(&self) -> &herald_app::stores::OpenedStore {
        self.app.opened_store()
    }

    /// Cancelling this token stops Herald; [`RunningHerald::wait`] then returns.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until Herald is shut down (its token cancelled, or the server
    /// failed), then for requests and attempts in flight; returns the server's
    /// error, if it failed.
    pub async fn wait(self) -> std::io::Result<()> {
        let served = match self.server.await {
            Ok(served) => served,
            Err(error) => Err(std::io::Error::other(error)),
        };
        self.shutdown.cancel();
        self.app.stop().await;
        served
    }
}
