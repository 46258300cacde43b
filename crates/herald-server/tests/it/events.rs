use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{Received, Receiver, TestApp, assert_error, hook_body, send, webhook_body};

/// Standard Webhooks verification, written from the specification rather than
/// with Herald's own signing code.
pub fn signature_is_valid(request: &Received, secret: &str) -> bool {
    let key = match secret.strip_prefix("whsec_") {
        Some(encoded) => STANDARD.decode(encoded).unwrap(),
        None => secret.as_bytes().to_vec(),
    };
    let id = request.headers["webhook-id"].to_str().unwrap();
    let timestamp = request.headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let header = request.headers["webhook-signature"].to_str().unwrap();
    header.split(' ').any(|candidate| candidate == expected)
}

#[tokio::test]
async fn a_published_event_reaches_the_receiver_byte_for_byte() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("order:paid").await;
    let mut receiver = Receiver::start().await;
    let created = herald
        .create_webhook(json!({"name": "r", "url": receiver.url, "event_types": ["order:*"], "project": "alpha"}))
        .await;
    let webhook_id = created["id"].as_str().unwrap();
    herald
        .create_webhook(
            json!({"name": "other type", "url": receiver.url, "event_types": ["batch_change:*"]}),
        )
        .await;
    herald
        .create_webhook(json!({"name": "other project", "url": receiver.url, "event_types": ["*"], "project": "beta"}))
        .await;

    // Odd spacing, key order and escapes must survive untouched: they are what is signed.
    let payload = "{ \"z\": 1,\n  \"a\" : [1.50, \"\\u00e9\"] }";
    let body = format!(
        "{{\"type\": \"order:paid\", \"project\": \"alpha\", \"payload\": {payload}, \"properties\": {{\"build\": \"7\"}}}}"
    );
    let (status, published) = send(
        herald
            .post("/api/v1/events")
            .header("content-type", "application/json")
            .body(body),
    )
    .await;
    assert_eq!(status, 202, "{published}");
    assert_eq!(
        published["deliveries"], 1,
        "only the matching webhook in scope gets it"
    );
    let event_id = published["id"].as_str().unwrap();

    let got = receiver.next().await;
    assert_eq!(got.body, payload.as_bytes());
    assert_eq!(got.headers["webhook-id"].to_str().unwrap(), event_id);
    assert_eq!(got.headers["x-herald-event-type"], "order:paid");
    assert!(signature_is_valid(
        &got,
        created["secret"].as_str().unwrap()
    ));

    let deliveries = herald.deliveries(webhook_id).await;
    assert_eq!(deliveries.len(), 1);
    let detail = herald
        .wait_for_delivery(deliveries[0]["id"].as_str().unwrap(), "succeeded")
        .await;
    assert_eq!(detail["event"]["id"], event_id);
    assert_eq!(detail["event"]["payload"], json!({"z": 1, "a": [1.5, "é"]}));
    assert_eq!(detail["event"]["properties"], json!({"build": "7"}));
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["response_status"], 200);
    assert_eq!(attempts[0]["response_body"], "pong");
    assert!(
        attempts[0]["request_headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "webhook-id")
    );
    assert!(attempts[0]["started_at"].is_string());
    assert_eq!(receiver.drain(), 0, "nothing else was sent");
}

