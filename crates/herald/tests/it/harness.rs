//! `TestApp` runs the real `herald` binary on 127.0.0.1:0 with its own data
//! directory; `Receiver` is a real HTTP server that records what it is sent.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Notify, oneshot};

pub const TOKEN: &str = "test-admin-token-0123456789abcdefghij";
/// Every wait in these tests is bounded by this.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Retries compressed to milliseconds, so outage tests finish quickly.
pub const FAST_CONFIG: &str = r#"
[delivery]
request_timeout = "2s"
retry_schedule = ["100ms", "200ms", "300ms", "500ms", "500ms", "1s", "1s", "1s", "1s", "1s"]
retry_jitter = 0.0
poll_interval = "100ms"

# Endpoint health's pauses compressed: a dead receiver pauses its webhook for
# a fraction of a second, not a minute.
[delivery.health]
first_pause = "200ms"
longest_pause = "1s"
"#;

pub struct AppOptions {
    pub allow_loopback: bool,
    pub config: String,
    /// The server's `RUST_LOG`.
    pub log_filter: String,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            allow_loopback: true,
            config: FAST_CONFIG.to_owned(),
            log_filter: "warn,herald=info,herald_app=info".to_owned(),
        }
    }
}

pub struct TestApp {
    child: Option<Child>,
    pub base: String,
    data_dir: tempfile::TempDir,
    options: AppOptions,
    http: reqwest::Client,
    /// Every line the server wrote on stderr, across restarts.
    log: Arc<Mutex<Vec<String>>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(AppOptions::default()).await
    }

    pub async fn spawn_with(options: AppOptions) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        // reqwest is built without a default crypto provider; tests pick ring like the binary.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let mut app = Self {
            child: None,
            base: String::new(),
            data_dir,
            options,
            http,
            log: Arc::default(),
        };
        app.start().await;
        app
    }

    async fn start(&mut self) {
        let config_path = self.data_dir.path().join("herald.toml");
        std::fs::write(&config_path, &self.options.config).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data_dir.path().join("data"))
            .arg("--config")
            .arg(&config_path)
            .env("HERALD_ADMIN_TOKEN", TOKEN)
            // Code monitors mirror repositories in temporary directories.
            .env("HERALD_MONITORS__LOCAL_ROOTS", std::env::temp_dir())
            .env("RUST_LOG", &self.options.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if self.options.allow_loopback {
            cmd.arg("--allow-cidr").arg("127.0.0.0/8");
        }
        let mut child = cmd.spawn().expect("spawn herald");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = oneshot::channel();
        tokio::spawn(forward_stderr(stderr, tx, self.log.clone()));
        let addr = tokio::time::timeout(PATIENCE, rx)
            .await
            .expect("herald did not print its address in time")
            .expect("herald exited before listening");
        self.base = format!("http://{addr}");
        self.child = Some(child);
    }

    /// Waits until the server has logged a line containing `needle`; returns it.
    pub async fn logged(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let found = self
                .log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|line| line.contains(needle))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "the server never logged {needle:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every line the server has written on stderr so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// SIGKILL: no shutdown hook runs, exactly like a crash.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().expect("kill");
            let _ = child.wait().await;
        }
    }

    pub async fn restart(&mut self) {
        self.kill9().await;
        self.start().await;
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request to herald");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("non-JSON answer {status}: {text}"))
        };
        (status, value)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body)).await
    }

    /// Registers a webhook and returns its JSON (with the secret).
    pub async fn create_webhook(&self, body: Value) -> Value {
        let (status, value) = self.post("/api/v1/webhooks", body).await;
        assert_eq!(status, 201, "create webhook: {value}");
        value
    }

    pub async fn hook_for(&self, receiver_url: &str, event_types: &[&str]) -> Value {
        self.create_webhook(json!({
            "name": "test hook",
            "url": receiver_url,
            "event_types": event_types,
        }))
        .await
    }

    pub async fn publish(&self, event_type: &str, payload: Value) -> Value {
        let (status, value) = self
            .post(
                "/api/v1/events",
                json!({"type": event_type, "payload": payload}),
            )
            .await;
        assert_eq!(status, 202, "publish: {value}");
        value
    }

    /// Registers (or replaces) a custom event type whose schema accepts any
    /// payload, for tests about something other than the catalogue: publishing
    /// and subscribing need a type the catalogue knows.
    pub async fn register_any_type(&self, key: &str) {
        let body = json!({"description": "any payload", "schema": {}, "example": {}});
        let path = format!("/api/v1/event-types/{key}");
        let (status, value) = self.request(reqwest::Method::PUT, &path, Some(body)).await;
        assert!(
            status == 200 || status == 201,
            "register {key}: {status} {value}"
        );
    }

    /// Polls until `check` holds for the GET answer, or panics after PATIENCE.
    pub async fn wait_until(
        &self,
        path: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, value) = self.get(path).await;
            if status == 200 && check(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last answer {status}: {value}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn forward_stderr(
    stderr: tokio::process::ChildStderr,
    tx: oneshot::Sender<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
) {
    let mut lines = BufReader::new(stderr).lines();
    let mut tx = Some(tx);
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or("");
            if let (Some(tx), Ok(addr)) = (tx.take(), addr.parse()) {
                let _ = tx.send(addr);
            }
        }
        eprintln!("[herald] {line}");
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}

