//! Herald's HTTP front end: the JSON API, and [`Herald::start`], which starts
//! a whole Herald (the application with its background work, and the server).
//!
//! Layout:
//! - `start`: [`Herald::start`] binds the listener, starts the application
//!   ([`herald_app::App::start`]) and serves the routes (`served`) on it until shut down;
//!   [`RunningHerald`] tells the address and stops it. The binary's `serve` and
//!   the tests call it the same way.
//! - `routes`: one module per resource (`webhooks`, `events`, `deliveries`,
//!   `event_types`, `receivers`, `incoming`, `repositories`, `monitors`,
//!   `tokens`, `health`, `meta`). Each has its `router()`, which registers every route
//!   together with its OpenAPI entry and the [`Access`] it needs, and its
//!   request and response types. A handler turns HTTP into a typed input,
//!   calls the [`herald_app::App`] operation, and turns the result into JSON:
//!   no business rule lives here.
//! - `auth`: who the caller is ([`auth::identify`], in front of the router) and
//!   whether a route lets them in (each route's layer). Routes are closed
//!   unless registered as [`Access::Public`]; [`route_table`] lists them all.
//! - `error`: `ApiError`, the `{"code","message"}` body every failure answers
//!   with, and the mapping of [`herald_app::AppError`] kinds to status codes.
//! - `extract`: the JSON, path-id and query extractors that turn content-type,
//!   size, syntax and shape rejections into `ApiError`s naming the field.
//! - `console`: the web console, server-rendered HTML over the same
//!   [`herald_app::App`] operations, signed in with a sealed session cookie;
//!   its routes are in [`route_table`] with the access each needs.
//! - `metrics`: the Prometheus recorder every crate's metrics go to, the
//!   HTTP metrics and the process metrics; `observe`: the request id (header
//!   and log span) and HTTP metrics of every request.
//! - `openapi`: the OpenAPI 3.1 document collected from the routes; `openapi.json`
//!   at the repository root is a committed copy that a test keeps current.
//!
//! Store records never go on the wire: every response has its own type here.

mod auth;
mod console;
mod error;
mod extract;
mod metrics;
mod observe;
mod openapi;
mod routes;
mod serve;
mod start;

use std::any::Any;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::{Router, middleware};
use herald_app::{App, Limits};
use hyper::body::Incoming;
use tower::{Layer, Service};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

pub use auth::Access;
pub use error::{ApiError, ErrorBody};
pub use herald_app::receivers::MAX_INCOMING_BODY_BYTES;
pub use openapi::{openapi, openapi_json};
pub use routes::RouteEntry;
pub use routes::events::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
pub use serve::HttpLimits;
pub use start::{Herald, HeraldConfig, RunningHerald, StartError};

/// The most any request body other than a published event may weigh.
pub(crate) const API_BODY_LIMIT: usize = 64 * 1024;

/// What every handler shares: the application, and the credential callers present.
#[derive(Clone)]
pub struct AppState {
    app: App,
    /// The bearer token that grants every access. An empty token lets nobody in.
    admin_token: Arc<str>,
    /// The most reading a whole receiver request's body may take.
    body_read_timeout: std::time::Duration,
}

impl AppState {
    pub fn new(app: App, admin_token: &str, limits: &HttpLimits) -> Self {
        Self {
            app,
            admin_token: admin_token.into(),
            body_read_timeout: limits.body_read_timeout,
        }
    }

    pub fn app(&self) -> &App {
        &self.app
    }
}

/// Every route of the API and the console, with the access each needs: what
/// the router serves.
pub fn route_table() -> Vec<RouteEntry> {
    let mut table = routes::all(&Limits::default()).into_parts().1;
    table.extend(console::routes().into_parts().1);
    table
}

/// What the server serves: [`router`], inside the request body's read timeout
/// and size limit. Those two wrap the router once rather than each route:
/// axum wraps each route in every layer of a `Router` separately, and each
/// such layer costs every request a clone of the boxed route and a boxed
/// future.
pub(crate) fn served(
    state: AppState,
    limits: &HttpLimits,
) -> impl Service<
    axum::extract::Request<Incoming>,
    Response = Response,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    let router = DefaultBodyLimit::max(API_BODY_LIMIT).layer(router(state));
    RequestBodyTimeoutLayer::new(limits.body_read_timeout).layer(router)
}

/// Every route, each behind its access check, with a tracing span per
/// request and a guard that turns a panic into a logged 500 instead of a
/// dropped connection. What can be one layer here is one ([`admit`]): see
/// [`served`].
fn router(state: AppState) -> Router {
    let (routes, _) = routes::all(&state.app.limits()).into_parts();
    let (router, _) = routes.split_for_parts();
    let (console, _) = console::router(state.clone());
    router
        .merge(console)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::no_route)
        .layer(middleware::from_fn_with_state(state.clone(), admit))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn(observe::observe))
        .with_state(state)
}

/// What `[metrics] listen` serves: `GET /metrics` alone, without a token
/// (the address is the access control: bind it to loopback or a private network).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(|State(state): State<AppState>| async move {
                routes::health::exposition(&state).await
            }),
        )
        .layer(middleware::from_fn(observe::observe))
        .with_state(state)
}

/// The longest request target (path and query) served.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header fields a request may have. Below hyper's own limit (100),
/// so that this check, with its JSON answer, comes first.
pub const MAX_HEADER_COUNT: usize = 64;
/// The most header bytes (names and values) a request may have. Below
/// hyper's read buffer (about 400 KB), for the same reason.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// What every request passes before its route's own access check: the
/// protocol limits, then finding out who the caller is ([`auth::identify`]).
async fn admit(
    State(state): State<AppState>,
    mut request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    if let Err(refused) = protocol_limits(&request) {
        return refused.into_response();
    }
    if let Err(error) = auth::identify(&state, &mut request).await {
        return error.into_response();
    }
    next.run(request).await
}

/// Refuses, with the JSON error body, requests whose target or headers are
/// larger than Herald reads (414, 431). Requests past hyper's own limits
/// never get here: hyper answers those itself, with an empty body.
fn protocol_limits(request: &axum::extract::Request) -> Result<(), ApiError> {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::uri_too_long(format!(
            "the request target is {target} bytes; the most served is {MAX_URI_BYTES}"
        )));
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADER_COUNT || bytes > MAX_HEADER_BYTES {
        return Err(ApiError::headers_too_large(format!(
            "the request has {} header fields of {bytes} bytes; the most read is \
             {MAX_HEADER_COUNT} fields of {MAX_HEADER_BYTES} bytes",
            headers.len()
        )));
    }
    Ok(())
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    ApiError::internal("a request handler panicked", &detail).into_response()
}
