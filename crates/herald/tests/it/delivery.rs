//! Delivery through the real binary: signatures, crashes, outages, fairness,
//! 410s, basic auth, the address guard and retention.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use crate::harness::{
    AppOptions, Behaviour, FAST_CONFIG, Receiver, TestApp, standard_signature_valid,
};

#[tokio::test]
async fn a_receiver_gets_every_event_byte_exact_and_correctly_signed() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Behaviour::Status(204)).await;
    app.register_any_type("build:finished").await;
    let hook = app.hook_for(&receiver.url("/hook"), &["build:*"]).await;
    let secret = hook["secret"]
        .as_str()
        .expect("secret on create")
        .to_owned();
    assert!(
        secret.starts_with("whsec_"),
        "generated secrets are whsec_: {secret}"
    );

    let n = 50;
    let mut event_ids = HashSet::new();
    for i in 0..n {
        // Odd spacing and key order must survive: the body is sent as published.
        let body = format!(r#"{{"z": {i},  "a": "é ✓", "nested": {{"k": [1, 2.50]}}}}"#);
        let request = format!(r#"{{"type": "build:finished", "payload": {body}}}"#);
        let resp = app
            .client()
            .post(format!("{}/api/v1/events", app.base))
            .bearer_auth(crate::harness::TOKEN)
            .header("content-type", "application/json")
            .body(request)
            .send()
            .await
            .expect("publish");
        assert_eq!(resp.status(), 202);
        let answer: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(answer["deliveries"], 1);
        event_ids.insert(answer["id"].as_str().expect("id").to_owned());
    }

    let got = receiver.wait_for(n).await;
    let mut seen = HashSet::new();
    for r in &got {
        assert!(
            standard_signature_valid(&secret, r),
            "bad signature on {r:?}"
        );
        assert_eq!(r.header("content-type"), "application/json; charset=utf-8");
        assert!(r.header("user-agent").starts_with("Herald/"));
        assert_eq!(r.header("x-herald-event-type"), "build:finished");
        let body = std::str::from_utf8(&r.body).expect("utf-8");
        assert!(
            body.starts_with(r#"{"z": "#)
                && body.contains(r#""a": "é ✓", "nested": {"k": [1, 2.50]}"#),
            "{body}"
        );
        seen.insert(r.header("webhook-id").to_owned());
    }
    assert_eq!(seen, event_ids, "webhook-id is the event id, one per event");
}

#[tokio::test]
async fn a_plain_secret_keys_the_signature_with_its_utf8_bytes() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    app.register_any_type("x:y").await;
    app.create_webhook(json!({
        "name": "plain", "url": receiver.url("/"), "event_types": ["x:y"], "secret": "correct horse battery"
    }))
    .await;
    app.publish("x:y", json!({"n": 1})).await;
    let got = receiver.wait_for(1).await;
    assert!(standard_signature_valid("correct horse battery", &got[0]));
    assert!(!standard_signature_valid("wrong secret", &got[0]));
}

#[tokio::test]
async fn kill_dash_nine_mid_run_loses_nothing() {
    let mut app = TestApp::spawn().await;
    // A slow receiver keeps a backlog, so the crash lands mid-run with attempts in flight.
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_millis(200), 204)).await;
    app.register_any_type("crash:test").await;
    app.hook_for(&receiver.url("/"), &["crash:test"]).await;
    let n = 300;
    for i in 0..n {
        app.publish("crash:test", json!({"i": i})).await;
    }
    app.kill9().await;
    let before = receiver.received().len();
    assert!(
        before < n,
        "the crash must come before every delivery was made"
    );
    app.restart().await;
    let ids = receiver.wait_for_distinct(n).await;
    assert_eq!(
        ids.len(),
        n,
        "every acknowledged event arrives after a crash (had {before} before it)"
    );
}

#[tokio::test]
async fn a_receiver_that_is_down_then_back_gets_everything() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Behaviour::Status(204)).await;
    let url = receiver.url("/back");
    let addr = receiver.stop().await;
    app.register_any_type("outage:test").await;
    let hook = app.hook_for(&url, &["outage:test"]).await;
    let n = 30;
    for i in 0..n {
        app.publish("outage:test", json!({"i": i})).await;
    }
    // Let a few attempts fail against the closed port, enough to pause the
    // webhook: its backlog must come through after the probe all the same.
    let id = hook["id"].as_str().expect("id");
    app.wait_until(
        &format!("/api/v1/webhooks/{id}"),
        "the webhook paused",
        |v| v["health"]["consecutive_failures"].as_u64().unwrap_or(0) >= 4,
    )
    .await;
    let receiver = Receiver::start_on(addr, Behaviour::Status(204)).await;
    let ids = receiver.wait_for_distinct(n).await;
    assert_eq!(ids.len(), n);
}

#[tokio::test]
async fn a_hanging_receiver_does_not_hold_back_a_healthy_one() {
    let app = TestApp::spawn_with(AppOptions {
        config: FAST_CONFIG.replace("request_timeout = \"2s\"", "request_timeout = \"30s\""),
        ..AppOptions::default()
    })
    .await;
    let hanging = Receiver::start(Behaviour::Hang).await;
    let healthy = Receiver::start(Behaviour::Status(204)).await;
    app.register_any_type("fair:test").await;
    app.hook_for(&hanging.url("/"), &["fair:test"]).await;
    app.hook_for(&healthy.url("/"), &["fair:test"]).await;
    let n = 200;
    for i in 0..n {
        app.publish("fair:test", json!({"i": i})).await;
    }
    // All healthy deliveries complete while the hanging receiver still holds its
    // first attempts (its 30 s timeout has not expired).
    let got = healthy.wait_for(n).await;
    assert_eq!(got.len(), n);
    let stuck = hanging.received().len();
    assert!(
        stuck > 0 && stuck < n,
        "hanging receiver should hold a bounded number of attempts, has {stuck}"
    );
}

