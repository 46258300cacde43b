//! The event catalogue through the real binary: receivers written the way
//! SonarQube's and Sourcegraph's documentation tells their users to write them
//! (a hex HMAC-SHA256 of the raw body, keyed with the secret's UTF-8 bytes),
//! and the `herald event-types` commands.

use std::process::Stdio;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::process::Command;

use crate::harness::{Behaviour, PATIENCE, Receiver, TOKEN, TestApp, standard_signature_valid};

/// What SonarQube's sample `new HmacUtils(HMAC_SHA_256, secret).hmacHex(body)`
/// and Sourcegraph's receivers compute.
fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn example(app: &TestApp, key: &str) -> Value {
    let (status, def) = app.get(&format!("/api/v1/event-types/{key}")).await;
    assert_eq!(status, 200, "{def}");
    def["example"].clone()
}

#[tokio::test]
async fn a_sonarqube_receiver_verifies_the_hex_hmac_and_sees_the_analysis_properties() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    app.create_webhook(json!({
        "name": "sonar", "url": receiver.url("/sonar"), "event_types": ["sonarqube:analysis"], "secret": "your_secret"
    }))
    .await;
    let (status, published) = app
        .post(
            "/api/v1/events",
            json!({
                "type": "sonarqube:analysis",
                "payload": example(&app, "sonarqube:analysis").await,
                "properties": {"sonar.analysis.buildNumber": "12345", "sonar.projectVersion": "1.2"}
            }),
        )
        .await;
    assert_eq!(status, 202, "{published}");

    let got = receiver.wait_for(1).await.remove(0);
    assert_eq!(
        got.header("x-sonar-webhook-hmac-sha256"),
        hmac_hex("your_secret", &got.body)
    );
    assert_ne!(
        got.header("x-sonar-webhook-hmac-sha256"),
        hmac_hex("another_secret", &got.body)
    );
    assert_eq!(got.header("x-sonarqube-project"), "myproject");
    assert!(standard_signature_valid("your_secret", &got));
    let body: Value = serde_json::from_slice(&got.body).expect("JSON body");
    assert_eq!(
        body["properties"],
        json!({"sonar.analysis.buildNumber": "12345"})
    );
    assert_eq!(body["qualityGate"]["status"], "OK");
}

#[tokio::test]
async fn a_sourcegraph_receiver_verifies_the_hex_hmac_of_a_changeset_event() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let hook = app
        .hook_for(&receiver.url("/batch"), &["changeset:*", "batch_change:*"])
        .await;
    let secret = hook["secret"].as_str().expect("secret").to_owned();
    let payload = example(&app, "changeset:publish").await;
    app.publish("changeset:publish", payload.clone()).await;

    let got = receiver.wait_for(1).await.remove(0);
    assert_eq!(
        got.header("x-sourcegraph-webhook-event-type"),
        "changeset:publish"
    );
    assert_eq!(
        got.header("x-sourcegraph-webhook-signature"),
        hmac_hex(&secret, &got.body)
    );
    assert!(standard_signature_valid(&secret, &got));
    assert_eq!(
        serde_json::from_slice::<Value>(&got.body).expect("JSON body"),
        payload
    );
    assert!(got.headers.get("x-sonar-webhook-hmac-sha256").is_none());
}

/// Runs `herald ARGS` as a client of `app`; returns (success, stdout, stderr).
async fn herald(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let run = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env("HERALD_URL", &app.base)
        .env("HERALD_TOKEN", TOKEN)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(PATIENCE, run)
        .await
        .expect("herald in time")
        .expect("run herald");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn the_cli_lists_shows_creates_and_deletes_event_types() {
    let app = TestApp::spawn().await;
    let (ok, table, err) = herald(&app, &["event-types", "list"]).await;
    assert!(ok, "{err}");
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.starts_with("KEY") && h.contains("FAMILY")),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("sonarqube:analysis"))
        .expect("a sonarqube row");
    assert!(
        row.contains("sonarqube") && row.contains("built-in"),
        "{row}"
    );

    let (ok, shown, err) = herald(&app, &["event-types", "show", "semgrep:findings"]).await;
    assert!(ok, "{err}");
    let family = shown
        .lines()
        .find(|l| l.starts_with("family:"))
        .unwrap_or_default();
    assert!(family.ends_with(" semgrep"), "{shown}");
    assert!(
        shown.contains("schema:") && shown.contains("semgrep_finding"),
        "{shown}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("deploy.json");
    let definition = json!({
        "key": "deploy:finished",
        "description": "A deployment finished",
        "schema": {"type": "object", "required": ["env"], "properties": {"env": {"type": "string"}}},
        "example": {"env": "prod"}
    });
    std::fs::write(&file, definition.to_string()).expect("write definition");
    let file_arg = file.to_str().expect("utf-8 path");
    let (ok, created, err) = herald(
        &app,
        &["event-types", "create", "--file", file_arg, "--json"],
    )
    .await;
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&created).expect("JSON answer");
    assert_eq!(
        (created["key"].as_str(), created["builtin"].as_bool()),
        (Some("deploy:finished"), Some(false))
    );
    let (ok, _, err) = herald(&app, &["event-types", "create", "--file", file_arg]).await;
    assert!(!ok && err.contains("already_exists"), "{err}");

    app.publish("deploy:finished", json!({"env": "staging"}))
        .await;
    let (status, refused) = app
        .post(
            "/api/v1/events",
            json!({"type": "deploy:finished", "payload": {"env": 1}}),
        )
        .await;
    assert_eq!(
        (status, refused["pointer"].as_str()),
        (422, Some("/env")),
        "{refused}"
    );

    let (ok, said, err) = herald(&app, &["event-types", "delete", "deploy:finished"]).await;
    assert!(
        ok && said.contains("deleted event type deploy:finished"),
        "{err}"
    );
    let (ok, _, err) = herald(&app, &["event-types", "delete", "changeset:update"]).await;
    assert!(
        !ok && err.contains("built in") && err.contains("409"),
        "{err}"
    );
    let (status, _) = app.get("/api/v1/event-types/deploy:finished").await;
    assert_eq!(status, 404);
}
