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
use herald_store::{
    FlowLimits, HealthOverrides, NewWebhook, SettingsChange, WebhookPatch, WebhookRecord,
};

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
    pub settings: DeliverySettings,
}

/// A webhook's own delivery settings: `None` in each takes the node's
/// (`[delivery.health]`; for the limits, no limit of the webhook's own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Failed attempts in a row that pause the webhook.
    pub failing_after: Option<u32>,
    /// Failed attempts in a row that disable it; 0: never.
    pub disable_after: Option<u32>,
    /// Attempts in flight to it at once, on each node.
    pub max_in_flight: Option<u32>,
    /// Attempts started per second, on each node.
    pub max_per_second: Option<u32>,
}

/// The most failures in a row a webhook's own `failing_after` may wait for.
pub const MOST_FAILING_AFTER: u32 = 10_000;
/// The most failures in a row a webhook's own `disable_after` may wait for.
pub const MOST_DISABLE_AFTER: u32 = 100_000;
/// The largest own `max_in_flight` (the node's per-webhook bound still applies).
pub const MOST_IN_FLIGHT: u32 = 10_000;
/// The largest own `max_per_second`.
pub const MOST_PER_SECOND: u32 = 100_000;

impl DeliverySettings {
    /// The settings a webhook has, as a person gives them.
    pub fn of(record: &WebhookRecord) -> Self {
        Self {
            failing_after: record.health_overrides.failing_after,
            disable_after: record
                .health_overrides
                .disable_after
                .map(|after| after.unwrap_or(0)),
            max_in_flight: record.flow_limits.max_in_flight,
            max_per_second: record.flow_limits.max_per_second,
        }
    }

    fn validate(self) -> Result<(HealthOverrides, FlowLimits), FieldError> {
        check_range(
            "failing_after",
            self.failing_after,
            1..=MOST_FAILING_AFTER,
            "failed attempts in a row that pause the webhook; null: the node's setting",
        )?;
        check_range(
            "disable_after",
            self.disable_after,
            0..=MOST_DISABLE_AFTER,
            "failed attempts in a row that disable the webhook, 0 never; null: the node's setting",
        )?;
        check_range(
            "max_in_flight",
            self.max_in_flight,
            1..=MOST_IN_FLIGHT,
            "attempts in flight to the webhook at once, on each node; null: no limit of its own",
        )?;
        check_range(
            "max_per_second",
            self.max_per_second,
            1..=MOST_PER_SECOND,
            "attempts started per second, on each node; null: no limit of its own",
        )?;
        let health = HealthOverrides {
            failing_after: self.failing_after,
            disable_after: HealthOverrides::disable_after_given(self.disable_after),
        };
        let limits = FlowLimits {
            max_in_flight: self.max_in_flight,
            max_per_second: self.max_per_second,
        };
        Ok((health, limits))
    }
}

fn check_range(
    field: &str,
    value: Option<u32>,
    range: std::ops::RangeInclusive<u32>,
    meaning: &str,
) -> Result<(), FieldError> {
    match value {
        Some(n) if !range.contains(&n) => Err(FieldError::new(
            field,
            format!(
                "{field} must be from {} to {} ({meaning}); got {n}",
                range.start(),
                range.end()
            ),
        )),
        _ => Ok(()),
    }
}

impl DeliverySettings {
    /// The settings a change names, each alone: enough to check them, as
    /// each is checked on its own.
    fn named_in(change: SettingsChange) -> Self {
        Self {
            failing_after: change.failing_after.flatten(),
            disable_after: change.disable_after.flatten(),
            max_in_flight: change.max_in_flight.flatten(),
            max_per_second: change.max_per_second.flatten(),
        }
    }
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
    pub settings: SettingsChange,
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
    health_overrides: HealthOverrides,
    flow_limits: FlowLimits,
    ordering: DeliveryOrdering,
}

impl WebhookCreate {
    fn validate(self) -> Result<ValidWebhook, FieldError> {
        let secret = match self.secret {
            Some(text) => Secret::parse(&text)?,
            None => Secret::generate(),
        };
        let (health_overrides, flow_limits) = self.settings.validate()?;
        Ok(ValidWebhook {
            name: validate_name(&self.name)?,
            url: TargetUrl::parse(&self.url)?,
            secret,
            event_types: parse_patterns(&self.event_types)?,
            project: validate_project(self.project.as_deref())?,
            enabled: self.enabled,
            health_overrides,
            flow_limits,
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
    /// Validates every present field and seals the URL and secret. The
    /// store merges the delivery settings it names into the webhook's own.
    fn into_patch(self, id: WebhookId, app: &App) -> Result<WebhookPatch, FieldError> {
        DeliverySettings::named_in(self.settings).validate()?;
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
            settings: self.settings,
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
            health_overrides: valid.health_overrides,
            flow_limits: valid.flow_limits,
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
