//! `TestApp::spawn()`: a real Herald started as the binary starts it
//! (`Herald::start`) on 127.0.0.1:0, with SQLite in a temporary directory and
//! a delivery engine allowed to reach loopback; and a real receiver for its
//! webhooks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use herald_app::monitors::MonitorsConfig;
use herald_app::stores::{OpenedStore, StoreChoice};
use herald_app::{AppConfig, Limits, Retention};
use herald_core::cipher::SecretCipher;
use herald_core::retry::RetrySchedule;
use herald_delivery::{AddressGuard, DeliveryConfig, HealthPolicy};
use herald_server::{Herald, HeraldConfig, HttpLimits, RunningHerald};
use herald_sqlite::SqliteStore;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-admin-token-0123456789";
/// How long any wait for background delivery may take before the test fails.
const WAIT: Duration = Duration::from_secs(15);

pub struct TestApp {
    pub base: String,
    /// `http://` and the `[metrics] listen` address, when the test set one.
    pub metrics_base: Option<String>,
    pub client: reqwest::Client,
    /// The server's store, for tests that play another node writing to it.
    pub store: Arc<SqliteStore>,
    shutdown: CancellationToken,
    /// Kept until the test ends: its tasks hold the store.
    _running: RunningHerald,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The configuration every test starts from: SQLite in `dir`, one attempt and
/// no retries, loopback allowed.
fn test_config(dir: &std::path::Path) -> HeraldConfig {
    let delivery = DeliveryConfig {
        request_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(200),
        // One attempt and no retries: a failure is final at once, so tests of
        // redelivery and recovery need not wait out a schedule.
        retry: RetrySchedule {
            delays: Vec::new(),
            ..RetrySchedule::default()
        },
        allow_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
        // Endpoint health's pauses compressed, so a failing receiver pauses
        // its webhook for a fraction of a second, not a minute.
        health: HealthPolicy {
            first_pause: Duration::from_millis(200),
            longest_pause: Duration::from_secs(2),
            ..HealthPolicy::default()
        },
        ..DeliveryConfig::default()
    };
    HeraldConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_token: TOKEN.to_owned(),
        http: HttpLimits::default(),
        metrics_listen: None,
        metrics_enabled: true,
        app: AppConfig {
            store: StoreChoice::Sqlite(dir.join("herald.db")),
            cipher: SecretCipher::new(&SecretCipher::generate_key()).unwrap(),
            secret_key_file: dir.join("secret.key"),
            delivery,
            limits: Limits::default(),
            retention: Retention {
                max_age: Duration::from_secs(30 * 24 * 3600),
                purge_interval: Duration::from_secs(3600),
                idempotency_ttl: Duration::from_secs(24 * 3600),
            },
            // Code monitors on, with the server's own URL in `monitorURL`.
            monitors: monitors_config(dir),
            external_url: String::new(),
        },
    }
}

