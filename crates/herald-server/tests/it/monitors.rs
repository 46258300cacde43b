//! Code monitors over HTTP: repositories and monitors, their validation, the
//! test and run-now endpoints, and the whole flow from a signed GitHub push to
//! a receiver, through a fetch and a search, to a signed notification.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::events::signature_is_valid;
use crate::harness::{Receiver, TestApp, assert_error, send};
use crate::receivers::{Setup, fixture};

/// The repository GitHub's push fixture names.
const PUSHED_REPOSITORY: &str = "github.com/binkkatal/sample_app";

/// A git repository in a temporary directory: what Herald mirrors.
struct Source {
    dir: tempfile::TempDir,
}

impl Source {
    fn new() -> Source {
        let source = Source {
            dir: tempfile::tempdir().unwrap(),
        };
        source.git(&["init", "--quiet", "--initial-branch=main", "."]);
        source.commit("README", "hello\n", "start");
        source
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(self.dir.path())
            .args([
                "-c",
                "user.name=Ada",
                "-c",
                "user.email=ada@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn commit(&self, file: &str, content: &str, message: &str) -> String {
        std::fs::write(Path::new(self.path()).join(file), content).unwrap();
        self.git(&["add", "-A"]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }
}

async fn create_repository(herald: &TestApp, name: &str, url: &str) -> Value {
    let (status, created) = send(
        herald
            .post("/api/v1/repositories")
            .json(&json!({"name": name, "url": url})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Waits for the repository's first fetch (started in the background on creation).
async fn fetched(herald: &TestApp, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, repo) = send(herald.get(&format!("/api/v1/repositories/{id}"))).await;
        if !repo["last_fetched_at"].is_null() {
            return repo;
        }
        assert!(Instant::now() < deadline, "never fetched: {repo}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn create_monitor(herald: &TestApp, body: Value) -> Value {
    let (status, created) = send(herald.post("/api/v1/monitors").json(&body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn runs(herald: &TestApp, monitor: &Value) -> Vec<Value> {
    let (status, list) = send(herald.get(&format!(
        "/api/v1/monitors/{}/runs",
        monitor["id"].as_str().unwrap()
    )))
    .await;
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_github_push_to_a_receiver_notifies_a_monitor_once() {
    let setup = Setup::on(TestApp::spawn().await, "github", "https://github.com").await;
    let herald = &setup.herald;
    let source = Source::new();
    let repo = create_repository(herald, PUSHED_REPOSITORY, source.path()).await;
    fetched(herald, repo["id"].as_str().unwrap()).await;
    let mut action = Receiver::start().await;
    let mut subscriber = Receiver::start().await;
    let global = herald
        .create_webhook(
            json!({"name": "all notifications", "url": subscriber.url, "event_types": ["code_monitor:notification"]}),
        )
        .await;
    let monitor = create_monitor(
        herald,
        json!({
            "description": "Private keys",
            "query": "type:diff BEGIN PRIVATE",
            "actions": [{"type": "webhook", "url": action.url}],
        }),
    )
    .await;
    let secret = monitor["actions"][0]["secret"].as_str().unwrap().to_owned();

    let commit = source.commit("id.pem", "-----BEGIN PRIVATE KEY----- 鍵 🔑\n", "add a key");
    let (status, answer) = setup
        .deliver("push", &fixture("code-hosts/github/push.json"))
        .await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("processed")),
        "{answer}"
    );

    let got = action.next().await;
    assert!(
        signature_is_valid(&got, &secret),
        "the action's delivery is signed with its secret"
    );
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["monitorDescription"], "Private keys");
    assert_eq!(body["monitorURL"], monitor["url"]);
    assert_eq!(body["query"], "type:diff BEGIN PRIVATE");
    let result = &body["results"][0];
    assert_eq!(
        (result["repository"].as_str(), result["commit"].as_str()),
        (Some(PUSHED_REPOSITORY), Some(commit.as_str()))
    );
    let diff = result["diff"].as_str().unwrap();
    assert_eq!(
        diff,
        "/dev/null id.pem\n@@ -0,0 +1,1 @@ \n+-----BEGIN PRIVATE KEY----- 鍵 🔑\n"
    );
    // One literal pattern, one `[start, end)` range of UTF-8 byte offsets.
    let begin = diff.find("BEGIN PRIVATE").unwrap();
    assert_eq!(result["matchedDiffRanges"], json!([[begin, begin + 13]]));
    assert_eq!(&diff[begin..begin + 13], "BEGIN PRIVATE");
    let global_got = subscriber.next().await;
    assert_eq!(
        global_got.body, got.body,
        "global subscribers get the same notification"
    );
    assert!(global["id"].is_string());

    // The same push again (a new delivery id): nothing new, nothing sent.
    let (status, _) = setup
        .deliver("push", &fixture("code-hosts/github/push.json"))
        .await;
    assert_eq!(status, 200);
    let (status, repo) = send(herald.post(&format!(
        "/api/v1/repositories/{}/fetch",
        repo["id"].as_str().unwrap()
    )))
    .await;
    assert_eq!((status, repo["last_error"].clone()), (200, Value::Null));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(action.drain(), 0);
    assert_eq!(subscriber.drain(), 0);
    let logged = runs(herald, &monitor).await;
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0]["commits"], json!([commit]));
    assert_eq!(logged[0]["matches"], 1);
    assert_eq!(logged[0]["repository"], PUSHED_REPOSITORY);
}

#[tokio::test]
async fn repositories_are_validated_fetched_and_show_their_errors() {
    let herald = TestApp::spawn().await;
    let source = Source::new();
    let created = create_repository(&herald, "github.com/acme/api", source.path()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["branches"], Value::Null);
    let repo = fetched(&herald, &id).await;
    assert_eq!(repo["last_error"], Value::Null);
    let head = source.git(&["rev-parse", "HEAD"]);
    assert_eq!(repo["heads"], json!({"refs/heads/main": head.trim()}));

    let (status, body) = send(
        herald
            .post("/api/v1/repositories")
            .json(&json!({"name": "github.com/acme/api", "url": source.path()})),
    )
    .await;
    assert_error(status, &body, 409, "name_taken", Some("name"));
    for (bad, field) in [
        (json!({"name": "x", "url": "relative/dir"}), "url"),
        (
            json!({"name": "x", "url": "ext::sh -c touch% /tmp/pwned"}),
            "url",
        ),
        (json!({"name": "", "url": "/srv/git/x"}), "name"),
        (
            json!({"name": "x", "url": "/srv/git/x", "branches": ["a..b"]}),
            "branches[0]",
        ),
        (
            json!({"name": "x", "url": "/srv/git/x", "fetch_interval_seconds": 0}),
            "fetch_interval_seconds",
        ),
    ] {
        let (status, body) = send(herald.post("/api/v1/repositories").json(&bad)).await;
        assert_error(status, &body, 422, "invalid_field", Some(field));
    }
    // Sources the server does not fetch from, with what to change.
    for (url, remedy) in [
        ("http://169.254.169.254/latest/meta-data/", "--allow-cidr"),
        ("http://[::ffff:10.0.0.1]/x.git", "--allow-cidr"),
        ("/var/lib/other/repo", "local_roots"),
        ("file:///var/lib/other/repo", "local_roots"),
        ("/srv/git/../../var/lib/other/repo", ".."),
        ("git@github.com:acme/api.git", "allow_ssh"),
        ("--upload-pack=touch /tmp/pwned", "-"),
    ] {
        let (status, body) = send(
            herald
                .post("/api/v1/repositories")
                .json(&json!({"name": "x", "url": url})),
        )
        .await;
        assert_error(status, &body, 422, "invalid_field", Some("url"));
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(remedy), "{url}: {message}");
    }
    let (status, body) = send(
        herald
            .post("/api/v1/repositories")
            .json(&json!({"name": "x", "url": "/x", "colour": 1})),
    )
    .await;
    assert_error(status, &body, 422, "unknown_field", Some("colour"));

    // Credentials never show.
    let secret = create_repository(
        &herald,
        "git.example.com/private",
        "https://bot:s3cret@127.0.0.1:9/private.git",
    )
    .await;
    assert_eq!(secret["url"], "https://***:***@127.0.0.1:9/private.git");
    let failed = send(herald.post(&format!(
        "/api/v1/repositories/{}/fetch",
        secret["id"].as_str().unwrap()
    )))
    .await
    .1;
    let error = failed["last_error"]
        .as_str()
        .expect("a failed fetch is shown");
    assert!(!error.contains("s3cret"), "{error}");

    let (status, patched) = send(
        herald
            .patch(&format!("/api/v1/repositories/{id}"))
            .json(&json!({"branches": ["main"], "fetch_interval_seconds": 60})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (
            patched["branches"].clone(),
            patched["fetch_interval_seconds"].clone()
        ),
        (json!(["main"]), json!(60))
    );
    let (status, list) = send(herald.get("/api/v1/repositories")).await;
    assert_eq!((status, list["items"].as_array().unwrap().len()), (200, 2));

    assert_eq!(
        send(herald.request(Method::DELETE, &format!("/api/v1/repositories/{id}")))
            .await
            .0,
        204
    );
    let (status, body) = send(herald.get(&format!("/api/v1/repositories/{id}"))).await;
    assert_error(status, &body, 404, "not_found", None);
    let (status, body) = send(herald.post("/api/v1/repositories/not-an-id/fetch")).await;
    assert_error(status, &body, 400, "invalid_id", None);
}

#[tokio::test]
async fn a_bad_query_is_refused_with_its_position_and_reason() {
    let herald = TestApp::spawn().await;
    let regex = "type:diff /a(/";
    let in_regex = herald_monitor::parse_query(regex).unwrap_err().position;
    assert!(in_regex >= 10, "inside the pattern: {in_regex}");
    for (query, position) in [("BEGIN", 0), ("type:diff (BEGIN", 10), (regex, in_regex)] {
        let body = json!({"description": "d", "query": query});
        let (status, answer) = send(herald.post("/api/v1/monitors").json(&body)).await;
        assert_error(status, &answer, 422, "invalid_search_query", Some("query"));
        assert_eq!(answer["position"], position, "{query}: {answer}");
        let reason = answer["message"].as_str().unwrap();
        assert!(
            reason.starts_with("query: ") && reason.contains(&format!("(at byte {position})")),
            "{reason}"
        );
    }
    let (status, answer) = send(
        herald
            .post("/api/v1/monitors")
            .json(&json!({"description": " ", "query": "type:commit x"})),
    )
    .await;
    assert_error(status, &answer, 422, "invalid_field", Some("description"));
    let actions: Vec<Value> = (0..11)
        .map(|_| json!({"type": "webhook", "url": "https://example.com/h"}))
        .collect();
    let (status, answer) = send(
        herald
            .post("/api/v1/monitors")
            .json(&json!({"description": "d", "query": "type:commit x", "actions": actions})),
    )
    .await;
    assert_error(status, &answer, 422, "invalid_field", Some("actions"));
    let slack_secret =
        json!([{"type": "slack", "url": "https://hooks.slack.com/services/T/B/X", "secret": "s"}]);
    let (status, answer) = send(
        herald
            .post("/api/v1/monitors")
            .json(&json!({"description": "d", "query": "type:commit x", "actions": slack_secret})),
    )
    .await;
    assert_error(
        status,
        &answer,
        422,
        "invalid_field",
        Some("actions[0].secret"),
    );
    let (status, list) = send(herald.get("/api/v1/monitors")).await;
    assert_eq!(
        (status, list["items"].as_array().unwrap().len()),
        (200, 0),
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn monitor_actions_are_webhooks_the_monitor_owns() {
    let herald = TestApp::spawn().await;
    let monitor = create_monitor(
        &herald,
        json!({
            "description": "Keys",
            "query": "type:diff BEGIN",
            "actions": [
                {"type": "webhook", "url": "https://example.com/hook", "secret": "my-own-secret", "include_results": false},
                {"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/token"},
            ],
        }),
    )
    .await;
    let id = monitor["id"].as_str().unwrap();
    assert_eq!(
        monitor["url"],
        format!("{}/api/v1/monitors/{id}", herald.base)
    );
    let (webhook, slack) = (&monitor["actions"][0], &monitor["actions"][1]);
    assert_eq!(
        (
            webhook["type"].as_str(),
            webhook["include_results"].as_bool()
        ),
        (Some("webhook"), Some(false))
    );
    assert_eq!(webhook["secret"], "my-own-secret");
    assert_eq!(slack["url"], "https://hooks.slack.com/services/T0/B0/***");
    assert!(
        slack.get("secret").is_none(),
        "Slack actions have no secret to show"
    );

    let hooks = herald.webhooks().await;
    let owned: Vec<&Value> = hooks
        .iter()
        .filter(|h| h["project"] == format!("code-monitor:{id}"))
        .collect();
    assert_eq!(owned.len(), 2);
    assert_eq!(
        owned[0]["event_types"],
        json!(["code_monitor:notification"])
    );
    assert_eq!(owned[1]["event_types"], json!(["code_monitor:slack"]));
    let (_, shown) = send(herald.get(&format!("/api/v1/monitors/{id}"))).await;
    assert!(
        shown["actions"][0].get("secret").is_none(),
        "secrets show once"
    );

    // Keep the webhook action (with a new URL), drop the Slack one, add another.
    let keep = webhook["id"].as_str().unwrap();
    let (status, updated) = send(
        herald
            .patch(&format!("/api/v1/monitors/{id}"))
            .json(&json!({
                "description": "Keys and tokens",
                "actions": [
                    {"id": keep, "type": "webhook", "url": "https://example.com/moved"},
                    {"type": "webhook", "url": "https://example.com/new"},
                ],
            })),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["description"], "Keys and tokens");
    assert_eq!(updated["actions"][0]["id"], keep);
    assert_eq!(updated["actions"][0]["url"], "https://example.com/moved");
    assert_eq!(updated["actions"][0]["include_results"], false);
    assert!(updated["actions"][0].get("secret").is_none());
    assert!(
        updated["actions"][1]["secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    let (status, _) = send(herald.get(&format!(
        "/api/v1/webhooks/{}",
        slack["id"].as_str().unwrap()
    )))
    .await;
    assert_eq!(status, 404, "a dropped action's webhook is deleted");

    let (status, answer) = send(
        herald
            .patch(&format!("/api/v1/monitors/{id}"))
            .json(&json!({"actions": [{"id": keep, "type": "slack"}]})),
    )
    .await;
    assert_error(
        status,
        &answer,
        422,
        "invalid_field",
        Some("actions[0].type"),
    );
    let (status, answer) = send(
        herald
            .patch(&format!("/api/v1/monitors/{id}"))
            .json(&json!({"query": "type:nope"})),
    )
    .await;
    assert_error(status, &answer, 422, "invalid_search_query", Some("query"));

    assert_eq!(
        send(herald.request(Method::DELETE, &format!("/api/v1/monitors/{id}")))
            .await
            .0,
        204
    );
    let left: Vec<Value> = herald
        .webhooks()
        .await
        .into_iter()
        .filter(|h| h["project"] == format!("code-monitor:{id}"))
        .collect();
    assert!(
        left.is_empty(),
        "the monitor's webhooks go with it: {left:?}"
    );
    let (status, answer) = send(herald.get(&format!("/api/v1/monitors/{id}/runs"))).await;
    assert_error(status, &answer, 404, "not_found", None);
}

#[tokio::test]
async fn test_sends_each_action_its_test_notification() {
    let herald = TestApp::spawn().await;
    let mut hook = Receiver::start().await;
    let mut slack = Receiver::start().await;
    let monitor = create_monitor(
        &herald,
        json!({
            "description": "Secrets 🔐",
            "query": "type:diff secret",
            "actions": [{"type": "webhook", "url": hook.url}, {"type": "slack", "url": slack.url}],
        }),
    )
    .await;
    let (status, tested) = send(herald.post(&format!(
        "/api/v1/monitors/{}/test",
        monitor["id"].as_str().unwrap()
    )))
    .await;
    assert_eq!(status, 200, "{tested}");
    let results = tested["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for (result, kind) in results.iter().zip(["webhook", "slack"]) {
        assert_eq!(
            (
                result["type"].as_str(),
                result["success"].as_bool(),
                result["status"].as_u64()
            ),
            (Some(kind), Some(true), Some(200))
        );
    }
    let got = hook.next().await;
    assert!(signature_is_valid(
        &got,
        monitor["actions"][0]["secret"].as_str().unwrap()
    ));
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        body,
        json!({"monitorDescription": "Secrets 🔐", "monitorURL": monitor["url"], "query": "test query"})
    );
    let message: Value = serde_json::from_slice(&slack.next().await.body).unwrap();
    assert_eq!(
        message["blocks"][0]["text"]["text"],
        "Test message for code monitor *Secrets 🔐*: its Slack action works."
    );
    // Nothing is stored: the delivery logs stay empty.
    assert!(
        herald
            .deliveries(monitor["actions"][0]["id"].as_str().unwrap())
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn run_now_searches_at_once_and_runs_list_the_matches() {
    let herald = TestApp::spawn().await;
    let source = Source::new();
    let repo = create_repository(&herald, "github.com/acme/api", source.path()).await;
    fetched(&herald, repo["id"].as_str().unwrap()).await;
    let monitor = create_monitor(
        &herald,
        json!({"description": "Fixes", "query": "type:commit fix"}),
    )
    .await;
    let id = monitor["id"].as_str().unwrap();
    let (status, ran) = send(herald.post(&format!("/api/v1/monitors/{id}/run"))).await;
    assert_eq!(
        (status, ran["items"].as_array().unwrap().len()),
        (200, 0),
        "nothing new yet: {ran}"
    );

    let first = source.commit("a", "1\n", "fix the first thing");
    source.commit("b", "2\n", "refactor");
    let (status, ran) = send(herald.post(&format!("/api/v1/monitors/{id}/run"))).await;
    assert_eq!(status, 200, "{ran}");
    let items = ran["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (
            items[0]["commits_scanned"].as_u64(),
            items[0]["matches"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(items[0]["commits"], json!([first]));
    assert_eq!(items[0]["error"], Value::Null);
    assert_eq!(items[0]["event_ids"].as_array().unwrap().len(), 1);
    assert_eq!(runs(&herald, &monitor).await, items.clone());

    let (status, answer) = send(herald.get(&format!("/api/v1/monitors/{id}/runs?limit=0"))).await;
    assert_error(status, &answer, 400, "invalid_query", Some("limit"));
    send(
        herald
            .patch(&format!("/api/v1/monitors/{id}"))
            .json(&json!({"enabled": false})),
    )
    .await;
    let (status, answer) = send(herald.post(&format!("/api/v1/monitors/{id}/run"))).await;
    assert_error(status, &answer, 409, "monitor_disabled", Some("enabled"));
}

/// Waits until the repository was fetched after `after` (an RFC 3339 time as
/// the API shows it); returns the new fetch time.
async fn fetched_after(herald: &TestApp, id: &str, after: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, repo) = send(herald.get(&format!("/api/v1/repositories/{id}"))).await;
        let at = repo["last_fetched_at"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !at.is_empty() && at != after {
            return at;
        }
        assert!(Instant::now() < deadline, "not fetched again: {repo}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// "A push was published" runs after the commit: a published `repo:push`
/// fetches its repository at once, a replay of the same publish (same
/// idempotency key) and a refused publish do not.
#[tokio::test]
async fn a_published_push_fetches_once_and_a_replay_or_refusal_does_not() {
    let herald = TestApp::spawn().await;
    let source = Source::new();
    let repo = create_repository(&herald, "github.com/acme/hooks", source.path()).await;
    let id = repo["id"].as_str().unwrap();
    let first = fetched(&herald, id).await["last_fetched_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, push) = send(herald.get("/api/v1/event-types/repo:push")).await;
    assert_eq!(status, 200, "{push}");
    let mut payload = push["example"].clone();
    payload["repository"] = json!("github.com/acme/hooks");
    let publish = || {
        herald
            .post("/api/v1/events")
            .header("Idempotency-Key", "push-1")
            .json(&json!({"type": "repo:push", "payload": payload}))
    };

    let (status, published) = send(publish()).await;
    assert_eq!(status, 202, "{published}");
    let second = fetched_after(&herald, id, &first).await;

    let (status, replayed) = send(publish()).await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["id"], published["id"]);
    let refused = herald.post("/api/v1/events").json(&json!({
        "type": "repo:push",
        "payload": {"repository": "github.com/acme/hooks"},
    }));
    let (status, error) = send(refused).await;
    assert_error(status, &error, 422, "schema_violation", Some("payload"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, repo) = send(herald.get(&format!("/api/v1/repositories/{id}"))).await;
    assert_eq!(repo["last_fetched_at"], second.as_str(), "{repo}");
}
