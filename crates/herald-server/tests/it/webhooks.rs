use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Receiver, TestApp, assert_error, hook_body, send, webhook_body};

#[tokio::test]
async fn the_secret_shows_on_create_and_at_secret_only() {
    let herald = TestApp::spawn().await;
    let created = herald
        .create_webhook(webhook_body("generated", "https://example.com/a"))
        .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    let id = created["id"].as_str().unwrap();
    for field in [
        "id",
        "name",
        "url",
        "event_types",
        "project",
        "enabled",
        "disabled_reason",
        "created_at",
        "updated_at",
    ] {
        assert!(created.get(field).is_some(), "{field} missing: {created}");
    }
    assert_eq!(created["project"], Value::Null);
    assert_eq!(created["enabled"], true);

    let given = herald
        .create_webhook(json!({"name": "given", "url": "https://example.com/b", "secret": "hunter2", "event_types": ["changeset:update"]}))
        .await;
    assert_eq!(given["secret"], "hunter2");

    let (status, listed) = send(herald.get("/api/v1/webhooks")).await;
    assert_eq!(status, 200);
    let (status, one) = send(herald.get(&format!("/api/v1/webhooks/{id}"))).await;
    assert_eq!(status, 200);
    for shown in [&listed, &one] {
        let text = shown.to_string();
        assert!(
            !text.contains(&secret) && !text.contains("hunter2") && !text.contains("\"secret\""),
            "{text}"
        );
    }
    assert_eq!(one["name"], "generated");

    let (status, revealed) = send(herald.get(&format!("/api/v1/webhooks/{id}/secret"))).await;
    assert_eq!((status, &revealed["secret"]), (200, &Value::from(secret)));
    let given_id = given["id"].as_str().unwrap();
    let (_, revealed) = send(herald.get(&format!("/api/v1/webhooks/{given_id}/secret"))).await;
    assert_eq!(revealed["secret"], "hunter2");
}

