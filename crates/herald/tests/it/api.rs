//! The API through the real binary: limits, idempotency and bad input.

use serde_json::{Value, json};

use crate::harness::{Behaviour, Receiver, TOKEN, TestApp};

#[tokio::test]
async fn ten_webhooks_per_scope_and_the_eleventh_is_refused_naming_it() {
    let app = TestApp::spawn().await;
    let hook = |project: Value, i: usize| json!({"name": format!("h{i}"), "url": "https://hooks.example.com/x", "event_types": ["changeset:update"], "project": project});
    for i in 0..10 {
        app.create_webhook(hook(Value::Null, i)).await;
        app.create_webhook(hook(json!("payments"), i)).await;
    }
    let (status, err) = app
        .post("/api/v1/webhooks", hook(json!("payments"), 11))
        .await;
    assert!((400..500).contains(&status), "{status}");
    assert!(
        err["message"].as_str().unwrap_or("").contains("payments"),
        "{err}"
    );
    let (status, err) = app.post("/api/v1/webhooks", hook(Value::Null, 11)).await;
    assert!((400..500).contains(&status), "{status}");
    assert!(
        err["message"].as_str().unwrap_or("").contains("global"),
        "{err}"
    );
    // Another project still has room.
    app.create_webhook(hook(json!("search"), 0)).await;
    let (_, list) = app.get("/api/v1/webhooks").await;
    assert_eq!(
        list.as_array()
            .map(Vec::len)
            .or(list["items"].as_array().map(Vec::len)),
        Some(21)
    );
}

#[tokio::test]
async fn a_retried_publish_with_the_same_idempotency_key_creates_nothing_new() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Behaviour::Status(204)).await;
    app.register_any_type("once:only").await;
    app.hook_for(&receiver.url("/"), &["once:only"]).await;
    let send = || async {
        let resp = app
            .client()
            .post(format!("{}/api/v1/events", app.base))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", "order-42")
            .json(&json!({"type": "once:only", "payload": {"order": 42}}))
            .send()
            .await
            .expect("publish");
        assert_eq!(resp.status(), 202);
        resp.json::<Value>().await.expect("json")
    };
    let first = send().await;
    let second = send().await;
    assert_eq!(first["id"], second["id"]);
    assert_eq!(first["deliveries"], second["deliveries"]);
    receiver.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1, "one delivery only");
}

#[tokio::test]
async fn bad_input_gets_a_json_error_that_names_the_problem_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let good = json!({"name": "ok", "url": "https://hooks.example.com/x", "event_types": ["changeset:update"]});
    let with = |key: &str, value: Value| {
        let mut body = good.clone();
        body[key] = value;
        body
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "ftp scheme",
            with("url", json!("ftp://hooks.example.com/")),
            "url",
        ),
        (
            "overlong name",
            with("name", json!("n".repeat(101))),
            "name",
        ),
        (
            "empty event types",
            with("event_types", json!([])),
            "event_types",
        ),
        ("unknown field", with("colour", json!("red")), "colour"),
        (
            "long project",
            with("project", json!("p".repeat(401))),
            "project",
        ),
    ];
    for (what, body, field) in cases {
        let (status, err) = app.post("/api/v1/webhooks", body).await;
        assert!((400..500).contains(&status), "{what}: {status}");
        assert!(err["code"].is_string(), "{what}: {err}");
        let message = err["message"].as_str().unwrap_or("");
        assert!(
            message.contains(field),
            "{what}: message should name {field}: {message}"
        );
    }

    let raw = |body: &'static str, content_type: &'static str| {
        app.client()
            .post(format!("{}/api/v1/webhooks", app.base))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let resp = raw("{not json", "application/json").await.expect("send");
    assert_eq!(resp.status(), 400);
    assert!(resp.json::<Value>().await.expect("json")["code"].is_string());
    let resp = raw(r#"{"name":"x"}"#, "text/plain").await.expect("send");
    assert_eq!(resp.status(), 415);

    let resp = app
        .client()
        .get(format!("{}/api/v1/webhooks", app.base))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
    let resp = app
        .client()
        .get(format!("{}/api/v1/webhooks", app.base))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
    assert!(resp.json::<Value>().await.expect("json")["message"].is_string());

    let (status, err) = app
        .get("/api/v1/webhooks/0190f1e2-7a6b-7cde-8f00-000000000000")
        .await;
    assert_eq!(status, 404, "{err}");

    let (status, _) = app.get("/api/v1/webhooks").await;
    assert_eq!(status, 200);
    let (_, list) = app.get("/api/v1/webhooks").await;
    let count = list
        .as_array()
        .map(Vec::len)
        .or(list["items"].as_array().map(Vec::len));
    assert_eq!(count, Some(0), "no bad request created anything: {list}");

    let resp = app
        .client()
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200, "healthz needs no token");
}

#[tokio::test]
async fn a_payload_over_the_limit_is_refused_with_413() {
    let app = TestApp::spawn().await;
    let big = "x".repeat(1024 * 1024 + 10);
    let (status, err) = app
        .post(
            "/api/v1/events",
            json!({"type": "big:one", "payload": {"blob": big}}),
        )
        .await;
    assert_eq!(status, 413, "{err}");
    assert!(err["code"].is_string());
}
