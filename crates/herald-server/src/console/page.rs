//! The page shell every console page shares, the security headers every
//! console answer carries, and the small pieces pages share (times, status
//! badges, the CSRF field, [`ConsoleError`]).
//!
//! Everything user-supplied is escaped by maud; nothing here writes
//! unescaped text other than the fixed markup of this file.

use axum::extract::FromRequestParts;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use herald_app::tokens::{Permission, Principal, Scope};
use herald_app::{AppError, ErrorKind};
use herald_core::time::Timestamp;
use maud::{DOCTYPE, Markup, html};

use crate::auth::Caller;
use crate::console::assets;
use crate::console::session::{CSRF_FIELD, Csrf};
use crate::error::status_of;

/// No inline script or style anywhere, no frames, forms post only here.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Adds the console's security headers to every answer it gives. Pages are
/// never cached (they show secrets and per-session CSRF tokens); the assets
/// set their own long cache lifetime.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// An HTML answer.
pub struct Html(pub Markup);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        (
            [(CONTENT_TYPE, "text/html; charset=utf-8")],
            self.0.into_string(),
        )
            .into_response()
    }
}

/// `303 See Other` to `location`: after a form, the browser loads the result
/// with `GET`, so reloading it posts nothing twice.
pub fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// The signed-in person: who they are and their session's CSRF token.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub principal: Principal,
    pub csrf: String,
}

impl Viewer {
    /// Whether the application would let this person do what `permission`
    /// covers; pages show only the buttons that pass.
    pub fn can(&self, permission: Permission) -> bool {
        self.principal.require(permission).is_ok()
    }

    /// The hidden field every state-changing form carries.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name=(CSRF_FIELD) value=(self.csrf); }
    }

    fn scope_label(&self) -> String {
        let who = match self.principal.token {
            None => "admin token",
            Some(_) => "API token",
        };
        format!("{who} · {}", self.principal.scope)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ConsoleError> {
        // Only behind `session::require`, which let a signed-in person through.
        let caller = parts.extensions.get::<Caller>().cloned();
        let csrf = parts.extensions.get::<Csrf>().cloned();
        match (caller, csrf) {
            (Some(Caller(principal)), Some(Csrf(csrf))) => Ok(Self { principal, csrf }),
            _ => Err(ConsoleError::new(
                StatusCode::UNAUTHORIZED,
                "Your session has ended: sign in again.",
            )),
        }
    }
}

/// The console's areas, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Overview,
    Webhooks,
    EventTypes,
    Receivers,
    Monitors,
    Tokens,
}

