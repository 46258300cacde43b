//! Several `herald serve` processes on one PostgreSQL database: every node
//! accepts publishes and delivers, a node killed with SIGKILL loses nothing,
//! no delivery is ever attempted by two nodes at once, and a publish on one
//! node wakes an idle other node.
//!
//! The server comes from `HERALD_TEST_DATABASE_URL`. Without it, or when it does
//! not answer, the tests print why and pass, unless `HERALD_REQUIRE_POSTGRES=1`
//! (CI) makes that a failure. Each test works in a schema of its own, dropped
//! afterwards.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use herald_core::id::EventId;
use herald_core::time::Timestamp;
use herald_postgres::{PgConfig, PgStore};
use herald_store::{NewEvent, Store};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};

use crate::harness::{AppOptions, PATIENCE, TOKEN, TestApp};
use crate::ordering::{self, SequenceReceiver};

const URL_VAR: &str = "HERALD_TEST_DATABASE_URL";
const REQUIRE_VAR: &str = "HERALD_REQUIRE_POSTGRES";

const NODES: usize = 3;
const EVENTS: usize = 5_000;
/// Every tenth event's first attempt is answered 503, so many deliveries have
/// two attempts, often by different nodes, for the overlap check to look at.
const FAIL_FIRST_EVERY: u64 = 10;
const RECEIVER_DELAY: Duration = Duration::from_millis(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// `lease_for(REQUEST_TIMEOUT)`: the timeout plus max(timeout/2, 5 s).
const LEASE: Duration = Duration::from_secs(7);
const MAX_IN_FLIGHT: usize = 32;
const PUBLISHERS: usize = 16;
/// The crash comes once this many requests reached the receiver.
const KILL_AFTER_RECEIVED: usize = 1_500;
/// Room past lease + timeout for the survivors to drain what is left of the
/// backlog on a loaded 2-core machine.
const DRAIN_ALLOWANCE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_everything_once_at_a_time_through_a_kill_dash_nine() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let keys = tempfile::tempdir().expect("temp dir");
    let config = node_config(&schema, keys.path(), "1s");
    // Started together, so their migrations meet on the advisory lock.
    let mut nodes: Vec<TestApp> = start_nodes((0..NODES).map(|_| {
        TestApp::spawn_with(AppOptions {
            config: config.clone(),
            ..AppOptions::default()
        })
    }))
    .await;
    let receiver = Recorder::start().await;
    // Registered on one node; the others learn of it from the database.
    nodes[0].register_any_type("multi:event").await;
    let hook = nodes[0]
        .create_webhook(
            json!({"name": "multinode", "url": receiver.url(), "event_types": ["multi:*"]}),
        )
        .await;
    let hook_id = hook["id"].as_str().expect("webhook id").to_owned();

    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    let publishing = tokio::spawn(publish_spread(nodes[0].client().clone(), bases));
    receiver.wait_for_requests(KILL_AFTER_RECEIVED).await;
    let victim = 1;
    nodes[victim].kill9().await;
    let killed_at = Instant::now();
    // Requests the victim wrote before it died may still be in the receiver's
    // queue; the lease keeps everyone else off its deliveries for seconds.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen_by_kill = receiver.requests().len();
    let event_ids = publishing.await.expect("publisher task");
    let published_at = Instant::now();
    assert_eq!(
        event_ids.len(),
        EVENTS,
        "every publish was acknowledged once"
    );

    // Survivors finish the victim's leased work once its leases end, plus one
    // attempt, plus what they still had to drain.
    let deadline = killed_at.max(published_at) + LEASE + REQUEST_TIMEOUT + DRAIN_ALLOWANCE;
    receiver.wait_for_events(&event_ids, deadline).await;
    eprintln!(
        "multinode: all {EVENTS} events arrived {:.1} s after the kill ({seen_by_kill} requests had arrived by then)",
        killed_at.elapsed().as_secs_f64()
    );
    let survivor = &nodes[0];
    wait_until_none_pending(survivor, &hook_id).await;

    let deliveries = list_deliveries(survivor, &hook_id).await;
    assert_eq!(deliveries.len(), EVENTS, "one delivery per event");
    assert!(
        deliveries.iter().all(|d| d["status"] == "succeeded"),
        "every delivery succeeded"
    );
    let attempts_by_event = attempts_by_event(&deliveries);
    let unrecorded = check_duplicates(&receiver, &attempts_by_event, seen_by_kill);
    check_attempts_never_overlap(survivor, &deliveries, unrecorded).await;
    assert_eq!(
        receiver.concurrent.load(Ordering::SeqCst),
        0,
        "the receiver saw two requests for one event at the same time: {:?}",
        receiver.concurrent_ids.lock().unwrap()
    );
    drop(nodes);
}

