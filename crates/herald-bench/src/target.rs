//! The herald under test: a child process on a fresh data directory, or a
//! running instance given by URL.

use std::path::Path;
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

use crate::postgres::{BenchSchema, process_cpu};

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn http_client(max_idle: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle)
        .build(connector)
}

pub struct Herald {
    children: Vec<Child>,
    /// The first node: where webhooks are registered and memory is measured.
    pub base: String,
    /// Every node; publishes are spread across them.
    pub bases: Vec<String>,
    pub token: String,
    data_dirs: Vec<tempfile::TempDir>,
    client: HttpClient,
    schema: Option<BenchSchema>,
}

const BENCH_TOKEN: &str = "herald-bench-token-0123456789abcdef";

impl Herald {
    /// Starts `binary` on a fresh data directory with `config` (TOML), on SQLite.
    pub async fn start(binary: &Path, config: &str) -> Result<Self> {
        let (child, addr, data_dir) = spawn_node(binary, config).await?;
        let base = format!("http://{addr}");
        Ok(Self {
            children: vec![child],
            base: base.clone(),
            bases: vec![base],
            token: BENCH_TOKEN.to_owned(),
            data_dirs: vec![data_dir],
            client: http_client(8),
            schema: None,
        })
    }

    /// Starts `nodes` processes of `binary` on one fresh schema of the
    /// PostgreSQL database at `url`, sharing one secrets key.
    pub async fn start_on_postgres(
        binary: &Path,
        config: &str,
        url: &str,
        nodes: usize,
    ) -> Result<Self> {
        let schema = BenchSchema::new(url);
        let keys = tempfile::Builder::new()
            .prefix("herald-bench-keys-")
            .tempdir()?;
        let config = format!(
            "{}{config}{}",
            schema.config_head(&keys.path().join("secret.key")),
            schema.config_table()
        );
        let mut herald = Self {
            children: Vec::new(),
            base: String::new(),
            bases: Vec::new(),
            token: BENCH_TOKEN.to_owned(),
            data_dirs: vec![keys],
            client: http_client(8),
            schema: Some(schema),
        };
        for _ in 0..nodes.max(1) {
            // Each node joins `herald` as it starts, so a failed start still cleans up.
            match spawn_node(binary, &config).await {
                Ok((child, addr, data_dir)) => {
                    herald.children.push(child);
                    herald.bases.push(format!("http://{addr}"));
                    herald.data_dirs.push(data_dir);
                }
                Err(error) => {
                    herald.stop().await;
                    return Err(error);
                }
            }
        }
        herald.base = herald.bases[0].clone();
        Ok(herald)
    }

    pub fn remote(url: &str, token: &str) -> Self {
        let base = url.trim_end_matches('/').to_owned();
        Self {
            children: Vec::new(),
            base: base.clone(),
            bases: vec![base],
            token: token.to_owned(),
            data_dirs: Vec::new(),
            client: http_client(8),
            schema: None,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.children.first().and_then(Child::id)
    }

    /// CPU time every started node used so far (Linux only).
    pub fn cpu_time(&self) -> Option<Duration> {
        self.children
            .iter()
            .map(|child| child.id().and_then(process_cpu))
            .sum()
    }

    /// Resident set size of the first node now, in KiB (Linux only).
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_field(self.pid()?, "VmRSS:")
    }

    /// Peak resident set size of the first node so far, in KiB (Linux only).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        proc_status_field(self.pid()?, "VmHWM:")
    }

    /// Bytes the store takes: the SQLite data directory, or the PostgreSQL
    /// schema's tables with their indexes and TOAST.
    pub async fn storage_bytes(&self) -> Result<u64> {
        match &self.schema {
            Some(schema) => schema.size_bytes().await,
            None => Ok(self
                .data_dirs
                .first()
                .map_or(0, |d| dir_bytes(&d.path().join("data")))),
        }
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
            bail!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Registers a webhook and returns its id; first (re)registers the bench's
    /// event type, as the catalogue refuses types and patterns it does not know.
    pub async fn create_webhook(&self, name: &str, url: &str, secret: &str) -> Result<String> {
        self.create_webhook_ordered(name, url, secret, "none").await
    }

    /// A webhook with the given `ordering` (`"none"` or `"key"`).
    pub async fn create_webhook_ordered(
        &self,
        name: &str,
        url: &str,
        secret: &str,
        ordering: &str,
    ) -> Result<String> {
        self.call("PUT", "/api/v1/event-types/bench:event", bench_event_type())
            .await?;
        let hook = self
            .call(
                "POST",
                "/api/v1/webhooks",
                json!({"name": name, "url": url, "secret": secret, "event_types": ["bench:*"], "ordering": ordering}),
            )
            .await?;
        hook["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no id in {hook}"))
    }

    /// Kills every node, then drops the PostgreSQL schema if there is one.
    pub async fn stop(mut self) {
        for child in &mut self.children {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        if let Some(schema) = &self.schema
            && let Err(error) = schema.drop_schema().await
        {
            eprintln!(
                "warning: could not drop the bench schema {}: {error:#}",
                schema.name
            );
        }
    }
}

/// Starts one herald process on a fresh data directory; returns it with its address.
async fn spawn_node(binary: &Path, config: &str) -> Result<(Child, String, tempfile::TempDir)> {
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
        .context("herald did not start within 60 s")?
        .context("herald")?;
    Ok((child, addr, data_dir))
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

/// Reads a child's stderr until its "listening on http://ADDR" line (herald's,
/// or the relay's), returns ADDR and keeps draining the rest.
pub async fn read_address(stderr: tokio::process::ChildStderr) -> Result<String> {
    let mut lines = BufReader::new(stderr).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
            // Keep draining so the child never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(addr);
        }
    }
    bail!("the process exited before it was listening")
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
