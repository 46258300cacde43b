//! Records that cross the store interface.

use std::collections::BTreeMap;
use std::time::Duration;

use herald_core::event_type::EventTypePattern;
use herald_core::id::{AttemptId, DeliveryId, EventId, WebhookId};
use herald_core::ordering::DeliveryOrdering;
use herald_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::health::{HealthOverrides, ShownHealth, WebhookHealth};

/// A webhook as stored. The URL (which may carry basic-auth credentials) and the
/// secret are sealed by the caller; the store never sees them in clear.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRecord {
    pub id: WebhookId,
    pub name: String,
    /// The URL with any credentials obscured, safe to show.
    pub url_display: String,
    pub url_sealed: Vec<u8>,
    pub secret_sealed: Vec<u8>,
    pub event_types: Vec<EventTypePattern>,
    /// `None` for a global webhook.
    pub project: Option<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// The endpoint's health, which the engine moves (see [`crate::health`]).
    pub health: WebhookHealth,
    /// The webhook's own health settings.
    pub health_overrides: HealthOverrides,
    /// The webhook's own limits on how fast it is sent to.
    pub flow_limits: FlowLimits,
    /// Whether deliveries of events with the same ordering key go one at a
    /// time, in publish order (decided for each delivery when it is published).
    pub ordering: DeliveryOrdering,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl WebhookRecord {
    /// Whether deliveries flow, as a person sees it: the endpoint's health,
    /// except that a webhook a person disabled is disabled whatever its
    /// endpoint did.
    pub fn shown_health(&self, now: Timestamp) -> ShownHealth {
        if self.enabled {
            self.health.shown(now)
        } else {
            ShownHealth::Disabled
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub id: WebhookId,
    pub name: String,
    pub url_display: String,
    pub url_sealed: Vec<u8>,
    pub secret_sealed: Vec<u8>,
    pub event_types: Vec<EventTypePattern>,
    pub project: Option<String>,
    pub enabled: bool,
    pub health_overrides: HealthOverrides,
    pub ordering: DeliveryOrdering,
    pub flow_limits: FlowLimits,
}

/// A webhook's own limits on how fast it is sent to, on top of the node's;
/// `None`: no limit of its own. Each node enforces them on its own attempts
/// (the engine's flow control): with N nodes the webhook may see up to N
/// times either limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlowLimits {
    /// Attempts in flight to the webhook at once (the node's
    /// `max_in_flight_per_webhook` still applies).
    pub max_in_flight: Option<u32>,
    /// Attempts started per second (a token bucket holding a tenth of a second's worth).
    pub max_per_second: Option<u32>,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub name: Option<String>,
    /// `(url_display, url_sealed)`.
    pub url: Option<(String, Vec<u8>)>,
    pub secret_sealed: Option<Vec<u8>>,
    pub event_types: Option<Vec<EventTypePattern>>,
    /// `Some(None)` makes the webhook global.
    pub project: Option<Option<String>>,
    /// `Some(true)` also makes the endpoint's health start afresh, which is
    /// how a person enables a webhook the engine disabled.
    pub enabled: Option<bool>,
    pub settings: SettingsChange,
    /// Applies to deliveries published from then on.
    pub ordering: Option<DeliveryOrdering>,
}

/// Changes to a webhook's own delivery settings, each merged into the
/// stored webhook under the store's lock, so that two changes naming
/// different settings both stand. `None` leaves a setting as it is;
/// `Some(None)` returns it to the node's (for the limits: none of its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettingsChange {
    pub failing_after: Option<Option<u32>>,
    /// As a person gives it: `Some(Some(0))` switches auto-disable off.
    pub disable_after: Option<Option<u32>>,
    pub max_in_flight: Option<Option<u32>>,
    pub max_per_second: Option<Option<u32>>,
}

impl SettingsChange {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: EventId,
    pub event_type: String,
    pub project: Option<String>,
    /// The payload's exact JSON bytes: what is signed and sent.
    pub payload: Vec<u8>,
    pub properties: BTreeMap<String, String>,
    /// Deliveries to webhooks ordered by key go one at a time, in publish
    /// order, among the events with this key. `None`: never held back.
    pub ordering_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: EventId,
    pub event_type: String,
    pub project: Option<String>,
    pub payload: Vec<u8>,
    pub properties: BTreeMap<String, String>,
    pub ordering_key: Option<String>,
    pub created_at: Timestamp,
}

/// The answer to a publish, stored with its idempotency key so a retry gets it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub event_id: EventId,
    pub deliveries: u32,
    /// True when an idempotency key matched an earlier publish and nothing new was stored.
    pub replayed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub webhook_id: WebhookId,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts made so far, in total.
    pub attempts: u32,
    /// For pending deliveries: when the next attempt is due (or the lease
    /// ends); `None` while it waits behind an earlier delivery of its
    /// ordering key.
    pub next_attempt_at: Option<Timestamp>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One HTTP attempt, as the delivery log shows it. Header values that carry
