//! The relay: this machine's ceiling for "one request in, one request out".
//!
//! A minimal forwarder with none of Herald's work: no store, no signing, no
//! log, nothing durable. It accepts a publish request, forwards its body as is
//! over keep-alive connections to the bench's receiver and answers 202 once the
//! receiver has answered (502 if it did not). Answering after the forward keeps
//! the work in flight bounded by the load generator's concurrency, and makes
//! one figure count both sides: every accepted request is one received.
//!
//! It runs as a child process of the bench's own binary (`--serve-relay URL`),
//! so it sits beside the load generator and the receiver exactly where herald
//! does: a process of its own, on a multi-threaded runtime, on the same cores.

use std::convert::Infallible;
use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use crate::postgres::process_cpu;
use crate::target::{HttpClient, http_client, read_address};

/// Idle keep-alive connections kept to the receiver: more than the load
/// generator's concurrency, so a forward never waits for a new connection.
const MAX_IDLE: usize = 256;

/// The relay process, started by the bench and killed when it is done.
pub struct Relay {
    child: Child,
    pub url: String,
}

impl Relay {
    /// Starts `bench_binary --serve-relay forward_to` and waits until it listens.
    pub async fn start(bench_binary: &Path, forward_to: &str) -> Result<Self> {
        let mut child = Command::new(bench_binary)
            .arg("--serve-relay")
            .arg(forward_to)
            // The relay exits when this pipe closes: see `exit_when_stdin_closes`.
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the relay {}", bench_binary.display()))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let addr = tokio::time::timeout(Duration::from_secs(30), read_address(stderr))
            .await
            .context("the relay did not start within 30 s")?
            .context("the relay")?;
        Ok(Self {
            child,
            url: format!("http://{addr}/"),
        })
    }

    /// CPU time the relay used so far (Linux only).
    pub fn cpu_time(&self) -> Option<Duration> {
        self.child.id().and_then(process_cpu)
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// The relay process's body: serves on a free loopback port (announced on
/// stderr as herald announces its own) until the bench closes its stdin.
pub async fn serve(forward_to: String) -> Result<()> {
    exit_when_stdin_closes();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    eprintln!("relay listening on http://{}", listener.local_addr()?);
    let client = http_client(MAX_IDLE);
    let forward_to: Arc<str> = forward_to.into();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (client, forward_to) = (client.clone(), forward_to.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, client.clone(), forward_to.clone()));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The bench holds the other end of stdin, so however the bench ends (even
/// killed), the pipe closes and the relay exits instead of outliving the run.
fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut buffer = [0_u8; 64];
        while matches!(std::io::stdin().read(&mut buffer), Ok(n) if n > 0) {}
        std::process::exit(0);
    });
}

async fn answer(
    req: Request<Incoming>,
    client: HttpClient,
    forward_to: Arc<str>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = if forward(req, &client, &forward_to).await {
        StatusCode::ACCEPTED
    } else {
        StatusCode::BAD_GATEWAY
    };
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    Ok(response)
}

/// Forwards the request's body to `forward_to`; true when the receiver took it.
async fn forward(req: Request<Incoming>, client: &HttpClient, forward_to: &str) -> bool {
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return false;
    };
    let Ok(outgoing) = Request::post(forward_to)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(body))
    else {
        return false;
    };
    match client.request(outgoing).await {
        Ok(response) => {
            let taken = response.status().is_success();
            // Drain the body so the connection goes back to the pool.
            let _ = response.into_body().collect().await;
            taken
        }
        Err(_) => false,
    }
}
