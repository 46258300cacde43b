//! Receivers end to end through the real router: the admin API, and the
//! ingest endpoint `POST /.api/webhooks/{id}` fed with real code-host payloads
//! (herald-ingest's vendored fixtures), signed here the way each host signs.
//! What a request produced is read back from the delivery log of a webhook
//! subscribed to the normalized types, and every published payload is checked
//! against the catalogue's schema.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{Receiver, TestApp, assert_error, send, status_and_json};

pub const SECRET: &str = "herald-test-secret";
pub const AZURE_USER: &str = "herald-azure";

pub fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../herald-ingest/tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `sha256=<hex HMAC-SHA256>`, computed here rather than with Herald's code.
pub fn hub_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// A fresh delivery id per request, so that only deliberate repeats dedupe.
pub fn delivery_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("delivery-{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

/// The headers `kind` sends with `body`, signed with `secret`.
pub fn signed(kind: &str, event: &str, body: &[u8], secret: &str) -> Vec<(String, String)> {
    let pairs: Vec<(&str, String)> = match kind {
        "github" => vec![
            ("X-GitHub-Event", event.to_owned()),
            ("X-GitHub-Delivery", delivery_id()),
            ("X-Hub-Signature-256", hub_signature(secret, body)),
        ],
        "gitlab" => vec![
            ("X-Gitlab-Event", event.to_owned()),
            ("X-Gitlab-Event-UUID", delivery_id()),
            ("X-Gitlab-Token", secret.to_owned()),
        ],
        "bitbucket_server" => vec![
            ("X-Event-Key", event.to_owned()),
            ("X-Request-Id", delivery_id()),
            ("X-Hub-Signature", hub_signature(secret, body)),
        ],
        "bitbucket_cloud" => vec![
            ("X-Event-Key", event.to_owned()),
            ("X-Request-UUID", delivery_id()),
            ("X-Hub-Signature", hub_signature(secret, body)),
        ],
        "azure_devops" => vec![(
            "Authorization",
            format!(
                "Basic {}",
                STANDARD.encode(format!("{AZURE_USER}:{secret}"))
            ),
        )],
        other => panic!("unknown kind {other}"),
    };
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// A receiver and a webhook subscribed to everything receivers publish.
pub struct Setup {
    pub herald: TestApp,
    pub receiver: Value,
    pub webhook_id: String,
    _sink: Receiver,
}

impl Setup {
    pub async fn new(kind: &str, urn: &str) -> Self {
        Self::on(TestApp::spawn().await, kind, urn).await
    }

    pub async fn on(herald: TestApp, kind: &str, urn: &str) -> Self {
        let receiver = create_receiver(&herald, kind, urn).await;
        let sink = Receiver::start().await;
        let hook = herald
            .create_webhook(json!({
                "name": "code host events",
                "url": sink.url,
                "event_types": ["repo:push", "changeset:*"],
            }))
            .await;
        Self {
            herald,
            receiver,
            webhook_id: hook["id"].as_str().unwrap().to_owned(),
            _sink: sink,
        }
    }

    pub fn id(&self) -> &str {
        self.receiver["id"].as_str().unwrap()
    }

    pub fn kind(&self) -> &str {
        self.receiver["kind"].as_str().unwrap()
    }

    /// Posts a fixture (or any body) signed with the receiver's secret.
    pub async fn deliver(&self, event: &str, body: &[u8]) -> (u16, Value) {
        let headers = signed(self.kind(), event, body, SECRET);
        post_incoming(&self.herald, self.id(), &headers, body.to_vec()).await
    }

    /// Every event published to the webhook so far, oldest first, each
    /// checked against the catalogue.
    pub async fn events(&self) -> Vec<(String, Value)> {
        events_of(&self.herald, &self.webhook_id).await
    }

    /// The receiver's request log, newest first.
    pub async fn requests(&self) -> Vec<Value> {
        requests_of(&self.herald, self.id()).await
    }
}

pub async fn create_receiver(herald: &TestApp, kind: &str, urn: &str) -> Value {
    let mut body =
        json!({"name": format!("{kind} receiver"), "kind": kind, "urn": urn, "secret": SECRET});
    if kind == "azure_devops" {
        body["username"] = json!(AZURE_USER);
    }
    let (status, created) = send(herald.post("/api/v1/receivers").json(&body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// A code host's request: no bearer token.
pub async fn post_incoming(
    herald: &TestApp,
    receiver_id: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> (u16, Value) {
    let mut request = herald
        .client
        .post(format!("{}/.api/webhooks/{receiver_id}", herald.base))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    status_and_json(request.send().await.unwrap()).await
}

pub async fn events_of(herald: &TestApp, webhook_id: &str) -> Vec<(String, Value)> {
    let catalogue = herald_catalogue::Catalogue::builtin();
    let mut events = Vec::new();
    for delivery in herald.deliveries(webhook_id).await.iter().rev() {
        let id = delivery["id"].as_str().unwrap();
        let (status, detail) = send(herald.get(&format!("/api/v1/deliveries/{id}"))).await;
        assert_eq!(status, 200, "{detail}");
        let event_type = detail["event"]["type"].as_str().unwrap().to_owned();
        let payload = detail["event"]["payload"].clone();
        if let Err(error) = catalogue.validate(&event_type, &payload) {
            panic!("{event_type} does not match its schema: {error}: {payload}");
        }
        events.push((event_type, payload));
    }
    events
}

pub async fn requests_of(herald: &TestApp, receiver_id: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut path = format!("/api/v1/receivers/{receiver_id}/requests?limit=100");
    loop {
        let (status, page) = send(herald.get(&path)).await;
        assert_eq!(status, 200, "{page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/receivers/{receiver_id}/requests?limit=100&cursor={cursor}")
            }
            None => return items,
        }
    }
}

pub async fn request_detail(herald: &TestApp, receiver_id: &str, request_id: &str) -> Value {
    let (status, detail) = send(herald.get(&format!(
        "/api/v1/receivers/{receiver_id}/requests/{request_id}"
    )))
    .await;
    assert_eq!(status, 200, "{detail}");
    detail
}

// ---- the admin API ----

#[tokio::test]
async fn a_receiver_shows_its_url_and_its_secret_only_once() {
    let herald = TestApp::spawn().await;
    let (status, created) = send(herald.post("/api/v1/receivers").json(&json!({
        "kind": "github", "urn": "https://github.com"
    })))
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["url"],
        format!("{}/.api/webhooks/{id}", herald.base),
        "the URL defaults to the address served on"
    );
    assert_eq!(created["name"], Value::Null);
    assert_eq!(created["username"], Value::Null);
    let secret = created["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_"),
        "a secret is generated: {secret}"
    );

    let (status, shown) = send(herald.get(&format!("/api/v1/receivers/{id}"))).await;
    assert_eq!(status, 200);
    assert!(shown.get("secret").is_none(), "{shown}");
    assert_eq!(shown["url"], created["url"]);
    let (_, list) = send(herald.get("/api/v1/receivers")).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(secret));

    let azure = create_receiver(&herald, "azure_devops", "https://dev.azure.com/fabrikam").await;
    assert_eq!(azure["username"], AZURE_USER);
    assert_eq!(azure["secret"], SECRET);
    let (_, defaulted) = send(herald.post("/api/v1/receivers").json(&json!({
        "kind": "azure_devops", "urn": "https://dev.azure.com/x"
    })))
    .await;
    assert_eq!(defaulted["username"], "herald");
}

#[tokio::test]
async fn the_external_url_is_configurable() {
    let herald = TestApp::spawn_with(|config| {
        config.app.external_url = "https://herald.example.com/".to_owned();
    })
    .await;
    let created = create_receiver(&herald, "gitlab", "https://gitlab.example.com").await;
    assert_eq!(
        created["url"],
        format!(
            "https://herald.example.com/.api/webhooks/{}",
            created["id"].as_str().unwrap()
        )
    );
}

#[tokio::test]
async fn receivers_are_validated_updated_and_deleted() {
    let herald = TestApp::spawn().await;
    let refusals = [
        (json!({"kind": "svn", "urn": "https://x"}), "kind"),
        (json!({"kind": "github", "urn": "github.com"}), "urn"),
        (json!({"kind": "github", "urn": "ftp://github.com"}), "urn"),
        (
            json!({"kind": "github", "urn": "https://u:p@github.com"}),
            "urn",
        ),
        (
            json!({"kind": "github", "urn": "https://github.com", "name": ""}),
            "name",
        ),
        (
            json!({"kind": "github", "urn": "https://github.com", "secret": ""}),
            "secret",
        ),
        (
            json!({"kind": "github", "urn": "https://github.com", "username": "u"}),
            "username",
        ),
        (
            json!({"kind": "gitlab", "urn": "https://g", "github_legacy_sha1": true}),
            "github_legacy_sha1",
        ),
        (
            json!({"kind": "github", "urn": "https://g", "gitlab_standard_webhooks": true}),
            "gitlab_standard_webhooks",
        ),
        (
            json!({"kind": "azure_devops", "urn": "https://d", "username": "a:b"}),
            "username",
        ),
    ];
    for (body, field) in refusals {
        let (status, error) = send(herald.post("/api/v1/receivers").json(&body)).await;
        assert_error(status, &error, 422, "invalid_field", Some(field));
    }
    let (status, error) = send(
        herald
            .post("/api/v1/receivers")
            .json(&json!({"urn": "https://x"})),
    )
    .await;
    assert_error(status, &error, 422, "missing_field", Some("kind"));
    let (_, list) = send(herald.get("/api/v1/receivers")).await;
    assert!(
        list["items"].as_array().unwrap().is_empty(),
        "a refusal created nothing"
    );

    let created = create_receiver(&herald, "github", "https://github.com").await;
    let path = format!("/api/v1/receivers/{}", created["id"].as_str().unwrap());
    let (status, updated) = send(herald.patch(&path).json(&json!({
        "name": "renamed", "urn": "https://github.example.com", "github_legacy_sha1": true
    })))
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["urn"], "https://github.example.com");
    assert_eq!(updated["github_legacy_sha1"], true);
    assert_eq!(updated["kind"], "github");
    let (status, error) = send(herald.patch(&path).json(&json!({"kind": "gitlab"}))).await;
    assert_error(status, &error, 422, "unknown_field", Some("kind"));
    let (status, error) = send(
        herald
            .patch(&path)
            .json(&json!({"gitlab_standard_webhooks": true})),
    )
    .await;
    assert_error(
        status,
        &error,
        422,
        "invalid_field",
        Some("gitlab_standard_webhooks"),
    );
    let (status, cleared) = send(herald.patch(&path).json(&json!({"name": null}))).await;
    assert_eq!((status, &cleared["name"]), (200, &Value::Null));

    let (status, _) = send(herald.request(Method::DELETE, &path)).await;
    assert_eq!(status, 204);
    let (status, error) = send(herald.get(&path)).await;
    assert_error(status, &error, 404, "not_found", None);
    let (status, error) = post_incoming(
        &herald,
        created["id"].as_str().unwrap(),
        &[],
        b"{}".to_vec(),
    )
    .await;
    assert_error(status, &error, 404, "not_found", None);
}

