//! Publishing load: flat out with bounded concurrency, at a steady rate, or
//! paced open loop. Every request carries its send time so the receiver can
//! measure latency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use tokio::sync::Semaphore;

use crate::receiver::now_us;
use crate::target::{HttpClient, http_client};

/// Where to send: Herald's publish endpoint (of every node, taken in turn), or
/// the receiver itself (the rig's ceiling).
#[derive(Clone)]
pub struct Sink {
    pub urls: Vec<String>,
    pub token: Option<String>,
    pub shape: Shape,
}

/// What each request carries.
#[derive(Clone)]
pub enum Shape {
    /// A `POST /api/v1/events` body with its sequence number and send time.
    Event,
    /// The same, with `ordering_key` `key-<seq % keys>`: consecutive
    /// requests go to different keys, each key's in sequence order.
    KeyedEvent { keys: u64 },
    /// A GitHub `push` delivery: the same signed body, a fresh delivery id each
    /// time so Herald's dedupe does not short-circuit it.
    GitHubPush {
        body: Bytes,
        signature: String,
        run: u64,
    },
}

impl Sink {
    fn url(&self, seq: u64) -> &str {
        let index = usize::try_from(seq).unwrap_or(0) % self.urls.len().max(1);
        self.urls.get(index).map_or("", String::as_str)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LoadResult {
    pub accepted: u64,
    pub errors: u64,
    pub elapsed: Duration,
}

impl LoadResult {
    pub fn per_second(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn event_body(seq: u64, sent_us: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"type":"bench:event","payload":{{"seq":{seq},"sent_us":{sent_us},"repository":"github.com/herald/bench","ref":"refs/heads/main"}}}}"#,
    ))
}

fn keyed_event_body(seq: u64, sent_us: u64, key: u64) -> Bytes {
    Bytes::from(format!(
        r#"{{"type":"bench:event","ordering_key":"key-{key}","payload":{{"seq":{seq},"sent_us":{sent_us},"repository":"github.com/herald/bench","ref":"refs/heads/main"}}}}"#,
    ))
}

/// Sends request `seq`; an event carries `sent_us` as its send time.
async fn send_one(client: &HttpClient, sink: &Sink, seq: u64, sent_us: u64) -> bool {
    let mut builder = Request::post(sink.url(seq)).header("content-type", "application/json");
    if let Some(token) = &sink.token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = match &sink.shape {
        Shape::Event => event_body(seq, sent_us),
        Shape::KeyedEvent { keys } => keyed_event_body(seq, sent_us, seq % keys.max(&1)),
        Shape::GitHubPush {
            body,
            signature,
            run,
        } => {
            builder = builder
                .header("x-github-event", "push")
                .header("x-github-delivery", format!("bench-{run}-{seq}"))
                .header("x-hub-signature-256", signature.as_str());
            body.clone()
        }
    };
    let Ok(request) = builder.body(Full::new(body)) else {
        return false;
    };
    match client.request(request).await {
        Ok(response) => {
            let ok = response.status().is_success();
            // Drain the body so the connection goes back to the pool.
            let _ = response.into_body().collect().await;
            ok
        }
        Err(_) => false,
    }
}

/// Sends `events` requests from `concurrency` keep-alive workers, stopping early at `limit`.
pub async fn flat_out(sink: &Sink, events: u64, concurrency: usize, limit: Duration) -> LoadResult {
    let client = http_client(concurrency);
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + limit;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, sink) = (client.clone(), sink.clone());
            let (next, accepted, errors) = (next.clone(), accepted.clone(), errors.clone());
            tokio::spawn(async move {
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= events || Instant::now() >= deadline {
                        break;
                    }
                    let counter = if send_one(&client, &sink, seq, now_us()).await {
                        &accepted
                    } else {
                        &errors
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    LoadResult {
        accepted: accepted.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

/// Sends at `rate` requests per second for `duration`, at most 512 outstanding.
pub async fn steady(sink: &Sink, rate: u64, duration: Duration) -> LoadResult {
    let client = http_client(64);
    let outstanding = Arc::new(Semaphore::new(512));
    let accepted = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let total = rate * duration.as_secs().max(1);
    let period = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let start = Instant::now();
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for seq in 0..total {
        ticker.tick().await;
        let Ok(permit) = outstanding.clone().acquire_owned().await else {
            break;
        };
        let (client, sink) = (client.clone(), sink.clone());
        let (accepted, errors) = (accepted.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let counter = if send_one(&client, &sink, seq, now_us()).await {
                &accepted
            } else {
                &errors
            };
            counter.fetch_add(1, Ordering::Relaxed);
            drop(permit);
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    LoadResult {
        accepted: accepted.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

/// What an open-loop run sent, and how far behind its schedule it fell.
#[derive(Debug, Clone, Copy)]
pub struct PacedResult {
    pub load: LoadResult,
    /// Requests the schedule called for.
    pub scheduled: u64,
    /// The latest any request left after its due time.
    pub max_lag: Duration,
}

/// At most this many requests in flight in an open-loop run: enough that a
/// target keeping up never meets it, and a bound on tasks and sockets if it stalls.
const PACED_MAX_OUTSTANDING: u32 = 4_096;

/// Open loop at `rate` requests per second for `duration`: request `seq` is due
/// at `seq / rate` after the start whether or not earlier ones were answered
/// (a closed loop would slow down with the target and hide its queueing). Each
/// event carries its due time as its send time, so a late send counts as
/// latency instead of hiding it; `max_lag` says how late the generator itself
/// ran. Outstanding requests are waited for at most `limit` after the last send.
pub async fn paced(sink: &Sink, rate: f64, duration: Duration, limit: Duration) -> PacedResult {
    let client = http_client(64);
    let outstanding = Arc::new(Semaphore::new(PACED_MAX_OUTSTANDING as usize));
    let accepted = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let max_lag_us = Arc::new(AtomicU64::new(0));
    let rate = rate.max(1.0);
    let scheduled = (rate * duration.as_secs_f64()).round() as u64;
    let (start, start_us) = (Instant::now(), now_us());
    for seq in 0..scheduled {
        let offset = Duration::from_secs_f64(seq as f64 / rate);
        tokio::time::sleep_until((start + offset).into()).await;
        let Ok(permit) = outstanding.clone().acquire_owned().await else {
            break;
        };
        let lag_us =
            u64::try_from(start.elapsed().saturating_sub(offset).as_micros()).unwrap_or(u64::MAX);
        max_lag_us.fetch_max(lag_us, Ordering::Relaxed);
        let due_us = start_us + u64::try_from(offset.as_micros()).unwrap_or(u64::MAX);
        let (client, sink) = (client.clone(), sink.clone());
        let (accepted, errors) = (accepted.clone(), errors.clone());
        tokio::spawn(async move {
            let counter = if send_one(&client, &sink, seq, due_us).await {
                &accepted
            } else {
                &errors
            };
            counter.fetch_add(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    // Every permit back means every request was answered.
    let _ = tokio::time::timeout(limit, outstanding.acquire_many(PACED_MAX_OUTSTANDING)).await;
    PacedResult {
        load: LoadResult {
            accepted: accepted.load(Ordering::Relaxed),
            errors: errors.load(Ordering::Relaxed),
            elapsed: start.elapsed(),
        },
        scheduled,
        max_lag: Duration::from_micros(max_lag_us.load(Ordering::Relaxed)),
    }
}