#[tokio::test]
async fn a_410_gone_disables_the_webhook_and_says_why() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Behaviour::Status(410)).await;
    app.register_any_type("gone:test").await;
    let hook = app.hook_for(&receiver.url("/gone"), &["gone:test"]).await;
    let id = hook["id"].as_str().expect("id");
    app.publish("gone:test", json!({})).await;
    let disabled = app
        .wait_until(
            &format!("/api/v1/webhooks/{id}"),
            "the webhook to be disabled",
            |v| v["enabled"] == false,
        )
        .await;
    let reason = disabled["disabled_reason"].as_str().unwrap_or("");
    assert!(reason.contains("410"), "reason names the 410: {reason}");
    let again = app.publish("gone:test", json!({})).await;
    assert_eq!(
        again["deliveries"], 0,
        "a disabled webhook gets no new deliveries"
    );
    let (status, err) = app
        .post(
            &format!("/api/v1/webhooks/{id}/recover"),
            json!({"since": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("webhook_disabled")),
        "{err}"
    );
    let (_, page) = app.get(&format!("/api/v1/webhooks/{id}/deliveries")).await;
    let delivery = page["items"][0]["id"].as_str().expect("delivery id");
    let (status, err) = app
        .post(
            &format!("/api/v1/deliveries/{delivery}/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("webhook_disabled")),
        "{err}"
    );
    assert_eq!(receiver.received().len(), 1);
}

#[tokio::test]
async fn basic_auth_urls_send_credentials_that_are_never_shown() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let url = format!("http://my%40login:s3cr%20t@{}/sonar", receiver.addr);
    let hook = app
        .create_webhook(json!({"name": "basic", "url": url, "event_types": ["sonarqube:*"]}))
        .await;
    let shown = hook["url"].as_str().expect("url");
    assert!(
        !shown.contains("s3cr") && !shown.contains("login"),
        "credentials shown: {shown}"
    );
    let (_, analysis) = app.get("/api/v1/event-types/sonarqube:analysis").await;
    app.publish("sonarqube:analysis", analysis["example"].clone())
        .await;
    let got = receiver.wait_for(1).await;
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("my@login:s3cr t")
    );
    assert_eq!(got[0].header("authorization"), expected);
    assert_eq!(got[0].path, "/sonar");

    let id = hook["id"].as_str().expect("id");
    let page = app
        .wait_until(
            &format!("/api/v1/webhooks/{id}/deliveries"),
            "a succeeded delivery",
            |v| v["items"][0]["status"] == "succeeded",
        )
        .await;
    let delivery_id = page["items"][0]["id"].as_str().expect("delivery id");
    let (_, detail) = app.get(&format!("/api/v1/deliveries/{delivery_id}")).await;
    let text = detail.to_string();
    assert!(
        !text.contains("s3cr") && !text.contains("bXlAbG9naW4"),
        "log leaks credentials: {text}"
    );
    let (_, list) = app.get("/api/v1/webhooks").await;
    assert!(!list.to_string().contains("s3cr"));
}

#[tokio::test]
async fn the_address_guard_refuses_loopback_without_allow_cidr() {
    let app = TestApp::spawn_with(AppOptions {
        allow_loopback: false,
        ..AppOptions::default()
    })
    .await;
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    app.register_any_type("guard:test").await;
    let hook = app.hook_for(&receiver.url("/"), &["guard:test"]).await;
    let id = hook["id"].as_str().expect("id");
    // Created all the same, with a warning that names the remedy.
    let warning = hook["warnings"][0].as_str().unwrap_or_default();
    assert!(
        warning.contains("--allow-cidr 127.0.0.1/32") && warning.contains("loopback"),
        "{hook}"
    );
    app.publish("guard:test", json!({})).await;
    let page = app
        .wait_until(
            &format!("/api/v1/webhooks/{id}/deliveries"),
            "the delivery to fail",
            |v| v["items"][0]["status"] == "failed",
        )
        .await;
    let error = page["items"][0]["last_error"].as_str().unwrap_or("");
    assert!(
        error.contains("127.0.0.1") || error.to_lowercase().contains("loopback"),
        "reason: {error}"
    );
    assert_eq!(
        page["items"][0]["attempts"], 1,
        "a refused target is not retried"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        receiver.received().is_empty(),
        "the receiver must never be contacted"
    );
}

#[tokio::test]
async fn retention_purges_old_deliveries_and_events() {
    let app = TestApp::spawn_with(AppOptions {
        config: format!(
            "{FAST_CONFIG}\n[retention]\nmax_age = \"1s\"\npurge_interval = \"200ms\"\n"
        ),
        ..AppOptions::default()
    })
    .await;
    let receiver = Receiver::start(Behaviour::Status(204)).await;
    app.register_any_type("old:news").await;
    let hook = app.hook_for(&receiver.url("/"), &["old:news"]).await;
    let id = hook["id"].as_str().expect("id");
    app.publish("old:news", json!({})).await;
    receiver.wait_for(1).await;
    let page = app
        .wait_until(
            &format!("/api/v1/webhooks/{id}/deliveries"),
            "the delivery",
            |v| v["items"][0]["status"] == "succeeded",
        )
        .await;
    let delivery = page["items"][0]["id"].as_str().expect("id").to_owned();
    let deadline = std::time::Instant::now() + crate::harness::PATIENCE;
    loop {
        let (status, _) = app.get(&format!("/api/v1/deliveries/{delivery}")).await;
        if status == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "delivery was never purged"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
