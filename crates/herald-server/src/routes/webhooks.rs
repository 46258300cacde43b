//! `/api/v1/webhooks`: register, list, read, change and delete webhooks; read a
//! webhook's secret; send it a test event; requeue its failed deliveries.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use herald_app::webhooks::{DeliverySettings, WebhookCreate, WebhookUpdate};
use herald_core::id::WebhookId;
use herald_core::ordering::DeliveryOrdering;
use herald_core::time::Timestamp;
use herald_store::{SettingsChange, ShownHealth, WebhookHealth, WebhookRecord};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Access, Caller};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, IdPath};
use crate::routes::Routes;

pub fn router() -> Routes {
    Routes::new()
        .add(Access::ManageWebhooks, routes!(create_webhook))
        .add(Access::ReadWebhooks, routes!(list_webhooks))
        .add(Access::ReadWebhooks, routes!(get_webhook))
        .add(Access::ManageWebhooks, routes!(update_webhook))
        .add(Access::ManageWebhooks, routes!(delete_webhook))
        .add(Access::ManageWebhooks, routes!(get_secret))
        .add(Access::ManageWebhooks, routes!(test_webhook))
        .add(Access::ManageWebhooks, routes!(recover_webhook))
}

/// A webhook as the API shows it: never the secret, and the URL with any
/// credentials obscured.
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    pub id: WebhookId,
    pub name: String,
    /// The target URL; basic-auth credentials show as `***:***`.
    #[schema(example = "https://***:***@hooks.example.com/herald")]
    pub url: String,
    #[schema(example = json!(["changeset:*"]))]
    pub event_types: Vec<String>,
    /// The project key this webhook is scoped to; null for a global webhook.
    pub project: Option<String>,
    pub enabled: bool,
    /// Why Herald disabled the webhook (e.g. the receiver answered 410 Gone).
    pub disabled_reason: Option<String>,
    /// The endpoint's health, which every node shares.
    pub health: EndpointHealth,
    /// This webhook's own health and flow settings; null: the node's.
    #[serde(flatten)]
    pub settings: WebhookSettings,
    /// `key`: events with the same `ordering_key` are delivered one at a
    /// time, in publish order; `none`: every delivery on its own.
    #[schema(example = "key")]
    pub ordering: Ordering,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A webhook's own delivery settings. Each is null when the webhook has none
/// of its own: the node's `[delivery.health]` setting applies (for the two
/// limits: only the node's `[delivery]` bounds).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSettings {
    /// Failed attempts in a row (whatever their deliveries) that pause the
    /// webhook; 1 to 10000.
    #[schema(example = 4)]
    pub failing_after: Option<u32>,
    /// Failed attempts in a row that disable the webhook until a person
    /// enables it again; 0 to 100000, where **0 switches auto-disable off**
    /// for this webhook (null takes the node's setting, which may disable).
    #[schema(example = 40)]
    pub disable_after: Option<u32>,
    /// Attempts in flight to this webhook at once, on each node; 1 to 10000.
    /// The node's `max_in_flight_per_webhook` still applies, and with
    /// adaptive concurrency the number follows the receiver below this.
    pub max_in_flight: Option<u32>,
    /// Attempts started per second to this webhook, on each node (a token
    /// bucket holding a tenth of a second's worth); 1 to 100000. Each node enforces it
    /// on its own: with N nodes the receiver may see up to N times this.
    pub max_per_second: Option<u32>,
}

impl From<DeliverySettings> for WebhookSettings {
    fn from(settings: DeliverySettings) -> Self {
        Self {
            failing_after: settings.failing_after,
            disable_after: settings.disable_after,
            max_in_flight: settings.max_in_flight,
            max_per_second: settings.max_per_second,
        }
    }
}

/// How the webhook's endpoint is doing. `failing_after` failed attempts in a
/// row pause the webhook (the pause doubles after each failed probe);
/// `disable_after` disable it until you enable it again (`PATCH` with
/// `"enabled": true`), keeping its backlog.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointHealth {
    pub state: EndpointHealthState,
    /// Failed attempts in a row, whatever their deliveries.
    pub consecutive_failures: u32,
    /// While paused: when attempts resume (after a run of failures, with one
    /// probe delivery; after a `Retry-After`, all of them).
    pub paused_until: Option<Timestamp>,
    /// Why the last failed attempt failed.
    pub last_error: Option<String>,
    /// When an attempt last succeeded (to within a minute).
    pub last_success: Option<Timestamp>,
    /// While disabled: why.
    pub disabled_reason: Option<String>,
}

