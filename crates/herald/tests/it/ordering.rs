//! Ordered delivery end to end: a webhook created with `"ordering": "key"`
//! and events published with an `ordering_key`, delivered by the real
//! `herald` binary to a receiver on 127.0.0.1 that checks each key's
//! sequence numbers as they arrive: seq n+1 only once n was answered 2xx,
//! never two requests of one key at once, and a repeat only of the last seq
//! seen (at-least-once: the head of a key may come twice, nothing else may).
//! The receiver fails some first attempts, so retries happen throughout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{PATIENCE, TestApp};

pub const EVENT_TYPE: &str = "order:step";
/// The first attempt of every third seq is answered 503.
const FAIL_FIRST_EVERY: u64 = 3;

/// What the receiver knows of one key.
#[derive(Debug, Default)]
struct Line {
    /// The last seq that arrived, and whether it was answered 2xx.
    last: Option<(u64, bool)>,
    in_flight: usize,
    attempts: HashMap<u64, u32>,
}

#[derive(Debug, Default)]
struct Seen {
    lines: HashMap<String, Line>,
    violations: Vec<String>,
    requests: usize,
    refused: usize,
}

/// A receiver that checks per-key order as requests arrive.
pub struct SequenceReceiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    delay: Duration,
}

#[derive(Clone)]
struct ReceiverState {
    seen: Arc<Mutex<Seen>>,
    delay: Duration,
}

async fn receive(State(state): State<ReceiverState>, Json(body): Json<Value>) -> StatusCode {
    let key = body["key"].as_str().unwrap_or_default().to_owned();
    let seq = body["seq"].as_u64().unwrap_or(u64::MAX);
    let first_try = {
        let mut seen = state.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.requests += 1;
        let line = seen.lines.entry(key.clone()).or_default();
        line.in_flight += 1;
        let concurrent = line.in_flight > 1;
        let allowed = match line.last {
            None => seq == 0,
            Some((last, answered_ok)) => seq == last || (answered_ok && seq == last + 1),
        };
        let attempts = line.attempts.entry(seq).or_default();
        *attempts += 1;
        let first_try = *attempts == 1;
        let last = line.last;
        line.last = Some((seq, false));
        if concurrent {
            seen.violations.push(format!(
                "{key}: seq {seq} while another request of the key was in flight"
            ));
        }
        if !allowed {
            seen.violations
                .push(format!("{key}: seq {seq} arrived after {last:?}"));
        }
        first_try
    };
    // A client that dies mid-request (the kill) drops this future: the
    // request is no longer in flight, and was never answered.
    let in_flight = InFlight {
        seen: state.seen.clone(),
        key: key.clone(),
    };
    tokio::time::sleep(state.delay).await;
    drop(in_flight);
    let refuse = first_try && seq % FAIL_FIRST_EVERY == 1;
    let mut seen = state.seen.lock().unwrap_or_else(PoisonError::into_inner);
    if refuse {
        seen.refused += 1;
    }
    let line = seen.lines.entry(key).or_default();
    if !refuse && line.last.is_some_and(|(last, _)| last == seq) {
        line.last = Some((seq, true));
    }
    if refuse {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::NO_CONTENT
    }
}

/// Ends a request's time in flight, however it ends.
struct InFlight {
    seen: Arc<Mutex<Seen>>,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(line) = seen.lines.get_mut(&self.key) {
            line.in_flight -= 1;
        }
    }
}

