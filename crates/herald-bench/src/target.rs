//! The herald under test: a child process on a fresh data directory, or a
//! running instance given by URL.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn http_client(max_idle: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle)
        .build(connector)
}

pub struct Herald {
    child: Option<Child>,
    pub base: String,
    pub token: String,
    data_dir: Option<tempfile::TempDir>,
    client: HttpClient,
}

const BENCH_TOKEN: &str = "herald-bench-token";

impl Herald {
    /// Starts `binary` on a fresh data directory with `config` (TOML).
    pub async fn start(binary: &Path, config: &str) -> Result<Self> {
        if !binary.exists() {
            bail!(
                "{} does not exist; build it with `cargo build --release -p herald` or pass --herald",
                binary.display()
            );
        }
        let data_dir = tempfile::Builder::new().prefix("herald-bench-").tempdir()?;
        let config_path = data_dir.path().join("bench.toml");
        std::fs::write(&config_path, config)?;
        let mut child = Command::new(binary)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--allow-cidr", "127.0.0.0/8"])
            .arg("--data-dir")
            .arg(data_dir.path().join("data"))
            .arg("--config")
            .arg(&config_path)
            .env("HERALD_ADMIN_TOKEN", BENCH_TOKEN)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let addr = tokio::time::timeout(Duration::from_secs(60), read_address(stderr))
            .await
            .context("herald did not start within 60 s")??;
        Ok(Self {
            child: Some(child),
            base: format!("http://{addr}"),
            token: BENCH_TOKEN.to_owned(),
            data_dir: Some(data_dir),
            client: http_client(8),
        })
    }

    pub fn remote(url: &str, token: &str) -> Self {
        Self {
            child: None,
            base: url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            data_dir: None,
            client: http_client(8),
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Resident set size now, in KiB (Linux only).
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_field(self.pid()?, "VmRSS:")
    }

    /// Peak resident set size so far, in KiB (Linux only).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_field(self.pid()?, "VmHWM:")
    }

    pub fn data_dir(&self) -> Option<PathBuf> {
        self.data_dir.as_ref().map(|d| d.path().join("data"))
    }

    pub async fn call(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        let response = self.client.request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{method} {path}: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Registers a webhook and returns its id; first (re)registers the bench's
    /// event type, as the catalogue refuses types and patterns it does not know.
    pub async fn create_webhook(&self, name: &str, url: &str, secret: &str) -> Result<String> {
        self.call("PUT", "/api/v1/event-types/bench:event", bench_event_type())
            .await?;
        let hook = self
            .call(
                "POST",
                "/api/v1/webhooks",
                json!({"name": name, "url": url, "secret": secret, "event_types": ["bench:*"]}),
            )
            .await?;
        hook["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no id in {hook}"))
    }

    pub async fn stop(mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// The type `load` publishes, with a schema like a product's, so publishing
/// pays for validation as it does in production.
fn bench_event_type() -> Value {
    json!({
        "description": "herald-bench load",
        "schema": {
            "type": "object",
            "required": ["seq", "sent_us", "repository", "ref"],
            "properties": {
                "seq": {"type": "integer"},
                "sent_us": {"type": "integer"},
                "repository": {"type": "string"},
                "ref": {"type": "string"}
            }
        },
        "example": {"seq": 0, "sent_us": 0, "repository": "github.com/herald/bench", "ref": "refs/heads/main"}
    })
}

async fn read_address(stderr: tokio::process::ChildStderr) -> Result<String> {
    let mut lines = BufReader::new(stderr).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
            // Keep draining so the child never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(addr);
        }
    }
    bail!("herald exited before it was listening")
}

fn proc_status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Bytes used by every file under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