/// `healthy`: deliveries flow. `paused`: no attempts until `paused_until`.
/// `failing`: a pause has ended and one probe delivery decides. `disabled`:
/// no attempts until a person enables the webhook.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndpointHealthState {
    Healthy,
    Failing,
    Paused,
    Disabled,
}

impl From<&WebhookHealth> for EndpointHealth {
    fn from(health: &WebhookHealth) -> Self {
        let now = Timestamp::now();
        Self {
            state: match health.shown(now) {
                ShownHealth::Healthy => EndpointHealthState::Healthy,
                ShownHealth::Failing => EndpointHealthState::Failing,
                ShownHealth::Paused => EndpointHealthState::Paused,
                ShownHealth::Disabled => EndpointHealthState::Disabled,
            },
            consecutive_failures: health.consecutive_failures,
            paused_until: health.paused_until(now),
            last_error: health.last_error.clone(),
            last_success: health.last_success,
            disabled_reason: health.disabled_reason.clone(),
        }
    }
}

impl From<&WebhookRecord> for Webhook {
    fn from(record: &WebhookRecord) -> Self {
        Self {
            id: record.id,
            name: record.name.clone(),
            url: record.url_display.clone(),
            event_types: record
                .event_types
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            project: record.project.clone(),
            enabled: record.enabled,
            disabled_reason: record.disabled_reason.clone(),
            health: EndpointHealth::from(&record.health),
            settings: DeliverySettings::of(record).into(),
            ordering: record.ordering.into(),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// A webhook just created, with its secret: the one answer besides
/// `GET /api/v1/webhooks/{id}/secret` that shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub secret: String,
    /// What you should know about the webhook, saved all the same: e.g. that
    /// the address guard refuses its endpoint (with the `--allow-cidr` remedy).
    /// Absent when there is nothing to say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first.
    pub items: Vec<Webhook>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSecret {
    pub secret: String,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// 1 to 100 characters.
    pub name: String,
    /// `http` or `https`, at most 512 characters. `https://user:password@host/`
    /// sends `Authorization: Basic`.
    pub url: String,
    /// 1 to 200 characters. Omitted or null: Herald generates a `whsec_` secret.
    #[serde(default)]
    pub secret: Option<String>,
    /// 1 to 100 event types; a trailing `*` matches a family, as in
    /// `changeset:*`. Each must match a type in the live catalogue (422
    /// `unknown_event_type` otherwise), which this document cannot state.
    pub event_types: Vec<String>,
    /// A project key (at most 400 characters); omitted or null for a global webhook.
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default = "enabled_by_default")]
    #[schema(default = true)]
    pub enabled: bool,
    /// Failed attempts in a row that pause the webhook, 1 to 10000; omitted
    /// or null: the node's `[delivery.health] failing_after`.
    #[serde(default)]
    pub failing_after: Option<u32>,
    /// Failed attempts in a row that disable the webhook, 0 to 100000;
    /// **0 switches auto-disable off** for this webhook; omitted or null: the
    /// node's `[delivery.health] disable_after`.
    #[serde(default)]
    pub disable_after: Option<u32>,
    /// Attempts in flight to this webhook at once, on each node, 1 to 10000;
    /// omitted or null: only the node's `max_in_flight_per_webhook`.
    #[serde(default)]
    pub max_in_flight: Option<u32>,
    /// Attempts started per second to this webhook, on each node, 1 to
    /// 100000; omitted or null: no rate limit. With N nodes the receiver may
    /// see up to N times this.
    #[serde(default)]
    pub max_per_second: Option<u32>,
    /// `"none"` (the default): deliveries go as they come. `"key"`:
    /// deliveries of events with the same `ordering_key` go one at a time,
    /// in publish order, and one that is failing holds back only its key;
    /// events without a key are not held back.
    #[serde(default)]
    #[schema(value_type = Option<Ordering>)]
    pub ordering: Option<String>,
}

/// How a webhook orders its deliveries.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    None,
    Key,
}

