//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes. A committed copy lives at the repository root (`openapi.json`);
//! a test fails when it is stale.

use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes::{
    deliveries, event_types, events, health, incoming, monitors, receivers, repositories, webhooks,
};

/// The name of the bearer-token security scheme; the `security` list of
/// `#[openapi]` repeats it, as the macro takes only a literal there.
const SECURITY_SCHEME: &str = "admin_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Herald",
        description = "Durable outgoing webhooks. Every `/api/` route needs `Authorization: Bearer <admin token>`. Errors are `{\"code\", \"message\"}` JSON, with `field` when one field is at fault."
    ),
    paths(
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::get_webhook,
        webhooks::update_webhook,
        webhooks::delete_webhook,
        webhooks::get_secret,
        webhooks::test_webhook,
        webhooks::recover_webhook,
        events::publish_event,
        event_types::list_event_types,
        event_types::get_event_type,
        event_types::create_event_type,
        event_types::replace_event_type,
        event_types::delete_event_type,
        deliveries::list_deliveries,
        deliveries::get_delivery,
        deliveries::redeliver,
        receivers::create_receiver,
        receivers::list_receivers,
        receivers::get_receiver,
        receivers::update_receiver,
        receivers::delete_receiver,
        receivers::rotate_secret,
        receivers::list_requests,
        receivers::get_request,
        incoming::receive,
        repositories::create_repository,
        repositories::list_repositories,
        repositories::get_repository,
        repositories::update_repository,
        repositories::delete_repository,
        repositories::fetch_repository,
        monitors::create_monitor,
        monitors::list_monitors,
        monitors::get_monitor,
        monitors::update_monitor,
        monitors::delete_monitor,
        monitors::test_monitor,
        monitors::run_monitor,
        monitors::list_runs,
        health::healthz,
        openapi_document,
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
            .description(Some("The admin token: HERALD_ADMIN_TOKEN, the config file, or the file Herald generates under its data directory"))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(SECURITY_SCHEME, SecurityScheme::Http(scheme));
    }
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as pretty JSON with a final newline: the exact content of the
/// committed `openapi.json`.
pub fn openapi_json() -> String {
    let mut text = openapi()
        .to_pretty_json()
        .expect("an OpenAPI document built in memory always serializes");
    text.push('\n');
    text
}

#[utoipa::path(
    get, path = "/api/openapi.json", tag = "meta",
    responses(
        (status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json"),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    )
)]
pub async fn openapi_document() -> Response {
    let mut response = openapi_json().into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
