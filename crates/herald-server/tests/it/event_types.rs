//! The event catalogue through the API: listing types, schema rejections with a
//! pointer and a rule for every family, unknown types with suggestions, custom
//! types from registration to deletion, webhook patterns that match nothing,
//! and the native dialects (headers, SonarQube's properties merge, the Test
//! button) as a real receiver sees them.

use herald_store::{EventTypeStore, NewEventType};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{Received, Receiver, TestApp, assert_error, hook_body, send};

/// Lower-case hex HMAC-SHA256 of the body keyed with the secret's UTF-8 bytes,
/// written here rather than with herald-core's signer.
fn hex_hmac(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn header<'a>(received: &'a Received, name: &str) -> &'a str {
    received
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {:?}", received.headers))
        .to_str()
        .unwrap()
}

async fn example(herald: &TestApp, key: &str) -> Value {
    let (status, def) = send(herald.get(&format!("/api/v1/event-types/{key}"))).await;
    assert_eq!(status, 200, "{def}");
    def["example"].clone()
}

/// `value` with the field at `pointer` removed.
fn without(mut value: Value, pointer: &str) -> Value {
    let (parent, name) = pointer.rsplit_once('/').unwrap();
    value
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .shift_remove(name)
        .unwrap();
    value
}

/// `value` with the field at `pointer` replaced.
fn with(mut value: Value, pointer: &str, replacement: Value) -> Value {
    *value.pointer_mut(pointer).unwrap() = replacement;
    value
}

async fn publish(herald: &TestApp, body: Value) -> (u16, Value) {
    send(herald.post("/api/v1/events").json(&body)).await
}

#[tokio::test]
async fn every_builtin_type_is_listed_with_its_schema_example_and_family() {
    let herald = TestApp::spawn().await;
    let (status, list) = send(herald.get("/api/v1/event-types")).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    let family_of = |key: &str| {
        let def = items
            .iter()
            .find(|d| d["key"] == key)
            .unwrap_or_else(|| panic!("{key} not listed"));
        assert_eq!(def["builtin"], true);
        assert!(
            def["schema"].is_object() && !def["example"].is_null(),
            "{def}"
        );
        assert!(!def["description"].as_str().unwrap().is_empty());
        def["family"].as_str().unwrap().to_owned()
    };
    for key in [
        "batch_change:apply",
        "batch_change:close",
        "batch_change:delete",
    ] {
        assert_eq!(family_of(key), "sourcegraph");
    }
    for key in [
        "changeset:close",
        "changeset:publish",
        "changeset:publish_error",
        "changeset:update",
        "changeset:update_error",
    ] {
        assert_eq!(family_of(key), "sourcegraph");
    }
    assert_eq!(family_of("code_monitor:notification"), "code_monitor");
    assert_eq!(family_of("sonarqube:analysis"), "sonarqube");
    assert_eq!(family_of("semgrep:scan"), "semgrep");
    assert_eq!(family_of("semgrep:findings"), "semgrep");
    for key in [
        "herald:webhook.disabled",
        "herald:delivery.exhausted",
        "herald:delivery.recovered",
        "herald:ping",
    ] {
        assert_eq!(family_of(key), "herald");
    }
    let keys: Vec<&str> = items.iter().map(|d| d["key"].as_str().unwrap()).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted, "ordered by key");

    assert!(example(&herald, "semgrep:findings").await.is_array());
    let (status, error) = send(herald.get("/api/v1/event-types/sonarqube:analysys")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("not_found")),
        "{error}"
    );
    assert_eq!(error["suggestions"][0], "sonarqube:analysis");
}

