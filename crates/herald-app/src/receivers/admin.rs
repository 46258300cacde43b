//! Managing receivers: create, list, read, change and delete them; rotate a
//! secret with a grace period; read the log of the requests each one received.

use std::sync::Arc;
use std::time::Duration;

use herald_core::secret::Secret;
use herald_core::time::Timestamp;
use herald_core::validation::FieldError;
use herald_core::webhook::validate_name;
use herald_ingest::{CodeHostKind, Credential};
use herald_store::{
    NewReceiver, ReceiverId, ReceiverPatch, ReceiverRecord, ReceiverRequestDetail,
    ReceiverRequestId, ReceiverRequestPage, ReceiverRequestQuery,
};
use url::Url;

use crate::deliveries::{DEFAULT_PAGE_SIZE, parse_cursor, parse_limit};
use crate::receivers::{credentials, receiver_url};
use crate::{App, AppError};

pub const MAX_URN_LEN: usize = 512;
pub const MAX_USERNAME_LEN: usize = 100;
/// The Azure DevOps username when none is given.
pub const DEFAULT_USERNAME: &str = "herald";
/// How long a rotated-out secret keeps verifying unless told otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A receiver to create, as a person or a program gave it.
#[derive(Debug)]
pub struct ReceiverCreate {
    pub name: Option<String>,
    /// `github`, `gitlab`, `bitbucket_server`, `bitbucket_cloud` or `azure_devops`.
    pub kind: String,
    /// The code host's base URL.
    pub urn: String,
    /// `None`: Herald generates one. For Azure DevOps, the basic-auth password.
    pub secret: Option<String>,
    /// Azure DevOps only: the basic-auth username ([`DEFAULT_USERNAME`] when `None`).
    pub username: Option<String>,
    /// GitHub only.
    pub github_legacy_sha1: bool,
    /// GitLab only.
    pub gitlab_standard_webhooks: bool,
}

/// Changes to a receiver: `None` leaves a field as it is. The kind never changes.
#[derive(Debug, Default)]
pub struct ReceiverUpdate {
    /// `Some(None)` removes the name.
    pub name: Option<Option<String>>,
    pub urn: Option<String>,
    /// In force at once; the old secret stops verifying.
    pub secret: Option<String>,
    pub username: Option<String>,
    pub github_legacy_sha1: Option<bool>,
    pub gitlab_standard_webhooks: Option<bool>,
}

/// A secret rotation: the old secret keeps verifying for the grace period.
#[derive(Debug, Default)]
pub struct SecretRotation {
    /// `None`: Herald generates one.
    pub secret: Option<String>,
    /// [`DEFAULT_GRACE`] when `None`; at most [`MAX_GRACE`].
    pub grace_period_seconds: Option<u64>,
}

/// Which page of a receiver's request log to read, as the caller wrote it.
#[derive(Debug, Default)]
pub struct RequestFilter {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to [`MAX_PAGE_SIZE`]; [`DEFAULT_PAGE_SIZE`] by default.
    pub limit: Option<String>,
}

/// A receiver as callers see it: the record, and what is derived from it
/// (its URL, the username from the sealed credentials). Never its secret.
#[derive(Debug)]
pub struct ReceiverView {
    pub record: ReceiverRecord,
    /// The URL to configure on the code host.
    pub url: String,
    /// Azure DevOps: the basic-auth username; `None` for other kinds.
    pub username: Option<String>,
    /// While a rotation's grace period runs: when the previous secret stops verifying.
    pub previous_secret_expires_at: Option<Timestamp>,
}

/// A receiver with its secret: what creating it and rotating its secret
/// answer, the only times the secret is shown.
#[derive(Debug)]
pub struct ReceiverViewWithSecret {
    pub receiver: ReceiverView,
    /// For Azure DevOps, the basic-auth password.
    pub secret: Secret,
}

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

