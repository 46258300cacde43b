//! Who may call what. Every route declares the [`Access`] it needs when its
//! module registers it (`routes::Routes::add`); the few public routes say so
//! explicitly, and everything else needs a credential. [`identify`] runs in
//! front of the whole router and only finds out who the caller is (the
//! configured admin token, or an API token the application knows); each
//! route's own layer ([`require`]) decides: 401 without a live credential, 403
//! naming the scope needed when the caller's scope falls short. Which scope
//! grants what is the application's rule ([`Principal::require`]); handlers of
//! project-scoped resources pass the [`Caller`] on, so the application also
//! confines a project token to its project.

use axum::extract::{FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_app::AppError;
use herald_app::tokens::{Permission, Principal};
use herald_core::signing::tokens_equal;

use crate::AppState;
use crate::error::ApiError;

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: liveness, the API description, and the receivers' ingest
    /// endpoint (whose requests prove themselves with the receiver's secret).
    Public,
    /// Reading everything except secrets and tokens: the `read` scope.
    Read,
    /// Publishing events: the `publish` scope.
    Publish,
    /// Everything, secrets and tokens included: the `admin` scope.
    Admin,
    /// Reading webhooks and their deliveries: `read`, or `project:<key>` for
    /// that project's.
    ReadWebhooks,
    /// Changing webhooks, their secrets and deliveries: `admin`, or
    /// `project:<key>` for that project's.
    ManageWebhooks,
    /// Any live credential, whatever its scope: the console's overview and
    /// signing out, whose content each scope's own checks then narrow.
    Session,
}

impl Access {
    /// What the application calls this access; `None` for a public route
    /// and for one any live credential may call.
    pub(crate) fn permission(self) -> Option<Permission> {
        match self {
            Access::Public | Access::Session => None,
            Access::Read => Some(Permission::Read),
            Access::Publish => Some(Permission::Publish),
            Access::Admin => Some(Permission::Admin),
            Access::ReadWebhooks => Some(Permission::ReadWebhooks),
            Access::ManageWebhooks => Some(Permission::ManageWebhooks),
        }
    }
}

/// A caller that presented a credential the server accepts; handlers whose
/// operations depend on the caller's scope take it as an extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // Only behind `require`, which let an identified caller through.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

/// Finds out who the caller is and leaves it in the request's extensions for
/// [`require`]. It refuses nothing itself, except that a caller without a
/// credential does not learn which `/api/` routes exist; a token lookup the
/// store cannot answer is a 503 or 500.
pub async fn identify(state: &AppState, request: &mut Request) -> Result<(), ApiError> {
    let principal = match bearer_token(request.headers()) {
        Some(token) => authenticate(state, token).await?,
        None => None,
    };
    if let Some(principal) = principal {
        request.extensions_mut().insert(Caller(principal));
    }
    Ok(())
}

/// The check each route's layer runs: lets the request through when its
/// caller's scope grants `access`.
pub async fn require(access: Access, request: Request, next: Next) -> Response {
    if access == Access::Public {
        return next.run(request).await;
    }
    let Some(Caller(principal)) = request.extensions().get::<Caller>() else {
        return ApiError::unauthorized().into_response();
    };
    let Some(permission) = access.permission() else {
        return next.run(request).await;
    };
    let checked = principal.require_for(
        permission,
        format_args!("{} {}", request.method(), request.uri().path()),
    );
    match checked {
        Ok(()) => next.run(request).await,
        Err(refused) => ApiError::from(refused).into_response(),
    }
}

/// Whether the request carries a credential; the fallbacks answer unknown
/// `/api/` paths with 401 to callers without one.
pub fn is_identified(request: &Request) -> bool {
    request.extensions().get::<Caller>().is_some()
}

/// The configured admin token (compared in constant time), else an API token.
pub(crate) async fn authenticate(
    state: &AppState,
    presented: &str,
) -> Result<Option<Principal>, AppError> {
    let expected = state.admin_token.as_bytes();
    // An empty configured token would match an empty bearer: it admits nobody.
    if !expected.is_empty() && tokens_equal(presented.as_bytes(), expected) {
        return Ok(Some(Principal::admin_token()));
    }
    state.app().authenticate_token(presented).await
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
