//! The handlers, one module per resource, each with its `router()`: its routes,
//! their OpenAPI entries and the [`Access`] each needs, registered together;
//! plus the fallbacks for unknown routes and methods.

pub mod deliveries;
pub mod event_types;
pub mod events;
pub mod health;
pub mod incoming;
pub mod meta;
pub mod monitors;
pub mod receivers;
pub mod repositories;
pub mod tokens;
pub mod webhooks;

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use herald_app::Limits;
use utoipa::openapi::path::PathItem;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::AppState;
use crate::auth::{self, Access};
use crate::error::ApiError;

/// One route as registered: what the router test walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteEntry {
    pub method: Method,
    /// The path template, e.g. `/api/v1/webhooks/{id}`.
    pub path: String,
    pub access: Access,
}

/// Routes with their OpenAPI entries and the access each needs.
pub struct Routes {
    router: OpenApiRouter<AppState>,
    table: Vec<RouteEntry>,
}

impl Routes {
    pub fn new() -> Self {
        Self {
            router: OpenApiRouter::new(),
            table: Vec::new(),
        }
    }

    /// Registers `route` (made with `utoipa_axum::routes!`) behind a check
    /// that its caller has `access`.
    pub fn add(mut self, access: Access, route: UtoipaMethodRouter<AppState>) -> Self {
        let (schemas, paths, method_router) = route;
        for (path, item) in &paths.paths {
            for method in methods(item) {
                self.table.push(RouteEntry {
                    method,
                    path: path.clone(),
                    access,
                });
            }
        }
        let guarded =
            method_router.route_layer(middleware::from_fn(move |request: Request, next: Next| {
                auth::require(access, request, next)
            }));
        self.router = self.router.routes((schemas, paths, guarded));
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    pub fn into_parts(self) -> (OpenApiRouter<AppState>, Vec<RouteEntry>) {
        (self.router, self.table)
    }
}

fn methods(item: &PathItem) -> Vec<Method> {
    [
        (&item.get, Method::GET),
        (&item.post, Method::POST),
        (&item.put, Method::PUT),
        (&item.patch, Method::PATCH),
        (&item.delete, Method::DELETE),
        (&item.head, Method::HEAD),
        (&item.options, Method::OPTIONS),
        (&item.trace, Method::TRACE),
    ]
    .into_iter()
    .filter(|(operation, _)| operation.is_some())
    .map(|(_, method)| method)
    .collect()
}

/// Every route of the API.
pub fn all(limits: &Limits) -> Routes {
    Routes::new()
        .merge(meta::router())
        .merge(health::router())
        .merge(webhooks::router())
        .merge(events::router(limits))
        .merge(event_types::router())
        .merge(deliveries::router())
        .merge(receivers::router())
        .merge(incoming::router())
        .merge(repositories::router())
        .merge(monitors::router())
        .merge(tokens::router())
}

/// Unknown paths: a 404 in JSON, except that a caller without a credential
/// gets 401 for anything under `/api/`, and so cannot learn which routes exist.
pub async fn no_route(request: Request) -> Response {
    let path = request.uri().path();
    if is_api(path) && !auth::is_identified(&request) {
        return ApiError::unauthorized().into_response();
    }
    ApiError::no_route(request.method().as_str(), path).into_response()
}

pub async fn method_not_allowed(request: Request) -> Response {
    let path = request.uri().path();
    if is_api(path) && !auth::is_identified(&request) {
        return ApiError::unauthorized().into_response();
    }
    ApiError::method_not_allowed(request.method().as_str(), path).into_response()
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}