/// secrets are redacted by the caller before they get here.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub id: AttemptId,
    pub delivery_id: DeliveryId,
    /// 1 for the first attempt of the delivery.
    pub number: u32,
    pub started_at: Timestamp,
    pub duration_ms: u32,
    /// With credentials obscured.
    pub request_url: String,
    pub request_headers: Vec<(String, String)>,
    /// Absent when no response came (transport error, timeout, refused address).
    pub response_status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    /// Capped by the caller.
    pub response_body: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryDetail {
    pub delivery: DeliveryRecord,
    pub event: EventRecord,
    /// Oldest first.
    pub attempts: Vec<AttemptRecord>,
}

#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub limit: usize,
    pub lease: Duration,
    /// Webhooks already at their in-flight limit on this node.
    pub skip_webhooks: Vec<WebhookId>,
}

/// The pending deliveries by state, for the backlog gauges: a snapshot that
/// costs index seeks and range counts over the pending deliveries' index,
/// never a scan of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Due now (expired leases included): waiting for a free slot.
    pub due: u64,
    /// Waiting for a retry later, not leased.
    pub scheduled: u64,
    /// Being attempted: leased, and the lease still runs.
    pub leased: u64,
    /// Waiting behind an earlier delivery of their ordering key.
    pub waiting: u64,
    /// When the longest-waiting due delivery fell due.
    pub oldest_due_at: Option<Timestamp>,
}

/// Finished deliveries created within a recent window, by outcome: range
/// counts over the finished deliveries' indexes, never a scan of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FinishedCounts {
    pub succeeded: u64,
    /// Failed for good: retries exhausted, the endpoint gone, or the webhook
    /// disabled or deleted by a person.
    pub failed: u64,
}

/// What `/readyz` asks of the store: the schema version the database is at
/// against the one this build writes, and the key check the database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub schema_version: i64,
    pub expected_schema_version: i64,
    /// `None` before a node has adopted its key.
    pub key_check: Option<Vec<u8>>,
}

/// Proves a claim is still the current one when its attempt is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseToken(pub i64);

#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub delivery_id: DeliveryId,
    pub lease: LeaseToken,
    /// The number this attempt will have in the log (1-based).
    pub attempt_number: u32,
    /// Failed attempts since the retry schedule last started (0 on a first try, a
    /// redelivery or a recovery); the schedule's position.
    pub failures_in_schedule: u32,
    /// When the delivery fell due, before the claim moved it to the lease's
    /// end (by the store's clock): how late the attempt starts.
    pub due_at: Timestamp,
    pub event: EventRecord,
    pub webhook: WebhookRecord,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum NextStep {
    Succeeded,
    /// Try again after this delay.
    RetryIn(Duration),
    /// The receiver asked for this wait (a 429 or 503 with `Retry-After`):
    /// try again after it without using up a retry of the schedule.
    Deferred(Duration),
    /// Give up: the schedule is exhausted or the target is refused. Stays redeliverable.
    Failed,
    /// Give up and disable the webhook with this reason (a 410 Gone).
    FailedAndDisableWebhook {
        reason: String,
    },
}

/// How a [`NextStep`] leaves the delivery's row: the one reading of it that
/// every store writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MovedOn {
    pub status: DeliveryStatus,
    /// Due again after this, when it stays pending.
    pub retry_in: Option<Duration>,
    /// Whether the attempt used up one retry of the schedule.
    pub uses_a_retry: bool,
}

impl NextStep {
    pub fn moved_on(&self) -> MovedOn {
        let (status, retry_in, uses_a_retry) = match self {
            Self::Succeeded => (DeliveryStatus::Succeeded, None, false),
            Self::RetryIn(delay) => (DeliveryStatus::Pending, Some(*delay), true),
            Self::Deferred(delay) => (DeliveryStatus::Pending, Some(*delay), false),
            Self::Failed | Self::FailedAndDisableWebhook { .. } => {
                (DeliveryStatus::Failed, None, true)
            }
        };
        MovedOn {
            status,
            retry_in,
            uses_a_retry,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub lease: LeaseToken,
    pub attempt: AttemptRecord,
    pub next: NextStep,
}

#[derive(Debug, Clone)]
pub struct DeliveryQuery {
    pub webhook_id: WebhookId,
    pub status: Option<DeliveryStatus>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
    /// The last id of the previous page.
    pub cursor: Option<DeliveryId>,
    pub limit: u32,
}

#[derive(Debug, Clone)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryRecord>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<DeliveryId>,
}

#[derive(Debug, Clone, Copy)]
pub struct PurgePolicy {
    pub retention: Duration,
    pub idempotency_ttl: Duration,
    pub batch: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
    pub idempotency_keys: u64,
}

/// Scope label used in limit messages: `project "x"` or `global scope`.
pub fn scope_label(project: Option<&str>) -> String {
    match project {
        Some(key) => format!("project {key:?}"),
        None => "the global scope".to_owned(),
    }
}