/// Refuses the options of other kinds, each flag counting when set.
fn check_options_apply(
    kind: CodeHostKind,
    username: bool,
    github_legacy_sha1: bool,
    gitlab_standard_webhooks: bool,
) -> Result<(), FieldError> {
    only_for(kind, CodeHostKind::AzureDevOps, "username", username)?;
    only_for(
        kind,
        CodeHostKind::GitHub,
        "github_legacy_sha1",
        github_legacy_sha1,
    )?;
    only_for(
        kind,
        CodeHostKind::GitLab,
        "gitlab_standard_webhooks",
        gitlab_standard_webhooks,
    )
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

/// The kind of a stored receiver; only known kinds are ever stored.
pub(crate) fn stored_kind(record: &ReceiverRecord) -> Result<CodeHostKind, AppError> {
    record
        .kind
        .parse()
        .map_err(|e| AppError::internal("a stored receiver has an unknown kind", &e))
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

struct ValidReceiver {
    new: NewReceiver,
    secret: Secret,
}

impl ReceiverCreate {
    fn validate(self, app: &App) -> Result<ValidReceiver, FieldError> {
        let kind = parse_kind(&self.kind)?;
        check_options_apply(
            kind,
            self.username.is_some(),
            self.github_legacy_sha1,
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
                credentials_sealed: credentials::seal(app.cipher(), id, &credential),
                github_legacy_sha1: self.github_legacy_sha1,
                gitlab_standard_webhooks: self.gitlab_standard_webhooks,
            },
            secret,
        })
    }
}