#[tokio::test]
async fn basic_auth_credentials_are_sent_but_never_shown() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("push").await;
    let mut receiver = Receiver::start().await;
    let url = format!(
        "http://deploy:pa%24%24word@127.0.0.1:{}/hook",
        receiver.port
    );
    let created = herald.create_webhook(webhook_body("basic", &url)).await;
    let expected_url = format!("http://***:***@127.0.0.1:{}/hook", receiver.port);
    assert_eq!(created["url"], expected_url.as_str());
    let id = created["id"].as_str().unwrap();

    let published = herald
        .publish(json!({"type": "push", "payload": {"n": 1}}))
        .await;
    assert_eq!(published["deliveries"], 1);
    let got = receiver.next().await;
    // base64("deploy:pa$$word")
    assert_eq!(got.headers["authorization"], "Basic ZGVwbG95OnBhJCR3b3Jk");

    let delivery_id = herald.deliveries(id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let detail = herald.wait_for_delivery(&delivery_id, "succeeded").await;
    let listed = herald.webhooks().await;
    let (_, one) = send(herald.get(&format!("/api/v1/webhooks/{id}"))).await;
    for shown in [json!(listed), one, detail] {
        let text = shown.to_string();
        assert!(
            !text.contains("pa%24%24word")
                && !text.contains("pa$$word")
                && !text.contains("ZGVwbG95"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn invalid_webhooks_are_refused_naming_the_field_and_change_nothing() {
    let herald = TestApp::spawn().await;
    let long_name = "n".repeat(101);
    let long_url = format!("https://example.com/{}", "a".repeat(600));
    let long_secret = "s".repeat(201);
    let long_project = "p".repeat(401);
    let json_cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (
            json!({"nmae": "x", "url": "https://e.com/", "event_types": ["*"]}),
            422,
            "unknown_field",
            Some("nmae"),
        ),
        (
            json!({"name": "x", "url": "https://e.com/", "event_types": ["*"], "color": "red"}),
            422,
            "unknown_field",
            Some("color"),
        ),
        (
            json!({"url": "https://e.com/", "event_types": ["*"]}),
            422,
            "missing_field",
            Some("name"),
        ),
        (
            json!({"name": "x", "url": "https://e.com/"}),
            422,
            "missing_field",
            Some("event_types"),
        ),
        (
            json!({"name": 5, "url": "https://e.com/", "event_types": ["*"]}),
            422,
            "invalid_field",
            Some("name"),
        ),
        (
            json!({"name": "x", "url": "ftp://e.com/", "event_types": ["*"]}),
            422,
            "invalid_field",
            Some("url"),
        ),
        (
            json!({"name": "x", "url": "not a url", "event_types": ["*"]}),
            422,
            "invalid_field",
            Some("url"),
        ),
        (
            json!({"name": "x", "url": long_url, "event_types": ["*"]}),
            422,
            "invalid_field",
            Some("url"),
        ),
        (
            json!({"name": long_name, "url": "https://e.com/", "event_types": ["*"]}),
            422,
            "invalid_field",
            Some("name"),
        ),
        (
            json!({"name": "  ", "url": "https://e.com/", "event_types": ["*"]}),
            422,
            "invalid_field",
            Some("name"),
        ),
        (
            json!({"name": "x", "url": "https://e.com/", "event_types": []}),
            422,
            "invalid_field",
            Some("event_types"),
        ),
        (
            json!({"name": "x", "url": "https://e.com/", "event_types": ["ok", "b*d"]}),
            422,
            "invalid_field",
            Some("event_types[1]"),
        ),
        (
            json!({"name": "x", "url": "https://e.com/", "event_types": ["*"], "secret": ""}),
            422,
            "invalid_field",
            Some("secret"),
        ),
        (
            json!({"name": "x", "url": "https://e.com/", "event_types": ["*"], "secret": long_secret}),
            422,
            "invalid_field",
            Some("secret"),
        ),
        (
            json!({"name": "x", "url": "https://e.com/", "event_types": ["*"], "project": ""}),
            422,
            "invalid_field",
            Some("project"),
        ),
        (
            json!({"name": "x", "url": "https://e.com/", "event_types": ["*"], "project": long_project}),
            422,
            "invalid_field",
            Some("project"),
        ),
        (
            json!({"name": "x", "url": "https://e.com/", "event_types": ["*"], "enabled": "yes"}),
            422,
            "invalid_field",
            Some("enabled"),
        ),
        (
            json!(["x", "https://e.com/", null, ["*"]]),
            422,
            "invalid_body",
            None,
        ),
        (json!("x"), 422, "invalid_body", None),
    ];
    for (body, want_status, want_code, field) in json_cases {
        let (status, error) = send(herald.post("/api/v1/webhooks").json(&body)).await;
        assert_error(status, &error, want_status, want_code, field);
    }

    let raw_cases: Vec<(&str, Option<&str>, u16, &str)> = vec![
        (
            "{\"name\": \"x\",",
            Some("application/json"),
            400,
            "invalid_json",
        ),
        (
            "{\"name\": \"x\"} trailing",
            Some("application/json"),
            400,
            "invalid_json",
        ),
        ("", Some("application/json"), 400, "invalid_json"),
        (
            "{\"name\":\"x\",\"url\":\"https://e.com/\",\"event_types\":[\"*\"]}",
            None,
            415,
            "unsupported_media_type",
        ),
        (
            "{\"name\":\"x\",\"url\":\"https://e.com/\",\"event_types\":[\"*\"]}",
            Some("text/plain"),
            415,
            "unsupported_media_type",
        ),
    ];
    for (body, content_type, want_status, want_code) in raw_cases {
        let mut request = herald.post("/api/v1/webhooks").body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let (status, error) = send(request).await;
        assert_error(status, &error, want_status, want_code, None);
        if want_code == "invalid_json" {
            assert!(
                error["message"].as_str().unwrap().contains("line 1 column"),
                "{error}"
            );
        }
    }

    let huge = json!({"name": "x", "url": "https://e.com/", "event_types": ["*"], "secret": "s".repeat(70_000)});
    let (status, error) = send(herald.post("/api/v1/webhooks").json(&huge)).await;
    assert_error(status, &error, 413, "payload_too_large", None);

    assert!(
        herald.webhooks().await.is_empty(),
        "a refused create stored something"
    );
    let charset = herald
        .post("/api/v1/webhooks")
        .header("content-type", "application/json; charset=utf-8")
        .body(webhook_body("charset", "https://e.com/").to_string());
    assert_eq!(send(charset).await.0, 201);
}

#[tokio::test]
async fn patch_changes_present_fields_and_null_project_means_global() {
    let herald = TestApp::spawn().await;
    let created = herald
        .create_webhook(json!({"name": "p", "url": "https://e.com/", "event_types": ["changeset:*"], "project": "alpha"}))
        .await;
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/webhooks/{id}");
    let (status, same) = send(herald.patch(&path).json(&json!({}))).await;
    assert_eq!(status, 200);
    assert_eq!(
        (same["name"].clone(), same["project"].clone()),
        (json!("p"), json!("alpha"))
    );
    let (_, before) = send(herald.get(&path)).await;

    let refused: Vec<(Value, &str, &str)> = vec![
        (json!({"name": null}), "invalid_field", "name"),
        (json!({"enabled": null}), "invalid_field", "enabled"),
        (json!({"url": "gopher://e.com/"}), "invalid_field", "url"),
        (json!({"event_types": []}), "invalid_field", "event_types"),
        (json!({"project": ""}), "invalid_field", "project"),
        (
            json!({"name": "ok", "secret": ""}),
            "invalid_field",
            "secret",
        ),
        (
            json!({"name": "ok", "colour": "red"}),
            "unknown_field",
            "colour",
        ),
    ];
    for (body, code, field) in refused {
        let (status, error) = send(herald.patch(&path).json(&body)).await;
        assert_error(status, &error, 422, code, Some(field));
    }
    let (_, after) = send(herald.get(&path)).await;
    assert_eq!(before, after, "a refused PATCH changed the webhook");

    let (status, global) = send(herald.patch(&path).json(&json!({"project": null}))).await;
    assert_eq!((status, &global["project"]), (200, &Value::Null));
    let (_, changed) = send(
        herald
            .patch(&path)
            .json(&json!({"name": "renamed", "enabled": false, "event_types": ["batch_change:apply", "batch_change:apply"], "project": "beta"})),
    )
    .await;
    assert_eq!(changed["name"], "renamed");
    assert_eq!(changed["enabled"], false);
    assert_eq!(changed["event_types"], json!(["batch_change:apply"]));
    assert_eq!(changed["project"], "beta");

    let (_, old_secret) = send(herald.get(&format!("{path}/secret"))).await;
    let (status, _) = send(herald.patch(&path).json(&json!({"secret": "rotated"}))).await;
    assert_eq!(status, 200);
    let (_, new_secret) = send(herald.get(&format!("{path}/secret"))).await;
    assert_ne!(old_secret, new_secret);
    assert_eq!(new_secret["secret"], "rotated");
}

#[tokio::test]
async fn each_scope_holds_ten_and_the_eleventh_is_refused_naming_it() {
    let herald = TestApp::spawn().await;
    for i in 0..10 {
        herald
            .create_webhook(json!({"name": format!("alpha {i}"), "url": "https://e.com/", "event_types": ["*"], "project": "alpha"}))
            .await;
        herald
            .create_webhook(webhook_body(&format!("global {i}"), "https://e.com/"))
            .await;
    }
    let (status, error) = send(
        herald
            .post("/api/v1/webhooks")
            .json(&json!({"name": "alpha 11", "url": "https://e.com/", "event_types": ["*"], "project": "alpha"})),
    )
    .await;
    assert_error(status, &error, 409, "scope_full", None);
    assert!(
        error["message"].as_str().unwrap().contains("\"alpha\""),
        "{error}"
    );

    let (status, error) = send(
        herald
            .post("/api/v1/webhooks")
            .json(&webhook_body("global 11", "https://e.com/")),
    )
    .await;
    assert_error(status, &error, 409, "scope_full", None);
    assert!(
        error["message"].as_str().unwrap().contains("global"),
        "{error}"
    );

    let global = herald
        .webhooks()
        .await
        .into_iter()
        .find(|w| w["project"].is_null())
        .unwrap();
    let global_path = format!("/api/v1/webhooks/{}", global["id"].as_str().unwrap());
    let (status, error) = send(
        herald
            .patch(&global_path)
            .json(&json!({"project": "alpha"})),
    )
    .await;
    assert_error(status, &error, 409, "scope_full", None);

    let other = herald
        .create_webhook(json!({"name": "beta 1", "url": "https://e.com/", "event_types": ["*"], "project": "beta"}))
        .await;
    assert_eq!(other["project"], "beta");
    assert_eq!(herald.webhooks().await.len(), 21);
}

#[tokio::test]
async fn delete_removes_the_webhook() {
    let herald = TestApp::spawn().await;
    let created = herald
        .create_webhook(webhook_body("doomed", "https://e.com/"))
        .await;
    let path = format!("/api/v1/webhooks/{}", created["id"].as_str().unwrap());
    let (status, body) = send(herald.request(Method::DELETE, &path)).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, error) = send(herald.get(&path)).await;
    assert_error(status, &error, 404, "not_found", None);
    let (status, error) = send(herald.request(Method::DELETE, &path)).await;
    assert_error(status, &error, 404, "not_found", None);
    assert!(herald.webhooks().await.is_empty());
}

#[tokio::test]
async fn test_sends_a_signed_ping_and_reports_the_answer() {
    let herald = TestApp::spawn().await;
    let mut receiver = Receiver::start().await;
    let created = herald
        .create_webhook(webhook_body("tested", &receiver.url))
        .await;
    let id = created["id"].as_str().unwrap();

    let (status, result) = send(herald.post(&format!("/api/v1/webhooks/{id}/test"))).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["success"], true, "{result}");
    assert_eq!(result["status"], 200);
    assert_eq!(result["body_excerpt"], "pong");
    assert_eq!(result["error"], Value::Null);
    assert!(result["duration_ms"].is_u64());

    let got = receiver.next().await;
    assert_eq!(got.headers["x-herald-event-type"], "herald:ping");
    let payload: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(payload["webhook_id"], id);
    assert!(crate::events::signature_is_valid(
        &got,
        created["secret"].as_str().unwrap()
    ));
    assert!(
        herald.deliveries(id).await.is_empty(),
        "a test must not be logged as a delivery"
    );

    receiver.answer_with(503);
    let (_, result) = send(herald.post(&format!("/api/v1/webhooks/{id}/test"))).await;
    assert_eq!(
        (result["success"].clone(), result["status"].clone()),
        (json!(false), json!(503))
    );

    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let dead = herald
        .create_webhook(webhook_body(
            "dead",
            &format!("http://127.0.0.1:{closed_port}/"),
        ))
        .await;
    let (status, result) = send(herald.post(&format!(
        "/api/v1/webhooks/{}/test",
        dead["id"].as_str().unwrap()
    )))
    .await;
    assert_eq!(status, 200);
    assert_eq!(result["success"], false);
    assert_eq!(result["status"], Value::Null);
    assert!(result["error"].is_string(), "{result}");
}

/// A short secret is accepted (receivers may demand one), with a warning; a
/// generated one and a long one get none.
#[tokio::test]
async fn a_weak_secret_is_accepted_with_a_warning() {
    let herald = TestApp::spawn().await;
    let mut body = webhook_body("weak", "http://127.0.0.1:9/hook");
    body["secret"] = json!("short");
    let created = herald.create_webhook(body).await;
    let warnings = created["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{created}");
    let warning = warnings[0].as_str().unwrap();
    assert!(
        warning.starts_with("secret: this secret is only 5 characters long"),
        "{warning}"
    );
    assert!(
        !warning.contains("short"),
        "a warning never quotes the secret"
    );

    let generated = herald
        .create_webhook(webhook_body("generated", "http://127.0.0.1:9/hook"))
        .await;
    assert!(generated.get("warnings").is_none(), "{generated}");
}

/// The webhook's `health` follows its endpoint: four failures in a row (the
/// harness's compressed `[delivery.health]`) pause it, and the answer says
/// until when and why; a success after the pause makes it healthy again.
#[tokio::test]
async fn a_webhook_shows_its_endpoints_health() {
    let herald = TestApp::spawn().await;
    herald.register_any_type("a").await;
    let mut receiver = Receiver::start().await;
    let created = herald
        .create_webhook(hook_body("health", &receiver.url, &["a"]))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["health"]["state"], "healthy");
    assert_eq!(created["health"]["consecutive_failures"], 0);
    assert_eq!(created["health"]["paused_until"], Value::Null);

    receiver.answer_with(500);
    for n in 0..4 {
        herald
            .publish(json!({"type": "a", "payload": {"n": n}}))
            .await;
        receiver.next().await;
    }
    let paused = wait_for_health(&herald, &id, |h| h["consecutive_failures"] == 4).await;
    assert!(
        ["paused", "failing"].contains(&paused["state"].as_str().unwrap()),
        "{paused}"
    );
    assert_eq!(paused["last_error"], "HTTP 500");

    receiver.answer_with(200);
    herald
        .publish(json!({"type": "a", "payload": {"n": 4}}))
        .await;
    let healthy = wait_for_health(&herald, &id, |h| h["state"] == "healthy").await;
    assert_eq!(healthy["consecutive_failures"], 0);
    assert!(healthy["last_success"].is_string());
    assert_eq!(healthy["last_error"], "HTTP 500", "the last error is kept");
}

