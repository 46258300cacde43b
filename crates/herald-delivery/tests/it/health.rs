//! Endpoint health with real receivers: a dead endpoint's webhook is paused,
//! probed and recovered with nothing lost or skipped; one disabled for
//! failing keeps its backlog and delivers it when a person enables it; a
//! `Retry-After` throttles the whole webhook. Pauses are compressed to
//! fractions of a second through `DeliveryConfig::health`.

use std::collections::BTreeSet;
use std::time::Duration;

use herald_catalogue::keys::{
    HERALD_WEBHOOK_DISABLED, HERALD_WEBHOOK_FAILING, HERALD_WEBHOOK_PAUSED,
    HERALD_WEBHOOK_RECOVERED,
};
use herald_core::id::WebhookId;
use herald_core::secret::Secret;
use herald_delivery::DeliveryConfig;
use herald_store::{DeliveryStatus, HealthPolicy, HealthState, WebhookPatch};
use serde_json::Value;

use crate::receiver::{Hit, Receiver};
use crate::{Harness, config, eventually, fast_schedule};

fn header<'a>(hit: &'a Hit, name: &str) -> &'a str {
    hit.headers.get(name).unwrap().to_str().unwrap()
}

/// Retries every 10 ms for long enough that no delivery runs out while the
/// webhook is paused: any pause is the health rule's doing, not the schedule's.
fn health_config(health: HealthPolicy) -> DeliveryConfig {
    DeliveryConfig {
        retry: fast_schedule(200),
        health,
        ..config()
    }
}

async fn health_state(h: &Harness, webhook: WebhookId) -> HealthState {
    h.store
        .get_webhook(webhook)
        .await
        .unwrap()
        .unwrap()
        .health
        .state
}

/// The `herald:webhook.*` reports the `/ok` subscriber got: (type, payload).
/// (`herald:delivery.*` reports are not about health.)
fn reports(receiver: &Receiver) -> Vec<(String, Value)> {
    receiver
        .hits("/ok")
        .iter()
        .map(|hit| {
            (
                header(hit, "x-herald-event-type").to_owned(),
                serde_json::from_slice(&hit.body).unwrap(),
            )
        })
        .filter(|(event_type, _)| event_type.starts_with("herald:webhook."))
        .collect()
}

