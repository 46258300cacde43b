//! The `herald` command-line client against a real server, and the server's
//! own start-up: the generated admin token, the data directory, config errors.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::harness::{AppOptions, Behaviour, PATIENCE, Receiver, TOKEN, TestApp};

const HERALD: &str = env!("CARGO_BIN_EXE_herald");

/// Where a client command runs and what it authenticates with.
struct Cli {
    url: String,
    token: Option<String>,
    cwd: Option<PathBuf>,
}

impl Cli {
    fn for_app(app: &TestApp) -> Self {
        Self {
            url: app.base.clone(),
            token: Some(TOKEN.to_owned()),
            cwd: None,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(HERALD);
        cmd.args(args)
            .env("HERALD_URL", &self.url)
            .env_remove("HERALD_TOKEN")
            .env_remove("HERALD_DATA_DIR")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(token) = &self.token {
            cmd.env("HERALD_TOKEN", token);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null());
        bounded(cmd.output()).await.expect("run herald")
    }

    async fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn herald");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input).await.expect("write stdin");
        drop(stdin);
        bounded(child.wait_with_output()).await.expect("run herald")
    }

    /// Runs a command that must succeed; returns its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "herald {args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let stdout = self.ok(&with_json).await;
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("herald {args:?} --json printed non-JSON ({e}): {stdout}"))
    }

    /// Runs a command that must fail; returns its stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.status.success(),
            "herald {args:?} should have failed: {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }
}