/// One refused payload per family and kind of mistake: the answer names the JSON
/// Pointer of the first offending value and the rule, and nothing is stored.
#[tokio::test]
async fn schema_violations_name_the_pointer_and_the_rule_for_every_family() {
    let herald = TestApp::spawn().await;
    let hook = herald
        .create_webhook(hook_body("all", "https://e.com/", &["*"]))
        .await;
    let changeset = example(&herald, "changeset:update").await;
    let batch_change = example(&herald, "batch_change:apply").await;
    let monitor = example(&herald, "code_monitor:notification").await;
    let sonar = example(&herald, "sonarqube:analysis").await;
    let findings = example(&herald, "semgrep:findings").await;
    let scan = example(&herald, "semgrep:scan").await;
    let cases = [
        (
            "changeset:update",
            without(changeset.clone(), "/repository_id"),
            "/repository_id",
            r#"required field "repository_id" is missing"#,
        ),
        (
            "changeset:update",
            with(changeset, "/labels", json!("bug")),
            "/labels",
            "must be an array, got a string",
        ),
        (
            "batch_change:apply",
            with(batch_change, "/closed_at", json!(5)),
            "/closed_at",
            "must be a string or null, got an integer",
        ),
        (
            "code_monitor:notification",
            without(monitor.clone(), "/query"),
            "/query",
            r#"required field "query" is missing"#,
        ),
        (
            "code_monitor:notification",
            with(monitor, "/monitorURL", json!(["x"])),
            "/monitorURL",
            "must be a string, got an array",
        ),
        (
            "sonarqube:analysis",
            without(sonar.clone(), "/project/key"),
            "/project/key",
            r#"required field "key" is missing"#,
        ),
        (
            "sonarqube:analysis",
            with(
                sonar,
                "/qualityGate/conditions/1/onLeakPeriod",
                json!("yes"),
            ),
            "/qualityGate/conditions/1/onLeakPeriod",
            "must be a boolean, got a string",
        ),
        (
            "semgrep:findings",
            findings[0].clone(),
            "",
            "must be an array, got an object",
        ),
        (
            "semgrep:findings",
            without(findings.clone(), "/0/semgrep_finding/check_id"),
            "/0/semgrep_finding/check_id",
            r#"required field "check_id" is missing"#,
        ),
        (
            "semgrep:findings",
            with(findings, "/0/semgrep_finding/line", json!("185")),
            "/0/semgrep_finding/line",
            "must be an integer, got a string",
        ),
        (
            "semgrep:scan",
            without(scan.clone(), "/semgrep_scan/commit"),
            "/semgrep_scan/commit",
            r#"required field "commit" is missing"#,
        ),
        (
            "semgrep:scan",
            json!([scan]),
            "",
            "must be an object, got an array",
        ),
    ];
    for (event_type, payload, pointer, rule) in cases {
        let (status, error) =
            publish(&herald, json!({"type": event_type, "payload": payload})).await;
        assert_error(status, &error, 422, "schema_violation", Some("payload"));
        assert_eq!(
            (error["pointer"].as_str(), error["rule"].as_str()),
            (Some(pointer), Some(rule)),
            "{event_type}: {error}"
        );
        assert!(
            error["message"].as_str().unwrap().contains(event_type),
            "{error}"
        );
    }
    assert!(
        herald
            .deliveries(hook["id"].as_str().unwrap())
            .await
            .is_empty(),
        "a refused publish stored something"
    );
}

#[tokio::test]
async fn unknown_and_reserved_types_are_refused_with_the_closest_known_types() {
    let herald = TestApp::spawn().await;
    let (status, error) =
        publish(&herald, json!({"type": "changeset:updated", "payload": {}})).await;
    assert_error(status, &error, 422, "unknown_event_type", Some("type"));
    assert_eq!(error["suggestions"][0], "changeset:update");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("\"changeset:update\""),
        "{error}"
    );

    let (status, error) = publish(&herald, json!({"type": "semgrep:finding", "payload": []})).await;
    assert_error(status, &error, 422, "unknown_event_type", Some("type"));
    assert_eq!(error["suggestions"][0], "semgrep:findings");

    let ping = example(&herald, "herald:ping").await;
    let (status, error) = publish(&herald, json!({"type": "herald:ping", "payload": ping})).await;
    assert_error(status, &error, 422, "invalid_field", Some("type"));
    assert!(
        error["message"].as_str().unwrap().contains("herald:"),
        "{error}"
    );
}

