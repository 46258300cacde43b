//! `/api/v1/receivers`: the receivers code hosts send their webhooks to.
//! Create, list, read, change and delete them; rotate a secret with a grace
//! period; read the log of the requests each one received.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_app::receivers::{
    ReceiverCreate, ReceiverUpdate, ReceiverView, ReceiverViewWithSecret, SecretRotation,
};
use herald_core::id::EventId;
use herald_core::time::Timestamp;
use herald_store::{
    ReceiverId, ReceiverRequestDetail, ReceiverRequestId, ReceiverRequestPage,
    ReceiverRequestSummary, RequestOutcome,
};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath};
use crate::routes::Routes;
use crate::routes::deliveries::Header;

pub fn router() -> Routes {
    Routes::new()
        .add(Access::Admin, routes!(create_receiver))
        .add(Access::Read, routes!(list_receivers))
        .add(Access::Read, routes!(get_receiver))
        .add(Access::Admin, routes!(update_receiver))
        .add(Access::Admin, routes!(delete_receiver))
        .add(Access::Admin, routes!(rotate_secret))
        .add(Access::Read, routes!(list_requests))
        .add(Access::Read, routes!(get_request))
}

/// A receiver as the API shows it: never its secret or password.
#[derive(Debug, Serialize, ToSchema)]
pub struct Receiver {
    #[schema(value_type = String, format = Uuid)]
    pub id: ReceiverId,
    pub name: Option<String>,
    /// `github`, `gitlab`, `bitbucket_server`, `bitbucket_cloud` or `azure_devops`.
    #[schema(example = "github")]
    pub kind: String,
    /// The code host's base URL.
    #[schema(example = "https://github.com")]
    pub urn: String,
    /// The URL to configure on the code host: `<external URL>/.api/webhooks/<id>`.
    pub url: String,
    /// Azure DevOps: the basic-auth username; null for other kinds.
    pub username: Option<String>,
    /// GitHub: also accept the legacy SHA-1 `X-Hub-Signature`.
    pub github_legacy_sha1: bool,
    /// GitLab: also accept Standard Webhooks signatures (`webhook-signature`).
    pub gitlab_standard_webhooks: bool,
    /// While a rotation's grace period runs: when the previous secret stops verifying.
    pub previous_secret_expires_at: Option<Timestamp>,
    /// Unverified requests deleted from this receiver's log to keep it
    /// within its cap (`[limits] unverified_kept_per_receiver`, oldest first).
    pub unverified_dropped: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A receiver with its secret: the answers of create and rotate-secret only.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiverWithSecret {
    #[serde(flatten)]
    pub receiver: Receiver,
    /// The shared secret to configure on the code host; for Azure DevOps, the
    /// basic-auth password.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiverList {
    /// Oldest first.
    pub items: Vec<Receiver>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReceiver {
    /// Up to 100 characters; optional.
    #[serde(default)]
    pub name: Option<String>,
    /// `github`, `gitlab`, `bitbucket_server`, `bitbucket_cloud` or `azure_devops`.
    #[schema(example = "github")]
    pub kind: String,
    /// The code host's base URL (http or https), e.g. `https://github.com`.
    #[schema(example = "https://github.com")]
    pub urn: String,
    /// 1 to 200 characters; generated when omitted. For Azure DevOps, the
    /// basic-auth password.
    #[serde(default)]
    pub secret: Option<String>,
    /// Azure DevOps only: the basic-auth username (`herald` when omitted).
    #[serde(default)]
    pub username: Option<String>,
    /// GitHub only: also accept the legacy SHA-1 `X-Hub-Signature`.
    #[serde(default)]
    pub github_legacy_sha1: bool,
    /// GitLab only: also accept Standard Webhooks signatures.
    #[serde(default)]
    pub gitlab_standard_webhooks: bool,
}

/// Changes the fields present; absent fields stay as they are. The kind never
/// changes: create another receiver for another code host. As on creation,
/// `username` applies to Azure DevOps receivers only, `github_legacy_sha1:
/// true` to GitHub and `gitlab_standard_webhooks: true` to GitLab; since the
/// kind is the stored receiver's, this schema cannot say so, and the server
/// answers 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateReceiver {
    /// A name, or null to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub urn: Option<String>,
    /// A new secret (Azure DevOps: password), in force at once; the old one
    /// stops verifying. To keep it verifying for a while, rotate instead.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub secret: Option<String>,
    /// Azure DevOps only.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub username: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub github_legacy_sha1: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub gitlab_standard_webhooks: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// The new secret (Azure DevOps: password); generated when omitted.
    #[serde(default)]
    pub secret: Option<String>,
    /// How long the old secret keeps verifying, 0 to 2592000 (30 days);
    /// 86400 (a day) when omitted. 0 ends it at once.
    #[serde(default)]
    #[schema(maximum = 2_592_000)]
    pub grace_period_seconds: Option<u64>,
}

/// Marks a field as present: with `#[serde(default)]`, absent is `None`,
/// present is `Some` (`Some(None)` for `null` when `T` is an `Option`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// What became of a request.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Verified and normalized; its events (maybe none) were published.
    Processed,
    /// Its delivery id was seen before: answered 200, not processed again.
    Duplicate,
    /// A connectivity test.
    Ping,
    /// An event kind Herald does not handle: answered 200 (GitLab: 204).
    Ignored,
    /// Refused with 401: the signature, token or credentials did not match.
    Unverified,
    /// Refused with 400: the payload could not be read.
    Invalid,
    /// Refused with 413: the body was over 25 MiB.
    TooLarge,
}