#[tokio::test]
async fn receiver_ids_are_checked_and_the_ingest_url_needs_no_token() {
    let herald = TestApp::spawn().await;
    let (status, error) = post_incoming(&herald, "not-a-uuid", &[], b"{}".to_vec()).await;
    assert_error(status, &error, 400, "invalid_id", None);
    let unknown = "0190b8e2-7a4c-7d2e-9a51-3c1f0e6d2b7a";
    let (status, error) = post_incoming(&herald, unknown, &[], b"{}".to_vec()).await;
    assert_error(status, &error, 404, "not_found", None);
    assert!(
        error["message"].as_str().unwrap().contains("receiver"),
        "{error}"
    );
    for path in [
        "/api/v1/receivers/not-a-uuid".to_owned(),
        "/api/v1/receivers/not-a-uuid/requests".to_owned(),
        format!("/api/v1/receivers/{unknown}/requests/not-a-uuid"),
    ] {
        let (status, error) = send(herald.get(&path)).await;
        assert_error(status, &error, 400, "invalid_id", None);
    }
    let (status, error) = send(herald.get(&format!("/api/v1/receivers/{unknown}/requests"))).await;
    assert_error(status, &error, 404, "not_found", None);
    let anonymous = herald
        .client
        .get(format!("{}/api/v1/receivers", herald.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "the admin API still needs the token"
    );
}

// ---- verification, dedupe, size ----

#[tokio::test]
async fn a_tampered_body_or_a_wrong_secret_is_refused_logged_and_produces_nothing() {
    let setup = Setup::new("github", "https://github.com").await;
    let body = fixture("octokit/pull_request.01.opened.json");
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'2').unwrap();
    tampered[at] = b'3';
    let headers = signed("github", "pull_request", &body, SECRET);
    let (status, error) = post_incoming(&setup.herald, setup.id(), &headers, tampered).await;
    assert_error(status, &error, 401, "unverified", None);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("X-Hub-Signature-256"),
        "{error}"
    );

    let wrong = signed("github", "pull_request", &body, "not-the-secret");
    let (status, error) = post_incoming(&setup.herald, setup.id(), &wrong, body.clone()).await;
    assert_error(status, &error, 401, "unverified", None);
    let (status, error) = post_incoming(&setup.herald, setup.id(), &[], body.clone()).await;
    assert_error(status, &error, 401, "unverified", None);

    assert!(
        setup.events().await.is_empty(),
        "a refused request published something"
    );
    let logged = setup.requests().await;
    assert_eq!(logged.len(), 3);
    for request in &logged {
        assert_eq!(request["outcome"], "unverified", "{request}");
        assert_eq!(request["verified"], false);
        assert_eq!(request["status_code"], 401);
        assert_eq!(
            request["event_name"],
            Value::Null,
            "nothing was read from it"
        );
        assert_eq!(request["event_ids"], json!([]));
    }
    let detail = request_detail(&setup.herald, setup.id(), logged[2]["id"].as_str().unwrap()).await;
    assert!(
        detail["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| { h["name"] == "x-hub-signature-256" && h["value"] == "<redacted>" })
    );
    assert!(!detail.to_string().contains(SECRET));

    // The same request, correctly signed, goes through: the refusals left no trace.
    let (status, accepted) = post_incoming(&setup.herald, setup.id(), &headers, body).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(setup.events().await.len(), 1);
}