#[tokio::test]
async fn a_custom_type_is_registered_used_replaced_and_deleted() {
    let herald = TestApp::spawn().await;
    let mut receiver = Receiver::start().await;
    let before =
        herald
            .post("/api/v1/webhooks")
            .json(&hook_body("orders", &receiver.url, &["order:*"]));
    let (status, error) = send(before).await;
    assert_error(
        status,
        &error,
        422,
        "unknown_event_type",
        Some("event_types[0]"),
    );

    let definition = json!({
        "key": "order:paid",
        "description": "An order was paid",
        "schema": {
            "type": "object",
            "required": ["order_id", "amount"],
            "properties": {"order_id": {"type": "string"}, "amount": {"type": "integer", "minimum": 0}}
        },
        "example": {"order_id": "A-1", "amount": 1200}
    });
    let (status, created) = send(herald.post("/api/v1/event-types").json(&definition)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["family"].as_str(), created["builtin"].as_bool()),
        (Some("custom"), Some(false))
    );
    let (status, error) = send(herald.post("/api/v1/event-types").json(&definition)).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("already_exists")),
        "{error}"
    );
    let (_, listed) = send(herald.get("/api/v1/event-types")).await;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["key"] == "order:paid")
    );

    let hook = herald
        .create_webhook(hook_body("orders", &receiver.url, &["order:*"]))
        .await;
    let secret = hook["secret"].as_str().unwrap();
    let published = herald
        .publish(json!({"type": "order:paid", "payload": {"order_id": "A-2", "amount": 5}}))
        .await;
    assert_eq!(published["deliveries"], 1);
    let got = receiver.next().await;
    assert_eq!(got.body, br#"{"order_id":"A-2","amount":5}"#.as_slice());
    assert!(
        got.headers.get("x-sonar-webhook-hmac-sha256").is_none(),
        "custom types have no native headers"
    );
    let (status, error) = publish(
        &herald,
        json!({"type": "order:paid", "payload": {"order_id": "A-3", "amount": -1}}),
    )
    .await;
    assert_error(status, &error, 422, "schema_violation", Some("payload"));
    assert_eq!(error["pointer"], "/amount");

    // Replaced as a SonarQube-family type: its receivers now get SonarQube's headers.
    let replacement = json!({
        "description": "An order was paid (SonarQube dialect)",
        "family": "sonarqube",
        "schema": {"type": "object", "required": ["order_id"]},
        "example": {"order_id": "A-1"}
    });
    let (status, replaced) = send(
        herald
            .request(Method::PUT, "/api/v1/event-types/order:paid")
            .json(&replacement),
    )
    .await;
    assert_eq!(
        (status, replaced["family"].as_str()),
        (200, Some("sonarqube")),
        "{replaced}"
    );
    herald
        .publish(json!({"type": "order:paid", "payload": {"order_id": "A-4"}}))
        .await;
    let got = receiver.next().await;
    assert_eq!(
        header(&got, "x-sonar-webhook-hmac-sha256"),
        hex_hmac(secret, &got.body)
    );

    let (status, _) = send(herald.request(Method::DELETE, "/api/v1/event-types/order:paid")).await;
    assert_eq!(status, 204);
    let (status, error) = publish(
        &herald,
        json!({"type": "order:paid", "payload": {"order_id": "A-5"}}),
    )
    .await;
    assert_error(status, &error, 422, "unknown_event_type", Some("type"));
    let (status, error) =
        send(herald.request(Method::DELETE, "/api/v1/event-types/order:paid")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("not_found")),
        "{error}"
    );
    assert_eq!(receiver.drain(), 0);
}

#[tokio::test]
async fn built_in_reserved_and_malformed_custom_types_are_refused() {
    let herald = TestApp::spawn().await;
    for key in ["changeset:update", "herald:ping"] {
        let (status, error) =
            send(herald.request(Method::DELETE, &format!("/api/v1/event-types/{key}"))).await;
        assert_error(status, &error, 409, "builtin_event_type", Some("key"));
    }
    let any = json!({"description": "d", "schema": {}, "example": {}});
    let (status, error) = send(
        herald
            .request(Method::PUT, "/api/v1/event-types/sonarqube:analysis")
            .json(&any),
    )
    .await;
    assert_error(status, &error, 409, "builtin_event_type", Some("key"));
    let (status, error) = send(herald.post("/api/v1/event-types").json(
        &json!({"key": "changeset:update", "description": "d", "schema": {}, "example": {}}),
    ))
    .await;
    assert_error(status, &error, 409, "builtin_event_type", Some("key"));

    let refused = [
        (
            json!({"key": "herald:mine", "description": "d", "schema": {}, "example": {}}),
            "key",
        ),
        (
            json!({"key": "has space", "description": "d", "schema": {}, "example": {}}),
            "key",
        ),
        (
            json!({"key": "a:b", "description": "d", "family": "herald", "schema": {}, "example": {}}),
            "family",
        ),
        (
            json!({"key": "a:b", "description": "d", "family": "jenkins", "schema": {}, "example": {}}),
            "family",
        ),
        (
            json!({"key": "a:b", "description": "d", "schema": {"type": "no such type"}, "example": {}}),
            "schema",
        ),
        (
            json!({"key": "a:b", "description": "d", "schema": {"type": "array"}, "example": {}}),
            "example",
        ),
        (
            json!({"key": "a:b", "description": "x".repeat(1001), "schema": {}, "example": {}}),
            "description",
        ),
    ];
    for (body, field) in refused {
        let (status, error) = send(herald.post("/api/v1/event-types").json(&body)).await;
        assert_error(status, &error, 422, "invalid_field", Some(field));
    }
    let (status, error) = send(
        herald
            .request(Method::PUT, "/api/v1/event-types/a:b")
            .json(&json!({"key": "a:c", "description": "d", "schema": {}, "example": {}})),
    )
    .await;
    assert_error(status, &error, 422, "invalid_field", Some("key"));
    let (_, listed) = send(herald.get("/api/v1/event-types")).await;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["builtin"] == true),
        "a refused type was kept: {listed}"
    );
}