/// Sources on loopback (as deliveries) and in temporary directories, and paths
/// under /srv/git (which validation accepts without looking), may be mirrored.
fn monitors_config(dir: &std::path::Path) -> MonitorsConfig {
    let mut config = MonitorsConfig::new(dir.join("mirrors"), None);
    config.sources.guard = AddressGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
    config.sources.local_roots = vec![std::env::temp_dir(), "/srv/git".into()];
    config
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts Herald with the test configuration as `adjust` changes it.
    pub async fn spawn_with(adjust: impl FnOnce(&mut HeraldConfig)) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        adjust(&mut config);
        let shutdown = CancellationToken::new();
        let running = Herald::start(config, shutdown.clone()).await.unwrap();
        let OpenedStore::Sqlite(store) = running.opened_store().clone() else {
            panic!("the test configuration opens SQLite");
        };
        Self {
            base: format!("http://{}", running.local_addr()),
            metrics_base: running.metrics_addr().map(|addr| format!("http://{addr}")),
            client: reqwest::Client::new(),
            store,
            shutdown,
            _running: running,
            _dir: dir,
        }
    }

    /// The data directory: the SQLite database is `herald.db` in it.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// Registers (or replaces) a custom event type whose schema accepts any
    /// payload, for tests about something other than the catalogue.
    pub async fn register_any_type(&self, key: &str) {
        let body = json!({"description": "any payload", "schema": {}, "example": {}});
        let path = format!("/api/v1/event-types/{key}");
        let (status, answer) = send(self.request(Method::PUT, &path).json(&body)).await;
        assert!(status == 200 || status == 201, "{status}: {answer}");
    }

    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.request(Method::PATCH, path)
    }

    /// Creates a webhook, asserting success; returns the 201 body.
    pub async fn create_webhook(&self, body: Value) -> Value {
        let (status, created) = send(self.post("/api/v1/webhooks").json(&body)).await;
        assert_eq!(status, 201, "{created}");
        created
    }

    /// Publishes an event, asserting success; returns the 202 body.
    pub async fn publish(&self, body: Value) -> Value {
        let (status, published) = send(self.post("/api/v1/events").json(&body)).await;
        assert_eq!(status, 202, "{published}");
        published
    }

    pub async fn webhooks(&self) -> Vec<Value> {
        let (status, list) = send(self.get("/api/v1/webhooks")).await;
        assert_eq!(status, 200, "{list}");
        list["items"].as_array().unwrap().clone()
    }

    pub async fn deliveries(&self, webhook_id: &str) -> Vec<Value> {
        let (status, page) = send(self.get(&format!(
            "/api/v1/webhooks/{webhook_id}/deliveries?limit=250"
        )))
        .await;
        assert_eq!(status, 200, "{page}");
        page["items"].as_array().unwrap().clone()
    }

    /// Polls a delivery until it reaches `status`; returns its detail.
    pub async fn wait_for_delivery(&self, delivery_id: &str, status: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let (code, detail) = send(self.get(&format!("/api/v1/deliveries/{delivery_id}"))).await;
            assert_eq!(code, 200, "{detail}");
            if detail["delivery"]["status"] == status {
                return detail;
            }
            assert!(
                Instant::now() < deadline,
                "delivery never became {status}: {detail}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Sends a request; returns the status and the JSON body (`null` when empty).
pub async fn send(request: RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    status_and_json(response).await
}

/// A `text/plain` body (the Prometheus exposition) comes back as a JSON string.
pub async fn status_and_json(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let plain_text = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"text/plain"));
    let text = response.text().await.unwrap();
    if plain_text {
        return (status, Value::String(text));
    }
    if text.is_empty() {
        return (status, Value::Null);
    }
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, body)
}

/// Asserts the error shape: status, code, and that the message (and the `field`,
/// when given) mention `field`.
pub fn assert_error(
    status: u16,
    body: &Value,
    want_status: u16,
    want_code: &str,
    field: Option<&str>,
) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], want_code, "{body}");
    let message = body["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {body}"));
    assert!(!message.is_empty());
    if let Some(field) = field {
        assert_eq!(body["field"], field, "{body}");
        assert!(
            message.contains(field),
            "message does not name {field}: {body}"
        );
    }
}

pub fn webhook_body(name: &str, url: &str) -> Value {
    json!({"name": name, "url": url, "event_types": ["*"]})
}

/// A webhook for just these types. Tests that count deliveries to a failing
/// receiver use it: `*` also matches the `herald:*` reports of those failures.
pub fn hook_body(name: &str, url: &str, event_types: &[&str]) -> Value {
    json!({"name": name, "url": url, "event_types": event_types})
}

/// One request as a receiver saw it.
#[derive(Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// An HTTP receiver on 127.0.0.1:0 that answers every POST with a settable status.
pub struct Receiver {
    pub url: String,
    pub port: u16,
    status: Arc<AtomicU16>,
    requests: mpsc::UnboundedReceiver<Received>,
}

#[derive(Clone)]
struct ReceiverState {
    status: Arc<AtomicU16>,
    requests: mpsc::UnboundedSender<Received>,
}

async fn receive(
    State(state): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let _ = state.requests.send(Received { headers, body });
    let status = StatusCode::from_u16(state.status.load(Ordering::SeqCst)).unwrap();
    (status, "pong")
}

impl Receiver {
    pub async fn start() -> Self {
        let status = Arc::new(AtomicU16::new(200));
        let (tx, requests) = mpsc::unbounded_channel();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(ReceiverState {
                status: status.clone(),
                requests: tx,
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/hook"),
            port: addr.port(),
            status,
            requests,
        }
    }

    pub fn answer_with(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// The next request, waiting at most the test bound.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.requests.recv())
            .await
            .expect("the receiver got nothing in time")
            .expect("the receiver stopped")
    }

    /// Takes every request that arrived and was not taken yet; returns how many.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        while self.requests.try_recv().is_ok() {
            n += 1;
        }
        n
    }
}
