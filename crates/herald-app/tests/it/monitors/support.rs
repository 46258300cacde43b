//! Real parts: git repositories in temporary directories, a SQLite store, the
//! delivery engine, and the service on top.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use herald_app::monitors::{MonitorService, MonitorsConfig, NotificationLimits};
use herald_core::cipher::{SealedColumn, SecretCipher};
use herald_core::event_type::EventTypePattern;
use herald_core::id::WebhookId;
use herald_delivery::{DeliveryConfig, Engine, LiveCatalogue};
use herald_sqlite::{SqliteConfig, SqliteStore};
use herald_store::{
    ActionKind, DeliveryQuery, MonitorId, MonitorRecord, MonitorRunRecord, MonitorStore, NewAction,
    NewMonitor, NewRepository, NewWebhook, RepositoryId, RepositoryRecord, RepositoryWrite, Store,
};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

/// A source repository with commits made by a fixed identity.
pub struct Source {
    dir: TempDir,
}

impl Source {
    pub fn new() -> Source {
        let source = Source {
            dir: tempfile::tempdir().unwrap(),
        };
        source.git(&["init", "--quiet", "--initial-branch=main", "."]);
        source
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(self.path())
            .args([
                "-c",
                "user.name=Ada Lovelace",
                "-c",
                "user.email=ada@example.com",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Writes `content` to `path` and commits it; returns the commit id.
    pub fn commit_file(&self, path: &str, content: &str, message: &str) -> String {
        std::fs::write(self.path().join(path), content).unwrap();
        self.git(&["add", "-A"]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }
}

pub struct Fixture {
    pub store: Arc<SqliteStore>,
    pub service: MonitorService,
    pub cipher: SecretCipher,
    pub shutdown: CancellationToken,
    _dir: TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub const EXTERNAL_URL: &str = "https://herald.example.com/";

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::build(DeliveryConfig::default(), NotificationLimits::default()).await
    }

    /// Deliveries really sent to receivers on 127.0.0.1, with these limits
    /// on each notification.
    pub async fn delivering(limits: NotificationLimits) -> Fixture {
        let delivery = DeliveryConfig {
            allow_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
            ..DeliveryConfig::default()
        };
        Fixture::build(delivery, limits).await
    }

    async fn build(delivery: DeliveryConfig, limits: NotificationLimits) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("herald.db"), SqliteConfig::default()).unwrap(),
        );
        let cipher = SecretCipher::new(&SecretCipher::generate_key()).unwrap();
        let shutdown = CancellationToken::new();
        let catalogue = LiveCatalogue::load(store.clone()).await.unwrap();
        let engine = Engine::start(
            store.clone(),
            cipher.clone(),
            delivery,
            Arc::new(catalogue),
            shutdown.clone(),
        )
        .unwrap();
        let mut config = MonitorsConfig {
            notification_limits: limits,
            ..MonitorsConfig::new(dir.path().join("mirrors"), Some(EXTERNAL_URL.to_owned()))
        };
        // The sources are repositories in temporary directories.
        config.sources.local_roots = vec![std::env::temp_dir()];
        let service =
            MonitorService::new(store.clone(), store.clone(), cipher.clone(), engine, config);
        Fixture {
            store,
            service,
            cipher,
            shutdown,
            _dir: dir,
        }
    }

    pub async fn repository(&self, name: &str, source: &str) -> RepositoryRecord {
        let id = RepositoryId::new();
        let new = NewRepository {
            id,
            name: name.to_owned(),
            source_display: source.to_owned(),
            source_sealed: self
                .cipher
                .seal(source.as_bytes(), &SealedColumn::RepositorySource.of(id.0)),
            branches: None,
            fetch_interval: None,
        };
        match self.store.create_repository(new).await.unwrap() {
            RepositoryWrite::Saved(record) => record,
            other => panic!("{other:?}"),
        }
    }