#[tokio::test]
async fn webhooks_refuse_patterns_that_match_no_type() {
    let herald = TestApp::spawn().await;
    for (patterns, at, nearest) in [
        (json!(["nosuch:*"]), "event_types[0]", None),
        (
            json!(["changeset:*", "changeset:updte"]),
            "event_types[1]",
            Some("changeset:update"),
        ),
    ] {
        let body = json!({"name": "x", "url": "https://e.com/", "event_types": patterns});
        let (status, error) = send(herald.post("/api/v1/webhooks").json(&body)).await;
        assert_error(status, &error, 422, "unknown_event_type", Some(at));
        if let Some(nearest) = nearest {
            assert_eq!(error["suggestions"][0], nearest, "{error}");
        }
    }
    assert!(herald.webhooks().await.is_empty());

    for patterns in [
        json!(["*"]),
        json!(["herald:*"]),
        json!(["semgrep:findings", "code_monitor:*"]),
    ] {
        herald
            .create_webhook(json!({"name": "x", "url": "https://e.com/", "event_types": patterns}))
            .await;
    }
    let id = herald.webhooks().await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/webhooks/{id}");
    let (status, error) = send(
        herald
            .patch(&path)
            .json(&json!({"event_types": ["sonarqube:analyses"]})),
    )
    .await;
    assert_error(
        status,
        &error,
        422,
        "unknown_event_type",
        Some("event_types[0]"),
    );
    assert_eq!(error["suggestions"][0], "sonarqube:analysis");
    let (_, unchanged) = send(herald.get(&path)).await;
    assert_eq!(unchanged["event_types"], json!(["*"]));
}

/// Another node registered the type in the shared store: this node reloads its
/// custom types once before refusing, for publishing and for subscribing.
#[tokio::test]
async fn a_type_another_node_registered_is_picked_up_on_first_use() {
    let herald = TestApp::spawn().await;
    let mut receiver = Receiver::start().await;
    herald
        .store
        .put_event_type(NewEventType {
            key: "deploy:finished".to_owned(),
            description: "Registered on another node".to_owned(),
            family: "sourcegraph".to_owned(),
            schema_json: r#"{"type":"object","required":["env"]}"#.to_owned(),
            example_json: r#"{"env":"prod"}"#.to_owned(),
        })
        .await
        .unwrap();
    let hook = herald
        .create_webhook(hook_body("deploys", &receiver.url, &["deploy:finished"]))
        .await;
    herald
        .publish(json!({"type": "deploy:finished", "payload": {"env": "staging"}}))
        .await;
    let got = receiver.next().await;
    assert_eq!(
        header(&got, "x-sourcegraph-webhook-event-type"),
        "deploy:finished"
    );
    assert_eq!(
        header(&got, "x-sourcegraph-webhook-signature"),
        hex_hmac(hook["secret"].as_str().unwrap(), &got.body)
    );
    let (status, error) = publish(&herald, json!({"type": "deploy:finished", "payload": {}})).await;
    assert_error(status, &error, 422, "schema_violation", Some("payload"));
    assert_eq!(error["pointer"], "/env");
}