#[tokio::test]
async fn a_redelivery_is_answered_200_and_processed_once() {
    let setup = Setup::new("github", "https://github.com").await;
    let body = fixture("octokit/push.01.json");
    let headers = signed("github", "push", &body, SECRET);
    let (status, first) = post_incoming(&setup.herald, setup.id(), &headers, body.clone()).await;
    assert_eq!(
        (status, &first["outcome"]),
        (200, &json!("processed")),
        "{first}"
    );
    assert_eq!(first["event_ids"].as_array().unwrap().len(), 1);
    let (status, again) = post_incoming(&setup.herald, setup.id(), &headers, body.clone()).await;
    assert_eq!(
        (status, &again["outcome"]),
        (200, &json!("duplicate")),
        "{again}"
    );
    assert_eq!(again["event_ids"], json!([]));
    assert_ne!(again["request_id"], first["request_id"]);
    assert_eq!(
        setup.events().await.len(),
        1,
        "a redelivery was processed twice"
    );
    let logged = setup.requests().await;
    let outcomes: Vec<&Value> = logged.iter().map(|r| &r["outcome"]).collect();
    assert_eq!(outcomes, [&json!("duplicate"), &json!("processed")]);
    assert_eq!(logged[0]["delivery_id"], logged[1]["delivery_id"]);
}