impl From<RequestOutcome> for Outcome {
    fn from(outcome: RequestOutcome) -> Self {
        match outcome {
            RequestOutcome::Processed => Self::Processed,
            RequestOutcome::Duplicate => Self::Duplicate,
            RequestOutcome::Ping => Self::Ping,
            RequestOutcome::Ignored => Self::Ignored,
            RequestOutcome::Unverified => Self::Unverified,
            RequestOutcome::Invalid => Self::Invalid,
            RequestOutcome::TooLarge => Self::TooLarge,
        }
    }
}

/// One request a code host sent, as logged.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncomingRequest {
    #[schema(value_type = String, format = Uuid)]
    pub id: ReceiverRequestId,
    #[schema(value_type = String, format = Uuid)]
    pub receiver_id: ReceiverId,
    pub received_at: Timestamp,
    pub verified: bool,
    /// How the request was verified (and with which secret), or why it was not.
    pub verification: String,
    /// The status Herald answered with.
    pub status_code: u16,
    /// The host's event name, e.g. `pull_request` or `Merge Request Hook`.
    pub event_name: Option<String>,
    /// The host's delivery id, which deduplicates redeliveries.
    pub delivery_id: Option<String>,
    pub outcome: Outcome,
    /// Why an event was ignored or a payload refused.
    pub message: Option<String>,
    /// The events the request produced, in publishing order.
    pub event_ids: Vec<EventId>,
}

