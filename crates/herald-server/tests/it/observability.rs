//! `/metrics`, `/readyz` and `x-request-id`. The metrics recorder is one per
//! process, shared by every test here, so counts are checked as "at least
//! what this test did", never as totals.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::header::CONTENT_TYPE;
use serde_json::json;

use crate::harness::{Receiver, TestApp, assert_error, hook_body, send};

/// The exposition as the admin token reads it.
async fn scrape(herald: &TestApp) -> String {
    let response = herald.get("/metrics").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The value of one series, e.g. `name{label="value"}`; 0 when absent.
fn value_of(exposition: &str, series: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// `promtool check metrics` over the exposition, when Prometheus' tools are
/// installed; required where `HERALD_REQUIRE_PROMETHEUS=1` (CI).
fn promtool_accepts(exposition: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if std::env::var("HERALD_REQUIRE_PROMETHEUS").as_deref() == Ok("1") => {
            panic!("HERALD_REQUIRE_PROMETHEUS=1 but promtool does not run: {error}")
        }
        Err(_) => {
            println!("SKIP: promtool is not installed; the exposition was not linted");
            return;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn metrics_count_attempts_by_outcome_and_trigger_with_bounded_labels() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("metered").await;
    let mut receiver = Receiver::start().await;
    receiver.answer_with(503);
    let created = herald
        .create_webhook(hook_body("metered", &receiver.url, &["metered"]))
        .await;
    let webhook_id = created["id"].as_str().unwrap().to_owned();
    let before = scrape(&herald).await;
    herald
        .publish(json!({"type": "metered", "payload": {"n": 1}}))
        .await;
    receiver.next().await;
    let delivery_id = herald.deliveries(&webhook_id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    herald.wait_for_delivery(&delivery_id, "failed").await;
    receiver.answer_with(200);
    let (status, _) =
        send(herald.post(&format!("/api/v1/deliveries/{delivery_id}/redeliver"))).await;
    assert_eq!(status, 202);
    herald.wait_for_delivery(&delivery_id, "succeeded").await;

    let after = scrape(&herald).await;
    let grew = |series: &str| value_of(&after, series) - value_of(&before, series);
    assert!(
        grew(r#"herald_delivery_attempts_total{outcome="http_5xx",trigger="scheduled"}"#) >= 1.0
    );
    assert!(
        grew(r#"herald_delivery_attempts_total{outcome="success",trigger="manual"}"#) >= 1.0,
        "a redelivery is a manual attempt"
    );
    assert!(grew("herald_deliveries_exhausted_total") >= 1.0);
    assert!(grew(r#"herald_events_published_total{family="custom"}"#) >= 1.0);
    assert!(
        grew(r#"herald_http_requests_total{route="/api/v1/events",method="POST",status="2xx"}"#)
            >= 1.0,
        "requests are labelled by route template"
    );
    assert!(after.contains(r#"herald_build_info{version=""#));
    assert!(after.contains("herald_delivery_attempt_duration_seconds_bucket"));
    assert!(after.contains(r#"herald_deliveries_pending{state="due"}"#));
    assert!(after.contains("process_resident_memory_bytes"));
    for unbounded in [&webhook_id, &delivery_id, &receiver.url] {
        assert!(
            !after.contains(unbounded.as_str()),
            "{unbounded} became a label"
        );
    }
    promtool_accepts(&after);
}

/// Delivers one event to a fresh webhook of `herald` and returns the
/// webhook's id once the delivery succeeded.
async fn one_delivery(herald: &TestApp, receiver: &mut Receiver) -> String {
    herald.register_any_type("per-hook").await;
    let created = herald
        .create_webhook(hook_body("per-hook", &receiver.url, &["per-hook"]))
        .await;
    let webhook_id = created["id"].as_str().unwrap().to_owned();
    herald
        .publish(json!({"type": "per-hook", "payload": {"n": 1}}))
        .await;
    receiver.next().await;
    let delivery_id = herald.deliveries(&webhook_id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    herald.wait_for_delivery(&delivery_id, "succeeded").await;
    webhook_id
}

#[tokio::test]
async fn the_webhook_label_appears_only_with_per_webhook_metrics() {
    let mut receiver = Receiver::start().await;
    let plain = TestApp::spawn().await;
    let unlabelled = one_delivery(&plain, &mut receiver).await;
    let labelled_herald = TestApp::spawn_with(|config| {
        config.app.delivery.metrics_per_webhook = true;
    })
    .await;
    let labelled = one_delivery(&labelled_herald, &mut receiver).await;

    // One recorder serves both: the labelled node's series is there, the
    // other node's webhook never became a label.
    let exposition = scrape(&plain).await;
    assert!(
        exposition
            .lines()
            .any(|line| line.starts_with("herald_delivery_attempts_total{")
                && line.contains(r#"outcome="success""#)
                && line.contains(&format!(r#"webhook="{labelled}""#))),
        "per_webhook labels the attempts counter:\n{exposition}"
    );
    assert!(
        !exposition.contains(&unlabelled),
        "{unlabelled} became a label"
    );
    for line in exposition
        .lines()
        .filter(|line| line.contains("webhook=\""))
    {
        assert!(
            line.starts_with("herald_delivery_attempts_total{"),
            "only the attempts counter carries the label: {line}"
        );
    }
    for state in ["healthy", "failing", "paused", "disabled"] {
        assert!(
            exposition.contains(&format!(r#"herald_webhooks{{state="{state}"}}"#)),
            "webhooks are counted by health state: {state}"
        );
    }
    promtool_accepts(&exposition);
}

#[tokio::test]
async fn metrics_need_the_read_scope_unless_served_on_their_own_address() {
    let herald = TestApp::spawn_with(|config| {
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let (status, created) = send(
        herald
            .post("/api/v1/tokens")
            .json(&json!({"name": "producer", "scope": "publish"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let publish_only = created["token"].as_str().unwrap();
    let url = format!("{}/metrics", herald.base);
    let (status, body) = send(herald.client.get(&url)).await;
    assert_error(status, &body, 401, "unauthorized", None);
    let (status, body) = send(herald.client.get(&url).bearer_auth(publish_only)).await;
    assert_error(status, &body, 403, "forbidden", None);

    let separate = format!("{}/metrics", herald.metrics_base.as_ref().unwrap());
    let response = herald.client.get(&separate).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("herald_build_info"));
    let api = herald.client.get(format!(
        "{}/api/v1/webhooks",
        herald.metrics_base.as_ref().unwrap()
    ));
    assert_eq!(
        api.send().await.unwrap().status(),
        404,
        "only /metrics is served there"
    );
}

#[tokio::test]
async fn readyz_refuses_a_database_of_another_schema_or_key() {
    let herald = TestApp::spawn().await;
    let readyz = || herald.client.get(format!("{}/readyz", herald.base));
    let (status, body) = send(readyz()).await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")));

    let db = rusqlite::Connection::open(herald.data_dir().join("herald.db")).unwrap();
    let version: i64 = db
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    db.pragma_update(None, "user_version", version + 1).unwrap();
    let (status, body) = send(readyz()).await;
    assert_error(status, &body, 503, "unavailable", None);
    assert!(
        body["message"].as_str().unwrap().contains("schema"),
        "{body}"
    );
    db.pragma_update(None, "user_version", version).unwrap();

    db.execute("UPDATE key_check SET check_value = zeroblob(32)", [])
        .unwrap();
    let (status, body) = send(readyz()).await;
    assert_error(status, &body, 503, "unavailable", None);
    assert!(
        body["message"].as_str().unwrap().contains("secrets key"),
        "{body}"
    );
    let (status, _) = send(herald.client.get(format!("{}/healthz", herald.base))).await;
    assert_eq!(status, 200, "liveness stays a cheap check of the store");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let herald = TestApp::spawn().await;
    let given = herald
        .get("/api/v1/webhooks")
        .header("x-request-id", "deploy-42.a:b")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "deploy-42.a:b");

    let mut generated = Vec::new();
    for unsafe_id in ["has spaces", &"x".repeat(200)] {
        let response = herald
            .client
            .get(format!("{}/no-such-route", herald.base))
            .header("x-request-id", unsafe_id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_ne!(id, unsafe_id);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        generated.push(id);
    }
    assert_ne!(generated[0], generated[1], "each request gets its own id");
}
