//! The operational events the engine publishes about its own deliveries:
//! `herald:webhook.disabled` (a 410 Gone disabled the webhook),
//! `herald:delivery.exhausted` (a delivery's retry schedule ran out) and
//! `herald:delivery.recovered`; and about its endpoints' health, from the
//! changes the store returned ([`health_reports`]): `herald:webhook.failing`,
//! `herald:webhook.paused`, `herald:webhook.disabled` (reason
//! `failure_policy`) and `herald:webhook.recovered`.
//!
//! Recovery is per webhook: the first successful attempt at a webhook after one
//! or more failed attempts at it, whichever deliveries they were. A webhook
//! that is down for a while thus reports one recovery, not one per retried
//! delivery. The failure streaks live in this node's memory: attempts another
//! node made, or made before a restart, do not count.
//!
//! The caller leaves out attempts at `herald:*` events, so an operational event
//! never reports on the delivery of another one.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use herald_catalogue::keys::{
    HERALD_DELIVERY_EXHAUSTED, HERALD_DELIVERY_RECOVERED, HERALD_WEBHOOK_DISABLED,
    HERALD_WEBHOOK_FAILING, HERALD_WEBHOOK_PAUSED, HERALD_WEBHOOK_RECOVERED,
};
use herald_catalogue::payloads::operational::{
    DeliveryExhausted, DeliveryRecovered, DisableReason, WebhookDisabled, WebhookFailing,
    WebhookPaused, WebhookRecovered,
};
use herald_core::id::{EventId, WebhookId};
use herald_core::time::Timestamp;
use herald_store::{AttemptOutcome, HealthChange, NewEvent, NextStep, WebhookRecord};

/// One recorded attempt, as the reports need it.
pub(crate) struct Operational<'a> {
    pub webhook: &'a WebhookRecord,
    pub event_id: EventId,
    pub event_type: &'a str,
    pub outcome: &'a AttemptOutcome,
    /// The delivery failed because its retry schedule ran out (not because its
    /// target is refused or the webhook was disabled).
    pub exhausted: bool,
}

#[derive(Debug, Clone, Copy)]
struct Streak {
    failed_attempts: u32,
    since: Timestamp,
}

/// Consecutive failed attempts per webhook on this node.
#[derive(Default)]
pub(crate) struct Streaks(Mutex<HashMap<WebhookId, Streak>>);

impl Streaks {
    /// Notes the attempt and returns the operational events it calls for.
    pub fn reports(&self, attempt: &Operational<'_>) -> Vec<NewEvent> {
        let webhook_id = attempt.webhook.id;
        let record = &attempt.outcome.attempt;
        let mut streaks = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let mut reports = Vec::new();
        match &attempt.outcome.next {
            NextStep::Succeeded => {
                if let (Some(streak), Some(status)) =
                    (streaks.remove(&webhook_id), record.response_status)
                {
                    let recovered = DeliveryRecovered {
                        webhook_id,
                        delivery_id: record.delivery_id,
                        event_id: attempt.event_id,
                        event_type: attempt.event_type.to_owned(),
                        status,
                        failed_attempts: streak.failed_attempts,
                        failing_since: streak.since,
                        recovered_at: Timestamp::now(),
                    };
                    reports.push(event(
                        attempt.webhook,
                        HERALD_DELIVERY_RECOVERED,
                        recovered.to_payload(),
                    ));
                }
            }
            NextStep::FailedAndDisableWebhook { reason } => {
                // The disabling is the news; enabling the webhook again starts afresh.
                streaks.remove(&webhook_id);
                let disabled = WebhookDisabled {
                    webhook_id,
                    reason: DisableReason::Gone,
                    status: record.response_status,
                    detail: reason.clone(),
                    disabled_at: Timestamp::now(),
                };
                reports.push(event(
                    attempt.webhook,
                    HERALD_WEBHOOK_DISABLED,
                    disabled.to_payload(),
                ));
            }
            // The receiver asked for a wait: flow control, not a failure.
            NextStep::Deferred(_) => {}
            NextStep::RetryIn(_) | NextStep::Failed => {
                let streak = streaks.entry(webhook_id).or_insert(Streak {
                    failed_attempts: 0,
                    since: record.started_at,
                });
                streak.failed_attempts = streak.failed_attempts.saturating_add(1);
                streak.since = streak.since.min(record.started_at);
                if attempt.exhausted {
                    let exhausted = DeliveryExhausted {
                        webhook_id,
                        delivery_id: record.delivery_id,
                        event_id: attempt.event_id,
                        event_type: attempt.event_type.to_owned(),
                        attempts: record.number,
                        last_status: record.response_status,
                        last_error: record.error.clone(),
                        exhausted_at: Timestamp::now(),
                    };
                    reports.push(event(
                        attempt.webhook,
                        HERALD_DELIVERY_EXHAUSTED,
                        exhausted.to_payload(),
                    ));
                }
            }
        }
        reports
    }
}