/// Three nodes deliver one webhook ordered by key: the receiver checks every
/// key's sequence as it arrives (`crate::ordering`), through retries and the
/// `kill -9` of a node with heads in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_keep_each_key_in_order_through_a_kill_dash_nine() {
    const KEYS: usize = 12;
    const PER_KEY: u64 = 15;
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let keys = tempfile::tempdir().expect("temp dir");
    let config = node_config(&schema, keys.path(), "1s");
    let mut nodes: Vec<TestApp> = start_nodes((0..NODES).map(|_| {
        TestApp::spawn_with(AppOptions {
            config: config.clone(),
            ..AppOptions::default()
        })
    }))
    .await;
    let receiver = SequenceReceiver::start(RECEIVER_DELAY * 3).await;
    nodes[0].register_any_type(ordering::EVENT_TYPE).await;
    nodes[0]
        .create_webhook(ordering::ordered_hook(&receiver.url()))
        .await;
    // Each key's events are published one after another, each to the next node.
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();
    ordering::publish_keys(nodes[0].client().clone(), bases, TOKEN, KEYS, PER_KEY).await;
    let deadline = Instant::now() + PATIENCE;
    while receiver.requests() < KEYS * 2 {
        assert!(
            Instant::now() < deadline,
            "nothing was delivered before the kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    nodes[1].kill9().await;
    let deadline = Instant::now() + LEASE + REQUEST_TIMEOUT + DRAIN_ALLOWANCE + PATIENCE;
    receiver.wait_for_all(KEYS, PER_KEY, deadline).await;
    receiver.assert_in_order(KEYS, PER_KEY);
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_by_another_node_wakes_an_idle_node() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let keys = tempfile::tempdir().expect("temp dir");
    // The node polls once an hour: only a notification can make it deliver soon.
    let node = TestApp::spawn_with(AppOptions {
        config: node_config(&schema, keys.path(), "1h"),
        ..AppOptions::default()
    })
    .await;
    let receiver = Recorder::start().await;
    node.register_any_type("wake:up").await;
    node.create_webhook(json!({"name": "wake", "url": receiver.url(), "event_types": ["wake:*"]}))
        .await;
    // The other node: a store on the same schema, publishing the way a node does.
    let other = PgStore::connect(
        &schema.url,
        PgConfig {
            schema: Some(schema.name.clone()),
            max_connections: 2,
            ..PgConfig::default()
        },
    )
    .await
    .expect("connect the other node");

    let first = publish_through(&other, 1).await;
    receiver
        .wait_for_events(&[first], Instant::now() + PATIENCE)
        .await;

    // A lost listening connection is re-established (and counts as a wake-up).
    terminate_listeners(&schema.url).await;
    let second = publish_through(&other, 2).await;
    receiver
        .wait_for_events(&[second], Instant::now() + PATIENCE)
        .await;
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_secrets_key_refuses_to_start_and_says_what_to_do() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    // The first node makes its key the database's, before any webhook exists.
    let keys = tempfile::tempdir().expect("temp dir");
    let first = TestApp::spawn_with(AppOptions {
        config: node_config(&schema, keys.path(), "100ms"),
        ..AppOptions::default()
    })
    .await;

    let other_keys = tempfile::tempdir().expect("temp dir");
    let (success, stderr) = serve_once(&node_config(&schema, other_keys.path(), "100ms")).await;
    assert!(!success, "a node with another key started: {stderr}");
    assert!(
        stderr.contains("is not the key this database's secrets are sealed with"),
        "{stderr}"
    );
    assert!(
        stderr.contains("copy secret.key from a node that works, or point secret_key_file at it"),
        "{stderr}"
    );

    // The first node is unharmed, and a node with its key joins.
    assert_eq!(first.get("/healthz").await.0, 200);
    let second = TestApp::spawn_with(AppOptions {
        config: node_config(&schema, keys.path(), "100ms"),
        ..AppOptions::default()
    })
    .await;
    assert_eq!(second.get("/healthz").await.0, 200);
}

/// Runs `herald serve` with `config` until it exits (it is expected to refuse
/// to start); whether it succeeded, and what it printed.
async fn serve_once(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("herald.toml");
    std::fs::write(&config_path, config).expect("write config");
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config_path)
        .env("HERALD_ADMIN_TOKEN", TOKEN)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PATIENCE, run)
        .await
        .expect("herald neither started nor refused in time")
        .expect("run herald");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Someone who can write the database but lacks the key swaps two webhooks'