impl From<DeliveryOrdering> for Ordering {
    fn from(ordering: DeliveryOrdering) -> Self {
        match ordering {
            DeliveryOrdering::None => Self::None,
            DeliveryOrdering::Key => Self::Key,
        }
    }
}

/// Changes the fields present; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub url: Option<String>,
    /// A new secret, replacing the old one at once.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub secret: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<String>)]
    pub event_types: Option<Vec<String>>,
    /// A project key, or null to make the webhook global.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub project: Option<Option<String>>,
    /// `true` also lets a webhook the engine disabled for failing try again
    /// (its health starts afresh and its backlog is delivered).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub enabled: Option<bool>,
    /// 1 to 10000, or null for the node's setting.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub failing_after: Option<Option<u32>>,
    /// 0 to 100000 (**0: never disabled for failing**), or null for the
    /// node's setting.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub disable_after: Option<Option<u32>>,
    /// 1 to 10000, or null for no limit of the webhook's own.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub max_in_flight: Option<Option<u32>>,
    /// 1 to 100000, or null for no limit of the webhook's own.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>)]
    pub max_per_second: Option<Option<u32>>,
    /// `"none"` or `"key"`; applies to events published from then on
    /// (deliveries already waiting in a key's line still go in order).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Ordering)]
    pub ordering: Option<String>,
}

/// Marks a field as present. With `#[serde(default)]`, an absent field is `None`
/// while a present one is `Some`: `Some(None)` for `null` when `T` is an `Option`,
/// and an error for `null` otherwise.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// Failed deliveries created at or after this instant are queued again.
    pub since: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoverResult {
    pub requeued: u64,
}

/// What the receiver made of a test event.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestResult {
    /// True when the receiver answered 2xx.
    pub success: bool,
    /// The receiver's HTTP status; null when no response came.
    pub status: Option<u16>,
    pub duration_ms: u32,
    /// The start of the response body.
    pub body_excerpt: Option<String>,
    /// Why the request failed, when it did (refused address, timeout, connection error).
    pub error: Option<String>,
}

impl From<CreateWebhook> for WebhookCreate {
    fn from(request: CreateWebhook) -> Self {
        Self {
            name: request.name,
            url: request.url,
            secret: request.secret,
            event_types: request.event_types,
            project: request.project,
            enabled: request.enabled,
            settings: DeliverySettings {
                failing_after: request.failing_after,
                disable_after: request.disable_after,
                max_in_flight: request.max_in_flight,
                max_per_second: request.max_per_second,
            },
            ordering: request.ordering,
        }
    }
}

impl From<UpdateWebhook> for WebhookUpdate {
    fn from(request: UpdateWebhook) -> Self {
        Self {
            name: request.name,
            url: request.url,
            secret: request.secret,
            event_types: request.event_types,
            project: request.project,
            enabled: request.enabled,
            settings: SettingsChange {
                failing_after: request.failing_after,
                disable_after: request.disable_after,
                max_in_flight: request.max_in_flight,
                max_per_second: request.max_per_second,
            },
            ordering: request.ordering,
        }
    }
}

#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created. The secret is in this answer and at `/secret`, never in lists.", body = WebhookWithSecret),
        (status = 400, description = "Invalid JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 409, description = "The scope (the project, or global) is full: `scope_full`", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown; or an event type pattern matches no type in the catalogue (`unknown_event_type`, with the nearest types in `suggestions`)", body = ErrorBody),
    )
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    Caller(by): Caller,
    ApiJson(request): ApiJson<CreateWebhook>,
) -> Result<(StatusCode, Json<WebhookWithSecret>), ApiError> {
    let created = state.app().create_webhook(&by, request.into()).await?;
    let created = WebhookWithSecret {
        webhook: Webhook::from(&created.record),
        secret: created.secret.expose().to_owned(),
        warnings: created.warnings,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "Every webhook, oldest first", body = WebhookList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
    )
)]
pub async fn list_webhooks(
    State(state): State<AppState>,
    Caller(by): Caller,
) -> Result<Json<WebhookList>, ApiError> {
    let records = state.app().list_webhooks(&by).await?;
    Ok(Json(WebhookList {
        items: records.iter().map(Webhook::from).collect(),
    }))
}

