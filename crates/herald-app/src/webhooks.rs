//! Webhooks: register, list, read, change and delete them; read a webhook's
//! secret; send it a test event; requeue its failed deliveries.

use std::time::Duration;

use herald_catalogue::Catalogue;
use herald_catalogue::payloads::operational::Ping;
use herald_core::cipher::SealedColumn;
use herald_core::event_type::{EventTypePattern, parse_patterns};
use herald_core::id::WebhookId;
use herald_core::ordering::DeliveryOrdering;
use herald_core::secret::Secret;
use herald_core::time::Timestamp;
use herald_core::validation::FieldError;
use herald_core::webhook::{TargetUrl, validate_name, validate_project};
use herald_delivery::TestOutcome;
use herald_delivery::guard::{HostRefused, ResolveError, resolve};
use herald_store::{NewWebhook, WebhookPatch, WebhookRecord};

use crate::event_types::suggestions;
use crate::tokens::{Permission, Principal};
use crate::{App, AppError};

/// The event type of the event the Test button sends.
pub const TEST_EVENT_TYPE: &str = "herald:ping";

/// A webhook to create, as a person or a program gave it.
#[derive(Debug)]
pub struct WebhookCreate {
    pub name: String,
    pub url: String,
    /// `None`: Herald generates a `whsec_` secret.
    pub secret: Option<String>,
    pub event_types: Vec<String>,
    /// `None` for a global webhook.
    pub project: Option<String>,
    pub enabled: bool,
    /// `"none"` or `"key"`, as given; `None`: `"none"`.
    pub ordering: Option<String>,
}

/// Changes to a webhook: `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct WebhookUpdate {
    pub name: Option<String>,
    pub url: Option<String>,
    pub secret: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `Some(None)` makes the webhook global.
    pub project: Option<Option<String>>,
    pub enabled: Option<bool>,
    /// `"none"` or `"key"`, as given; applies to events published from then on.
    pub ordering: Option<String>,
}

/// A webhook just created, with its secret: shown once here, and on request
/// to whoever may read secrets.
#[derive(Debug)]
pub struct CreatedWebhook {
    pub record: WebhookRecord,
    pub secret: Secret,
    /// What the person should know about a webhook saved all the same (its
    /// endpoint's address is refused by the guard, say), each with the remedy.
    pub warnings: Vec<String>,
}

struct ValidWebhook {
    name: String,
    url: TargetUrl,
    secret: Secret,
    event_types: Vec<EventTypePattern>,
    project: Option<String>,
    enabled: bool,
    ordering: DeliveryOrdering,
}

