//! The benchmark's receiver: answers 204 (or hangs), counts deliveries, checks
//! every 100th signature and records publish-to-receipt latency.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub const SECRET: &str = "bench-secret";

#[derive(Default)]
pub struct Counters {
    pub received: AtomicU64,
    pub signatures_checked: AtomicU64,
    pub signatures_bad: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
    last: Mutex<Option<Instant>>,
    arrived: Notify,
}

impl Counters {
    pub fn latencies_us(&self) -> Vec<u64> {
        self.latencies_us
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    pub fn last_receipt(&self) -> Option<Instant> {
        self.last.lock().ok().and_then(|l| *l)
    }

    /// Waits until `n` deliveries arrived or `limit` passes; returns whether they did.
    pub async fn wait_for(&self, n: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.arrived.notified();
            if self.received.load(Ordering::Relaxed) >= n {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), notified).await;
        }
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(hang: bool) -> Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?, hang).await
    }

    pub async fn start_on(addr: SocketAddr, hang: bool) -> Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(accept_loop(listener, counters.clone(), hang));
        Ok(Self {
            addr,
            counters,
            stop,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Closes the listener: connections are refused from now on.
    pub async fn stop(self) -> SocketAddr {
        self.stop.store(true, Ordering::Relaxed);
        self.task.abort();
        let _ = self.task.await;
        self.addr
    }
}

async fn accept_loop(listener: TcpListener, counters: Arc<Counters>, hang: bool) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let counters = counters.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, counters.clone(), hang));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    counters: Arc<Counters>,
    hang: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let now = Instant::now();
    let n = counters.received.fetch_add(1, Ordering::Relaxed) + 1;
    if let Some(sent_us) = sent_us(&body) {
        let latency = now_us().saturating_sub(sent_us);
        if let Ok(mut l) = counters.latencies_us.lock() {
            l.push(latency);
        }
    }
    if n % 100 == 1 {
        counters.signatures_checked.fetch_add(1, Ordering::Relaxed);
        if !signature_valid(&parts.headers, &body) {
            counters.signatures_bad.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Ok(mut last) = counters.last.lock() {
        *last = Some(now);
    }
    counters.arrived.notify_waiters();
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The payload is `{"seq":N,"sent_us":T,...}`; find T without a full parse.
fn sent_us(body: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("\"sent_us\":")? + "\"sent_us\":".len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn signature_valid(headers: &hyper::HeaderMap, body: &[u8]) -> bool {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()) else {
        return false;
    };
    mac.update(format!("{}.{}.", get("webhook-id"), get("webhook-timestamp")).as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    get("webhook-signature").split(' ').any(|s| s == expected)
}
