//! What the catalogue adds to deliveries: each family's native headers, checked
//! with an HMAC written here rather than herald-core's, and the `herald:*`
//! events the engine publishes about its deliveries.

use std::collections::BTreeMap;

use herald_catalogue::keys::{
    CHANGESET_UPDATE, HERALD_DELIVERY_EXHAUSTED, HERALD_DELIVERY_RECOVERED,
    HERALD_WEBHOOK_DISABLED, SONARQUBE_ANALYSIS,
};
use herald_catalogue::{Catalogue, prepare_payload};
use herald_core::secret::Secret;
use herald_delivery::DeliveryConfig;
use herald_store::{DeliveryQuery, DeliveryStatus, HealthPolicy};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::receiver::{Hit, Receiver};
use crate::{Harness, config};

/// Lower-case hex HMAC-SHA256 of the body keyed with the secret's UTF-8 bytes,
/// as Sourcegraph and SonarQube document it.
fn hex_hmac(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn header<'a>(hit: &'a Hit, name: &str) -> &'a str {
    hit.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", hit.headers))
        .to_str()
        .unwrap()
}

fn example(key: &str) -> Vec<u8> {
    Catalogue::builtin().get(key).unwrap().example_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sourcegraph_delivery_carries_sourcegraphs_headers_over_the_exact_body() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    // Sourcegraph keys its hex HMAC with the secret's UTF-8 bytes, whatever they
    // are; a `whsec_` secret keys the Standard Webhooks signature differently.
    let secret = Secret::generate();
    let webhook = h.webhook(&receiver.url("/ok"), &secret).await;
    let payload = example(CHANGESET_UPDATE);
    h.publish(CHANGESET_UPDATE, &payload).await;

    h.settled(webhook.id, 1, DeliveryStatus::Succeeded).await;
    let hit = receiver.hits("/ok").remove(0);
    assert_eq!(hit.body.as_ref(), payload.as_slice());
    assert_eq!(
        header(&hit, "x-sourcegraph-webhook-event-type"),
        CHANGESET_UPDATE
    );
    assert_eq!(
        header(&hit, "x-sourcegraph-webhook-signature"),
        hex_hmac(secret.expose(), &hit.body)
    );
    assert_eq!(
        header(&hit, "content-type"),
        "application/json; charset=utf-8"
    );
    assert!(crate::verify_standard_webhook(
        secret.expose(),
        &hit.headers,
        &hit.body
    ));
    assert!(hit.headers.get("x-sonar-webhook-hmac-sha256").is_none());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sonarqube_delivery_carries_the_project_and_a_verifiable_hex_signature() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    let secret = Secret::parse("your_secret").unwrap();
    let webhook = h.webhook(&receiver.url("/ok"), &secret).await;
    let properties = BTreeMap::from([
        ("sonar.analysis.buildNumber".to_owned(), "12345".to_owned()),
        ("team".to_owned(), "not an analysis property".to_owned()),
    ]);
    // What the API stores for a publish with these properties.
    let payload = prepare_payload(
        SONARQUBE_ANALYSIS,
        &example(SONARQUBE_ANALYSIS),
        &properties,
    );
    h.publish(SONARQUBE_ANALYSIS, &payload).await;

    h.settled(webhook.id, 1, DeliveryStatus::Succeeded).await;
    let hit = receiver.hits("/ok").remove(0);
    assert_eq!(hit.body.as_ref(), payload.as_slice());
    assert_eq!(header(&hit, "x-sonarqube-project"), "myproject");
    assert_eq!(
        header(&hit, "x-sonar-webhook-hmac-sha256"),
        hex_hmac("your_secret", &hit.body)
    );
    let body: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(
        body["properties"],
        serde_json::json!({"sonar.analysis.buildNumber": "12345"})
    );
    assert!(hit.headers.get("x-sourcegraph-webhook-signature").is_none());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_button_sends_the_familys_native_headers() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    let secret = Secret::parse("test secret").unwrap();
    let webhook = h.webhook(&receiver.url("/ok"), &secret).await;
    let payload = example(SONARQUBE_ANALYSIS);
    let outcome = h
        .engine
        .send_test(&webhook, SONARQUBE_ANALYSIS, payload.clone())
        .await
        .unwrap();
    assert!(outcome.success, "{outcome:?}");
    let hit = receiver.hits("/ok").remove(0);
    assert_eq!(hit.body.as_ref(), payload.as_slice());
    assert_eq!(
        header(&hit, "x-sonar-webhook-hmac-sha256"),
        hex_hmac("test secret", &payload)
    );
    h.stop().await;
}