/// The harness's reqwest client needs a process-wide rustls provider.
async fn spawn_app() -> TestApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    TestApp::spawn().await
}

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("herald did not finish in time")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn the_cli_registers_a_webhook_publishes_and_reads_the_delivery_log() {
    let app = spawn_app().await;
    let receiver = Receiver::start(Behaviour::Status(200)).await;
    let cli = Cli::for_app(&app);
    app.register_any_type("build:done").await;
    app.register_any_type("build:other").await;

    let hook_url = receiver.url("/hook");
    let created = cli
        .json(&[
            "webhooks",
            "create",
            "--name",
            "CI hook",
            "--url",
            &hook_url,
            "--event-type",
            "build:*",
            "--project",
            "web",
        ])
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let secret = created["secret"]
        .as_str()
        .expect("secret on create")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");

    let table = cli.ok(&["webhooks", "list"]).await;
    let header = table.lines().next().expect("header line");
    assert!(
        header.starts_with("ID") && header.contains("NAME") && header.contains("URL"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("no row for {id}: {table}"));
    assert!(
        row.contains("CI hook")
            && row.contains("web")
            && row.contains("enabled")
            && row.contains(&hook_url),
        "{row}"
    );
    let listed = cli.json(&["webhooks", "list"]).await;
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|h| h["id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    assert!(
        !table.contains(&secret) && !listed.to_string().contains(&secret),
        "lists never show secrets"
    );
    assert_eq!(cli.ok(&["webhooks", "secret", &id]).await.trim(), secret);

    // Odd spacing, key order and number spelling must reach the receiver as written.
    let payload = r#"{"z": 1,   "a": [2.50, "é ✓"], "m": {}}"#;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("payload.json");
    std::fs::write(&file, payload).expect("write payload");
    let file_arg = file.to_str().expect("utf-8 path");
    let sent = cli
        .ok(&[
            "events",
            "send",
            "--type",
            "build:done",
            "--project",
            "web",
            "--property",
            "sha=abc",
            "--file",
            file_arg,
        ])
        .await;
    assert!(sent.contains("to 1 webhook"), "{sent}");
    let got = receiver.wait_for(1).await;
    assert_eq!(std::str::from_utf8(&got[0].body).expect("utf-8"), payload);

    let from_stdin = cli
        .run_with_stdin(
            &["events", "send", "--type", "build:other", "--json"],
            b"[1, 2]\n",
        )
        .await;
    assert!(from_stdin.status.success(), "{}", text(&from_stdin.stderr));
    let answer: Value = serde_json::from_slice(&from_stdin.stdout).expect("json answer");
    assert_eq!(
        answer["deliveries"], 0,
        "a project-scoped hook does not get project-less events"
    );

    let delivery = wait_for_succeeded_delivery(&cli, &id).await;
    let deliveries = cli.ok(&["deliveries", "list", "--webhook", &id]).await;
    let row = deliveries
        .lines()
        .find(|l| l.starts_with(&delivery))
        .unwrap_or_else(|| panic!("{deliveries}"));
    assert!(
        row.contains("succeeded") && row.contains("build:done") && row.contains("200"),
        "{row}"
    );
    let detail = cli.ok(&["deliveries", "show", &delivery]).await;
    assert!(
        detail.contains("attempt 1") && detail.contains("200") && detail.contains("sha"),
        "{detail}"
    );

    let tested = cli.ok(&["webhooks", "test", &id]).await;
    assert!(
        tested
            .lines()
            .any(|l| l.starts_with("success:") && l.ends_with("true")),
        "{tested}"
    );

    let updated = cli
        .json(&[
            "webhooks",
            "update",
            &id,
            "--disable",
            "--global",
            "--name",
            "renamed",
        ])
        .await;
    assert_eq!(
        (
            updated["enabled"].as_bool(),
            &updated["project"],
            updated["name"].as_str()
        ),
        (Some(false), &Value::Null, Some("renamed"))
    );

    assert!(
        cli.ok(&["webhooks", "delete", &id])
            .await
            .contains("deleted")
    );
    let err = cli.fails(&["webhooks", "show", &id]).await;
    assert!(err.contains("404"), "{err}");
}

/// Polls `deliveries list --json` until the webhook's delivery succeeded; returns its id.
async fn wait_for_succeeded_delivery(cli: &Cli, webhook: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let page = cli
            .json(&[
                "deliveries",
                "list",
                "--webhook",
                webhook,
                "--status",
                "succeeded",
                "--since",
                "1h",
            ])
            .await;
        if let Some(id) = page["items"]
            .as_array()
            .and_then(|items| items.first())
            .and_then(|d| d["id"].as_str())
        {
            return id.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no succeeded delivery in time: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A webhook whose endpoint the address guard refuses is created, and the CLI
/// says so on stderr with the remedy; one it allows gets no warning.
#[tokio::test]
async fn creating_a_webhook_the_guard_refuses_warns_with_the_remedy() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = TestApp::spawn_with(AppOptions {
        allow_loopback: false,
        ..AppOptions::default()
    })
    .await;
    let cli = Cli::for_app(&app);
    let create = |url: &'static str| {
        [
            "webhooks",
            "create",
            "--name",
            "local",
            "--url",
            url,
            "--event-type",
            "sonarqube:analysis",
        ]
    };
    let out = cli.run(&create("http://127.0.0.1:9/hook")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("warning: url: every delivery will fail at once")
            && stderr.contains("--allow-cidr 127.0.0.1/32"),
        "{stderr}"
    );
    // A public address (nothing is sent to it: no event is published).
    let out = cli.run(&create("http://93.184.216.34/hook")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn refusals_exit_non_zero_with_the_servers_message() {
    let app = spawn_app().await;
    let cli = Cli::for_app(&app);
    let err = cli
        .fails(&[
            "webhooks",
            "create",
            "--name",
            "x",
            "--url",
            "ftp://files.example.com/",
            "--event-type",
            "a:b",
        ])
        .await;
    assert!(
        err.contains("http or https") && err.contains("422"),
        "{err}"
    );
    assert!(
        cli.json(&["webhooks", "list"]).await["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    let wrong = Cli {
        token: Some("not-the-token".into()),
        ..Cli::for_app(&app)
    };
    let err = wrong.fails(&["webhooks", "list"]).await;
    assert!(err.contains("401"), "{err}");

    let err = cli
        .run_with_stdin(&["events", "send", "--type", "a:b"], b"{not json")
        .await;
    assert!(!err.status.success());
    assert!(
        text(&err.stderr).contains("not valid JSON"),
        "{}",
        text(&err.stderr)
    );
}

/// A `herald serve` started by a test; killed when dropped.
struct Server {
    child: Child,
    base: String,
    /// Everything it printed on stderr up to "listening on".
    startup: Vec<String>,
}

async fn serve(data_dir: &Path, extra: &[&str]) -> Server {
    let mut cmd = Command::new(HERALD);
    cmd.arg("serve")
        .args([
            "--listen",
            "127.0.0.1:0",
            "--allow-cidr",
            "127.0.0.0/8",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(extra)
        .env_remove("HERALD_ADMIN_TOKEN")
        .env_remove("HERALD_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn herald serve");
    let mut lines = stderr_lines(&mut child);
    let mut startup = Vec::new();
    let base = bounded(async {
        loop {
            let line = lines
                .recv()
                .await
                .unwrap_or_else(|| panic!("herald exited before listening: {startup:?}"));
            startup.push(line.clone());
            if let Some(addr) = line.strip_prefix("listening on ") {
                return addr.trim().to_owned();
            }
        }
    })
    .await;
    Server {
        child,
        base,
        startup,
    }
}

impl Server {
    /// SIGTERM, then waits for a clean exit.
    async fn terminate(mut self) {
        let pid = self.child.id().expect("server still running").to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .expect("run kill");
        assert!(sent.success());
        let status = bounded(self.child.wait()).await.expect("wait for herald");
        assert!(
            status.success(),
            "herald serve exited with {status} on SIGTERM"
        );
    }
}

/// Forwards the child's stderr line by line, and keeps draining it so the child never blocks.
fn stderr_lines(child: &mut Child) -> mpsc::UnboundedReceiver<String> {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[herald] {line}");
            let _ = tx.send(line);
        }
    });
    rx
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn without_a_configured_token_one_is_generated_privately_and_reused() {
    let tmp = tempfile::tempdir().expect("temp dir");
    // The default data directory of a client run from `tmp`.
    let data = tmp.path().join("herald-data");
    let token_path = data.join("admin-token");

    let server = serve(&data, &[]).await;
    assert!(token_path.is_file());
    let token = std::fs::read_to_string(&token_path)
        .expect("token file")
        .trim()
        .to_owned();
    assert!(token.starts_with("hrld_"), "{token}");
    let told = server.startup.join("\n");
    assert!(
        told.contains(&token_path.display().to_string()),
        "the path is printed: {told}"
    );
    assert!(!told.contains(&token), "the token itself is never printed");
    #[cfg(unix)]
    {
        assert_eq!(mode(&token_path), 0o600);
        assert_eq!(mode(&data.join("secret.key")), 0o600);
        assert_eq!(mode(&data), 0o700);
    }

    // No HERALD_TOKEN: the client reads ./herald-data/admin-token.
    let cli = Cli {
        url: server.base.clone(),
        token: None,
        cwd: Some(tmp.path().to_owned()),
    };
    let created = cli
        .json(&[
            "webhooks",
            "create",
            "--name",
            "kept",
            "--url",
            "https://hooks.example.com/x",
            "--secret",
            "s3cret",
            "--event-type",
            "changeset:update",
        ])
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let empty = tempfile::tempdir().expect("temp dir");
    let elsewhere = Cli {
        url: server.base.clone(),
        token: None,
        cwd: Some(empty.path().to_owned()),
    };
    let err = elsewhere.fails(&["webhooks", "list"]).await;
    assert!(err.contains("401") && err.contains("HERALD_TOKEN"), "{err}");
    server.terminate().await;

    // A restart reuses the token and the secrets key: the sealed secret still opens.
    let server = serve(&data, &[]).await;
    assert_eq!(
        std::fs::read_to_string(&token_path)
            .expect("token file")
            .trim(),
        token
    );
    assert!(
        server.startup.iter().any(|l| l.contains("read from")),
        "{:?}",
        server.startup
    );
    let cli = Cli {
        url: server.base.clone(),
        token: Some(token),
        cwd: None,
    };
    assert_eq!(cli.ok(&["webhooks", "secret", &id]).await.trim(), "s3cret");
}

/// Runs `herald serve` expecting it to refuse to start; returns (exit code, stderr).
async fn serve_refused(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(HERALD);
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(tmp.path().join("data"))
        .args(args)
        .current_dir(tmp.path())
        .env_remove("HERALD_CONFIG")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = bounded(cmd.output()).await.expect("run herald serve");
    (out.status.code(), text(&out.stderr))
}

#[tokio::test]
async fn bad_configuration_is_refused_naming_the_key() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = |name: &str, body: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, body).expect("write config");
        path.to_str().expect("utf-8 path").to_owned()
    };
    let unknown = config(
        "unknown.toml",
        "[delivery]\nrequest_timeout = \"5s\"\nbogus_key = 1\n",
    );
    let (code, err) = serve_refused(&["--config", &unknown], &[]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bogus_key"), "{err}");

    let bad_value = config("bad.toml", "[delivery]\nretry_jitter = 3\n");
    let (code, err) = serve_refused(&["--config", &bad_value], &[]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("delivery.retry_jitter"), "{err}");

    let (code, err) = serve_refused(&[], &[("HERALD_RETENTION__MAX_AGE", "forever")]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("max_age"), "{err}");

    let (code, err) = serve_refused(&["--database-url", "mysql://localhost/herald"], &[]).await;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("database_url") && err.contains("postgres://"),
        "{err}"
    );
}