/// The events the store's health changes call for, in order.
pub(crate) fn health_reports(webhook: &WebhookRecord, changes: &[HealthChange]) -> Vec<NewEvent> {
    let webhook_id = webhook.id;
    let now = Timestamp::now();
    changes
        .iter()
        .map(|change| match change {
            HealthChange::Failing {
                consecutive_failures,
                since,
                last_error,
            } => event(
                webhook,
                HERALD_WEBHOOK_FAILING,
                WebhookFailing {
                    webhook_id,
                    consecutive_failures: *consecutive_failures,
                    failing_since: *since,
                    last_error: last_error.clone(),
                    failing_at: now,
                }
                .to_payload(),
            ),
            HealthChange::Paused {
                until,
                consecutive_failures,
            } => event(
                webhook,
                HERALD_WEBHOOK_PAUSED,
                WebhookPaused {
                    webhook_id,
                    consecutive_failures: *consecutive_failures,
                    paused_until: *until,
                    paused_at: now,
                }
                .to_payload(),
            ),
            HealthChange::Disabled { reason, .. } => event(
                webhook,
                HERALD_WEBHOOK_DISABLED,
                WebhookDisabled {
                    webhook_id,
                    reason: DisableReason::FailurePolicy,
                    status: None,
                    detail: reason.clone(),
                    disabled_at: now,
                }
                .to_payload(),
            ),
            HealthChange::Recovered {
                failed_attempts,
                failing_since,
            } => event(
                webhook,
                HERALD_WEBHOOK_RECOVERED,
                WebhookRecovered {
                    webhook_id,
                    failed_attempts: *failed_attempts,
                    failing_since: *failing_since,
                    recovered_at: now,
                }
                .to_payload(),
            ),
        })
        .collect()
}

