//! The web console: server-rendered HTML (maud, checked at compile time) over
//! the same [`herald_app::App`] operations as the JSON API, so every rule and
//! every permission check is the application's; a page only lays out what an
//! operation returned, and hides the buttons a scope cannot use.
//!
//! Layout:
//! - `session`: signing in with a token, the sealed session cookie
//!   ([`herald_app::sessions`]), and the per-route check: a session for
//!   everything but the sign-in page and the assets, the route's [`Access`],
//!   and the session's CSRF token on every form that changes something.
//! - `page`: the page shell (navigation, security headers), shared pieces
//!   (times, status badges) and [`page::ConsoleError`].
//! - `form`: the url-encoded form extractor (repeated fields kept).
//! - one module per area: `overview`, `webhooks`, `deliveries`, `event_types`,
//!   `receivers`, `monitors`,
//!   `tokens`.
//! - `assets/`: the one stylesheet and the one script, embedded in the binary.
//!
//! Every page works without JavaScript; the script only adds self-refreshing
//! lists, copy buttons and secret generation.

mod assets;
mod deliveries;
mod event_types;
mod form;
mod monitors;
mod overview;
mod page;
mod receivers;
mod session;
mod tokens;
mod webhooks;

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::routing::{MethodRouter, get, post};

use crate::AppState;
use crate::auth::Access;
use crate::routes::RouteEntry;

/// Console routes with the access each needs.
pub struct ConsoleRoutes {
    router: Router<AppState>,
    table: Vec<RouteEntry>,
}

impl ConsoleRoutes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// Registers `route` at `path` behind the console's check of `access`.
    fn add(
        mut self,
        method: Method,
        path: &str,
        access: Access,
        route: MethodRouter<AppState>,
    ) -> Self {
        self.table.push(RouteEntry {
            method,
            path: path.to_owned(),
            access,
        });
        let guarded =
            route.route_layer(middleware::from_fn(move |request: Request, next: Next| {
                session::require(access, request, next)
            }));
        self.router = self.router.route(path, guarded);
        self
    }

    fn get(self, path: &str, access: Access, route: MethodRouter<AppState>) -> Self {
        self.add(Method::GET, path, access, route)
    }

    fn post(self, path: &str, access: Access, route: MethodRouter<AppState>) -> Self {
        self.add(Method::POST, path, access, route)
    }

    pub fn into_parts(self) -> (Router<AppState>, Vec<RouteEntry>) {
        (self.router, self.table)
    }
}

/// Every console route.
pub fn routes() -> ConsoleRoutes {
    use Access::*;
    ConsoleRoutes::new()
        .get("/", Public, get(session::sign_in_page))
        .post("/sign-in", Public, post(session::sign_in))
        .post("/sign-out", Session, post(session::sign_out))
        .get("/console/assets/{file}", Public, get(assets::asset))
        .get("/console", Session, get(overview::overview))
        .get("/console/webhooks", ReadWebhooks, get(webhooks::list))
        .get(
            "/console/webhooks/new",
            ManageWebhooks,
            get(webhooks::new_form),
        )
        .post("/console/webhooks", ManageWebhooks, post(webhooks::create))
        .get("/console/webhooks/{id}", ReadWebhooks, get(deliveries::log))
        .get(
            "/console/webhooks/{id}/edit",
            ManageWebhooks,
            get(webhooks::edit_form),
        )
        .post(
            "/console/webhooks/{id}",
            ManageWebhooks,
            post(webhooks::update),
        )
        .post(
            "/console/webhooks/{id}/enabled",
            ManageWebhooks,
            post(webhooks::set_enabled),
        )
        .get(
            "/console/webhooks/{id}/delete",
            ManageWebhooks,
            get(webhooks::delete_confirm),
        )
        .post(
            "/console/webhooks/{id}/delete",
            ManageWebhooks,
            post(webhooks::delete),
        )
        .post(
            "/console/webhooks/{id}/test",
            ManageWebhooks,
            post(webhooks::test),
        )
        .post(
            "/console/webhooks/{id}/secret",
            Admin,
            post(webhooks::reveal_secret),
        )
        .post(
            "/console/webhooks/{id}/recover",
            ManageWebhooks,
            post(deliveries::recover),
        )
        .get(
            "/console/deliveries/{id}",
            ReadWebhooks,
            get(deliveries::detail),
        )
        .get(
            "/console/deliveries/{id}/payload",
            ReadWebhooks,
            get(deliveries::exact_bytes),
        )
        .post(
            "/console/deliveries/{id}/redeliver",
            ManageWebhooks,
            post(deliveries::redeliver),
        )
        .get("/console/event-types", Read, get(event_types::list))
        .post("/console/event-types", Admin, post(event_types::register))
        .get("/console/event-types/{key}", Read, get(event_types::detail))
        .post(
            "/console/event-types/{key}",
            Admin,
            post(event_types::replace),
        )
        .post(
            "/console/event-types/{key}/delete",
            Admin,
            post(event_types::delete),
        )
        .get("/console/receivers", Read, get(receivers::list))
        .post("/console/receivers", Admin, post(receivers::create))
        .get("/console/receivers/{id}", Read, get(receivers::detail))
        .post(
            "/console/receivers/{id}/rotate",
            Admin,
            post(receivers::rotate),
        )
        .get(
            "/console/receivers/{id}/delete",
            Admin,
            get(receivers::delete_confirm),
        )
        .post(
            "/console/receivers/{id}/delete",
            Admin,
            post(receivers::delete),
        )
        .get(
            "/console/receivers/{id}/requests/{request_id}",
            Read,
            get(receivers::request),
        )
        .get("/console/monitors", Read, get(monitors::list))
        .post("/console/monitors", Admin, post(monitors::create))
        .get(
            "/console/monitors/check-query",
            Read,
            get(monitors::check_query),
        )
        .get("/console/monitors/{id}", Read, get(monitors::detail))
        .post("/console/monitors/{id}", Admin, post(monitors::update))
        .get(
            "/console/monitors/{id}/edit",
            Admin,
            get(monitors::edit_form),
        )
        .post("/console/monitors/{id}/run", Admin, post(monitors::run))
        .post("/console/monitors/{id}/test", Admin, post(monitors::test))
        .post(
            "/console/monitors/{id}/enabled",
            Admin,
            post(monitors::set_enabled),
        )
        .post(
            "/console/repositories/{id}/fetch",
            Admin,
            post(monitors::fetch),
        )
        .get("/console/tokens", Admin, get(tokens::list))
        .post("/console/tokens", Admin, post(tokens::create))
        .post("/console/tokens/{id}/revoke", Admin, post(tokens::revoke))
}

/// The console's router: its routes, each behind its check, all behind the
/// session lookup and the security headers.
pub fn router(state: AppState) -> (Router<AppState>, Vec<RouteEntry>) {
    let (router, table) = routes().into_parts();
    let router = router
        .layer(middleware::from_fn_with_state(state, session::identify))
        .layer(middleware::map_response(page::security_headers));
    (router, table)
}
