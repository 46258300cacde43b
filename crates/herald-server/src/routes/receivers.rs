//! `/api/v1/receivers`: the receivers code hosts send their webhooks to.
//! Create, list, read, change and delete them; rotate a secret with a grace
//! period; read the log of the requests each one received.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use herald_core::id::EventId;
use herald_core::secret::Secret;
use herald_core::time::Timestamp;
use herald_core::validation::FieldError;
use herald_core::webhook::validate_name;
use herald_ingest::{CodeHostKind, Credential};
use herald_store::{
    NewReceiver, ReceiverId, ReceiverPatch, ReceiverRecord, ReceiverRequestId,
    ReceiverRequestQuery, ReceiverRequestSummary, ReceiverStore, RequestOutcome,
};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Access;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath};
use crate::routes::Routes;
use crate::routes::deliveries::Header;
use herald_app::deliveries::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use herald_app::receivers::{credentials, receiver_url};
use utoipa_axum::routes;

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

pub const MAX_URN_LEN: usize = 512;
pub const MAX_USERNAME_LEN: usize = 100;
/// The Azure DevOps username when none is given.
pub const DEFAULT_USERNAME: &str = "herald";
/// How long a rotated-out secret keeps verifying unless told otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

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
/// changes: create another receiver for another code host.
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

impl RequestFilter {
    fn into_query(self, receiver_id: ReceiverId) -> Result<ReceiverRequestQuery, ApiError> {
        let cursor = self
            .cursor
            .as_deref()
            .map(|text| {
                text.parse().map_err(|_| {
                    ApiError::invalid_query(
                        Some("cursor"),
                        format!("cursor must be the next_cursor of a previous page; got {text:?}"),
                    )
                })
            })
            .transpose()?;
        let limit = match self.limit.as_deref() {
            None => DEFAULT_PAGE_SIZE,
            Some(text) => match text.parse::<u32>() {
                Ok(limit) if (1..=MAX_PAGE_SIZE).contains(&limit) => limit,
                _ => {
                    return Err(ApiError::invalid_query(
                        Some("limit"),
                        format!(
                            "limit must be a whole number from 1 to {MAX_PAGE_SIZE}; got {text:?}"
                        ),
                    ));
                }
            },
        };
        Ok(ReceiverRequestQuery {
            receiver_id,
            cursor,
            limit,
        })
    }
}

// ---- validation ----

fn parse_kind(text: &str) -> Result<CodeHostKind, FieldError> {
    text.parse()
        .map_err(|e: herald_ingest::UnknownKind| FieldError::new("kind", e.to_string()))
}

fn validate_optional_name(name: Option<&str>) -> Result<Option<String>, FieldError> {
    name.map(validate_name).transpose()
}

