//! Herald's HTTP API.
//!
//! Layout:
//! - [`run`]: serves the API on a listener until `shutdown` resolves; testable on port 0.
//!   [`router`] builds the routes, limits and layers; [`AppState`] is what handlers share.
//! - `routes`: one module per resource (`webhooks`, `events`, `deliveries`, `health`),
//!   each with its handlers and its request and response types, plus the JSON
//!   fallbacks for unknown routes (404) and methods (405). `event_types` serves
//!   the catalogue ([`herald_delivery::LiveCatalogue`], shared with the engine
//!   through its handle); publishing validates payloads against it and webhooks
//!   may only subscribe to patterns that match a type in it.
//! - `error`: `ApiError`, the `{"code","message"}` body every failure answers with,
//!   and the mapping of store errors (internal ones are logged, never shown).
//! - `extract`: the JSON, path-id and query extractors that turn content-type,
//!   size, syntax and shape rejections into `ApiError`s naming the field.
//! - `auth`: the bearer-token check in front of everything under `/api/`.
//! - `receiving`: incoming webhooks from code hosts between the handlers
//!   (`routes::receivers`, `routes::incoming`) and the store: sealed receiver
//!   credentials, the store work of a normalized request, and the retention
//!   task ([`spawn_receiver_janitor`]).
//! - `routes::repositories`, `routes::monitors`: code monitors over HTTP, on top
//!   of [`herald_monitors_service::MonitorService`] (given with
//!   [`AppState::with_monitors`]; without it their routes answer 503). A
//!   published `repo:push`, through `/api/v1/events` or a receiver, makes the
//!   service fetch that repository at once.
//! - `openapi`: the OpenAPI 3.1 document generated from the handlers; `openapi.json`
//!   at the repository root is a committed copy that a test keeps current.
//!
//! Store records never go on the wire: every response has its own type here.
//! A handler validates its whole input before it writes anything, so a refused
//! request changes nothing.

mod auth;
mod error;
mod extract;
mod openapi;
mod receiving;
mod routes;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use herald_core::cipher::SecretCipher;
use herald_delivery::{EngineHandle, LiveCatalogue};
use herald_store::{ReceiverStore, Store};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use error::{ApiError, ErrorBody};
pub use openapi::{openapi, openapi_json};
pub use receiving::MAX_INCOMING_BODY_BYTES;
pub use receiving::janitor::{ReceiverJanitorConfig, spawn_receiver_janitor};
pub use routes::events::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
pub use routes::webhooks::TEST_EVENT_TYPE;

pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
pub const DEFAULT_MAX_WEBHOOKS_PER_SCOPE: u32 = 10;
/// The most any request body other than a published event may weigh.
const API_BODY_LIMIT: usize = 64 * 1024;
/// Room for an event's type, project and properties around its payload, which
/// alone is held to `max_payload_bytes`.
const EVENT_ENVELOPE_ALLOWANCE: usize = 64 * 1024;

#[derive(Clone)]
pub struct ServerConfig {
    /// The largest event payload accepted; larger ones get a 413.
    pub max_payload_bytes: usize,
    /// Webhooks allowed per project, and globally.
    pub max_webhooks_per_scope: u32,
    /// The bearer token every `/api/` request must carry. An empty token lets nobody in.
    pub admin_token: String,
    /// Where code hosts reach this server, for receiver URLs; `None` uses
    /// `http://<the address served on>`.
    pub external_url: Option<String>,
}

impl ServerConfig {
    /// The defaults (1 MiB payloads, 10 webhooks per scope) with this token.
    pub fn new(admin_token: impl Into<String>) -> Self {
        Self {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            max_webhooks_per_scope: DEFAULT_MAX_WEBHOOKS_PER_SCOPE,
            admin_token: admin_token.into(),
            external_url: None,
        }
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("max_webhooks_per_scope", &self.max_webhooks_per_scope)
            .field("admin_token", &"<redacted>")
            .field("external_url", &self.external_url)
            .finish()
    }
}

/// What every handler shares: the store, the key that seals webhook URLs and
/// secrets, the delivery engine (to wake it and to send tests), and the config.
#[derive(Clone)]
pub struct AppState {
    store: Arc<dyn Store>,
    cipher: SecretCipher,
    engine: EngineHandle,
    /// The event catalogue, shared with the engine (which reads families from it).
    catalogue: Arc<LiveCatalogue>,
    config: Arc<ServerConfig>,
    /// Incoming webhook receivers; without it their routes answer 503.
    receivers: Option<Arc<dyn ReceiverStore>>,
    /// Code monitors; without it their routes answer 503.
    monitors: Option<herald_monitors_service::MonitorService>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        cipher: SecretCipher,
        engine: EngineHandle,
        config: ServerConfig,
    ) -> Self {
        Self {
            store,
            cipher,
            catalogue: Arc::clone(engine.catalogue()),
            engine,
            config: Arc::new(config),
            receivers: None,
            monitors: None,
        }
    }

    /// Turns on code monitors (repositories, monitors and their routes).
    pub fn with_monitors(mut self, monitors: herald_monitors_service::MonitorService) -> Self {
        self.monitors = Some(monitors);
        self
    }

    /// Turns on incoming webhooks, kept in `receivers` (the same database as
    /// the store: an ingest publishes in the transaction that logs it).
    pub fn with_receivers(mut self, receivers: Arc<dyn ReceiverStore>) -> Self {
        self.receivers = Some(receivers);
        self
    }

    /// The configured external URL, else `http://<addr>`.
    fn defaulting_external_url(mut self, addr: std::net::SocketAddr) -> Self {
        if self.config.external_url.is_none() {
            let mut config = (*self.config).clone();
            config.external_url = Some(format!("http://{addr}"));
            self.config = Arc::new(config);
        }
        self
    }

    /// Where code hosts reach this server, without a trailing slash. Empty
    /// (receiver URLs are then paths) only for a router served without `run`.
    fn external_url(&self) -> &str {
        self.config
            .external_url
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/')
    }
}