/// sealed URLs. The node cannot open them (each is bound to its own row), so
/// it sends nothing, leaves the deliveries pending with no attempt, and takes
/// itself out of the load balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_sealed_urls_do_not_open_and_the_node_reports_itself_unavailable() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let keys = tempfile::tempdir().expect("temp dir");
    let node = TestApp::spawn_with(AppOptions {
        config: node_config(&schema, keys.path(), "100ms"),
        ..AppOptions::default()
    })
    .await;
    let receiver = Recorder::start().await;
    node.register_any_type("multi:event").await;
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        let hook = node
            .create_webhook(
                json!({"name": name, "url": receiver.url(), "event_types": ["multi:*"]}),
            )
            .await;
        ids.push(hook["id"].as_str().expect("webhook id").to_owned());
    }
    swap_sealed(&schema, "url_sealed", &ids[0], &ids[1]).await;

    node.publish("multi:event", json!({"i": 1})).await;
    let body = unavailable_health(&node).await;
    assert_eq!(body["code"], "unavailable", "{body}");
    let message = body["message"].as_str().expect("message");
    assert!(message.contains("secrets key"), "{message}");

    for id in &ids {
        let (_, page) = node.get(&format!("/api/v1/webhooks/{id}/deliveries")).await;
        let deliveries = page["items"].as_array().expect("items");
        assert_eq!(deliveries.len(), 1, "{page}");
        assert_eq!(deliveries[0]["status"], "pending", "{page}");
        assert_eq!(deliveries[0]["attempts"], 0, "{page}");
    }
    assert!(receiver.requests().is_empty(), "nothing was sent");

    // A sealed value an API call cannot open is the node's fault too: 503.
    swap_sealed(&schema, "secret_sealed", &ids[0], &ids[1]).await;
    let (status, body) = node
        .get(&format!("/api/v1/webhooks/{}/secret", ids[0]))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("secrets key")),
        "{body}"
    );
}