    pub async fn monitor(&self, query: &str, actions: &[(ActionKind, bool)]) -> MonitorRecord {
        // Nothing listens there, and the default guard refuses it: deliveries
        // stay in the log, which is what these tests read.
        let actions: Vec<(ActionKind, bool, &str)> = actions
            .iter()
            .map(|&(kind, include_results)| (kind, include_results, "http://127.0.0.1:9/hook"))
            .collect();
        self.monitor_to(query, &actions).await
    }

    /// A monitor whose actions call these URLs.
    pub async fn monitor_to(
        &self,
        query: &str,
        actions: &[(ActionKind, bool, &str)],
    ) -> MonitorRecord {
        let actions = actions
            .iter()
            .map(|&(kind, include_results, url)| (kind, include_results, url, WebhookId::new()))
            .map(|(kind, include_results, url, id)| NewAction {
                kind,
                include_results,
                webhook: NewWebhook {
                    health_overrides: Default::default(),
                    flow_limits: Default::default(),
                    ordering: Default::default(),
                    id,
                    name: format!("{} action", kind.as_str()),
                    url_display: url.to_owned(),
                    url_sealed: self
                        .cipher
                        .seal(url.as_bytes(), &SealedColumn::WebhookUrl.of(id.0)),
                    secret_sealed: self.cipher.seal(
                        b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                        &SealedColumn::WebhookSecret.of(id.0),
                    ),
                    event_types: vec![
                        EventTypePattern::parse("event_types", "code_monitor:*").unwrap(),
                    ],
                    project: None,
                    enabled: true,
                },
            })
            .collect();
        self.store
            .create_monitor(NewMonitor {
                id: MonitorId::new(),
                description: "Keys in diffs".to_owned(),
                query: query.to_owned(),
                enabled: true,
                actions,
            })
            .await
            .unwrap()
    }

    pub async fn sync(&self, repo: &RepositoryRecord) -> RepositoryRecord {
        self.service
            .sync_repository(repo.id)
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn runs(&self, monitor: &MonitorRecord) -> Vec<MonitorRunRecord> {
        self.store.list_runs(monitor.id, 100).await.unwrap()
    }

    /// The payloads delivered (or being delivered) to a webhook, oldest first.
    pub async fn payloads(&self, webhook: WebhookId) -> Vec<serde_json::Value> {
        let page = self
            .store
            .list_deliveries(DeliveryQuery {
                webhook_id: webhook,
                status: None,
                since: None,
                until: None,
                cursor: None,
                limit: 100,
            })
            .await
            .unwrap();
        let mut payloads = Vec::new();
        for delivery in page.items.iter().rev() {
            let detail = self.store.get_delivery(delivery.id).await.unwrap().unwrap();
            payloads.push(serde_json::from_slice(&detail.event.payload).unwrap());
        }
        payloads
    }
}

/// One request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// `Herald-Notification-Part` and `-Parts`.
    pub fn part(&self) -> (usize, usize) {
        (
            self.header("herald-notification-part").parse().unwrap(),
            self.header("herald-notification-parts").parse().unwrap(),
        )
    }
}

/// An HTTP server on 127.0.0.1 that answers 204 and keeps every request.
pub struct Receiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&received);
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let kept = Arc::clone(&kept);
            async move {
                kept.lock().unwrap().push(Received {
                    headers,
                    body: body.to_vec(),
                });
                StatusCode::NO_CONTENT
            }
        });
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            addr,
            received,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits for `n` requests, then a moment more to catch any extra one.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(&format!("{n} requests"), || async {
            self.received.lock().unwrap().len() >= n
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Polls `check` until it holds, for at most ten seconds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The substrings of `text` the `[start, end)` byte ranges pick.
pub fn highlighted(
    result: &serde_json::Value,
    text_field: &str,
    ranges_field: &str,
) -> Vec<String> {
    let text = result[text_field].as_str().unwrap();
    result[ranges_field]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let (start, end) = (
                r[0].as_u64().unwrap() as usize,
                r[1].as_u64().unwrap() as usize,
            );
            text.get(start..end)
                .expect("ranges are byte offsets on character boundaries")
                .to_owned()
        })
        .collect()
}