async fn wait_for_health(herald: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, webhook) = send(herald.get(&format!("/api/v1/webhooks/{id}"))).await;
        assert_eq!(status, 200);
        if done(&webhook["health"]) {
            return webhook["health"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "health never got there: {webhook}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A webhook's own health and flow settings: set at creation, shown in every
/// answer (null where the node's apply), changed one at a time by `PATCH`
/// (the others stay), returned to the node's by `null`; values out of range
/// are refused naming the field and the range, changing nothing.
#[tokio::test]
async fn a_webhooks_own_health_and_flow_settings_are_set_shown_and_checked() {
    let herald = TestApp::spawn().await;
    let created = herald
        .create_webhook(json!({
            "name": "tuned", "url": "https://example.com/t", "event_types": ["changeset:*"],
            "failing_after": 10, "disable_after": 0, "max_in_flight": 4, "max_per_second": 50
        }))
        .await;
    assert_eq!(created["failing_after"], 10);
    assert_eq!(created["disable_after"], 0, "0: never disabled for failing");
    assert_eq!(created["max_in_flight"], 4);
    assert_eq!(created["max_per_second"], 50);
    let id = created["id"].as_str().unwrap();
    let path = format!("/api/v1/webhooks/{id}");

    let plain = herald
        .create_webhook(webhook_body("plain", "https://example.com/p"))
        .await;
    for field in [
        "failing_after",
        "disable_after",
        "max_in_flight",
        "max_per_second",
    ] {
        assert_eq!(plain[field], Value::Null, "{field}: the node's");
    }

    let (status, changed) = send(
        herald
            .patch(&path)
            .json(&json!({"max_per_second": 5, "failing_after": null})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["max_per_second"], 5);
    assert_eq!(changed["failing_after"], Value::Null, "back to the node's");
    assert_eq!(changed["disable_after"], 0, "untouched");
    assert_eq!(changed["max_in_flight"], 4, "untouched");
    let (_, read) = send(herald.get(&path)).await;
    assert_eq!(read["max_per_second"], 5);

    let refused = [
        (json!({"failing_after": 0}), "failing_after"),
        (json!({"disable_after": 100_001}), "disable_after"),
        (json!({"max_in_flight": 0}), "max_in_flight"),
        (json!({"max_per_second": 0}), "max_per_second"),
    ];
    for (body, field) in refused {
        let (status, error) = send(herald.patch(&path).json(&body)).await;
        assert_error(status, &error, 422, "invalid_field", Some(field));
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("must be from"), "{message}");
    }
    let (status, error) = send(herald.patch(&path).json(&json!({"max_in_flight": -1}))).await;
    assert!(status == 422 || status == 400, "{status} {error}");
    let (status, error) = send(herald.post("/api/v1/webhooks").json(&json!({
        "name": "bad", "url": "https://example.com/b", "event_types": ["changeset:*"],
        "max_per_second": 0
    })))
    .await;
    assert_error(status, &error, 422, "invalid_field", Some("max_per_second"));
    let (_, after) = send(herald.get(&path)).await;
    assert_eq!(
        after["max_in_flight"], 4,
        "a refused change changes nothing"
    );
    assert_eq!(after["max_per_second"], 5);
}