/// What a SonarQube receiver sees: `sonar.analysis.*` properties merged into the
/// payload's `properties` (others not), the project header, and a hex HMAC of
/// the exact body, which the delivery log also shows as the event's payload.
#[tokio::test]
async fn sonarqube_deliveries_merge_analysis_properties_and_carry_sonarqubes_headers() {
    let herald = TestApp::spawn().await;
    let mut receiver = Receiver::start().await;
    let hook = herald
        .create_webhook(json!({"name": "sonar", "url": receiver.url, "event_types": ["sonarqube:analysis"], "secret": "your_secret"}))
        .await;
    let payload = example(&herald, "sonarqube:analysis").await;
    let properties = json!({"sonar.analysis.buildNumber": "12345", "ci.job": "not merged"});
    herald
        .publish(
            json!({"type": "sonarqube:analysis", "payload": payload, "properties": properties}),
        )
        .await;

    let got = receiver.next().await;
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        body["properties"],
        json!({"sonar.analysis.buildNumber": "12345"})
    );
    let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        [
            "serverUrl",
            "taskId",
            "status",
            "analysedAt",
            "revision",
            "project",
            "properties",
            "qualityGate"
        ]
    );
    assert_eq!(header(&got, "x-sonarqube-project"), "myproject");
    assert_eq!(
        header(&got, "x-sonar-webhook-hmac-sha256"),
        hex_hmac("your_secret", &got.body)
    );
    assert!(crate::events::signature_is_valid(&got, "your_secret"));

    let deliveries = herald.deliveries(hook["id"].as_str().unwrap()).await;
    let detail = herald
        .wait_for_delivery(deliveries[0]["id"].as_str().unwrap(), "succeeded")
        .await;
    assert_eq!(detail["event"]["payload"], body);
    assert_eq!(detail["event"]["properties"], properties);
}

#[tokio::test]
async fn sourcegraph_deliveries_carry_sourcegraphs_headers() {
    let herald = TestApp::spawn().await;
    let mut receiver = Receiver::start().await;
    let hook = herald
        .create_webhook(hook_body("batch", &receiver.url, &["changeset:*"]))
        .await;
    let payload = example(&herald, "changeset:close").await;
    herald
        .publish(json!({"type": "changeset:close", "payload": payload}))
        .await;
    let got = receiver.next().await;
    assert_eq!(serde_json::from_slice::<Value>(&got.body).unwrap(), payload);
    assert_eq!(
        header(&got, "x-sourcegraph-webhook-event-type"),
        "changeset:close"
    );
    assert_eq!(
        header(&got, "x-sourcegraph-webhook-signature"),
        hex_hmac(hook["secret"].as_str().unwrap(), &got.body)
    );
    assert!(got.headers.get("x-sonarqube-project").is_none());
}

/// The Test button sends the one subscribed type's example with its family's
/// headers; a webhook on a pattern gets a `herald:ping`.
#[tokio::test]
async fn the_test_button_sends_the_subscribed_types_example_or_a_ping() {
    let herald = TestApp::spawn().await;
    let mut receiver = Receiver::start().await;
    let sonar = herald
        .create_webhook(hook_body("sonar", &receiver.url, &["sonarqube:analysis"]))
        .await;
    let (status, result) = send(herald.post(&format!(
        "/api/v1/webhooks/{}/test",
        sonar["id"].as_str().unwrap()
    )))
    .await;
    assert_eq!(
        (status, result["success"].as_bool()),
        (200, Some(true)),
        "{result}"
    );
    let got = receiver.next().await;
    assert_eq!(header(&got, "x-herald-event-type"), "sonarqube:analysis");
    assert_eq!(
        serde_json::from_slice::<Value>(&got.body).unwrap(),
        example(&herald, "sonarqube:analysis").await
    );
    assert_eq!(
        header(&got, "x-sonar-webhook-hmac-sha256"),
        hex_hmac(sonar["secret"].as_str().unwrap(), &got.body)
    );

    let monitor = herald
        .create_webhook(hook_body(
            "monitor",
            &receiver.url,
            &["code_monitor:notification"],
        ))
        .await;
    send(herald.post(&format!(
        "/api/v1/webhooks/{}/test",
        monitor["id"].as_str().unwrap()
    )))
    .await;
    let got = receiver.next().await;
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["query"], "test query");
    assert!(body.get("results").is_none(), "{body}");

    let many = herald
        .create_webhook(hook_body("many", &receiver.url, &["changeset:*"]))
        .await;
    let many_id = many["id"].as_str().unwrap();
    send(herald.post(&format!("/api/v1/webhooks/{many_id}/test"))).await;
    let got = receiver.next().await;
    assert_eq!(header(&got, "x-herald-event-type"), "herald:ping");
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["webhook_id"], many_id);
    assert_eq!(body["message"], "Test event from Herald");
    assert!(got.headers.get("x-sourcegraph-webhook-signature").is_none());
}