impl WebhookCreate {
    fn validate(self) -> Result<ValidWebhook, FieldError> {
        let secret = match self.secret {
            Some(text) => Secret::parse(&text)?,
            None => Secret::generate(),
        };
        Ok(ValidWebhook {
            name: validate_name(&self.name)?,
            url: TargetUrl::parse(&self.url)?,
            secret,
            event_types: parse_patterns(&self.event_types)?,
            project: validate_project(self.project.as_deref())?,
            enabled: self.enabled,
            ordering: self
                .ordering
                .as_deref()
                .map(DeliveryOrdering::validate)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

impl WebhookUpdate {
    /// Validates every present field and seals the URL and secret.
    fn into_patch(self, id: WebhookId, app: &App) -> Result<WebhookPatch, FieldError> {
        let cipher = app.cipher();
        let url_at = SealedColumn::WebhookUrl.of(id.as_uuid());
        let secret_at = SealedColumn::WebhookSecret.of(id.as_uuid());
        let url = self.url.as_deref().map(TargetUrl::parse).transpose()?;
        let secret = self.secret.as_deref().map(Secret::parse).transpose()?;
        Ok(WebhookPatch {
            name: self.name.as_deref().map(validate_name).transpose()?,
            url: url.map(|url| (url.display(), cipher.seal(url.expose().as_bytes(), &url_at))),
            secret_sealed: secret.map(|secret| cipher.seal(secret.expose().as_bytes(), &secret_at)),
            event_types: self
                .event_types
                .as_deref()
                .map(parse_patterns)
                .transpose()?,
            project: self
                .project
                .map(|project| validate_project(project.as_deref()))
                .transpose()?,
            enabled: self.enabled,
            health_overrides: None,
            ordering: self
                .ordering
                .as_deref()
                .map(DeliveryOrdering::validate)
                .transpose()?,
        })
    }
}

impl App {
    /// A `project:<key>` token may create webhooks only in its project.
    pub async fn create_webhook(
        &self,
        by: &Principal,
        input: WebhookCreate,
    ) -> Result<CreatedWebhook, AppError> {
        by.require(Permission::ManageWebhooks)?;
        let valid = input.validate()?;
        by.may_place_in(valid.project.as_deref())?;
        self.check_patterns(&valid.event_types).await?;
        let cipher = self.cipher();
        let id = WebhookId::new();
        let new = NewWebhook {
            health_overrides: Default::default(),
            ordering: valid.ordering,
            id,
            name: valid.name,
            url_display: valid.url.display(),
            url_sealed: cipher.seal(
                valid.url.expose().as_bytes(),
                &SealedColumn::WebhookUrl.of(id.as_uuid()),
            ),
            secret_sealed: cipher.seal(
                valid.secret.expose().as_bytes(),
                &SealedColumn::WebhookSecret.of(id.as_uuid()),
            ),
            event_types: valid.event_types,
            project: valid.project,
            enabled: valid.enabled,
        };
        let record = self
            .store()
            .create_webhook(new, self.limits().max_webhooks_per_scope)
            .await?;
        tracing::info!(
            webhook = %record.id,
            name = %record.name,
            url = %record.url_display,
            enabled = record.enabled,
            "webhook created"
        );
        let mut warnings = self.endpoint_warnings(&valid.url).await;
        warnings.extend(
            valid
                .secret
                .weakness()
                .map(|weak| format!("secret: {weak}")),
        );
        Ok(CreatedWebhook {
            record,
            secret: valid.secret,
            warnings,
        })
    }

    /// Every webhook the principal may see (a project token: its project's),
    /// oldest first.
    pub async fn list_webhooks(&self, by: &Principal) -> Result<Vec<WebhookRecord>, AppError> {
        by.require(Permission::ReadWebhooks)?;
        let mut records = self.store().list_webhooks().await?;
        records.retain(|record| by.sees(record));
        Ok(records)
    }

    pub async fn webhook(&self, by: &Principal, id: WebhookId) -> Result<WebhookRecord, AppError> {
        by.require(Permission::ReadWebhooks)?;
        self.visible_webhook(by, id).await
    }

    /// The webhook, if the principal may see it: one of another project is
    /// not found, so a project token cannot learn which ids exist elsewhere.
    pub(crate) async fn visible_webhook(
        &self,
        by: &Principal,
        id: WebhookId,
    ) -> Result<WebhookRecord, AppError> {
        self.store()
            .get_webhook(id)
            .await?
            .filter(|record| by.sees(record))
            .ok_or_else(|| AppError::not_found("webhook", id))
    }

    /// Enabling clears the reason Herald disabled it; disabling fails its
    /// pending deliveries.
    pub async fn update_webhook(
        &self,
        by: &Principal,
        id: WebhookId,
        input: WebhookUpdate,
    ) -> Result<WebhookRecord, AppError> {
        by.require(Permission::ManageWebhooks)?;
        let patch = input.into_patch(id, self)?;
        self.visible_webhook(by, id).await?;
        if let Some(project) = &patch.project {
            by.may_place_in(project.as_deref())?;
        }
        if let Some(patterns) = &patch.event_types {
            self.check_patterns(patterns).await?;
        }
        let disabling = patch.enabled == Some(false);
        let record = self
            .store()
            .update_webhook(id, patch, self.limits().max_webhooks_per_scope)
            .await?
            .ok_or_else(|| AppError::not_found("webhook", id))?;
        tracing::info!(
            webhook = %record.id,
            name = %record.name,
            url = %record.url_display,
            enabled = record.enabled,
            "webhook updated"
        );
        if disabling {
            tracing::info!(webhook = %record.id, reason = "disabled through the API", "webhook disabled");
        }
        Ok(record)
    }

    /// Deletes the webhook with its deliveries and their attempts.
    pub async fn delete_webhook(&self, by: &Principal, id: WebhookId) -> Result<(), AppError> {
        by.require(Permission::ManageWebhooks)?;
        self.visible_webhook(by, id).await?;
        if self.store().delete_webhook(id).await? {
            tracing::info!(webhook = %id, "webhook deleted");
            Ok(())
        } else {
            Err(AppError::not_found("webhook", id))
        }
    }

    pub async fn webhook_secret(&self, by: &Principal, id: WebhookId) -> Result<Secret, AppError> {
        by.require(Permission::ManageWebhooks)?;
        let record = self.visible_webhook(by, id).await?;
        let opened = self.cipher().open(
            &record.secret_sealed,
            &SealedColumn::WebhookSecret.of(id.as_uuid()),
        )?;
        let secret = String::from_utf8(opened)
            .map_err(|e| AppError::internal("a stored secret is not UTF-8", &e))?;
        Ok(Secret::from_stored(secret))
    }

    /// Sends a test event now, signed like any delivery, and waits for the
    /// answer; nothing is stored.
    pub async fn test_webhook(
        &self,
        by: &Principal,
        id: WebhookId,
    ) -> Result<TestOutcome, AppError> {
        by.require(Permission::ManageWebhooks)?;
        let record = self.visible_webhook(by, id).await?;
        let (event_type, payload) = test_event(&record, &self.catalogue().current());
        self.engine()
            .send_test(&record, &event_type, payload)
            .await
            .map_err(|unsealable| AppError::unavailable(unsealable.to_string()))
    }

    /// Queues every failed delivery created since `since` for another attempt
    /// now; answers how many.
    pub async fn recover_webhook(
        &self,
        by: &Principal,
        id: WebhookId,
        since: Timestamp,
    ) -> Result<u64, AppError> {
        by.require(Permission::ManageWebhooks)?;
        if !self.visible_webhook(by, id).await?.enabled {
            return Err(AppError::webhook_disabled(id));
        }
        let requeued = self.store().recover(id, since).await?;
        if requeued > 0 {
            self.engine().wake();
        }
        Ok(requeued)
    }

    /// Refuses patterns that match no type in the catalogue (reloaded once
    /// first: another node may have registered the type): such a webhook would
    /// never receive anything for them.
    pub(crate) async fn check_patterns(
        &self,
        patterns: &[EventTypePattern],
    ) -> Result<(), AppError> {
        let mut catalogue = self.catalogue().current();
        if !patterns.iter().all(|p| catalogue.matches_any(p)) {
            catalogue = self.catalogue().reload().await?;
        }
        let Some((i, unmatched)) = patterns
            .iter()
            .enumerate()
            .find(|(_, p)| !catalogue.matches_any(p))
        else {
            return Ok(());
        };
        let wanted = unmatched.as_str().trim_end_matches('*');
        let nearest = suggestions(&catalogue, wanted);
        let hint = match nearest.as_slice() {
            [] => String::new(),
            some => format!(" (nearest: {})", some.join(", ")),
        };
        let message = format!(
            "{:?} matches no event type in the catalogue{hint}; GET /api/v1/event-types lists them, and POST registers a custom one",
            unmatched.as_str()
        );
        Err(AppError::unknown_event_type(
            &format!("event_types[{i}]"),
            format!("event_types[{i}]: {message}"),
            nearest,
        ))
    }
}

/// How long creating a webhook waits for its host's addresses before it
/// answers without the guard's verdict.
const RESOLVE_FOR_WARNINGS: Duration = Duration::from_secs(2);

impl App {
    /// Warnings about where deliveries would go: an endpoint whose every
    /// address the guard refuses would fail each delivery at once, which a
    /// person creating it on one machine (`http://127.0.0.1:...`) should hear
    /// now, with the remedy. A name that does not resolve here gets no warning:
    /// it may resolve where and when deliveries run.
    async fn endpoint_warnings(&self, url: &TargetUrl) -> Vec<String> {
        let target = url.request_url();
        let (Some(host), Some(port)) = (target.host_str(), target.port_or_known_default()) else {
            return Vec::new();
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let guard = self.guard().clone();
        let lookup = tokio::task::spawn_blocking(move || resolve(&guard, &host, port));
        match tokio::time::timeout(RESOLVE_FOR_WARNINGS, lookup).await {
            Ok(Ok(Err(ResolveError::Refused(refused)))) => vec![refused_warning(&refused)],
            _ => Vec::new(),
        }
    }
}

fn refused_warning(refused: &HostRefused) -> String {
    let ip = refused.refusal.ip;
    let prefix = if ip.is_ipv4() { 32 } else { 128 };
    format!(
        "url: every delivery will fail at once: {refused}. If this endpoint is meant to be \
         reached, start Herald with --allow-cidr {ip}/{prefix} (or allow_cidr in its configuration)"
    )
}

/// The event a test sends: for a webhook subscribed to exactly one type (no
/// `*`), that type's example payload, so its receiver sees what it will get;
/// otherwise a `herald:ping`.
fn test_event(webhook: &WebhookRecord, catalogue: &Catalogue) -> (String, Vec<u8>) {
    if let [only] = webhook.event_types.as_slice()
        && !only.as_str().ends_with('*')
        && let Some(payload) = catalogue.test_payload(only.as_str())
    {
        return (only.as_str().to_owned(), payload);
    }
    let ping = Ping::new(webhook.id, Timestamp::now());
    (TEST_EVENT_TYPE.to_owned(), ping.to_payload())
}