#[tokio::test]
async fn a_body_over_25_mib_gets_413_and_is_logged_without_it() {
    let setup = Setup::new("github", "https://github.com").await;
    let body = vec![b' '; herald_server::MAX_INCOMING_BODY_BYTES + 1];
    let headers = signed("github", "push", &body, SECRET);
    let (status, error) = post_incoming(&setup.herald, setup.id(), &headers, body).await;
    assert_error(status, &error, 413, "payload_too_large", None);
    let logged = setup.requests().await;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["outcome"], "too_large");
    assert_eq!(logged[0]["status_code"], 413);
    let detail = request_detail(&setup.herald, setup.id(), logged[0]["id"].as_str().unwrap()).await;
    assert_eq!(
        (&detail["body"], &detail["body_truncated"]),
        (&json!(""), &json!(true))
    );

    let just_fits = {
        let mut body = fixture("octokit/push.01.json");
        body.resize(herald_server::MAX_INCOMING_BODY_BYTES, b' ');
        body
    };
    let (status, accepted) = setup.deliver("push", &just_fits).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(setup.events().await.len(), 1);
}

#[tokio::test]
async fn a_rotated_secret_keeps_verifying_for_its_grace_period() {
    let setup = Setup::new("github", "https://github.com").await;
    let path = format!("/api/v1/receivers/{}/rotate-secret", setup.id());
    let (status, rotated) = send(
        setup
            .herald
            .post(&path)
            .json(&json!({"grace_period_seconds": 3600})),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, SECRET);
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );

    let body = fixture("octokit/push.02.json");
    for (secret, used) in [
        (SECRET, "previous secret"),
        (new_secret.as_str(), "current secret"),
    ] {
        let headers = signed("github", "push", &body, secret);
        let (status, accepted) =
            post_incoming(&setup.herald, setup.id(), &headers, body.clone()).await;
        assert_eq!(status, 200, "{accepted}");
        let detail = request_detail(
            &setup.herald,
            setup.id(),
            accepted["request_id"].as_str().unwrap(),
        )
        .await;
        let verification = detail["verification"].as_str().unwrap();
        assert!(verification.contains(used), "{verification}");
    }

    // A short grace period ends; the secret it covered stops verifying.
    let (_, second) = send(
        setup
            .herald
            .post(&path)
            .json(&json!({"secret": "third-secret", "grace_period_seconds": 1})),
    )
    .await;
    assert_eq!(second["secret"], "third-secret");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, shown) = send(
        setup
            .herald
            .get(&format!("/api/v1/receivers/{}", setup.id())),
    )
    .await;
    assert_eq!(shown["previous_secret_expires_at"], Value::Null, "{shown}");
    let stale = signed("github", "push", &body, &new_secret);
    let (status, error) = post_incoming(&setup.herald, setup.id(), &stale, body.clone()).await;
    assert_error(status, &error, 401, "unverified", None);
    let (status, _) = setup
        .deliver_with_secret("push", &body, "third-secret")
        .await;
    assert_eq!(status, 200);

    // No grace at all: the old secret stops at once.
    let (_, third) = send(
        setup
            .herald
            .post(&path)
            .json(&json!({"grace_period_seconds": 0})),
    )
    .await;
    assert_eq!(third["previous_secret_expires_at"], Value::Null);
    let (status, _) = setup
        .deliver_with_secret("push", &body, "third-secret")
        .await;
    assert_eq!(status, 401);
    let (status, error) = send(
        setup
            .herald
            .post(&path)
            .json(&json!({"grace_period_seconds": 2_592_001})),
    )
    .await;
    assert_error(
        status,
        &error,
        422,
        "invalid_field",
        Some("grace_period_seconds"),
    );
}

