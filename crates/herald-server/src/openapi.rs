//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes. A committed copy lives at the repository root (`openapi.json`);
//! a test fails when it is stale.

use std::sync::OnceLock;

use herald_app::Limits;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes;

mod constraints;

/// The name of the bearer-token security scheme; the `security` list of
/// `#[openapi]` repeats it, as the macro takes only a literal there.
const SECURITY_SCHEME: &str = "admin_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald",
        description = "Durable outgoing webhooks. Every route needs `Authorization: Bearer <token>`, the admin token or an API token (`hrld_...`, created at `/api/v1/tokens`) whose scope allows the route (`admin`, `read`, `publish` or `project:<key>`; otherwise 403 `forbidden` naming the scope needed), except `/healthz`, this document and the receivers' `/.api/webhooks/{id}`, whose requests prove themselves with the receiver's secret. Errors are `{\"code\", \"message\"}` JSON, with `field` when one field is at fault."
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerToken),
    security(("admin_token" = [])),
    tags(
        (name = "webhooks", description = "Register webhooks, test them, and requeue their failed deliveries"),
        (name = "events", description = "Publish events"),
        (name = "event-types", description = "The event catalogue: every type's schema, example and family; register, replace and delete custom types"),
        (name = "deliveries", description = "The delivery log and redelivery"),
        (name = "receivers", description = "Receivers for code hosts' webhooks (GitHub, GitLab, Bitbucket Server/Data Center, Bitbucket Cloud, Azure DevOps), their secrets and their request logs"),
        (name = "incoming", description = "Where code hosts post their webhooks; verified with the receiver's secret, not the admin token"),
        (name = "code monitors", description = "Repositories Herald mirrors, and monitors: saved searches over their new commits' diffs and messages that notify webhook and Slack actions with the matched byte ranges"),
        (name = "tokens", description = "API tokens: create (shown once), list and revoke scoped bearer tokens"),
        (name = "health", description = "Liveness"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The admin token (HERALD_ADMIN_TOKEN, the config file, or the file Herald generates under its data directory), or an API token from /api/v1/tokens"))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(SECURITY_SCHEME, SecurityScheme::Http(scheme));
    }
}

/// The document: the info, tags and security above, every route's entry as
/// its module registered it, and the [`constraints`] the server enforces. As
/// JSON, since the constraints are added to the JSON (see there why).
pub fn openapi() -> serde_json::Value {
    let (routes, _) = routes::all(&Limits::default()).into_parts();
    let (_, collected) = routes.split_for_parts();
    constraints::apply(&ApiDoc::openapi().merge_from(collected))
}

/// The document as pretty JSON with a final newline: the exact content of the
/// committed `openapi.json`. Built once: the routes do not change while serving.
pub fn openapi_json() -> String {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut text = serde_json::to_string_pretty(&openapi())
            .expect("a JSON value built in memory always serializes");
        text.push('\n');
        text
    })
    .clone()
}