/// What the receiver answers.
#[derive(Clone, Debug)]
pub enum Behaviour {
    Status(u16),
    /// Answer with this status after a delay.
    Slow(Duration, u16),
    /// Never answer (until the client gives up).
    Hang,
}

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}

struct ReceiverState {
    received: Mutex<Vec<Received>>,
    behaviour: Mutex<Behaviour>,
    arrived: Notify,
}

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("addr"), behaviour).await
    }

    /// Binds a given address: bringing a receiver back on the port it had.
    pub async fn start_on(addr: SocketAddr, behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(ReceiverState {
            received: Mutex::new(Vec::new()),
            behaviour: Mutex::new(behaviour),
            arrived: Notify::new(),
        });
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            state,
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests arrived; panics after PATIENCE.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let notified = self.state.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "receiver got {} of {n} requests in time",
                got.len()
            );
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }

    /// Waits until requests carrying `n` distinct `webhook-id`s arrived.
    pub async fn wait_for_distinct(&self, n: usize) -> HashSet<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let ids: HashSet<String> = self
                .received()
                .iter()
                .map(|r| r.header("webhook-id").to_owned())
                .collect();
            if ids.len() >= n {
                return ids;
            }
            assert!(
                Instant::now() < deadline,
                "receiver got {} of {n} distinct events in time",
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops listening; connections are refused from now on.
    pub async fn stop(mut self) -> SocketAddr {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Let the serve loop drop the listener before the port is reused.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.addr
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn record(
    State(state): State<Arc<ReceiverState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.received.lock().expect("lock").push(Received {
        path: uri.path().to_owned(),
        headers,
        body,
    });
    state.arrived.notify_waiters();
    let behaviour = state.behaviour.lock().expect("lock").clone();
    match behaviour {
        Behaviour::Status(code) => status(code).into_response(),
        Behaviour::Slow(delay, code) => {
            tokio::time::sleep(delay).await;
            status(code).into_response()
        }
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).expect("valid status")
}

/// Checks a Standard Webhooks signature the way a receiver would, written
/// independently of Herald's signer.
pub fn standard_signature_valid(secret: &str, received: &Received) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use hmac::{Hmac, Mac};
    let key = match secret.strip_prefix("whsec_") {
        Some(b64) => STANDARD.decode(b64).expect("whsec base64"),
        None => secret.as_bytes().to_vec(),
    };
    let id = received.header("webhook-id");
    let ts = received.header("webhook-timestamp");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&received.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    received
        .header("webhook-signature")
        .split(' ')
        .any(|sig| sig == expected)
}
