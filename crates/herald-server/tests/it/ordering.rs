//! Ordered delivery through the API: a webhook's `ordering`, an event's
//! `ordering_key`, and the 422s that name what to fix and change nothing.

use serde_json::{Value, json};

use crate::harness::{Receiver, TestApp, assert_error, send, webhook_body};

#[tokio::test]
async fn ordering_is_set_shown_and_changed_and_bad_values_are_refused() {
    let herald = TestApp::spawn().await;
    let plain = herald
        .create_webhook(webhook_body("plain", "https://e.com/"))
        .await;
    assert_eq!(plain["ordering"], "none", "the default: {plain}");
    let ordered = herald
        .create_webhook(json!({"name": "ordered", "url": "https://e.com/", "event_types": ["*"], "ordering": "key"}))
        .await;
    assert_eq!(ordered["ordering"], "key", "{ordered}");
    let id = ordered["id"].as_str().unwrap();

    let (status, body) = send(herald.post("/api/v1/webhooks").json(
        &json!({"name": "x", "url": "https://e.com/", "event_types": ["*"], "ordering": "fifo"}),
    ))
    .await;
    assert_error(status, &body, 422, "invalid_field", Some("ordering"));
    let (status, body) = send(
        herald
            .patch(&format!("/api/v1/webhooks/{id}"))
            .json(&json!({"ordering": "sorted"})),
    )
    .await;
    assert_error(status, &body, 422, "invalid_field", Some("ordering"));
    assert_eq!(herald.webhooks().await.len(), 2, "nothing was created");

    let (status, changed) = send(
        herald
            .patch(&format!("/api/v1/webhooks/{id}"))
            .json(&json!({"ordering": "none"})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["ordering"], "none");
    let (_, read) = send(herald.get(&format!("/api/v1/webhooks/{id}"))).await;
    assert_eq!(read["ordering"], "none");
}

#[tokio::test]
async fn an_ordering_key_is_bounded_kept_with_the_event_and_bad_ones_are_refused() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("order:step").await;
    let mut receiver = Receiver::start().await;
    let hook = herald
        .create_webhook(json!({"name": "ordered", "url": receiver.url, "event_types": ["order:*"], "ordering": "key"}))
        .await;
    let hook_id = hook["id"].as_str().unwrap();
    for bad in [
        json!(""),
        json!(" padded"),
        json!("k".repeat(256)),
        json!("line\nbreak"),
    ] {
        let (status, body) = send(
            herald
                .post("/api/v1/events")
                .json(&json!({"type": "order:step", "payload": {}, "ordering_key": bad})),
        )
        .await;
        assert_error(status, &body, 422, "invalid_field", Some("ordering_key"));
    }
    let (status, body) = send(
        herald
            .post("/api/v1/events")
            .json(&json!({"type": "order:step", "payload": {}, "ordering_key": 7})),
    )
    .await;
    assert!(
        (400..500).contains(&status),
        "a key that is not a string: {status} {body}"
    );
    assert!(
        herald.deliveries(hook_id).await.is_empty(),
        "no refused event was stored"
    );

    let published = herald
        .publish(json!({"type": "order:step", "payload": {"n": 1}, "ordering_key": "acme/app#42"}))
        .await;
    receiver.next().await;
    let deliveries = herald.deliveries(hook_id).await;
    assert_eq!(deliveries.len(), 1);
    let delivery_id = deliveries[0]["id"].as_str().unwrap();
    let detail: Value = herald.wait_for_delivery(delivery_id, "succeeded").await;
    assert_eq!(detail["event"]["id"], published["id"]);
    assert_eq!(detail["event"]["ordering_key"], "acme/app#42", "{detail}");
}