#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = WebhookId, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "The webhook", body = Webhook),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
    )
)]
pub async fn get_webhook(
    State(state): State<AppState>,
    Caller(by): Caller,
    IdPath(id): IdPath<WebhookId>,
) -> Result<Json<Webhook>, ApiError> {
    let record = state.app().webhook(&by, id).await?;
    Ok(Json(Webhook::from(&record)))
}

#[utoipa::path(
    patch, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = WebhookId, Path, description = "The webhook's id")),
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "The updated webhook. Enabling clears `disabled_reason`; disabling fails its pending deliveries.", body = Webhook),
        (status = 400, description = "Invalid JSON or malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
        (status = 409, description = "The target scope is full: `scope_full`", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown; or an event type pattern matches no type in the catalogue (`unknown_event_type`, with the nearest types in `suggestions`)", body = ErrorBody),
    )
)]
pub async fn update_webhook(
    State(state): State<AppState>,
    Caller(by): Caller,
    IdPath(id): IdPath<WebhookId>,
    ApiJson(request): ApiJson<UpdateWebhook>,
) -> Result<Json<Webhook>, ApiError> {
    let record = state.app().update_webhook(&by, id, request.into()).await?;
    Ok(Json(Webhook::from(&record)))
}

#[utoipa::path(
    delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = WebhookId, Path, description = "The webhook's id")),
    responses(
        (status = 204, description = "Deleted, with its deliveries and their attempts"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
    )
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Caller(by): Caller,
    IdPath(id): IdPath<WebhookId>,
) -> Result<StatusCode, ApiError> {
    state.app().delete_webhook(&by, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/secret", tag = "webhooks",
    params(("id" = WebhookId, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "The webhook's signing secret", body = WebhookSecret),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
    )
)]
pub async fn get_secret(
    State(state): State<AppState>,
    Caller(by): Caller,
    IdPath(id): IdPath<WebhookId>,
) -> Result<Json<WebhookSecret>, ApiError> {
    let secret = state.app().webhook_secret(&by, id).await?;
    Ok(Json(WebhookSecret {
        secret: secret.expose().to_owned(),
    }))
}

#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks",
    params(("id" = WebhookId, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "Sent a test event now, signed like any delivery (with its family's native headers), and waited for the answer: the example payload of the one event type the webhook subscribes to, or a `herald:ping` when it subscribes to several or to a pattern. Nothing is stored.", body = TestResult),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
    )
)]
pub async fn test_webhook(
    State(state): State<AppState>,
    Caller(by): Caller,
    IdPath(id): IdPath<WebhookId>,
) -> Result<Json<TestResult>, ApiError> {
    let outcome = state.app().test_webhook(&by, id).await?;
    Ok(Json(TestResult {
        success: outcome.success,
        status: outcome.status,
        duration_ms: outcome.duration_ms,
        body_excerpt: outcome.body_excerpt,
        error: outcome.error,
    }))
}

#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/recover", tag = "webhooks",
    params(("id" = WebhookId, Path, description = "The webhook's id")),
    request_body = RecoverRequest,
    responses(
        (status = 200, description = "Queued every failed delivery created since `since` for another attempt now", body = RecoverResult),
        (status = 400, description = "Invalid JSON or malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "The token\'s scope does not allow this: `forbidden`, naming the scope needed", body = ErrorBody),
        (status = 404, description = "No such webhook", body = ErrorBody),
        (status = 409, description = "The webhook is disabled", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "`since` is missing or not RFC 3339", body = ErrorBody),
    )
)]
pub async fn recover_webhook(
    State(state): State<AppState>,
    Caller(by): Caller,
    IdPath(id): IdPath<WebhookId>,
    ApiJson(request): ApiJson<RecoverRequest>,
) -> Result<Json<RecoverResult>, ApiError> {
    let requeued = state.app().recover_webhook(&by, id, request.since).await?;
    Ok(Json(RecoverResult { requeued }))
}
