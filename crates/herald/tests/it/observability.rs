//! Observability through the real binary: a real Prometheus server scrapes
//! Herald's `/metrics` with a bearer token while it delivers, and a whole
//! run logged at `trace` level shows no secret it was given; with metrics
//! switched off nothing is served and delivery is unaffected.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::harness::{AppOptions, Behaviour, FAST_CONFIG, PATIENCE, Receiver, TOKEN, TestApp};
use crate::receivers::{GITHUB_SECRET, fixture, post_as_github};

const DELIVERIES: usize = 100;

/// A Prometheus server on 127.0.0.1 with a data directory of its own; killed
/// (and the directory removed) when dropped.
struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `target`'s `/metrics` every second with the
    /// admin token; `None` (after printing why) when it is not installed and
    /// `HERALD_REQUIRE_PROMETHEUS` is not `1`.
    async fn start(target: &str) -> Option<Self> {
        let installed = Command::new("prometheus")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|status| status.success());
        if !installed {
            assert!(
                std::env::var("HERALD_REQUIRE_PROMETHEUS").as_deref() != Ok("1"),
                "HERALD_REQUIRE_PROMETHEUS=1 but the prometheus binary does not run"
            );
            println!("SKIP: prometheus is not installed; the end-to-end scrape test did not run");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, scrape_config(target)).unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start prometheus");
        Some(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        })
    }

    /// The value of an instant PromQL query returning one sample; `None`
    /// while Prometheus is not answering or has no sample yet.
    async fn query(&self, client: &reqwest::Client, promql: &str) -> Option<f64> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query", self.base),
            &[("query", promql)],
        )
        .ok()?;
        let response = client.get(url).send().await.ok()?;
        let body: Value = response.json().await.ok()?;
        body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

fn scrape_config(target: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: herald\n    metrics_path: /metrics\n\
         \x20   authorization:\n      type: Bearer\n      credentials: {TOKEN}\n\
         \x20   static_configs:\n      - targets: ['{target}']\n"
    )
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_real_prometheus_sees_every_successful_attempt_and_the_backlog_drain() {
    let app = TestApp::spawn().await;
    let target = app.base.trim_start_matches("http://").to_owned();
    let Some(prometheus) = Prometheus::start(&target).await else {
        return;
    };
    let sink = Receiver::start(Behaviour::Status(200)).await;
    app.register_any_type("metered").await;
    app.hook_for(&sink.url("/hook"), &["metered"]).await;
    for n in 0..DELIVERIES {
        app.publish("metered", json!({"n": n})).await;
    }
    sink.wait_for_distinct(DELIVERIES).await;

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let succeeded = r#"sum(herald_delivery_attempts_total{outcome="success"})"#;
    let backlog = r#"sum(herald_deliveries_pending{state=~"due|leased"})"#;
    // Generous: Prometheus starts, scrapes every second, and the backlog
    // gauges are cached for five.
    let deadline = Instant::now() + PATIENCE * 2;
    let (mut seen_success, mut seen_backlog) = (None, None);
    while Instant::now() < deadline {
        seen_success = prometheus.query(&client, succeeded).await;
        seen_backlog = prometheus.query(&client, backlog).await;
        if seen_success == Some(DELIVERIES as f64) && seen_backlog == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let up = prometheus.query(&client, r#"up{job="herald"}"#).await;
    prometheus.stop().await;
    assert_eq!(up, Some(1.0), "Prometheus scraped Herald with the token");
    assert_eq!(seen_success, Some(DELIVERIES as f64));
    assert_eq!(seen_backlog, Some(0.0));
}

#[tokio::test]
async fn metrics_switched_off_are_not_served_and_delivery_goes_on() {
    let app = TestApp::spawn_with(AppOptions {
        config: format!("{FAST_CONFIG}\n[metrics]\nenabled = false\n"),
        ..AppOptions::default()
    })
    .await;
    let (status, error) = app.get("/metrics").await;
    assert_eq!(
        (status, &error["code"]),
        (404, &json!("metrics_off")),
        "{error}"
    );
    let sink = Receiver::start(Behaviour::Status(200)).await;
    app.register_any_type("unmetered").await;
    app.hook_for(&sink.url("/hook"), &["unmetered"]).await;
    app.publish("unmetered", json!({"n": 1})).await;
    sink.wait_for_distinct(1).await;
}

/// Every secret this run handed Herald, to look for in its log.
struct Secrets(Vec<String>);

impl Secrets {
    fn found_in<'a>(&self, lines: &'a [String]) -> Vec<(&str, &'a str)> {
        let mut found = Vec::new();
        for secret in &self.0 {
            for line in lines {
                if line.contains(secret.as_str()) {
                    found.push((secret.as_str(), line.as_str()));
                }
            }
        }
        found
    }
}

#[tokio::test]
async fn a_full_run_logged_at_trace_level_shows_no_secret() {
    let app = TestApp::spawn_with(AppOptions {
        log_filter: "trace".to_owned(),
        ..AppOptions::default()
    })
    .await;
    let sink = Receiver::start(Behaviour::Status(200)).await;
    let url_password = "url-password-7f3c9a";
    let url_token = "query-token-51be02";
    let url = format!(
        "http://hook-user:{url_password}@{}/hook?token={url_token}",
        sink.addr
    );
    app.register_any_type("traced").await;
    let hook = app
        .create_webhook(
            json!({"name": "traced", "url": url, "event_types": ["traced", "repo:push"]}),
        )
        .await;
    let hook_secret = hook["secret"].as_str().unwrap().to_owned();
    let (status, token) = app
        .post("/api/v1/tokens", json!({"name": "ci", "scope": "publish"}))
        .await;
    assert_eq!(status, 201, "{token}");
    let api_token = token["token"].as_str().unwrap().to_owned();
    let published = app
        .client()
        .post(format!("{}/api/v1/events", app.base))
        .bearer_auth(&api_token)
        .json(&json!({"type": "traced", "payload": {"n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), 202);

    let (status, receiver) = app
        .post(
            "/api/v1/receivers",
            json!({"name": "gh", "kind": "github", "urn": "https://github.com", "secret": GITHUB_SECRET}),
        )
        .await;
    assert_eq!(status, 201, "{receiver}");
    let receiver_url = receiver["url"].as_str().unwrap().to_owned();
    let push = fixture("octokit/push.01.json");
    let (status, answer) = post_as_github(&app, &receiver_url, "push", "d-1", &push).await;
    assert_eq!(status, 200, "{answer}");
    // A forged request is refused and logged with why, never with what.
    let forged = app
        .client()
        .post(&receiver_url)
        .header("x-github-event", "push")
        .header("x-github-delivery", "d-2")
        .header("x-hub-signature-256", "sha256=00")
        .body(push.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    sink.wait_for(2).await;
    app.logged("receiver request refused").await;
    app.logged("request_id").await;

    let secrets = Secrets(vec![
        TOKEN.to_owned(),
        api_token,
        hook_secret.clone(),
        // The signing key without its `whsec_` prefix, as it would be encoded.
        hook_secret.trim_start_matches("whsec_").to_owned(),
        url_password.to_owned(),
        url_token.to_owned(),
        GITHUB_SECRET.to_owned(),
    ]);
    let lines = app.log_lines();
    assert!(
        lines.iter().any(|line| line.contains(" TRACE ")),
        "trace logging is on"
    );
    let found = secrets.found_in(&lines);
    assert!(found.is_empty(), "secrets in the log: {found:#?}");
}