/// The code host's base URL: http or https, a host, no credentials, query or
/// fragment (repository names are built from it).
fn validate_urn(text: &str) -> Result<String, FieldError> {
    let fail = |message: String| Err(FieldError::new("urn", message));
    let text = text.trim();
    if text.len() > MAX_URN_LEN {
        return fail(format!(
            "must be at most {MAX_URN_LEN} characters, got {}",
            text.len()
        ));
    }
    let url = match Url::parse(text) {
        Ok(url) => url,
        Err(e) => {
            return fail(format!(
                "must be the code host's base URL, such as https://github.com: {e}"
            ));
        }
    };
    if !matches!(url.scheme(), "http" | "https") {
        return fail(format!(
            "scheme must be http or https, got {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return fail("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return fail("must not contain credentials".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return fail("must not have a query or fragment".to_owned());
    }
    Ok(text.to_owned())
}

fn validate_username(text: &str) -> Result<String, FieldError> {
    let len = text.chars().count();
    if len == 0
        || len > MAX_USERNAME_LEN
        || text.contains(':')
        || text.chars().any(char::is_control)
    {
        return Err(FieldError::new(
            "username",
            format!(
                "must be 1 to {MAX_USERNAME_LEN} characters, without colons or control characters"
            ),
        ));
    }
    Ok(text.to_owned())
}

fn parse_secret(text: Option<&str>) -> Result<Secret, FieldError> {
    match text {
        Some(text) => Secret::parse(text),
        None => Ok(Secret::generate()),
    }
}

/// Refuses an option that does not apply to `kind`.
fn only_for(
    kind: CodeHostKind,
    wanted: CodeHostKind,
    field: &str,
    given: bool,
) -> Result<(), FieldError> {
    if given && kind != wanted {
        return Err(FieldError::new(
            field,
            format!("applies to {wanted} receivers only; this one is {kind}"),
        ));
    }
    Ok(())
}

/// Azure DevOps authenticates with basic auth, every other host with a
/// shared secret.
fn credential(kind: CodeHostKind, username: Option<String>, secret: Secret) -> Credential {
    match kind {
        CodeHostKind::AzureDevOps => Credential::Basic {
            username: username.unwrap_or_else(|| DEFAULT_USERNAME.to_owned()),
            password: secret,
        },
        _ => Credential::Secret(secret),
    }
}

struct ValidReceiver {
    new: NewReceiver,
    secret: Secret,
}

impl CreateReceiver {
    fn validate(self, app: &AppState) -> Result<ValidReceiver, FieldError> {
        let kind = parse_kind(&self.kind)?;
        only_for(
            kind,
            CodeHostKind::AzureDevOps,
            "username",
            self.username.is_some(),
        )?;
        only_for(
            kind,
            CodeHostKind::GitHub,
            "github_legacy_sha1",
            self.github_legacy_sha1,
        )?;
        only_for(
            kind,
            CodeHostKind::GitLab,
            "gitlab_standard_webhooks",
            self.gitlab_standard_webhooks,
        )?;
        let username = self
            .username
            .as_deref()
            .map(validate_username)
            .transpose()?;
        let secret = parse_secret(self.secret.as_deref())?;
        let credential = credential(kind, username, secret.clone());
        let id = ReceiverId::new();
        Ok(ValidReceiver {
            new: NewReceiver {
                id,
                name: validate_optional_name(self.name.as_deref())?,
                kind: kind.as_str().to_owned(),
                urn: validate_urn(&self.urn)?,
                credentials_sealed: credentials::seal(app.app().cipher(), id, &credential),
                github_legacy_sha1: self.github_legacy_sha1,
                gitlab_standard_webhooks: self.gitlab_standard_webhooks,
            },
            secret,
        })
    }
}

impl UpdateReceiver {
    /// Validates every present field; new credentials keep whichever half
    /// (username or password) was not given.
    fn into_patch(
        self,
        app: &AppState,
        record: &ReceiverRecord,
    ) -> Result<ReceiverPatch, ApiError> {
        let kind = stored_kind(record)?;
        let invalid = ApiError::invalid_field;
        only_for(
            kind,
            CodeHostKind::AzureDevOps,
            "username",
            self.username.is_some(),
        )
        .map_err(invalid)?;
        only_for(
            kind,
            CodeHostKind::GitHub,
            "github_legacy_sha1",
            self.github_legacy_sha1 == Some(true),
        )
        .map_err(invalid)?;
        only_for(
            kind,
            CodeHostKind::GitLab,
            "gitlab_standard_webhooks",
            self.gitlab_standard_webhooks == Some(true),
        )
        .map_err(invalid)?;
        let name = self
            .name
            .map(|name| validate_optional_name(name.as_deref()))
            .transpose()
            .map_err(invalid)?;
        let urn = self
            .urn
            .as_deref()
            .map(validate_urn)
            .transpose()
            .map_err(invalid)?;
        let username = self
            .username
            .as_deref()
            .map(validate_username)
            .transpose()
            .map_err(invalid)?;
        let secret = self
            .secret
            .as_deref()
            .map(Secret::parse)
            .transpose()
            .map_err(invalid)?;
        let credentials_sealed = if username.is_some() || secret.is_some() {
            let current =
                credentials::open(app.app().cipher(), record.id, &record.credentials_sealed)?;
            let username = username.or_else(|| credentials::username(&current).map(str::to_owned));
            let secret = secret.unwrap_or_else(|| credentials::secret(&current).clone());
            let next = credential(kind, username, secret);
            Some(credentials::seal(app.app().cipher(), record.id, &next))
        } else {
            None
        };
        Ok(ReceiverPatch {
            name,
            urn,
            credentials_sealed,
            github_legacy_sha1: self.github_legacy_sha1,
            gitlab_standard_webhooks: self.gitlab_standard_webhooks,
        })
    }
}

/// The kind of a stored receiver; the API only ever stores known kinds.
pub(crate) fn stored_kind(record: &ReceiverRecord) -> Result<CodeHostKind, ApiError> {
    record
        .kind
        .parse()
        .map_err(|e| ApiError::internal("a stored receiver has an unknown kind", &e))
}

fn grace_period(seconds: Option<u64>) -> Result<Duration, FieldError> {
    let grace = seconds.map_or(DEFAULT_GRACE, Duration::from_secs);
    if grace > MAX_GRACE {
        return Err(FieldError::new(
            "grace_period_seconds",
            format!(
                "must be at most {} (30 days), got {}",
                MAX_GRACE.as_secs(),
                grace.as_secs()
            ),
        ));
    }
    Ok(grace)
}

// ---- views ----

pub(crate) fn receivers(app: &AppState) -> Result<&dyn ReceiverStore, ApiError> {
    Ok(app.app().receiver_store())
}

fn view(app: &AppState, record: &ReceiverRecord) -> Result<Receiver, ApiError> {
    let current = credentials::open(app.app().cipher(), record.id, &record.credentials_sealed)?;
    let now = Timestamp::now();
    Ok(Receiver {
        id: record.id,
        name: record.name.clone(),
        kind: record.kind.clone(),
        urn: record.urn.clone(),
        url: receiver_url(app.app().external_url(), record.id),
        username: credentials::username(&current).map(str::to_owned),
        github_legacy_sha1: record.github_legacy_sha1,
        gitlab_standard_webhooks: record.gitlab_standard_webhooks,
        previous_secret_expires_at: credentials::previous_in_grace(record, now)
            .then_some(record.previous_valid_until)
            .flatten(),
        created_at: record.created_at,
        updated_at: record.updated_at,
    })
}

fn with_secret(app: &AppState, record: &ReceiverRecord) -> Result<ReceiverWithSecret, ApiError> {
    let current = credentials::open(app.app().cipher(), record.id, &record.credentials_sealed)?;
    Ok(ReceiverWithSecret {
        receiver: view(app, record)?,
        secret: credentials::secret(&current).expose().to_owned(),
    })
}

async fn find(app: &AppState, id: ReceiverId) -> Result<ReceiverRecord, ApiError> {
    receivers(app)?
        .get_receiver(id)
        .await?
        .ok_or_else(|| ApiError::not_found("receiver", id))
}

// ---- handlers ----

#[utoipa::path(
    post, path = "/api/v1/receivers", tag = "receivers",
    request_body = CreateReceiver,
    responses(
        (status = 201, description = "Created. Its secret is in this answer only (and in a rotation's); configure it and `url` on the code host.", body = ReceiverWithSecret),
        (status = 400, description = "Invalid JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, is unknown, or does not apply to the kind", body = ErrorBody),
        (status = 503, description = "This server has no receiver store", body = ErrorBody),
    )
)]
pub async fn create_receiver(
    State(app): State<AppState>,
    ApiJson(request): ApiJson<CreateReceiver>,
) -> Result<(StatusCode, Json<ReceiverWithSecret>), ApiError> {
    let store = receivers(&app)?;
    let valid = request.validate(&app).map_err(ApiError::invalid_field)?;
    let record = store.create_receiver(valid.new).await?;
    let created = ReceiverWithSecret {
        receiver: view(&app, &record)?,
        secret: valid.secret.expose().to_owned(),
    };
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get, path = "/api/v1/receivers", tag = "receivers",
    responses(
        (status = 200, description = "Every receiver, oldest first", body = ReceiverList),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 503, description = "This server has no receiver store", body = ErrorBody),
    )
)]
pub async fn list_receivers(State(app): State<AppState>) -> Result<Json<ReceiverList>, ApiError> {
    let records = receivers(&app)?.list_receivers().await?;
    let items = records
        .iter()
        .map(|record| view(&app, record))
        .collect::<Result<_, _>>()?;
    Ok(Json(ReceiverList { items }))
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
    State(app): State<AppState>,
    IdPath(id): IdPath<ReceiverId>,
) -> Result<Json<Receiver>, ApiError> {
    let record = find(&app, id).await?;
    Ok(Json(view(&app, &record)?))
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
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, is unknown (`kind` included), or does not apply to the kind", body = ErrorBody),
    )
)]
pub async fn update_receiver(
    State(app): State<AppState>,
    IdPath(id): IdPath<ReceiverId>,
    ApiJson(request): ApiJson<UpdateReceiver>,
) -> Result<Json<Receiver>, ApiError> {
    let record = find(&app, id).await?;
    let patch = request.into_patch(&app, &record)?;
    let updated = receivers(&app)?
        .update_receiver(id, patch)
        .await?
        .ok_or_else(|| ApiError::not_found("receiver", id))?;
    Ok(Json(view(&app, &updated)?))
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
    State(app): State<AppState>,
    IdPath(id): IdPath<ReceiverId>,
) -> Result<StatusCode, ApiError> {
    if receivers(&app)?.delete_receiver(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("receiver", id))
    }
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
        (status = 415, description = "The body is not JSON (send `{}` for the defaults)", body = ErrorBody),
        (status = 422, description = "A field breaks a rule, or is unknown", body = ErrorBody),
    )
)]
pub async fn rotate_secret(
    State(app): State<AppState>,
    IdPath(id): IdPath<ReceiverId>,
    ApiJson(request): ApiJson<RotateSecret>,
) -> Result<Json<ReceiverWithSecret>, ApiError> {
    let grace = grace_period(request.grace_period_seconds).map_err(ApiError::invalid_field)?;
    let secret = parse_secret(request.secret.as_deref()).map_err(ApiError::invalid_field)?;
    let record = find(&app, id).await?;
    let kind = stored_kind(&record)?;
    let current = credentials::open(app.app().cipher(), id, &record.credentials_sealed)?;
    let next = credential(
        kind,
        credentials::username(&current).map(str::to_owned),
        secret,
    );
    let rotated = receivers(&app)?
        .rotate_receiver_credentials(id, credentials::seal(app.app().cipher(), id, &next), grace)
        .await?
        .ok_or_else(|| ApiError::not_found("receiver", id))?;
    Ok(Json(with_secret(&app, &rotated)?))
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
    State(app): State<AppState>,
    IdPath(id): IdPath<ReceiverId>,
    ApiQuery(filter): ApiQuery<RequestFilter>,
) -> Result<Json<IncomingRequestPage>, ApiError> {
    let query = filter.into_query(id)?;
    find(&app, id).await?;
    let page = receivers(&app)?.list_requests(query).await?;
    Ok(Json(IncomingRequestPage {
        items: page.items.into_iter().map(IncomingRequest::from).collect(),
        next_cursor: page.next_cursor,
    }))
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
    State(app): State<AppState>,
    Path((raw_id, raw_request)): Path<(String, String)>,
) -> Result<Json<IncomingRequestDetail>, ApiError> {
    let id: ReceiverId = raw_id.parse().map_err(|_| ApiError::invalid_id(&raw_id))?;
    let request_id: ReceiverRequestId = raw_request
        .parse()
        .map_err(|_| ApiError::invalid_id(&raw_request))?;
    find(&app, id).await?;
    let detail = receivers(&app)?
        .get_request(id, request_id)
        .await?
        .ok_or_else(|| ApiError::not_found("request", request_id))?;
    Ok(Json(IncomingRequestDetail {
        request: IncomingRequest::from(detail.summary),
        headers: detail
            .headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
        body: String::from_utf8_lossy(&detail.body).into_owned(),
        body_truncated: detail.body_truncated,
    }))
}