impl Setup {
    async fn deliver_with_secret(&self, event: &str, body: &[u8], secret: &str) -> (u16, Value) {
        let headers = signed(self.kind(), event, body, secret);
        post_incoming(&self.herald, self.id(), &headers, body.to_vec()).await
    }
}

#[tokio::test]
async fn a_patched_secret_replaces_the_old_one_at_once() {
    let setup = Setup::new("azure_devops", "https://dev.azure.com/fabrikam").await;
    let path = format!("/api/v1/receivers/{}", setup.id());
    let (status, updated) = send(
        setup
            .herald
            .patch(&path)
            .json(&json!({"secret": "new-password"})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["username"], AZURE_USER, "the username stays");
    let body = fixture("code-hosts/azure-devops/git.push.json");
    let (status, _) = setup.deliver("git.push", &body).await;
    assert_eq!(status, 401, "the old password still verified");
    let (status, accepted) = setup
        .deliver_with_secret("git.push", &body, "new-password")
        .await;
    assert_eq!(status, 200, "{accepted}");
}

#[tokio::test]
async fn unknown_events_are_logged_and_answered_200_but_204_for_gitlab() {
    let github = Setup::new("github", "https://github.com").await;
    let (status, answer) = github.deliver("star", br#"{"action":"created"}"#).await;
    assert_eq!(
        (status, &answer["outcome"]),
        (200, &json!("ignored")),
        "{answer}"
    );
    let gitlab = Setup::new("gitlab", "https://gitlab.example.com").await;
    let (status, answer) = gitlab
        .deliver("Issue Hook", br#"{"object_kind":"issue"}"#)
        .await;
    assert_eq!((status, answer), (204, Value::Null));
    for setup in [&github, &gitlab] {
        let logged = setup.requests().await;
        assert_eq!(logged.len(), 1);
        assert_eq!(logged[0]["outcome"], "ignored");
        assert!(
            logged[0]["message"]
                .as_str()
                .unwrap()
                .contains("not one Herald normalizes")
        );
        assert!(setup.events().await.is_empty());
    }
    assert_eq!(gitlab.requests().await[0]["status_code"], 204);
}

#[tokio::test]
async fn a_verified_but_unreadable_payload_is_a_400_and_is_logged() {
    let setup = Setup::new("github", "https://github.com").await;
    let (status, error) = setup.deliver("push", b"{}").await;
    assert_error(status, &error, 400, "invalid_payload", None);
    let (status, error) = setup.deliver("push", b"not json").await;
    assert_error(status, &error, 400, "invalid_json", None);
    let logged = setup.requests().await;
    assert_eq!(logged.len(), 2);
    for request in &logged {
        assert_eq!(request["outcome"], "invalid");
        assert_eq!(request["verified"], true);
        assert_eq!(request["event_name"], "push");
        assert!(request["message"].is_string());
    }
    assert!(setup.events().await.is_empty());
}

#[tokio::test]
async fn the_request_log_pages_newest_first_with_headers_redacted() {
    let setup = Setup::new("gitlab", "https://gitlab.example.com").await;
    let body = fixture("code-hosts/gitlab/push.json");
    for _ in 0..3 {
        let (status, _) = setup.deliver("Push Hook", &body).await;
        assert_eq!(status, 200);
    }
    let path = format!("/api/v1/receivers/{}/requests?limit=2", setup.id());
    let (_, first) = send(setup.herald.get(&path)).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = send(setup.herald.get(&format!("{path}&cursor={cursor}"))).await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_cursor"], Value::Null);
    let (status, error) = send(setup.herald.get(&format!("{path}&cursor=x"))).await;
    assert_error(status, &error, 400, "invalid_query", Some("cursor"));
    let (status, error) = send(setup.herald.get(&format!(
        "/api/v1/receivers/{}/requests?limit=0",
        setup.id()
    )))
    .await;
    assert_error(status, &error, 400, "invalid_query", Some("limit"));

    let newest = &first["items"][0];
    let detail = request_detail(&setup.herald, setup.id(), newest["id"].as_str().unwrap()).await;
    assert_eq!(detail["body"], String::from_utf8(body).unwrap());
    assert_eq!(detail["body_truncated"], false);
    assert_eq!(detail["verification"], "token (current secret)");
    assert_eq!(detail["event_name"], "Push Hook");
    assert!(
        detail["delivery_id"]
            .as_str()
            .unwrap()
            .starts_with("delivery-")
    );
    let token = detail["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "x-gitlab-token")
        .expect("the token header is listed");
    assert_eq!(token["value"], "<redacted>");
    let other = create_receiver(&setup.herald, "gitlab", "https://gitlab.example.com").await;
    let (status, error) = send(setup.herald.get(&format!(
        "/api/v1/receivers/{}/requests/{}",
        other["id"].as_str().unwrap(),
        newest["id"].as_str().unwrap()
    )))
    .await;
    assert_error(status, &error, 404, "not_found", None);
}

#[tokio::test]
async fn an_unverified_request_keeps_only_the_start_of_its_body_and_asks_for_no_token() {
    let setup = Setup::new("github", "https://github.com").await;
    let body = vec![b'x'; 100 * 1024];
    let headers = signed("github", "push", b"another body", SECRET);
    let response = setup
        .herald
        .client
        .post(format!(
            "{}/.api/webhooks/{}",
            setup.herald.base,
            setup.id()
        ))
        .header("x-github-event", "push")
        .header("x-hub-signature-256", headers[2].1.as_str())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers().get("www-authenticate").is_none(),
        "a code host is not asked for the admin token"
    );
    let logged = setup.requests().await;
    let detail = request_detail(&setup.herald, setup.id(), logged[0]["id"].as_str().unwrap()).await;
    assert_eq!(detail["body"].as_str().unwrap().len(), 4 * 1024);
    assert_eq!(detail["body_truncated"], true);
}