impl From<ReceiverRequestSummary> for IncomingRequest {
    fn from(summary: ReceiverRequestSummary) -> Self {
        Self {
            id: summary.id,
            receiver_id: summary.receiver_id,
            received_at: summary.received_at,
            verified: summary.verified,
            verification: summary.verification,
            status_code: summary.status_code,
            event_name: summary.event_name,
            delivery_id: summary.delivery_id,
            outcome: summary.outcome.into(),
            message: summary.message,
            event_ids: summary.event_ids,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncomingRequestDetail {
    #[serde(flatten)]
    pub request: IncomingRequest,
    /// As received, with secrets redacted.
    pub headers: Vec<Header>,
    /// The body as text (invalid UTF-8 replaced). Unverified requests keep
    /// only its first 64 KiB; a request over the size limit keeps none.
    pub body: String,
    /// True when `body` is only the start of what was sent.
    pub body_truncated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IncomingRequestPage {
    /// Newest first.
    pub items: Vec<IncomingRequest>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub next_cursor: Option<ReceiverRequestId>,
}

/// Paging of a receiver's request log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RequestFilter {
    /// The `next_cursor` of the previous page.
    #[param(value_type = Option<String>, format = Uuid)]
    pub cursor: Option<String>,
    /// Page size, 1 to 250; 50 by default.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 250)]
    pub limit: Option<String>,
}

impl From<RequestFilter> for herald_app::receivers::RequestFilter {
    fn from(filter: RequestFilter) -> Self {
        Self {
            cursor: filter.cursor,
            limit: filter.limit,
        }
    }
}

impl From<CreateReceiver> for ReceiverCreate {
    fn from(request: CreateReceiver) -> Self {
        Self {
            name: request.name,
            kind: request.kind,
            urn: request.urn,
            secret: request.secret,
            username: request.username,
            github_legacy_sha1: request.github_legacy_sha1,
            gitlab_standard_webhooks: request.gitlab_standard_webhooks,
        }
    }
}

impl From<UpdateReceiver> for ReceiverUpdate {
    fn from(request: UpdateReceiver) -> Self {
        Self {
            name: request.name,
            urn: request.urn,
            secret: request.secret,
            username: request.username,
            github_legacy_sha1: request.github_legacy_sha1,
            gitlab_standard_webhooks: request.gitlab_standard_webhooks,
        }
    }
}

impl From<RotateSecret> for SecretRotation {
    fn from(request: RotateSecret) -> Self {
        Self {
            secret: request.secret,
            grace_period_seconds: request.grace_period_seconds,
        }
    }
}

impl From<ReceiverView> for Receiver {
    fn from(view: ReceiverView) -> Self {
        let record = view.record;
        Self {
            id: record.id,
            name: record.name,
            kind: record.kind,
            urn: record.urn,
            url: view.url,
            username: view.username,
            github_legacy_sha1: record.github_legacy_sha1,
            gitlab_standard_webhooks: record.gitlab_standard_webhooks,
            previous_secret_expires_at: view.previous_secret_expires_at,
            unverified_dropped: record.unverified_dropped,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

impl From<ReceiverViewWithSecret> for ReceiverWithSecret {
    fn from(shown: ReceiverViewWithSecret) -> Self {
        Self {
            secret: shown.secret.expose().to_owned(),
            receiver: shown.receiver.into(),
        }
    }
}

impl From<ReceiverRequestPage> for IncomingRequestPage {
    fn from(page: ReceiverRequestPage) -> Self {
        Self {
            items: page.items.into_iter().map(IncomingRequest::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

impl From<ReceiverRequestDetail> for IncomingRequestDetail {
    fn from(detail: ReceiverRequestDetail) -> Self {
        Self {
            request: IncomingRequest::from(detail.summary),
            headers: detail
                .headers
                .into_iter()
                .map(|(name, value)| Header { name, value })
                .collect(),
            body: String::from_utf8_lossy(&detail.body).into_owned(),
            body_truncated: detail.body_truncated,
        }
    }
}

// ---- handlers ----

#[utoipa::path(
    post, path = "/api/v1/receivers", tag = "receivers",
    request_body = CreateReceiver,
    responses(
        (status = 201, description = "Created. Its secret is in this answer only (and in a rotation's); configure it and `url` on the code host.", body = ReceiverWithSecret),
        (status = 400, description = "Invalid JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, is unknown, or does not apply to the kind", body = ErrorBody),
        (status = 503, description = "This server has no receiver store", body = ErrorBody),
    )
)]
pub async fn create_receiver(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateReceiver>,
) -> Result<(StatusCode, Json<ReceiverWithSecret>), ApiError> {
    let created = state.app().create_receiver(request.into()).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(
    get, path = "/api/v1/receivers", tag = "receivers",
    responses(
        (status = 200, description = "Every receiver, oldest first", body = ReceiverList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 503, description = "This server has no receiver store", body = ErrorBody),
    )
)]
pub async fn list_receivers(State(state): State<AppState>) -> Result<Json<ReceiverList>, ApiError> {
    let views = state.app().list_receivers().await?;
    Ok(Json(ReceiverList {
        items: views.into_iter().map(Receiver::from).collect(),
    }))
}

#[utoipa::path(
    get, path = "/api/v1/receivers/{id}", tag = "receivers",
    params(("id" = String, Path, format = Uuid, description = "The receiver's id")),
    responses(
        (status = 200, description = "The receiver", body = Receiver),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such receiver", body = ErrorBody),
    )
)]
pub async fn get_receiver(
    State(state): State<AppState>,
    IdPath(id): IdPath<ReceiverId>,
) -> Result<Json<Receiver>, ApiError> {
    Ok(Json(state.app().receiver(id).await?.into()))
}

#[utoipa::path(
    patch, path = "/api/v1/receivers/{id}", tag = "receivers",
    params(("id" = String, Path, format = Uuid, description = "The receiver's id")),
    request_body = UpdateReceiver,
    responses(
        (status = 200, description = "The updated receiver", body = Receiver),
        (status = 400, description = "Invalid JSON or malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such receiver", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, is unknown (`kind` included), or does not apply to the kind", body = ErrorBody),
    )
)]
pub async fn update_receiver(
    State(state): State<AppState>,
    IdPath(id): IdPath<ReceiverId>,
    ApiJson(request): ApiJson<UpdateReceiver>,
) -> Result<Json<Receiver>, ApiError> {
    let updated = state.app().update_receiver(id, request.into()).await?;
    Ok(Json(updated.into()))
}

#[utoipa::path(
    delete, path = "/api/v1/receivers/{id}", tag = "receivers",
    params(("id" = String, Path, format = Uuid, description = "The receiver's id")),
    responses(
        (status = 204, description = "Deleted, with its request log; its URL answers 404 from now on"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such receiver", body = ErrorBody),
    )
)]
pub async fn delete_receiver(
    State(state): State<AppState>,
    IdPath(id): IdPath<ReceiverId>,
) -> Result<StatusCode, ApiError> {
    state.app().delete_receiver(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post, path = "/api/v1/receivers/{id}/rotate-secret", tag = "receivers",
    params(("id" = String, Path, format = Uuid, description = "The receiver's id")),
    request_body = RotateSecret,
    responses(
        (status = 200, description = "The new secret is in force; the previous one also verifies until `previous_secret_expires_at`", body = ReceiverWithSecret),
        (status = 400, description = "Invalid JSON or malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such receiver", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 415, description = "The body is not JSON (send `{}` for the defaults)", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown", body = ErrorBody),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    IdPath(id): IdPath<ReceiverId>,
    ApiJson(request): ApiJson<RotateSecret>,
) -> Result<Json<ReceiverWithSecret>, ApiError> {
    let rotated = state
        .app()
        .rotate_receiver_secret(id, request.into())
        .await?;
    Ok(Json(rotated.into()))
}

#[utoipa::path(
    get, path = "/api/v1/receivers/{id}/requests", tag = "receivers",
    params(("id" = String, Path, format = Uuid, description = "The receiver's id"), RequestFilter),
    responses(
        (status = 200, description = "The requests the receiver got, newest first", body = IncomingRequestPage),
        (status = 400, description = "Malformed id or query parameter", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such receiver", body = ErrorBody),
    )
)]
pub async fn list_requests(
    State(state): State<AppState>,
    IdPath(id): IdPath<ReceiverId>,
    ApiQuery(filter): ApiQuery<RequestFilter>,
) -> Result<Json<IncomingRequestPage>, ApiError> {
    let page = state.app().receiver_requests(id, filter.into()).await?;
    Ok(Json(page.into()))
}

#[utoipa::path(
    get, path = "/api/v1/receivers/{id}/requests/{request_id}", tag = "receivers",
    params(
        ("id" = String, Path, format = Uuid, description = "The receiver's id"),
        ("request_id" = String, Path, format = Uuid, description = "The request's id"),
    ),
    responses(
        (status = 200, description = "The request with its (redacted) headers and body", body = IncomingRequestDetail),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such receiver, or no such request of it", body = ErrorBody),
    )
)]
pub async fn get_request(
    State(state): State<AppState>,
    Path((raw_id, raw_request)): Path<(String, String)>,
) -> Result<Json<IncomingRequestDetail>, ApiError> {
    let id: ReceiverId = raw_id.parse().map_err(|_| ApiError::invalid_id(&raw_id))?;
    let request_id: ReceiverRequestId = raw_request
        .parse()
        .map_err(|_| ApiError::invalid_id(&raw_request))?;
    let detail = state.app().receiver_request(id, request_id).await?;
    Ok(Json(detail.into()))
}
