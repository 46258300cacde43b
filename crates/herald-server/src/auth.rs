//! Who may call what. Every route declares the [`Access`] it needs when its
//! module registers it (`routes::Routes::add`); the few public routes say so
//! explicitly, and everything else needs a credential. [`identify`] runs in
//! front of the whole router and only finds out who the caller is; each
//! route's own layer ([`require`]) decides.

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_core::signing::tokens_equal;

use crate::AppState;
use crate::error::ApiError;

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: liveness, the API description, and the receivers' ingest
    /// endpoint (whose requests prove themselves with the receiver's secret).
    Public,
    /// Reading everything except secrets.
    Read,
    /// Publishing events.
    Publish,
    /// Everything, secrets included.
    Admin,
}

/// A caller that presented a credential the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// The admin token from the environment, the config file or the token file.
    Admin,
}

impl Caller {
    fn may(self, _access: Access) -> bool {
        match self {
            Caller::Admin => true,
        }
    }
}

/// Finds out who the caller is and leaves it in the request's extensions for
/// [`require`]. It refuses nothing itself, except that a caller without a
/// credential does not learn which `/api/` routes exist.
pub async fn identify(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let caller = authenticate(&state, request.headers());
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    next.run(request).await
}

/// The check each route's layer runs: lets the request through when its
/// caller has `access`.
pub async fn require(access: Access, request: Request, next: Next) -> Response {
    if access == Access::Public {
        return next.run(request).await;
    }
    match request.extensions().get::<Caller>() {
        Some(caller) if caller.may(access) => next.run(request).await,
        // Only the admin token exists yet, and it may do everything.
        Some(_) | None => ApiError::unauthorized().into_response(),
    }
}

/// Whether the request carries a credential; the fallbacks answer unknown
/// `/api/` paths with 401 to callers without one.
pub fn is_identified(request: &Request) -> bool {
    request.extensions().get::<Caller>().is_some()
}

fn authenticate(state: &AppState, headers: &HeaderMap) -> Option<Caller> {
    let expected = state.admin_token.as_bytes();
    // An empty configured token would match an empty bearer: refuse everything instead.
    if expected.is_empty() {
        return None;
    }
    let given = bearer_token(headers)?;
    tokens_equal(given.as_bytes(), expected).then_some(Caller::Admin)
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