impl ReceiverUpdate {
    /// Validates every present field; new credentials keep whichever half
    /// (username or password) was not given.
    fn into_patch(self, app: &App, record: &ReceiverRecord) -> Result<ReceiverPatch, AppError> {
        let kind = stored_kind(record)?;
        check_options_apply(
            kind,
            self.username.is_some(),
            self.github_legacy_sha1 == Some(true),
            self.gitlab_standard_webhooks == Some(true),
        )?;
        let name = self
            .name
            .map(|name| validate_optional_name(name.as_deref()))
            .transpose()?;
        let urn = self.urn.as_deref().map(validate_urn).transpose()?;
        let username = self
            .username
            .as_deref()
            .map(validate_username)
            .transpose()?;
        let secret = self.secret.as_deref().map(Secret::parse).transpose()?;
        let credentials_sealed = if username.is_some() || secret.is_some() {
            let current = credentials::open(app.cipher(), record.id, &record.credentials_sealed)?;
            let username = username.or_else(|| credentials::username(&current).map(str::to_owned));
            let secret = secret.unwrap_or_else(|| credentials::secret(&current).clone());
            let next = credential(kind, username, secret);
            Some(credentials::seal(app.cipher(), record.id, &next))
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

impl RequestFilter {
    fn into_query(self, receiver_id: ReceiverId) -> Result<ReceiverRequestQuery, AppError> {
        Ok(ReceiverRequestQuery {
            receiver_id,
            cursor: self
                .cursor
                .as_deref()
                .map(parse_cursor::<ReceiverRequestId>)
                .transpose()?,
            limit: self
                .limit
                .as_deref()
                .map(parse_limit)
                .transpose()?
                .unwrap_or(DEFAULT_PAGE_SIZE),
        })
    }
}

impl App {
    /// Creates a receiver; its secret is in the answer, and shown again only
    /// by a rotation.
    pub async fn create_receiver(
        &self,
        input: ReceiverCreate,
    ) -> Result<ReceiverViewWithSecret, AppError> {
        let valid = input.validate(self)?;
        let record = self.receiver_store().create_receiver(valid.new).await?;
        Ok(ReceiverViewWithSecret {
            receiver: self.view(record)?,
            secret: valid.secret,
        })
    }

    /// Every receiver, oldest first.
    pub async fn list_receivers(&self) -> Result<Vec<ReceiverView>, AppError> {
        let records = self.receiver_store().list_receivers().await?;
        records
            .into_iter()
            .map(|record| self.view(record))
            .collect()
    }

    pub async fn receiver(&self, id: ReceiverId) -> Result<ReceiverView, AppError> {
        self.view(self.receiver_record(id).await?)
    }

    pub async fn update_receiver(
        &self,
        id: ReceiverId,
        input: ReceiverUpdate,
    ) -> Result<ReceiverView, AppError> {
        let record = self.receiver_record(id).await?;
        let patch = input.into_patch(self, &record)?;
        let updated = self
            .receiver_store()
            .update_receiver(id, patch)
            .await?
            .ok_or_else(|| AppError::not_found("receiver", id))?;
        self.inner.receivers_seen.forget(id);
        self.view(updated)
    }

    /// Deletes the receiver with its request log; its URL answers 404 from now on.
    pub async fn delete_receiver(&self, id: ReceiverId) -> Result<(), AppError> {
        let deleted = self.receiver_store().delete_receiver(id).await?;
        self.inner.receivers_seen.forget(id);
        if deleted {
            Ok(())
        } else {
            Err(AppError::not_found("receiver", id))
        }
    }

    /// Puts a new secret in force at once; the previous one also verifies
    /// until the grace period ends. An Azure DevOps receiver keeps its username.
    pub async fn rotate_receiver_secret(
        &self,
        id: ReceiverId,
        rotation: SecretRotation,
    ) -> Result<ReceiverViewWithSecret, AppError> {
        let grace = grace_period(rotation.grace_period_seconds)?;
        let secret = parse_secret(rotation.secret.as_deref())?;
        let record = self.receiver_record(id).await?;
        let kind = stored_kind(&record)?;
        let current = credentials::open(self.cipher(), id, &record.credentials_sealed)?;
        let next = credential(
            kind,
            credentials::username(&current).map(str::to_owned),
            secret.clone(),
        );
        let rotated = self
            .receiver_store()
            .rotate_receiver_credentials(id, credentials::seal(self.cipher(), id, &next), grace)
            .await?
            .ok_or_else(|| AppError::not_found("receiver", id))?;
        self.inner.receivers_seen.forget(id);
        Ok(ReceiverViewWithSecret {
            receiver: self.view(rotated)?,
            secret,
        })
    }

    /// A page of the requests the receiver got, newest first.
    pub async fn receiver_requests(
        &self,
        id: ReceiverId,
        filter: RequestFilter,
    ) -> Result<ReceiverRequestPage, AppError> {
        let query = filter.into_query(id)?;
        self.receiver_record(id).await?;
        Ok(self.receiver_store().list_requests(query).await?)
    }

    /// One request the receiver got, with its (redacted) headers and body.
    pub async fn receiver_request(
        &self,
        id: ReceiverId,
        request_id: ReceiverRequestId,
    ) -> Result<ReceiverRequestDetail, AppError> {
        self.receiver_record(id).await?;
        self.receiver_store()
            .get_request(id, request_id)
            .await?
            .ok_or_else(|| AppError::not_found("request", request_id))
    }

    /// The receiver a code host's request names, from the cache when it was
    /// read within the last moment (see [`cache`](crate::receivers::cache)).
    pub(crate) async fn ingest_receiver(
        &self,
        id: ReceiverId,
    ) -> Result<Arc<ReceiverRecord>, AppError> {
        if let Some(record) = self.inner.receivers_seen.get(id) {
            return Ok(record);
        }
        let record = self.receiver_record(id).await?;
        Ok(self.inner.receivers_seen.put(record))
    }

    pub(crate) async fn receiver_record(&self, id: ReceiverId) -> Result<ReceiverRecord, AppError> {
        self.receiver_store()
            .get_receiver(id)
            .await?
            .ok_or_else(|| AppError::not_found("receiver", id))
    }

    fn view(&self, record: ReceiverRecord) -> Result<ReceiverView, AppError> {
        let current = credentials::open(self.cipher(), record.id, &record.credentials_sealed)?;
        let previous_secret_expires_at = credentials::previous_in_grace(&record, Timestamp::now())
            .then_some(record.previous_valid_until)
            .flatten();
        Ok(ReceiverView {
            url: receiver_url(self.external_url(), record.id),
            username: credentials::username(&current).map(str::to_owned),
            previous_secret_expires_at,
            record,
        })
    }
}
