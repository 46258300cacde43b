//! The handlers, one module per resource, and the fallbacks for unknown routes
//! and methods.

pub mod deliveries;
pub mod event_types;
pub mod events;
pub mod health;
pub mod incoming;
pub mod monitors;
pub mod receivers;
pub mod repositories;
pub mod webhooks;

use axum::http::{Method, Uri};

use crate::error::ApiError;

pub async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::no_route(method.as_str(), uri.path())
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}