/// An operational event in the webhook's scope: its project's webhooks and the
/// global ones may subscribe to news about it.
fn event(webhook: &WebhookRecord, event_type: &str, payload: Vec<u8>) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        event_type: event_type.to_owned(),
        project: webhook.project.clone(),
        payload,
        properties: Default::default(),
        ordering_key: None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use herald_core::id::{AttemptId, DeliveryId};
    use herald_store::{AttemptRecord, LeaseToken};
    use serde_json::Value;

    use super::*;

    fn webhook() -> WebhookRecord {
        WebhookRecord {
            health: Default::default(),
            health_overrides: Default::default(),
            flow_limits: Default::default(),
            ordering: Default::default(),
            id: WebhookId::new(),
            name: "w".into(),
            url_display: "https://hooks.example.com/".into(),
            url_sealed: vec![],
            secret_sealed: vec![],
            event_types: vec![],
            project: Some("alpha".into()),
            enabled: true,
            disabled_reason: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn outcome(
        number: u32,
        started_ms: i64,
        status: Option<u16>,
        next: NextStep,
    ) -> AttemptOutcome {
        AttemptOutcome {
            lease: LeaseToken(1),
            attempt: AttemptRecord {
                id: AttemptId::new(),
                delivery_id: DeliveryId::new(),
                number,
                started_at: Timestamp(started_ms),
                duration_ms: 1,
                request_url: "https://hooks.example.com/".into(),
                request_headers: vec![],
                response_status: status,
                response_headers: vec![],
                response_body: None,
                error: status.is_none().then(|| "connection refused".into()),
            },
            next,
        }
    }

    fn reports(
        streaks: &Streaks,
        webhook: &WebhookRecord,
        outcome: &AttemptOutcome,
        exhausted: bool,
    ) -> Vec<NewEvent> {
        streaks.reports(&Operational {
            webhook,
            event_id: EventId::new(),
            event_type: "changeset:update",
            outcome,
            exhausted,
        })
    }

    fn payload(event: &NewEvent) -> Value {
        serde_json::from_slice(&event.payload).unwrap()
    }

    #[test]
    fn a_webhook_recovers_once_after_a_streak_of_failures() {
        let (streaks, hook) = (Streaks::default(), webhook());
        let retry = NextStep::RetryIn(Duration::from_secs(1));
        assert!(
            reports(
                &streaks,
                &hook,
                &outcome(1, 2_000, Some(500), retry.clone()),
                false
            )
            .is_empty()
        );
        assert!(reports(&streaks, &hook, &outcome(1, 1_000, None, retry), false).is_empty());
        let recovered = reports(
            &streaks,
            &hook,
            &outcome(2, 3_000, Some(204), NextStep::Succeeded),
            false,
        );
        assert_eq!(recovered.len(), 1);
        assert_eq!(recovered[0].event_type, HERALD_DELIVERY_RECOVERED);
        assert_eq!(recovered[0].project.as_deref(), Some("alpha"));
        let body = payload(&recovered[0]);
        assert_eq!(body["failed_attempts"], 2);
        assert_eq!(body["status"], 204);
        assert_eq!(
            body["failing_since"],
            Value::String(Timestamp(1_000).to_rfc3339())
        );
        let again = reports(
            &streaks,
            &hook,
            &outcome(2, 4_000, Some(200), NextStep::Succeeded),
            false,
        );
        assert!(again.is_empty(), "the streak ended with the first success");
    }

    #[test]
    fn successes_without_failures_report_nothing() {
        let (streaks, hook) = (Streaks::default(), webhook());
        assert!(
            reports(
                &streaks,
                &hook,
                &outcome(1, 0, Some(200), NextStep::Succeeded),
                false
            )
            .is_empty()
        );
    }

    #[test]
    fn an_exhausted_schedule_is_reported_with_the_last_answer() {
        let (streaks, hook) = (Streaks::default(), webhook());
        let exhausted = reports(
            &streaks,
            &hook,
            &outcome(4, 0, Some(502), NextStep::Failed),
            true,
        );
        assert_eq!(exhausted.len(), 1);
        assert_eq!(exhausted[0].event_type, HERALD_DELIVERY_EXHAUSTED);
        let body = payload(&exhausted[0]);
        assert_eq!(
            (body["attempts"].clone(), body["last_status"].clone()),
            (4.into(), 502.into())
        );
        let refused = reports(
            &streaks,
            &hook,
            &outcome(1, 0, None, NextStep::Failed),
            false,
        );
        assert!(
            refused.is_empty(),
            "a refused target did not run out of retries"
        );
    }

    #[test]
    fn health_changes_become_their_events_in_order() {
        let hook = webhook();
        let until = Timestamp(5_000);
        let changes = [
            HealthChange::Failing {
                consecutive_failures: 4,
                since: Timestamp(1_000),
                last_error: Some("HTTP 502".into()),
            },
            HealthChange::Paused {
                until,
                consecutive_failures: 4,
            },
            HealthChange::Disabled {
                reason: "the endpoint failed 40 attempts in a row".into(),
                consecutive_failures: 40,
                last_error: None,
            },
            HealthChange::Recovered {
                failed_attempts: 5,
                failing_since: Some(Timestamp(1_000)),
            },
        ];
        let reports = health_reports(&hook, &changes);
        let types: Vec<&str> = reports.iter().map(|r| r.event_type.as_str()).collect();
        assert_eq!(
            types,
            [
                HERALD_WEBHOOK_FAILING,
                HERALD_WEBHOOK_PAUSED,
                HERALD_WEBHOOK_DISABLED,
                HERALD_WEBHOOK_RECOVERED
            ]
        );
        assert!(
            reports
                .iter()
                .all(|r| r.project.as_deref() == Some("alpha"))
        );
        let paused = payload(&reports[1]);
        assert_eq!(paused["paused_until"], Value::String(until.to_rfc3339()));
        let disabled = payload(&reports[2]);
        assert_eq!(disabled["reason"], "failure_policy");
        assert_eq!(disabled["status"], Value::Null);
        assert_eq!(payload(&reports[3])["failed_attempts"], 5);
    }

    #[test]
    fn a_410_reports_the_webhook_disabled() {
        let (streaks, hook) = (Streaks::default(), webhook());
        let next = NextStep::FailedAndDisableWebhook {
            reason: "the receiver answered 410 Gone".into(),
        };
        let disabled = reports(&streaks, &hook, &outcome(1, 0, Some(410), next), false);
        assert_eq!(disabled.len(), 1);
        assert_eq!(disabled[0].event_type, HERALD_WEBHOOK_DISABLED);
        let body = payload(&disabled[0]);
        assert_eq!(body["reason"], "gone");
        assert_eq!(body["status"], 410);
        assert_eq!(body["webhook_id"], hook.id.to_string());
    }
}