/// Every route, behind the token check (for `/api/`) and body limits, with a
/// tracing span per request and a guard that turns a panic into a logged 500
/// instead of a dropped connection.
pub fn router(state: AppState) -> Router {
    use routes::{
        deliveries, event_types, events, health, incoming, monitors, receivers, repositories,
        webhooks,
    };

    if let Some(service) = &state.monitors {
        // `monitorURL` links start with the server's external URL unless the
        // monitors' configuration names one.
        service.default_external_url(state.external_url());
    }

    let event_body_limit = state
        .config
        .max_payload_bytes
        .saturating_add(EVENT_ENVELOPE_ALLOWANCE);
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/api/openapi.json", get(openapi::openapi_document))
        .route(
            "/api/v1/webhooks",
            post(webhooks::create_webhook).get(webhooks::list_webhooks),
        )
        .route(
            "/api/v1/webhooks/{id}",
            get(webhooks::get_webhook)
                .patch(webhooks::update_webhook)
                .delete(webhooks::delete_webhook),
        )
        .route("/api/v1/webhooks/{id}/secret", get(webhooks::get_secret))
        .route("/api/v1/webhooks/{id}/test", post(webhooks::test_webhook))
        .route(
            "/api/v1/webhooks/{id}/recover",
            post(webhooks::recover_webhook),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            get(deliveries::list_deliveries),
        )
        .route(
            "/api/v1/event-types",
            get(event_types::list_event_types).post(event_types::create_event_type),
        )
        .route(
            "/api/v1/event-types/{key}",
            get(event_types::get_event_type)
                .put(event_types::replace_event_type)
                .delete(event_types::delete_event_type),
        )
        .route(
            "/api/v1/events",
            post(events::publish_event).layer(DefaultBodyLimit::max(event_body_limit)),
        )
        .route("/api/v1/deliveries/{id}", get(deliveries::get_delivery))
        .route(
            "/api/v1/deliveries/{id}/redeliver",
            post(deliveries::redeliver),
        )
        .route(
            "/api/v1/receivers",
            post(receivers::create_receiver).get(receivers::list_receivers),
        )
        .route(
            "/api/v1/receivers/{id}",
            get(receivers::get_receiver)
                .patch(receivers::update_receiver)
                .delete(receivers::delete_receiver),
        )
        .route(
            "/api/v1/receivers/{id}/rotate-secret",
            post(receivers::rotate_secret),
        )
        .route(
            "/api/v1/receivers/{id}/requests",
            get(receivers::list_requests),
        )
        .route(
            "/api/v1/receivers/{id}/requests/{request_id}",
            get(receivers::get_request),
        )
        // Reads its body itself, up to MAX_INCOMING_BODY_BYTES, after finding the receiver.
        .route("/.api/webhooks/{id}", post(incoming::receive))
        .route(
            "/api/v1/repositories",
            post(repositories::create_repository).get(repositories::list_repositories),
        )
        .route(
            "/api/v1/repositories/{id}",
            get(repositories::get_repository)
                .patch(repositories::update_repository)
                .delete(repositories::delete_repository),
        )
        .route(
            "/api/v1/repositories/{id}/fetch",
            post(repositories::fetch_repository),
        )
        .route(
            "/api/v1/monitors",
            post(monitors::create_monitor).get(monitors::list_monitors),
        )
        .route(
            "/api/v1/monitors/{id}",
            get(monitors::get_monitor)
                .patch(monitors::update_monitor)
                .delete(monitors::delete_monitor),
        )
        .route("/api/v1/monitors/{id}/test", post(monitors::test_monitor))
        .route("/api/v1/monitors/{id}/run", post(monitors::run_monitor))
        .route("/api/v1/monitors/{id}/runs", get(monitors::list_runs))
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::no_route)
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    ApiError::internal("a request handler panicked", &detail).into_response()
}

/// Serves the API on `listener` until `shutdown` resolves, then lets requests in
/// flight finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = state.defaulting_external_url(listener.local_addr()?);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
