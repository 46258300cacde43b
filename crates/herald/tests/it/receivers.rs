//! Incoming webhooks through the real binary: a code host's signed request to
//! a receiver's URL comes out, normalized, at a subscribed webhook, signed and
//! delivered like any event; and the `herald receivers` client commands.

use std::path::PathBuf;
use std::process::Stdio;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::harness::{
    AppOptions, Behaviour, FAST_CONFIG, PATIENCE, Receiver, TOKEN, TestApp,
    standard_signature_valid,
};

pub(crate) const GITHUB_SECRET: &str = "it's a secret to everybody";

pub(crate) fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../herald-ingest/tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// GitHub's `X-Hub-Signature-256`, computed independently of Herald.
fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

pub(crate) async fn post_as_github(
    app: &TestApp,
    url: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
) -> (u16, Value) {
    let response = app
        .client()
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", github_signature(GITHUB_SECRET, body))
        .body(body.to_vec())
        .send()
        .await
        .expect("post to the receiver");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_merged_github_pull_request_becomes_one_signed_changeset_close_delivery() {
    let app = TestApp::spawn().await;
    let sink = Receiver::start(Behaviour::Status(200)).await;
    let hook = app.hook_for(&sink.url("/hook"), &["changeset:*"]).await;
    let hook_secret = hook["secret"].as_str().expect("secret").to_owned();
    let (status, receiver) = app
        .post(
            "/api/v1/receivers",
            json!({"name": "github.com", "kind": "github", "urn": "https://github.com", "secret": GITHUB_SECRET}),
        )
        .await;
    assert_eq!(status, 201, "{receiver}");
    let url = receiver["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with(&format!("{}/.api/webhooks/", app.base)),
        "the URL defaults to the listen address: {url}"
    );

    let body = fixture("derived/github/pull_request.closed_merged.json");
    let (status, answer) = post_as_github(
        &app,
        &url,
        "pull_request",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        &body,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "processed");
    let event_ids = answer["event_ids"].as_array().expect("event ids").clone();
    assert_eq!(event_ids.len(), 1, "{answer}");

    // GitHub redelivers: answered, not processed again.
    let (status, again) = post_as_github(
        &app,
        &url,
        "pull_request",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        &body,
    )
    .await;
    assert_eq!(
        (status, &again["outcome"]),
        (200, &json!("duplicate")),
        "{again}"
    );

    let got = sink.wait_for(1).await;
    let delivery = &got[0];
    assert!(
        standard_signature_valid(&hook_secret, delivery),
        "bad signature on {delivery:?}"
    );
    assert_eq!(delivery.header("x-herald-event-type"), "changeset:close");
    assert_eq!(
        delivery.header("webhook-id"),
        event_ids[0].as_str().expect("id")
    );
    let payload: Value = serde_json::from_slice(&delivery.body).expect("JSON payload");
    assert_eq!(payload["state"], "MERGED");
    assert_eq!(payload["external_id"], "2");
    assert_eq!(
        payload["repository_id"],
        "github.com/Codertocat/Hello-World"
    );
    assert_eq!(
        payload["external_url"],
        "https://github.com/Codertocat/Hello-World/pull/2"
    );

    let hook_id = hook["id"].as_str().expect("hook id");
    let deliveries = app
        .wait_until(
            &format!("/api/v1/webhooks/{hook_id}/deliveries"),
            "the delivery to succeed",
            |page| {
                page["items"]
                    .as_array()
                    .is_some_and(|items| items.iter().all(|d| d["status"] == "succeeded"))
            },
        )
        .await;
    assert_eq!(
        deliveries["items"].as_array().expect("items").len(),
        1,
        "exactly one delivery"
    );
    assert_eq!(
        sink.received().len(),
        1,
        "exactly one request reached the webhook"
    );
}

#[tokio::test]
async fn receivers_survive_a_crash_with_their_log_and_delivery_ids() {
    let mut app = TestApp::spawn().await;
    let (_, receiver) = app
        .post(
            "/api/v1/receivers",
            json!({"kind": "github", "urn": "https://github.com", "secret": GITHUB_SECRET}),
        )
        .await;
    let id = receiver["id"].as_str().expect("id").to_owned();
    let body = fixture("octokit/push.01.json");
    let path = format!("/.api/webhooks/{id}");
    let (status, _) =
        post_as_github(&app, &format!("{}{path}", app.base), "push", "d-1", &body).await;
    assert_eq!(status, 200);
    app.restart().await;
    // The restarted server listens elsewhere; the receiver and its state are there.
    let (status, again) =
        post_as_github(&app, &format!("{}{path}", app.base), "push", "d-1", &body).await;
    assert_eq!(
        (status, &again["outcome"]),
        (200, &json!("duplicate")),
        "{again}"
    );
    let (status, log) = app.get(&format!("/api/v1/receivers/{id}/requests")).await;
    assert_eq!(status, 200);
    let outcomes: Vec<&Value> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| &r["outcome"])
        .collect();
    assert_eq!(outcomes, [&json!("duplicate"), &json!("processed")]);
}