#[tokio::test]
async fn invalid_events_are_refused_naming_the_field_and_change_nothing() {
    let herald = TestApp::spawn().await;
    let created = herald
        .create_webhook(webhook_body("all", "https://e.com/"))
        .await;
    let webhook_id = created["id"].as_str().unwrap();
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (
            json!({"type": "has space", "payload": {}}),
            422,
            "invalid_field",
            Some("type"),
        ),
        (
            json!({"type": "", "payload": {}}),
            422,
            "invalid_field",
            Some("type"),
        ),
        (
            json!({"type": "a".repeat(101), "payload": {}}),
            422,
            "invalid_field",
            Some("type"),
        ),
        (
            json!({"type": "ok", "payload": 5}),
            422,
            "invalid_field",
            Some("payload"),
        ),
        (
            json!({"type": "ok", "payload": "text"}),
            422,
            "invalid_field",
            Some("payload"),
        ),
        (
            json!({"type": "ok", "payload": null}),
            422,
            "invalid_field",
            Some("payload"),
        ),
        (json!({"type": "ok"}), 422, "missing_field", Some("payload")),
        (json!({"payload": {}}), 422, "missing_field", Some("type")),
        (
            json!({"type": "ok", "payload": {}, "project": ""}),
            422,
            "invalid_field",
            Some("project"),
        ),
        (
            json!({"type": "ok", "payload": {}, "properties": {"n": 1}}),
            422,
            "invalid_field",
            Some("properties.n"),
        ),
        (
            json!({"type": "ok", "payload": {}, "properties": ["a"]}),
            422,
            "invalid_field",
            Some("properties"),
        ),
        (
            json!({"type": "ok", "payload": {}, "properties": {"": "v"}}),
            422,
            "invalid_field",
            Some("properties"),
        ),
        (
            json!({"type": "ok", "payload": {}, "extra": 1}),
            422,
            "unknown_field",
            Some("extra"),
        ),
    ];
    for (body, want_status, want_code, field) in cases {
        let (status, error) = send(herald.post("/api/v1/events").json(&body)).await;
        assert_error(status, &error, want_status, want_code, field);
    }
    let (status, error) = send(
        herald
            .post("/api/v1/events")
            .header("content-type", "application/json")
            .body("{\"type\": "),
    )
    .await;
    assert_error(status, &error, 400, "invalid_json", None);
    let (status, error) = send(
        herald
            .post("/api/v1/events")
            .body("{\"type\":\"ok\",\"payload\":{}}"),
    )
    .await;
    assert_error(status, &error, 415, "unsupported_media_type", None);
    for key in ["", "has space", &"k".repeat(256), "caf\u{e9}"] {
        let value = reqwest::header::HeaderValue::from_bytes(key.as_bytes()).unwrap();
        let request = herald
            .post("/api/v1/events")
            .header("idempotency-key", value)
            .json(&json!({"type": "ok", "payload": {}}));
        let (status, error) = send(request).await;
        assert_error(
            status,
            &error,
            400,
            "invalid_header",
            Some("Idempotency-Key"),
        );
    }
    assert!(
        herald.deliveries(webhook_id).await.is_empty(),
        "a refused publish created deliveries"
    );
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_answer_and_creates_nothing() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("order:paid").await;
    let created = herald
        .create_webhook(hook_body("all", "https://e.com/", &["order:paid"]))
        .await;
    let webhook_id = created["id"].as_str().unwrap();
    let publish = || {
        herald
            .post("/api/v1/events")
            .header("idempotency-key", "order-42")
            .json(&json!({"type": "order:paid", "payload": [1, 2]}))
    };
    let first = publish().send().await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let (status, first) = crate::harness::status_and_json(first).await;
    assert_eq!((status, &first["deliveries"]), (202, &json!(1)));

    let second = publish().send().await.unwrap();
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let (status, second) = crate::harness::status_and_json(second).await;
    assert_eq!((status, &second), (202, &first));
    assert_eq!(herald.deliveries(webhook_id).await.len(), 1);

    let other = herald
        .post("/api/v1/events")
        .header("idempotency-key", "order-43")
        .json(&json!({"type": "order:paid", "payload": [1, 2]}));
    let (_, third) = send(other).await;
    assert_ne!(third["id"], first["id"]);
    assert_eq!(herald.deliveries(webhook_id).await.len(), 2);
}

#[tokio::test]
async fn a_payload_over_the_limit_gets_413_and_changes_nothing() {
    let herald = TestApp::spawn_with(|config| config.app.limits.max_payload_bytes = 1024).await;
    herald.register_any_type("big").await;
    let created = herald
        .create_webhook(hook_body("all", "https://e.com/", &["big"]))
        .await;
    let webhook_id = created["id"].as_str().unwrap();

    let just_over = json!({"type": "big", "payload": {"data": "x".repeat(1024)}});
    let (status, error) = send(herald.post("/api/v1/events").json(&just_over)).await;
    assert_error(status, &error, 413, "payload_too_large", None);
    assert!(
        error["message"].as_str().unwrap().contains("1024"),
        "{error}"
    );

    let far_over = json!({"type": "big", "payload": {"data": "x".repeat(200_000)}});
    let (status, error) = send(herald.post("/api/v1/events").json(&far_over)).await;
    assert_error(status, &error, 413, "payload_too_large", None);

    let at_limit = json!({"type": "big", "payload": {"data": "x".repeat(1024 - 11)}});
    assert_eq!(at_limit["payload"].to_string().len(), 1024);
    let (status, _) = send(herald.post("/api/v1/events").json(&at_limit)).await;
    assert_eq!(status, 202);
    assert_eq!(herald.deliveries(webhook_id).await.len(), 1);
}
