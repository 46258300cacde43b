//! The benchmark's receiver: answers 204 (or hangs, fails, limits its rate or
//! slows down under load, as its [`Behaviour`] says), counts deliveries,
//! checks every 100th signature and records publish-to-receipt latency.

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

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// 204 at once.
    Answer,
    /// Never answers (for an hour).
    Hang,
    /// A dead endpoint: 500 to every request, each counted in `refused`.
    Fail,
    /// Allows `per_second` requests a second (a token bucket holding one
    /// second's worth); beyond that answers 429 with `Retry-After: 1`,
    /// counted in `refused`.
    RateLimited { per_second: u64 },
    /// Answers 204 after `base`, plus `step` for each request in progress
    /// beyond `knee`: latency climbs with concurrency, as an overloaded
    /// server's does.
    Slow {
        base: Duration,
        knee: u64,
        step: Duration,
    },
}

#[derive(Default)]
pub struct Counters {
    /// Requests answered 204: deliveries.
    pub received: AtomicU64,
    /// Requests answered 500 or 429.
    pub refused: AtomicU64,
    /// When each refused request arrived.
    refused_at: Mutex<Vec<Instant>>,
    /// Requests that arrived, however they ended (a client that timed out
    /// leaves one that arrived but was neither received nor refused).
    pub arrived_total: AtomicU64,
    /// Requests in progress now, and the most at once.
    in_progress: AtomicU64,
    pub most_in_progress: AtomicU64,
    /// The rate limiter's tokens and when they were last topped up.
    bucket: Mutex<Option<(f64, Instant)>>,
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

    /// Refused requests that arrived within `window` of the first one.
    pub fn refused_within(&self, window: Duration) -> u64 {
        let arrivals = self
            .refused_at
            .lock()
            .map(|a| a.clone())
            .unwrap_or_default();
        let Some(first) = arrivals.iter().min().copied() else {
            return 0;
        };
        arrivals
            .iter()
            .filter(|at| at.duration_since(first) <= window)
            .count() as u64
    }

    /// When the first refused request arrived.
    pub fn first_refused(&self) -> Option<Instant> {
        self.refused_at
            .lock()
            .ok()
            .and_then(|a| a.iter().min().copied())
    }

    /// Whether the rate limiter has a token for one more request now.
    fn take_token(&self, per_second: u64) -> bool {
        let Ok(mut bucket) = self.bucket.lock() else {
            return false;
        };
        let now = Instant::now();
        let rate = per_second as f64;
        let (tokens, at) = bucket.get_or_insert((rate, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn refuse(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut at) = self.refused_at.lock() {
            at.push(Instant::now());
        }
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
    pub async fn start(behaviour: Behaviour) -> Result<Self> {
        Self::start_on("127.0.0.1:0".parse()?, behaviour).await
    }

    pub async fn start_on(addr: SocketAddr, behaviour: Behaviour) -> Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(accept_loop(listener, counters.clone(), behaviour));
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

async fn accept_loop(listener: TcpListener, counters: Arc<Counters>, behaviour: Behaviour) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let counters = counters.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, counters.clone(), behaviour));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Counts a request in progress until it is answered (or dropped).
struct InProgress(Arc<Counters>);

impl InProgress {
    fn enter(counters: &Arc<Counters>) -> (Self, u64) {
        counters.arrived_total.fetch_add(1, Ordering::Relaxed);
        let now = counters.in_progress.fetch_add(1, Ordering::Relaxed) + 1;
        counters.most_in_progress.fetch_max(now, Ordering::Relaxed);
        (Self(counters.clone()), now)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::Relaxed);
    }
}

fn answer(status: StatusCode, retry_after: bool) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    if retry_after {
        response.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from_static("1"),
        );
    }
    response
}

async fn handle(
    req: Request<Incoming>,
    counters: Arc<Counters>,
    behaviour: Behaviour,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (_in_progress, now_in_progress) = InProgress::enter(&counters);
    match behaviour {
        Behaviour::Answer => {}
        Behaviour::Hang => tokio::time::sleep(Duration::from_secs(3600)).await,
        Behaviour::Fail => {
            counters.refuse();
            return Ok(answer(StatusCode::INTERNAL_SERVER_ERROR, false));
        }
        Behaviour::RateLimited { per_second } => {
            if !counters.take_token(per_second) {
                counters.refuse();
                return Ok(answer(StatusCode::TOO_MANY_REQUESTS, true));
            }
        }
        Behaviour::Slow { base, knee, step } => {
            let beyond = u32::try_from(now_in_progress.saturating_sub(knee)).unwrap_or(u32::MAX);
            tokio::time::sleep(base + step.saturating_mul(beyond)).await;
        }
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
    Ok(answer(StatusCode::NO_CONTENT, false))
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