/// Disabled by a 410, out of retries, and recovered: each reaches a webhook
/// subscribed to `herald:*`, once. A subscriber that fails Herald's own events
/// causes no report about them (no feedback loop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operational_events_reach_herald_subscribers_and_never_loop() {
    let receiver = Receiver::start().await;
    // Endpoint health has its own tests (`health.rs`); here it must not pause
    // the failing subscribers, whose attempts are what is counted.
    let h = Harness::start(DeliveryConfig {
        health: HealthPolicy {
            failing_after: 1_000,
            ..config().health
        },
        ..config()
    })
    .await;
    let secret = Secret::generate();
    let flaky = h
        .webhook_for(&receiver.url("/flaky"), &secret, &["ping"])
        .await;
    let gone = h
        .webhook_for(&receiver.url("/gone"), &secret, &["ping"])
        .await;
    let failing = h
        .webhook_for(&receiver.url("/always-500"), &secret, &["ping"])
        .await;
    let ops = h
        .webhook_for(&receiver.url("/ok"), &secret, &["herald:*"])
        .await;
    let broken_ops = h
        .webhook_for(&receiver.url("/always-500"), &secret, &["herald:*"])
        .await;
    h.publish("ping", b"{}").await;

    h.settled(flaky.id, 1, DeliveryStatus::Succeeded).await;
    h.settled(gone.id, 1, DeliveryStatus::Failed).await;
    h.settled(failing.id, 1, DeliveryStatus::Failed).await;
    h.settled(ops.id, 3, DeliveryStatus::Succeeded).await;
    h.settled(broken_ops.id, 3, DeliveryStatus::Failed).await;
    // Joining waits for every attempt task, including any report it publishes.
    let stopped = h.stop().await;

    let reports: Vec<Value> = receiver
        .hits("/ok")
        .iter()
        .map(|hit| {
            let mut body: Value = serde_json::from_slice(&hit.body).unwrap();
            body["type"] = header(hit, "x-herald-event-type").into();
            body
        })
        .collect();
    let of = |event_type: &str| -> Value {
        let matching: Vec<&Value> = reports.iter().filter(|r| r["type"] == event_type).collect();
        assert_eq!(matching.len(), 1, "one {event_type} in {reports:?}");
        matching[0].clone()
    };
    let disabled = of(HERALD_WEBHOOK_DISABLED);
    assert_eq!(disabled["webhook_id"], gone.id.to_string());
    assert_eq!(
        (disabled["reason"].as_str(), disabled["status"].as_u64()),
        (Some("gone"), Some(410))
    );
    let exhausted = of(HERALD_DELIVERY_EXHAUSTED);
    assert_eq!(exhausted["webhook_id"], failing.id.to_string());
    assert_eq!(exhausted["event_type"], "ping");
    assert_eq!(
        (
            exhausted["attempts"].as_u64(),
            exhausted["last_status"].as_u64()
        ),
        (Some(3), Some(500))
    );
    let recovered = of(HERALD_DELIVERY_RECOVERED);
    assert_eq!(recovered["webhook_id"], flaky.id.to_string());
    assert_eq!(
        (
            recovered["failed_attempts"].as_u64(),
            recovered["status"].as_u64()
        ),
        (Some(1), Some(200))
    );

    let all = stopped
        .store
        .list_deliveries(DeliveryQuery {
            webhook_id: ops.id,
            status: None,
            since: None,
            until: None,
            cursor: None,
            limit: 100,
        })
        .await
        .unwrap()
        .items;
    assert_eq!(
        all.len(),
        3,
        "no report about the failing herald:* deliveries: {all:?}"
    );
}
