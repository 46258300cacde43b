//! The bearer-token check in front of everything under `/api/`.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_core::signing::tokens_equal;

use crate::AppState;
use crate::error::ApiError;

/// Lets a request through when it is outside `/api/` or carries the admin token.
/// It wraps the whole router, fallbacks included, so an unauthenticated caller
/// cannot even learn which `/api/` routes exist.
pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !is_protected(request.uri().path()) || is_authorized(&state, request.headers()) {
        return next.run(request).await;
    }
    ApiError::unauthorized().into_response()
}

fn is_protected(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

fn is_authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let expected = state.config.admin_token.as_bytes();
    // An empty configured token would match an empty bearer: refuse everything instead.
    if expected.is_empty() {
        return false;
    }
    match bearer_token(headers) {
        Some(given) => tokens_equal(given.as_bytes(), expected),
        None => false,
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
