//! Bodies of the operational events Herald publishes about itself (`herald:*`).
//! Field order is declaration order; the schemas in `builtin::herald` list the same
//! fields, and a test checks each builder against its type's example.
//!
//! None of them carries a target URL: it may hold basic-auth credentials. Receivers
//! look the webhook up by `webhook_id`.

use herald_core::id::{DeliveryId, EventId, WebhookId};
use herald_core::time::Timestamp;
use serde::Serialize;

use super::to_bytes;

/// Why Herald stopped delivering to a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisableReason {
    /// The target answered 410 Gone: it asked to be unsubscribed.
    Gone,
    /// The failure policy gave up on the target (failing for too long).
    FailurePolicy,
}

/// `herald:webhook.disabled`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookDisabled {
    pub webhook_id: WebhookId,
    pub reason: DisableReason,
    /// The HTTP status that decided it (410 for `gone`), if there was a response.
    pub status: Option<u16>,
    /// Human-readable explanation, e.g. which policy and since when.
    pub detail: String,
    pub disabled_at: Timestamp,
}

/// `herald:webhook.failing`: `failing_after` attempts at the webhook failed in
/// a row (once per run of failures; it is paused at the same time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookFailing {
    pub webhook_id: WebhookId,
    pub consecutive_failures: u32,
    /// When the first of those failed attempts was noted.
    pub failing_since: Timestamp,
    /// Why the last one failed.
    pub last_error: Option<String>,
    pub failing_at: Timestamp,
}

/// `herald:webhook.paused`: its endpoint kept failing, so no attempts at the
/// webhook until `paused_until`, then one probe. Sent for the first pause of
/// a run of failures (with `herald:webhook.failing`); the later ones, after
/// each failed probe, show in the webhook's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookPaused {
    pub webhook_id: WebhookId,
    pub consecutive_failures: u32,
    pub paused_until: Timestamp,
    pub paused_at: Timestamp,
}

/// `herald:webhook.recovered`: a success after the webhook was paused; its
/// backlog is released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookRecovered {
    pub webhook_id: WebhookId,
    /// Failed attempts in a row before the success.
    pub failed_attempts: u32,
    pub failing_since: Option<Timestamp>,
    pub recovered_at: Timestamp,
}

/// `herald:delivery.exhausted`: the retry schedule ran out for one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryExhausted {
    pub webhook_id: WebhookId,
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub event_type: String,
    pub attempts: u32,
    /// The last attempt's HTTP status; `None` when it got no response.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, when it got no response (timeout, refused…).
    pub last_error: Option<String>,
    pub exhausted_at: Timestamp,
}

/// `herald:delivery.recovered`: a webhook's first success after failed attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecovered {
    pub webhook_id: WebhookId,
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub event_type: String,
    /// The HTTP status of the successful attempt.
    pub status: u16,
    /// Consecutive failed attempts at this webhook before this success.
    pub failed_attempts: u32,
    /// When the first of those failed attempts was made.
    pub failing_since: Timestamp,
    pub recovered_at: Timestamp,
}

/// `herald:ping`: the test event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ping {
    pub webhook_id: WebhookId,
    pub message: String,
    pub sent_at: Timestamp,
}

pub const PING_MESSAGE: &str = "Test event from Herald";

impl Ping {
    pub fn new(webhook_id: WebhookId, sent_at: Timestamp) -> Self {
        Self {
            webhook_id,
            message: PING_MESSAGE.to_owned(),
            sent_at,
        }
    }
}

macro_rules! payload_bytes {
    ($($ty:ty),*) => {$(
        impl $ty {
            /// The compact JSON body, fields in declaration order.
            pub fn to_payload(&self) -> Vec<u8> {
                to_bytes(self)
            }
        }
    )*};
}

payload_bytes!(
    WebhookDisabled,
    WebhookFailing,
    WebhookPaused,
    WebhookRecovered,
    DeliveryExhausted,
    DeliveryRecovered,
    Ping
);
