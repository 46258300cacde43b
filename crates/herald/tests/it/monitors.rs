//! Code monitors through the real binary: a repository mirrored from a local
//! git repository, a monitor with a webhook action, a matching commit, and a
//! signed GitHub `push` to a receiver that makes Herald fetch at once; the
//! action gets exactly one signed notification with byte-offset ranges, and a
//! fetch with nothing new sends nothing. Also the `herald repositories` and
//! `herald monitors` client commands.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::harness::{
    AppOptions, Behaviour, FAST_CONFIG, PATIENCE, Receiver, TOKEN, TestApp,
    standard_signature_valid,
};

const GITHUB_SECRET: &str = "monitors-receiver-secret";
/// The repository the GitHub push fixture names.
const PUSHED: &str = "github.com/binkkatal/sample_app";

/// A git repository in a temporary directory, which Herald mirrors.
struct Source {
    dir: tempfile::TempDir,
}

impl Source {
    fn new() -> Source {
        let source = Source {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        source.git(&["init", "--quiet", "--initial-branch=main", "."]);
        source.commit(
            "README.md",
            "BEGIN of the history, never reported\n",
            "start",
        );
        source
    }

    fn path(&self) -> &str {
        self.dir.path().to_str().expect("UTF-8 path")
    }

    fn git(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
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
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    fn commit(&self, file: &str, content: &str, message: &str) -> String {
        std::fs::write(self.dir.path().join(file), content).expect("write");
        self.git(&["add", "-A"]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }
}

fn push_fixture() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../herald-ingest/tests/fixtures/code-hosts/github/push.json");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A push as GitHub sends it, signed independently of Herald.
async fn github_push(app: &TestApp, url: &str, delivery: &str) -> (u16, Value) {
    let body = push_fixture();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(GITHUB_SECRET.as_bytes()).expect("key");
    mac.update(&body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let response = app
        .client()
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", "push")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", format!("sha256={hex}"))
        .body(body)
        .send()
        .await
        .expect("post to the receiver");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn first_fetch(app: &TestApp, repository: &Value) -> Value {
    let path = format!(
        "/api/v1/repositories/{}",
        repository["id"].as_str().expect("id")
    );
    app.wait_until(&path, "the first fetch", |repo| {
        !repo["last_fetched_at"].is_null()
    })
    .await
}

#[tokio::test]
async fn a_signed_github_push_makes_a_monitor_notify_its_webhook_once() {
    let app = TestApp::spawn().await;
    let source = Source::new();
    let (status, receiver) = app
        .post(
            "/api/v1/receivers",
            json!({"kind": "github", "urn": "https://github.com", "secret": GITHUB_SECRET}),
        )
        .await;
    assert_eq!(status, 201, "{receiver}");
    let receiver_url = receiver["url"].as_str().expect("url").to_owned();
    let (status, repository) = app
        .post(
            "/api/v1/repositories",
            json!({"name": PUSHED, "url": source.path()}),
        )
        .await;
    assert_eq!(status, 201, "{repository}");
    let fetched = first_fetch(&app, &repository).await;
    assert_eq!(fetched["last_error"], Value::Null, "{fetched}");

    let action = Receiver::start(Behaviour::Status(200)).await;
    let (status, monitor) = app
        .post(
            "/api/v1/monitors",
            json!({
                "description": "Keys 🔑 in diffs",
                "query": "type:diff BEGIN",
                "actions": [{"type": "webhook", "url": action.url("/monitor")}],
            }),
        )
        .await;
    assert_eq!(status, 201, "{monitor}");
    let secret = monitor["actions"][0]["secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();

    let commit = source.commit("key.txt", "鍵 🔑 BEGIN KEY\nunrelated\n", "add a key");
    let (status, answer) =
        github_push(&app, &receiver_url, "2b8d2f2a-0000-4000-8000-000000000001").await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("processed")),
        "{answer}"
    );

    let got = action.wait_for(1).await;
    assert!(
        standard_signature_valid(&secret, &got[0]),
        "signed with the action's secret"
    );
    let body: Value = serde_json::from_slice(&got[0].body).expect("JSON");
    assert_eq!(body["monitorDescription"], "Keys 🔑 in diffs");
    assert_eq!(
        body["monitorURL"],
        format!(
            "{}/api/v1/monitors/{}",
            app.base,
            monitor["id"].as_str().expect("id")
        )
    );
    assert_eq!(body["query"], "type:diff BEGIN");
    let results = body["results"].as_array().expect("results");
    assert_eq!(
        results.len(),
        1,
        "the history's BEGIN is never reported: {body}"
    );
    assert_eq!(results[0]["repository"], PUSHED);
    assert_eq!(results[0]["commit"], commit);
    let diff = results[0]["diff"].as_str().expect("diff");
    assert_eq!(
        diff,
        "/dev/null key.txt\n@@ -0,0 +1,2 @@ \n+鍵 🔑 BEGIN KEY\n+unrelated\n"
    );
    // Byte offsets, not characters: "+鍵 🔑 " is 10 bytes and 5 characters long.
    let start = "/dev/null key.txt\n@@ -0,0 +1,2 @@ \n+鍵 🔑 ".len();
    assert_eq!(results[0]["matchedDiffRanges"], json!([[start, start + 5]]));
    assert_eq!(&diff[start..start + 5], "BEGIN");

    // The same push again, and a fetch by hand: nothing new, nothing sent.
    let (status, _) =
        github_push(&app, &receiver_url, "2b8d2f2a-0000-4000-8000-000000000002").await;
    assert_eq!(status, 200);
    let path = format!(
        "/api/v1/repositories/{}/fetch",
        repository["id"].as_str().expect("id")
    );
    let (status, refetched) = app.post(&path, json!({})).await;
    assert_eq!(
        (status, refetched["last_error"].clone()),
        (200, Value::Null),
        "{refetched}"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        action.received().len(),
        1,
        "a second fetch with no new commits sends nothing"
    );
    let runs = app
        .get(&format!(
            "/api/v1/monitors/{}/runs",
            monitor["id"].as_str().expect("id")
        ))
        .await
        .1;
    assert_eq!(runs["items"].as_array().expect("runs").len(), 1, "{runs}");
    assert_eq!(runs["items"][0]["commits"], json!([commit]));
}

async fn cli(app: &TestApp, args: &[&str]) -> Output {
    let run = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env("HERALD_URL", &app.base)
        .env("HERALD_TOKEN", TOKEN)
        .env_remove("HERALD_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(PATIENCE, run)
        .await
        .expect("in time")
        .expect("run herald")
}

async fn cli_json(app: &TestApp, args: &[&str]) -> Value {
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let out = cli(app, &with_json).await;
    assert!(
        out.status.success(),
        "herald {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON answer")
}

#[tokio::test]
async fn the_cli_registers_repositories_and_runs_monitors() {
    let app = TestApp::spawn().await;
    let source = Source::new();
    let repository = cli_json(
        &app,
        &[
            "repositories",
            "create",
            "--name",
            "git.example.com/tools",
            "--url",
            source.path(),
        ],
    )
    .await;
    first_fetch(&app, &repository).await;
    let hook = Receiver::start(Behaviour::Status(204)).await;
    let monitor = cli_json(
        &app,
        &[
            "monitors",
            "create",
            "--description",
            "Fixes",
            "--query",
            "type:commit fix",
            "--webhook",
            &hook.url("/fixes"),
            "--no-results",
        ],
    )
    .await;
    let id = monitor["id"].as_str().expect("id").to_owned();
    assert_eq!(monitor["actions"][0]["include_results"], false);

    let tested = cli_json(&app, &["monitors", "test", &id]).await;
    assert_eq!(tested["results"][0]["status"], 204, "{tested}");
    let test_body: Value = serde_json::from_slice(&hook.wait_for(1).await[0].body).expect("JSON");
    assert_eq!(test_body["query"], "test query");

    let commit = source.commit("a.txt", "a\n", "fix: the tools");
    let ran = cli(&app, &["monitors", "run", &id]).await;
    let table = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert!(
        table.starts_with("ID") && table.contains("git.example.com/tools"),
        "{table}"
    );
    assert!(!table.contains(&commit), "hashes only in full: {table}");
    let notified: Value = serde_json::from_slice(&hook.wait_for(2).await[1].body).expect("JSON");
    assert_eq!(notified["query"], "type:commit fix");
    assert!(
        notified.get("results").is_none(),
        "--no-results leaves them out: {notified}"
    );

    let runs = cli_json(&app, &["monitors", "runs", &id, "--limit", "5"]).await;
    assert_eq!(runs["items"][0]["matches"], 1);
    assert_eq!(runs["items"][0]["commits"], json!([commit]));
    let run_id = runs["items"][0]["id"].as_str().expect("run id");
    let detail = cli(&app, &["monitors", "runs", &id, "--run", run_id]).await;
    let detail = String::from_utf8_lossy(&detail.stdout);
    assert!(
        detail.contains(&format!("commits (1):\n  {commit}")),
        "{detail}"
    );
    let listed =
        String::from_utf8_lossy(&cli(&app, &["repositories", "list"]).await.stdout).into_owned();
    assert!(listed.contains("git.example.com/tools"), "{listed}");
    let bad = cli(
        &app,
        &[
            "monitors",
            "create",
            "--description",
            "d",
            "--query",
            "type:diff (x",
        ],
    )
    .await;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid_search_query"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let deleted = cli(&app, &["monitors", "delete", &id]).await;
    assert!(deleted.status.success());
}

#[tokio::test]
async fn repository_sources_pass_the_address_guard_and_the_local_roots() {
    let guarded = TestApp::spawn_with(AppOptions {
        allow_loopback: false,
        ..AppOptions::default()
    })
    .await;
    for (url, remedy) in [
        ("http://127.0.0.1:9/acme.git", "--allow-cidr"),
        ("http://169.254.169.254/latest/meta-data/", "--allow-cidr"),
        // Outside the temporary directory, the one root the harness configures.
        ("/opt/elsewhere/acme.git", "local_roots"),
        ("file:///opt/elsewhere/acme.git", "local_roots"),
    ] {
        let (status, body) = guarded
            .post("/api/v1/repositories", json!({"name": "x", "url": url}))
            .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["field"], "url", "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(remedy), "{url}: {message}");
    }
    // --allow-cidr lets the same URL through; nothing listens there, so the fetch fails.
    let allowed = TestApp::spawn().await;
    let (status, body) = allowed
        .post(
            "/api/v1/repositories",
            json!({"name": "x", "url": "http://127.0.0.1:9/acme.git"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// Through the binary, with `[monitors] notification_max_results = 2`: five
/// matches reach the webhook as three notifications numbered in their headers,
/// each match once, and `herald monitors runs` counts them.
#[tokio::test]
async fn matches_past_the_configured_limit_arrive_in_numbered_parts() {
    let app = TestApp::spawn_with(AppOptions {
        config: format!("{FAST_CONFIG}\n[monitors]\nnotification_max_results = 2\n"),
        ..AppOptions::default()
    })
    .await;
    let source = Source::new();
    let (status, repository) = app
        .post(
            "/api/v1/repositories",
            json!({"name": "git.example.com/parts", "url": source.path()}),
        )
        .await;
    assert_eq!(status, 201, "{repository}");
    first_fetch(&app, &repository).await;
    let hook = Receiver::start(Behaviour::Status(204)).await;
    let (status, monitor) = app
        .post(
            "/api/v1/monitors",
            json!({
                "description": "Fixes",
                "query": "type:commit fix",
                "actions": [{"type": "webhook", "url": hook.url("/fixes")}],
            }),
        )
        .await;
    assert_eq!(status, 201, "{monitor}");
    let id = monitor["id"].as_str().expect("id").to_owned();
    let mut fixes: Vec<String> = (0..5)
        .map(|i| source.commit("f.txt", &format!("{i}\n"), &format!("fix {i}")))
        .collect();
    fixes.reverse();
    let ran = cli(&app, &["monitors", "run", &id]).await;
    assert!(ran.status.success());

    let mut parts = hook.wait_for(3).await;
    parts.sort_by_key(|p| p.header("herald-notification-part").to_owned());
    let mut delivered = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        assert_eq!(
            part.header("herald-notification-part"),
            (index + 1).to_string()
        );
        assert_eq!(part.header("herald-notification-parts"), "3");
        let body: Value = serde_json::from_slice(&part.body).expect("JSON");
        for result in body["results"].as_array().expect("results") {
            delivered.push(result["commit"].as_str().expect("commit").to_owned());
        }
    }
    assert_eq!(delivered, fixes, "each match once, newest first");

    let table = cli(&app, &["monitors", "runs", &id]).await;
    let table = String::from_utf8_lossy(&table.stdout);
    let row = table.lines().nth(1).expect("one run");
    assert!(row.contains("3 code_monitor:notification"), "{table}");
    assert!(!table.contains(&fixes[0]), "{table}");

    // The server tells the story at INFO: the fetch, and the search with what it sent.
    let fetched = app.logged("repository fetched").await;
    assert!(fetched.contains("git.example.com/parts"), "{fetched}");
    let searched = app.logged("monitor searched").await;
    assert!(
        searched.contains("matches=5") && searched.contains("notifications=3"),
        "{searched}"
    );
}