async fn wait_for_reports(receiver: &Receiver, count: usize) {
    eventually(&format!("{count} health reports"), async || {
        (reports(receiver).len() >= count).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_is_paused_probed_and_recovers_with_nothing_lost_or_skipped() {
    let receiver = Receiver::start().await;
    let h = Harness::start(health_config(HealthPolicy {
        failing_after: 3,
        disable_after: None,
        first_pause: Duration::from_millis(300),
        longest_pause: Duration::from_millis(600),
    }))
    .await;
    let secret = Secret::generate();
    let dead = h.webhook(&receiver.url("/switch"), &secret).await;
    h.webhook_for(&receiver.url("/ok"), &secret, &["herald:*"])
        .await;
    let mut published = BTreeSet::new();
    for n in 0..6 {
        published.insert(h.publish("ping", format!("{{\"n\":{n}}}").as_bytes()).await);
    }

    eventually("the webhook paused", async || {
        (health_state(&h, dead.id).await == HealthState::Paused).then_some(())
    })
    .await;
    // A probe or two fail while it stays down; then it comes back.
    eventually("a failed probe", async || {
        let health = h.store.get_webhook(dead.id).await.unwrap()?.health;
        (health.pauses >= 2).then_some(())
    })
    .await;
    receiver.bring_up();
    let delivered = h.settled(dead.id, 6, DeliveryStatus::Succeeded).await;
    wait_for_reports(&receiver, 3).await;
    let stopped = h.stop().await;

    let healthy = stopped
        .store
        .get_webhook(dead.id)
        .await
        .unwrap()
        .unwrap()
        .health;
    assert_eq!(healthy.state, HealthState::Healthy);
    assert_eq!(healthy.consecutive_failures, 0);
    let hits = receiver.hits("/switch");
    let attempts: u32 = delivered.iter().map(|d| d.attempts).sum();
    assert_eq!(
        usize::try_from(attempts).unwrap(),
        hits.len(),
        "every request the endpoint saw is an attempt in the log"
    );
    let received: BTreeSet<String> = hits
        .iter()
        .map(|hit| header(hit, "webhook-id").to_owned())
        .collect();
    let published: BTreeSet<String> = published.iter().map(ToString::to_string).collect();
    assert_eq!(received, published, "every event reached the endpoint");

    let reports = reports(&receiver);
    let of = |event_type: &str| -> Vec<&Value> {
        reports
            .iter()
            .filter(|(t, _)| t == event_type)
            .map(|(_, body)| body)
            .collect()
    };
    assert_eq!(reports.len(), 3, "{reports:?}");
    for event_type in [
        HERALD_WEBHOOK_FAILING,
        HERALD_WEBHOOK_PAUSED,
        HERALD_WEBHOOK_RECOVERED,
    ] {
        // Each once, however many probes failed (in any order: the
        // subscriber gets them with two attempts in flight).
        assert_eq!(of(event_type).len(), 1, "{reports:?}");
    }
    assert!(
        reports
            .iter()
            .all(|(_, body)| body["webhook_id"] == dead.id.to_string())
    );
    assert!(of(HERALD_WEBHOOK_PAUSED)[0]["paused_until"].is_string());
    assert!(
        of(HERALD_WEBHOOK_RECOVERED)[0]["failed_attempts"]
            .as_u64()
            .unwrap()
            >= 4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_disabled_for_failing_keeps_its_backlog_and_delivers_it_when_enabled() {
    let receiver = Receiver::start().await;
    let h = Harness::start(health_config(HealthPolicy {
        failing_after: 100,
        disable_after: Some(3),
        first_pause: Duration::from_millis(100),
        longest_pause: Duration::from_millis(100),
    }))
    .await;
    let secret = Secret::generate();
    let dead = h.webhook(&receiver.url("/switch"), &secret).await;
    h.webhook_for(&receiver.url("/ok"), &secret, &["herald:*"])
        .await;
    for n in 0..3 {
        h.publish("ping", format!("{{\"n\":{n}}}").as_bytes()).await;
    }
    eventually("the webhook disabled", async || {
        (health_state(&h, dead.id).await == HealthState::Disabled).then_some(())
    })
    .await;
    // New events are still kept for it; nothing of its backlog fails.
    for n in 3..5 {
        h.publish("ping", format!("{{\"n\":{n}}}").as_bytes()).await;
    }
    let disabled = h.store.get_webhook(dead.id).await.unwrap().unwrap();
    assert!(disabled.enabled, "the person's switch is left alone");
    assert!(
        disabled
            .health
            .disabled_reason
            .unwrap()
            .contains("3 attempts in a row"),
        "the reason says why"
    );
    let kept = h.deliveries(dead.id).await;
    assert_eq!(kept.len(), 5);
    assert!(kept.iter().all(|d| d.status == DeliveryStatus::Pending));

    receiver.bring_up();
    h.store
        .update_webhook(
            dead.id,
            WebhookPatch {
                enabled: Some(true),
                ..WebhookPatch::default()
            },
            100,
        )
        .await
        .unwrap();
    h.engine.wake();
    let delivered = h.settled(dead.id, 5, DeliveryStatus::Succeeded).await;
    wait_for_reports(&receiver, 1).await;
    h.stop().await;

    let reports = reports(&receiver);
    assert_eq!(reports.len(), 1, "{reports:?}");
    let (event_type, body) = &reports[0];
    assert_eq!(event_type, HERALD_WEBHOOK_DISABLED);
    assert_eq!(body["reason"], "failure_policy");
    assert_eq!(body["webhook_id"], dead.id.to_string());
    // An attempt already in flight when the third failure disabled it may
    // fail too; after that, nothing until enabled, then one success each.
    let attempts: u32 = delivered.iter().map(|d| d.attempts).sum();
    assert_eq!(
        usize::try_from(attempts).unwrap(),
        receiver.hits("/switch").len()
    );
    assert!(attempts >= 3 + 5);
}
