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

payload_bytes!(WebhookDisabled, DeliveryExhausted, DeliveryRecovered, Ping);