/// A whole page: the navigation the viewer may use, the title and `content`.
pub fn page(viewer: &Viewer, area: Area, title: &str, content: Markup) -> Html {
    let links = [
        (Area::Overview, "/console", "Overview", true),
        (
            Area::Webhooks,
            "/console/webhooks",
            "Webhooks",
            viewer.can(Permission::ReadWebhooks),
        ),
        (
            Area::EventTypes,
            "/console/event-types",
            "Event catalogue",
            viewer.can(Permission::Read),
        ),
        (
            Area::Receivers,
            "/console/receivers",
            "Receivers",
            viewer.can(Permission::Read),
        ),
        (
            Area::Monitors,
            "/console/monitors",
            "Code monitors",
            viewer.can(Permission::Read),
        ),
        (
            Area::Tokens,
            "/console/tokens",
            "API tokens",
            viewer.can(Permission::Admin),
        ),
    ];
    Html(html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.topbar {
                    a.brand href="/console" { span.logo aria-hidden="true" { "◆" } " Herald" }
                    nav aria-label="Main" {
                        ul {
                            @for (link_area, href, label, shown) in links {
                                @if shown {
                                    li {
                                        @if link_area == area {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        span.scope { (viewer.scope_label()) }
                        form method="post" action="/sign-out" {
                            (viewer.csrf_field())
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (content) }
            }
        }
    })
}

/// What a delete asks first: the thing, what deleting it does, and a form
/// that posts to `{base}/delete` beside a way back to `base`.
pub struct DeleteConfirmation<'a> {
    /// The list the thing is in: its name and address.
    pub list: (&'a str, &'a str),
    /// The thing's page, e.g. `/console/webhooks/{id}`.
    pub base: &'a str,
    /// The thing's name in the breadcrumb and the heading.
    pub name: &'a str,
    /// "webhook", "receiver": what the heading and the button call it.
    pub noun: &'a str,
    /// What deleting it does.
    pub consequence: Markup,
}

/// A page that asks before deleting, with one form that does it.
pub fn delete_confirmation(viewer: &Viewer, area: Area, ask: DeleteConfirmation<'_>) -> Html {
    let (list_name, list_href) = ask.list;
    let content = html! {
        div.page-head { div {
            div.crumbs { a href=(list_href) { (list_name) } " / " a href=(ask.base) { (ask.name) } " / " }
            h1 { "Delete " (ask.noun) " " (ask.name) "?" }
        } }
        div.card {
            p { (ask.consequence) }
            form method="post" action={(ask.base) "/delete"} {
                (viewer.csrf_field())
                div.form-actions {
                    button.danger.solid type="submit" { "Delete " (ask.noun) }
                    a.button href=(ask.base) { "Cancel" }
                }
            }
        }
    };
    page(viewer, area, &format!("Delete {}", ask.noun), content)
}

/// A page without navigation: signing in, and errors.
pub fn bare_page(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                header.topbar {
                    a.brand href="/console" { span.logo aria-hidden="true" { "◆" } " Herald" }
                }
                main #main { (content) }
            }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Herald" }
            link rel="stylesheet" href=(*assets::STYLESHEET_PATH);
            script src=(*assets::SCRIPT_PATH) defer {}
        }
    }
}

/// An instant as people read it, with the exact RFC 3339 text for machines.
pub fn time(at: Timestamp) -> Markup {
    let text = at.to_rfc3339();
    let shown = text
        .split_once('.')
        .map(|(whole, _)| whole.to_owned())
        .unwrap_or_else(|| text.trim_end_matches('Z').to_owned())
        .replace('T', " ");
    html! { time datetime=(text) title=(text) { (shown) " UTC" } }
}

/// A status as a word and a symbol, never by colour alone.
pub fn badge(status: &str) -> Markup {
    let symbol = match status {
        "succeeded" | "enabled" | "ok" | "verified" | "healthy" => "✓",
        "failed" | "disabled" | "error" => "✕",
        "failing" => "!",
        "paused" => "‖",
        _ => "…",
    };
    html! { span class={"badge " (status)} { span aria-hidden="true" { (symbol) } " " (status) } }
}

/// The scope a webhook or token belongs to, as people read it.
pub fn scope_text(project: Option<&str>) -> Markup {
    html! {
        @match project {
            Some(key) => { span.tag { "project " code { (key) } } }
            None => { span.tag.global { "global" } }
        }
    }
}

/// A short notice at the top of a page.
pub fn flash(kind: &str, message: &str) -> Markup {
    html! { p class={"flash " (kind)} role="status" { (message) } }
}

/// The scope of a project token, if the viewer has one.
pub fn project_of(viewer: &Viewer) -> Option<&str> {
    match &viewer.principal.scope {
        Scope::Project(key) => Some(key),
        _ => None,
    }
}

/// A refusal or failure as a page, with the status the API would answer.
#[derive(Debug)]
pub struct ConsoleError {
    status: StatusCode,
    message: String,
}

impl ConsoleError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<AppError> for ConsoleError {
    fn from(error: AppError) -> Self {
        // An internal error's message is already the generic one; its cause was logged.
        let message = match error.kind {
            ErrorKind::Internal => "An internal error occurred; it has been logged.".to_owned(),
            _ => error.message,
        };
        Self::new(status_of(error.kind), message)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let heading = match self.status {
            StatusCode::UNAUTHORIZED => "Not signed in",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            _ => "Something went wrong",
        };
        let body = html! {
            div.card.error-page {
                h1 { (heading) }
                p role="alert" { (self.message) }
                p { a href="/console" { "Back to the console" } }
            }
        };
        (self.status, Html(bare_page(heading, body))).into_response()
    }
}