/// Polls `/healthz` until it answers 503; returns that answer's body.
async fn unavailable_health(node: &TestApp) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = node.get("/healthz").await;
        if status == 503 {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the node stayed healthy; last answer {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Swaps one sealed column's values between two webhooks.
async fn swap_sealed(schema: &TestSchema, column: &str, first: &str, second: &str) {
    let mut conn = PgConnection::connect(&schema.url).await.expect("connect");
    let swap = format!(
        "UPDATE \"{name}\".webhooks AS w SET {column} = o.{column} \
         FROM \"{name}\".webhooks AS o \
         WHERE (w.id, o.id) IN (($1::uuid, $2::uuid), ($2::uuid, $1::uuid))",
        name = schema.name
    );
    let swapped = sqlx::query(sqlx::AssertSqlSafe(swap))
        .bind(first)
        .bind(second)
        .execute(&mut conn)
        .await
        .expect("swap");
    assert_eq!(swapped.rows_affected(), 2);
}

fn node_config(schema: &TestSchema, keys: &std::path::Path, poll_interval: &str) -> String {
    // Every node must seal and open webhook secrets with the same key; the first
    // to start creates it.
    format!(
        r#"
database_url = "{url}"
secret_key_file = "{key}"

[postgres]
schema = "{schema}"
max_connections = 8

[delivery]
request_timeout = "{timeout}s"
retry_schedule = ["100ms", "200ms", "300ms", "500ms", "1s", "1s", "1s", "1s"]
retry_jitter = 0.0
poll_interval = "{poll_interval}"
max_in_flight = {MAX_IN_FLIGHT}
max_in_flight_per_webhook = {MAX_IN_FLIGHT}

# A tenth of first attempts answer 503, so four in a row happen now and then;
# the pause that follows is compressed to a fraction of a second.
[delivery.health]
first_pause = "200ms"
longest_pause = "1s"
"#,
        url = schema.url,
        key = keys.join("secret.key").display(),
        schema = schema.name,
        timeout = REQUEST_TIMEOUT.as_secs(),
    )
}

async fn start_nodes<F: Future<Output = TestApp> + Send + 'static>(
    starts: impl Iterator<Item = F>,
) -> Vec<TestApp> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, start) in starts.enumerate() {
        tasks.spawn(async move { (i, start.await) });
    }
    let mut nodes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        nodes.push(joined.expect("node start"));
    }
    nodes.sort_by_key(|(i, _)| *i);
    nodes.into_iter().map(|(_, node)| node).collect()
}

/// Publishes `EVENTS` events round-robin over the nodes from `PUBLISHERS`
/// tasks, the way clients behind a load balancer would: a node that does not
/// answer is skipped, and the same `Idempotency-Key` makes the retry on
/// another node return the first answer if the first publish did commit.
/// Returns the acknowledged event ids.
async fn publish_spread(client: reqwest::Client, bases: Vec<String>) -> HashSet<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let bases = Arc::new(bases);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..PUBLISHERS {
        let (client, bases, next) = (client.clone(), bases.clone(), next.clone());
        tasks.spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= EVENTS {
                    return ids;
                }
                ids.push(publish_with_failover(&client, &bases, i).await);
            }
        });
    }
    let mut ids = HashSet::new();
    while let Some(joined) = tasks.join_next().await {
        ids.extend(joined.expect("publisher"));
    }
    ids
}