impl SequenceReceiver {
    /// Answers each request after `delay`.
    pub async fn start(delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(ReceiverState {
                seen: seen.clone(),
                delay,
            });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, seen, delay }
    }

    pub fn url(&self) -> String {
        format!("http://{}/ordered", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until every key's last seq arrived and was answered 2xx.
    pub async fn wait_for_all(&self, keys: usize, per_key: u64, deadline: Instant) {
        loop {
            let done = {
                let seen = self.lock();
                (0..keys).all(|k| {
                    seen.lines
                        .get(&key(k))
                        .is_some_and(|line| line.last == Some((per_key - 1, true)))
                })
            };
            if done {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not every key was delivered to its end in time (receiver delay {:?}): {:?}",
                self.delay,
                self.lock()
                    .lines
                    .iter()
                    .map(|(k, line)| (k.clone(), line.last))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asserts that no key was ever out of order or overlapping, that retries
    /// happened, and that every seq of every key was answered 2xx.
    pub fn assert_in_order(&self, keys: usize, per_key: u64) {
        let seen = self.lock();
        assert!(
            seen.violations.is_empty(),
            "order broken: {:#?}",
            seen.violations
        );
        assert!(
            seen.refused > 0,
            "the receiver refused nothing: no retry was tested"
        );
        for k in 0..keys {
            let line = &seen.lines[&key(k)];
            assert_eq!(
                line.attempts.len() as u64,
                per_key,
                "{}: every seq arrived",
                key(k)
            );
        }
    }
}

pub fn key(k: usize) -> String {
    format!("repo-{k}")
}

/// One producer per key, each publishing its key's events one after another
/// (the next after the 202), all keys at once; `node` picks the node for
/// each publish.
pub async fn publish_keys(
    client: reqwest::Client,
    bases: Vec<String>,
    token: &'static str,
    keys: usize,
    per_key: u64,
) {
    let producers: Vec<_> = (0..keys)
        .map(|k| {
            let client = client.clone();
            let bases = bases.clone();
            tokio::spawn(async move {
                for seq in 0..per_key {
                    let base = &bases[(k + seq as usize) % bases.len()];
                    publish_one(&client, base, token, k, seq).await;
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.unwrap();
    }
}

async fn publish_one(client: &reqwest::Client, base: &str, token: &str, k: usize, seq: u64) {
    let body = json!({
        "type": EVENT_TYPE,
        "payload": {"key": key(k), "seq": seq},
        "ordering_key": key(k),
    });
    let deadline = Instant::now() + PATIENCE;
    loop {
        let sent = client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().as_u16() == 202 => return,
            Ok(response) => panic!("publish answered {}", response.status()),
            // A node being killed: the test publishes before the kill only.
            Err(err) => assert!(Instant::now() < deadline, "publish failed: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn ordered_hook(url: &str) -> Value {
    json!({"name": "ordered", "url": url, "event_types": ["order:*"], "ordering": "key"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_is_delivered_in_publish_order_through_retries() {
    const KEYS: usize = 8;
    const PER_KEY: u64 = 15;
    let app = TestApp::spawn().await;
    let receiver = SequenceReceiver::start(Duration::from_millis(5)).await;
    app.register_any_type(EVENT_TYPE).await;
    let hook = app.create_webhook(ordered_hook(&receiver.url())).await;
    assert_eq!(hook["ordering"], "key", "{hook}");
    publish_keys(
        app.client().clone(),
        vec![app.base.clone()],
        crate::harness::TOKEN,
        KEYS,
        PER_KEY,
    )
    .await;
    receiver
        .wait_for_all(KEYS, PER_KEY, Instant::now() + PATIENCE)
        .await;
    receiver.assert_in_order(KEYS, PER_KEY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_stays_in_order_across_a_kill_dash_nine() {
    const KEYS: usize = 6;
    const PER_KEY: u64 = 20;
    let mut app = TestApp::spawn().await;
    // A slow receiver keeps every key's line long, so the kill lands with
    // heads in flight and the rest waiting.
    let receiver = SequenceReceiver::start(Duration::from_millis(60)).await;
    app.register_any_type(EVENT_TYPE).await;
    app.create_webhook(ordered_hook(&receiver.url())).await;
    publish_keys(
        app.client().clone(),
        vec![app.base.clone()],
        crate::harness::TOKEN,
        KEYS,
        PER_KEY,
    )
    .await;
    let deadline = Instant::now() + PATIENCE;
    while receiver.requests() < 20 {
        assert!(
            Instant::now() < deadline,
            "nothing was delivered before the kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.kill9().await;
    let before = receiver.requests();
    assert!(
        before < KEYS * PER_KEY as usize,
        "the kill must come before everything was delivered"
    );
    app.restart().await;
    receiver
        .wait_for_all(KEYS, PER_KEY, Instant::now() + PATIENCE)
        .await;
    receiver.assert_in_order(KEYS, PER_KEY);
}
