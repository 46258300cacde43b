//! Signing in and out, and the check in front of every console route.
//!
//! A person signs in with any token the API accepts (the admin token or an
//! API token). The session cookie is the token sealed with the secrets key
//! ([`herald_app::sessions`]): HttpOnly, SameSite=Strict, Secure when Herald
//! is served over https, and it expires. Each request opens it and
//! authenticates the token inside exactly as the API authenticates a bearer
//! token, so a revoked or expired token ends the session at once. A bearer
//! token is never a console credential: only the cookie is.

use axum::Extension;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, Request, State};
use axum::http::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use herald_app::sessions::SESSION_LIFETIME;
use maud::html;
use serde::Deserialize;

use crate::auth::{self, Access, Caller};
use crate::console::form::Form;
use crate::console::page::{ConsoleError, Html, bare_page, redirect};
use crate::{API_BODY_LIMIT, AppState};

pub const COOKIE_NAME: &str = "herald_session";
/// The form field every state-changing form carries.
pub const CSRF_FIELD: &str = "csrf";

/// The signed-in session's CSRF token, left in the request by [`identify`].
#[derive(Debug, Clone)]
pub struct Csrf(pub String);

/// Finds the session behind the request's cookie, if any, and leaves its
/// principal and CSRF token in the request. A bearer token the API layer
/// accepted is dropped: the console takes only its own cookie, whose forms
/// carry a CSRF token.
pub async fn identify(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    request.extensions_mut().remove::<Caller>();
    if let Some(cookie) = session_cookie(request.headers())
        && let Some(session) = state.app().open_session(&cookie)
    {
        match auth::authenticate(&state, session.token.expose()).await {
            Ok(Some(principal)) => {
                request.extensions_mut().insert(Caller(principal));
                request.extensions_mut().insert(Csrf(session.csrf));
            }
            Ok(None) => {}
            Err(error) => return ConsoleError::from(error).into_response(),
        }
    }
    next.run(request).await
}

/// The check each console route's layer runs: a session unless the route is
/// public (a page sends the person to sign in), the scope the route's
/// [`Access`] needs (the application's rule), and the session's CSRF token in
/// the form of every request that is not a `GET`.
pub async fn require(access: Access, request: Request, next: Next) -> Response {
    if access == Access::Public {
        return next.run(request).await;
    }
    let Some(Caller(principal)) = request.extensions().get::<Caller>() else {
        return not_signed_in(&request);
    };
    if let Some(permission) = access.permission() {
        let checked = principal.require_for(
            permission,
            format_args!("{} {}", request.method(), request.uri().path()),
        );
        if let Err(refused) = checked {
            return ConsoleError::from(refused).into_response();
        }
    }
    if request.method() == Method::GET {
        return next.run(request).await;
    }
    match checked_csrf(request).await {
        Ok(request) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// A page asks the person to sign in and come back; anything else is refused.
fn not_signed_in(request: &Request) -> Response {
    if request.method() == Method::GET {
        let back = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/console");
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", back)
            .finish();
        return redirect(&format!("/?{query}"));
    }
    ConsoleError::new(
        StatusCode::UNAUTHORIZED,
        "Your session has ended: sign in again.",
    )
    .into_response()
}

/// Reads the form, refuses it unless it carries this session's CSRF token,
/// and hands the request on with its body intact.
async fn checked_csrf(request: Request) -> Result<Request, ConsoleError> {
    let expected = request
        .extensions()
        .get::<Csrf>()
        .cloned()
        .ok_or_else(csrf_refused)?;
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, API_BODY_LIMIT)
        .await
        .map_err(|_| ConsoleError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large."))?;
    let presented = url::form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == CSRF_FIELD)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if !herald_core::signing::tokens_equal(presented.as_bytes(), expected.0.as_bytes()) {
        return Err(csrf_refused());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn csrf_refused() -> ConsoleError {
    ConsoleError::new(
        StatusCode::FORBIDDEN,
        "This form did not come from your session (its CSRF token is missing or wrong). Reload the page and try again.",
    )
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Where to go after signing in: only a path of this console, never another site.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(path) if path.starts_with("/console") && !path.contains("//") => path,
        _ => "/console",
    }
}

/// `GET /`: the sign-in form, or the overview for someone signed in.
pub async fn sign_in_page(
    caller: Option<Extension<Caller>>,
    Query(query): Query<NextQuery>,
) -> Response {
    if caller.is_some() {
        return redirect(safe_next(query.next.as_deref()));
    }
    sign_in_form(StatusCode::OK, safe_next(query.next.as_deref()), None)
}

fn sign_in_form(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    let body = html! {
        div.signin {
            h1 { "Sign in to Herald" }
            p.muted { "Use the admin token or an API token. What you can see and change follows the token's scope." }
            @if let Some(error) = error {
                p.flash.error role="alert" { (error) }
            }
            form method="post" action="/sign-in" {
                input type="hidden" name="next" value=(next);
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="off" required autofocus;
                button.primary type="submit" { "Sign in" }
            }
        }
    };
    (status, Html(bare_page("Sign in", body))).into_response()
}

/// `POST /sign-in`: checks the token as the API would and starts a session.
pub async fn sign_in(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
    let next = safe_next(form.get("next")).to_owned();
    if !same_origin(&headers) {
        return ConsoleError::new(StatusCode::FORBIDDEN, "Sign in from Herald's own page.")
            .into_response();
    }
    let token = form.get("token").unwrap_or_default().trim();
    let principal = match auth::authenticate(&state, token).await {
        Ok(principal) => principal,
        Err(error) => return ConsoleError::from(error).into_response(),
    };
    if principal.is_none() {
        return sign_in_form(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("That token is not known, has expired or was revoked."),
        );
    }
    let sealed = state.app().seal_session(token);
    let secure = state.app().external_url().starts_with("https://");
    let cookie = format!(
        "{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        sealed.cookie,
        SESSION_LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    with_cookie(redirect(&next), &cookie)
}

/// `POST /sign-out`: forgets the cookie. The token itself stays valid; revoke
/// it on the tokens page to end every session made with it.
pub async fn sign_out() -> Response {
    let cookie = format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    with_cookie(redirect("/"), &cookie)
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    response
}

/// Signing in has no session to carry a CSRF token yet, so a sign-in posted
/// from another site (which would sign the person in as someone else) is
/// refused by its `Origin`, which browsers always send with a form post.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority == host)
}