async fn publish_with_failover(client: &reqwest::Client, bases: &[String], i: usize) -> String {
    let deadline = Instant::now() + PATIENCE;
    for turn in 0.. {
        let base = &bases[(i + turn) % bases.len()];
        let sent = client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", format!("multinode-{i}"))
            .json(&json!({"type": "multi:event", "payload": {"i": i}}))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        if let Ok(response) = sent
            && response.status().is_success()
        {
            let answer: Value = response.json().await.expect("publish answer");
            return answer["id"].as_str().expect("event id").to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "event {i} could not be published on any node"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    unreachable!("the loop returns or panics")
}

async fn publish_through(store: &PgStore, n: u64) -> String {
    let event = NewEvent {
        id: EventId::new(),
        event_type: "wake:up".to_owned(),
        project: None,
        payload: format!(r#"{{"n":{n}}}"#).into_bytes(),
        properties: BTreeMap::new(),
        ordering_key: None,
    };
    let id = event.id.to_string();
    let published = store.publish(event, None).await.expect("publish");
    assert_eq!(
        published.deliveries, 1,
        "the node's webhook subscribes to it"
    );
    id
}

/// Ends every `LISTEN`ing Herald connection, as a restarted server or a proxy would.
async fn terminate_listeners(url: &str) {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'herald' AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("terminate listeners");
    assert!(!ended.is_empty(), "the node listens for work");
    conn.close().await.expect("close");
}

async fn wait_until_none_pending(node: &TestApp, hook: &str) {
    node.wait_until(
        &format!("/api/v1/webhooks/{hook}/deliveries?status=pending&limit=1"),
        "every attempt to be recorded",
        |page| page["items"].as_array().is_some_and(Vec::is_empty),
    )
    .await;
}

async fn list_deliveries(node: &TestApp, hook: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/webhooks/{hook}/deliveries?limit=250");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = node.get(&path).await;
        assert_eq!(status, 200, "{page}");
        all.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

fn attempts_by_event(deliveries: &[Value]) -> HashMap<String, u64> {
    deliveries
        .iter()
        .map(|d| {
            let event = d["event_id"].as_str().expect("event id").to_owned();
            (event, d["attempts"].as_u64().expect("attempts"))
        })
        .collect()
}

/// A request with no recorded attempt behind it can only come from an attempt
/// cut short by the kill: it must have arrived before the kill, and there can
/// be no more of them than the victim had in flight. Returns how many there were.
fn check_duplicates(
    receiver: &Recorder,
    attempts: &HashMap<String, u64>,
    seen_by_kill: usize,
) -> usize {
    let requests = receiver.requests();
    let mut count: HashMap<&str, usize> = HashMap::new();
    let mut first_index: HashMap<&str, usize> = HashMap::new();
    for (index, id) in requests.iter().enumerate() {
        *count.entry(id.as_str()).or_default() += 1;
        first_index.entry(id.as_str()).or_insert(index);
    }
    let mut unrecorded = 0;
    for (id, received) in &count {
        let recorded = usize::try_from(attempts[*id]).expect("small");
        if *received > recorded {
            let extra = received - recorded;
            assert_eq!(
                extra, 1,
                "event {id}: {received} requests for {recorded} recorded attempts"
            );
            assert!(
                first_index[id] < seen_by_kill,
                "event {id} was sent without a recorded attempt, but not by the killed node"
            );
            unrecorded += extra;
        }
    }
    eprintln!("multinode: {unrecorded} deliveries were repeated after the kill");
    assert!(
        unrecorded <= MAX_IN_FLIGHT,
        "{unrecorded} unrecorded attempts, more than the killed node could have in flight"
    );
    unrecorded
}

/// The attempt log: attempts of one delivery never overlap in time.
async fn check_attempts_never_overlap(node: &TestApp, deliveries: &[Value], unrecorded: usize) {
    let retried: Vec<&str> = deliveries
        .iter()
        .filter(|d| d["attempts"].as_u64().unwrap_or(0) >= 2)
        .map(|d| d["id"].as_str().expect("delivery id"))
        .collect();
    // A planned failure the killed node met went unrecorded.
    let planned_failures = EVENTS as u64 / FAIL_FIRST_EVERY - unrecorded as u64;
    assert!(
        retried.len() as u64 >= planned_failures,
        "only {} deliveries were retried; expected at least {planned_failures}",
        retried.len()
    );
    for id in retried {
        let (status, detail) = node.get(&format!("/api/v1/deliveries/{id}")).await;
        assert_eq!(status, 200, "{detail}");
        let mut spans: Vec<(i64, i64)> = detail["attempts"]
            .as_array()
            .expect("attempts")
            .iter()
            .map(|a| {
                let started =
                    Timestamp::parse_rfc3339(a["started_at"].as_str().expect("started_at"))
                        .expect("an RFC 3339 time")
                        .millis();
                (
                    started,
                    started + a["duration_ms"].as_i64().expect("duration"),
                )
            })
            .collect();
        spans.sort_unstable();
        for pair in spans.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "delivery {id}: an attempt started at {} while the one started at {} ran until {}",
                pair[1].0,
                pair[0].0,
                pair[0].1
            );
        }
    }
}

/// A receiver that records each request's `webhook-id` in arrival order,
/// answers after a small delay (503 to the first request of every tenth event),
/// and counts requests for one event that overlap in time.
struct Recorder {
    addr: SocketAddr,
    requests: Mutex<Vec<String>>,
    in_flight: Mutex<HashMap<String, usize>>,
    failed_once: Mutex<HashSet<String>>,
    concurrent: AtomicUsize,
    concurrent_ids: Mutex<Vec<String>>,
}

impl Recorder {
    async fn start() -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let recorder = Arc::new(Self {
            addr: listener.local_addr().expect("addr"),
            requests: Mutex::new(Vec::new()),
            in_flight: Mutex::new(HashMap::new()),
            failed_once: Mutex::new(HashSet::new()),
            concurrent: AtomicUsize::new(0),
            concurrent_ids: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(recorder.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        recorder
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    async fn wait_for_requests(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.requests.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "the receiver got fewer than {n} requests in time"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a request for every one of `ids` arrived, until `deadline`.
    async fn wait_for_events<S: AsRef<str>>(
        &self,
        ids: impl IntoIterator<Item = S> + Clone,
        deadline: Instant,
    ) {
        loop {
            let seen: HashSet<String> = self.requests().into_iter().collect();
            let missing = ids
                .clone()
                .into_iter()
                .filter(|id| !seen.contains(id.as_ref()))
                .count();
            if missing == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{missing} events never reached the receiver in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Counts a request as in flight for its event until it is answered or dropped.
struct InFlight<'a> {
    recorder: &'a Recorder,
    id: String,
}

impl<'a> InFlight<'a> {
    fn enter(recorder: &'a Recorder, id: &str) -> Self {
        let mut in_flight = recorder.in_flight.lock().unwrap();
        let n = in_flight.entry(id.to_owned()).or_default();
        if *n > 0 {
            recorder.concurrent.fetch_add(1, Ordering::SeqCst);
            recorder.concurrent_ids.lock().unwrap().push(id.to_owned());
        }
        *n += 1;
        Self {
            recorder,
            id: id.to_owned(),
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.recorder.in_flight.lock().unwrap();
        if let Some(n) = in_flight.get_mut(&self.id) {
            *n -= 1;
        }
    }
}

async fn answer(
    State(recorder): State<Arc<Recorder>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    recorder.requests.lock().unwrap().push(id.clone());
    let _in_flight = InFlight::enter(&recorder, &id);
    tokio::time::sleep(RECEIVER_DELAY).await;
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let planned_failure = payload["i"]
        .as_u64()
        .is_some_and(|i| i % FAIL_FIRST_EVERY == 0);
    if planned_failure && recorder.failed_once.lock().unwrap().insert(id) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::NO_CONTENT
}

/// A schema of its own on the test server, dropped when this is dropped (also
/// when the test panics).
struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// A fresh schema name on a reachable server, or `None` (after saying why)
    /// when PostgreSQL tests are to be skipped. The nodes create the schema.
    async fn new() -> Option<Self> {
        let url = match std::env::var(URL_VAR) {
            Ok(url) if !url.is_empty() => url,
            _ => return skip(&format!("{URL_VAR} is not set")),
        };
        match PgConnection::connect(&url).await {
            Ok(conn) => {
                let _ = conn.close().await;
            }
            Err(err) => return skip(&format!("cannot reach the server in {URL_VAR}: {err}")),
        }
        let name = format!("herald_it_{}", uuid_like());
        Some(Self { url, name })
    }
}

/// A name part unique to this test: the id generator Herald itself uses.
fn uuid_like() -> String {
    EventId::new().to_string().replace('-', "")
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime or while it unwinds, so the
        // schema is dropped from a thread with a runtime of its own.
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(drop_schema(&url, &name))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("warning: could not drop test schema {}: {err}", self.name),
            Err(_) => eprintln!("warning: dropping test schema {} panicked", self.name),
        }
    }
}

async fn drop_schema(
    url: &str,
    name: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut conn = PgConnection::connect(url).await?;
    // Killed nodes' sessions may still be ending; wait a while for their locks, not forever.
    sqlx::query("SET lock_timeout = '20s'")
        .execute(&mut conn)
        .await?;
    let statement = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
    tokio::time::timeout(
        Duration::from_secs(30),
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&mut conn),
    )
    .await??;
    conn.close().await?;
    Ok(())
}

fn skip<T>(reason: &str) -> Option<T> {
    if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
        panic!("PostgreSQL tests are required ({REQUIRE_VAR}=1) but cannot run: {reason}");
    }
    eprintln!("SKIP: multi-node PostgreSQL tests: {reason}");
    None
}