/// Runs `herald <args> --json` as a client of `app`.
async fn cli_json(app: &TestApp, args: &[&str]) -> Value {
    let output = tokio::time::timeout(
        PATIENCE,
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(args)
            .arg("--json")
            .env("HERALD_URL", &app.base)
            .env("HERALD_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("the command finished in time")
    .expect("run herald");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "herald {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("herald {args:?} printed no JSON ({e}): {stdout}"))
    }
}

#[tokio::test]
async fn the_receivers_commands_create_rotate_read_the_log_and_delete() {
    let app = TestApp::spawn().await;
    let created = cli_json(
        &app,
        &[
            "receivers",
            "create",
            "--kind",
            "gitlab",
            "--urn",
            "https://gitlab.example.com",
            "--name",
            "ours",
            "--secret",
            "s1",
        ],
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(
        (&created["kind"], &created["secret"]),
        (&json!("gitlab"), &json!("s1"))
    );
    let listed = cli_json(&app, &["receivers", "list"]).await;
    assert_eq!(listed["items"][0]["id"], id.as_str());

    let updated = cli_json(
        &app,
        &[
            "receivers",
            "update",
            &id,
            "--no-name",
            "--gitlab-standard-webhooks",
            "true",
        ],
    )
    .await;
    assert_eq!(
        (&updated["name"], &updated["gitlab_standard_webhooks"]),
        (&Value::Null, &json!(true))
    );
    let rotated = cli_json(
        &app,
        &[
            "receivers",
            "rotate-secret",
            &id,
            "--secret",
            "s2",
            "--grace",
            "1h",
        ],
    )
    .await;
    assert_eq!(rotated["secret"], "s2");
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );

    // Both secrets verify during the grace period.
    let body = fixture("code-hosts/gitlab/push.json");
    for token in ["s1", "s2"] {
        let response = app
            .client()
            .post(created["url"].as_str().expect("url"))
            .header("x-gitlab-event", "Push Hook")
            .header("x-gitlab-token", token)
            .body(body.clone())
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 200, "token {token}");
    }
    let log = cli_json(&app, &["receivers", "requests", &id, "--limit", "1"]).await;
    assert_eq!(log["items"].as_array().expect("items").len(), 1);
    assert!(log["next_cursor"].is_string());
    let request_id = log["items"][0]["id"]
        .as_str()
        .expect("request id")
        .to_owned();
    let detail = cli_json(&app, &["receivers", "requests", &id, &request_id]).await;
    assert_eq!(detail["verification"], "token (current secret)");
    assert_eq!(detail["body"].as_str().expect("body").as_bytes(), body);

    cli_json(&app, &["receivers", "delete", &id]).await;
    let listed = cli_json(&app, &["receivers", "list"]).await;
    assert_eq!(listed["items"], json!([]));
    let gone = app
        .client()
        .post(created["url"].as_str().expect("url"))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn the_request_log_follows_the_delivery_log_retention() {
    let app = TestApp::spawn_with(AppOptions {
        config: format!(
            "{FAST_CONFIG}\n[retention]\nmax_age = \"1s\"\npurge_interval = \"200ms\"\n"
        ),
        ..AppOptions::default()
    })
    .await;
    let (_, receiver) = app
        .post(
            "/api/v1/receivers",
            json!({"kind": "github", "urn": "https://github.com", "secret": GITHUB_SECRET}),
        )
        .await;
    let url = receiver["url"].as_str().expect("url");
    let (status, _) = post_as_github(
        &app,
        url,
        "ping",
        "ping-1",
        &fixture("code-hosts/github/ping.json"),
    )
    .await;
    assert_eq!(status, 200);
    let path = format!(
        "/api/v1/receivers/{}/requests",
        receiver["id"].as_str().expect("id")
    );
    let (_, logged) = app.get(&path).await;
    assert_eq!(logged["items"].as_array().expect("items").len(), 1);
    app.wait_until(&path, "the request log to be purged", |page| {
        page["items"] == json!([])
    })
    .await;
}
