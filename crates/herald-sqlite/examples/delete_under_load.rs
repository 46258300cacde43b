//! Measures what deleting a webhook with a large backlog costs everyone else on
//! SQLite: a steady stream of publishes runs while a webhook with BACKLOG
//! pending deliveries is deleted, and the publishes' latency is reported
//! before and during the deletion (p50, p99, max), with how long the deletion
//! took and the process's peak resident memory.
//!
//! ```text
//! cargo run --release -p herald-sqlite --example delete_under_load -- [BACKLOG] [RATE_PER_S]
//! ```
//!
//! Defaults: 1,000,000 pending deliveries, 2,000 publishes a second from 8
//! tasks. The backlog is written straight into the database before the store
//! opens it (publishing a million events through the store would take most of
//! the run); the deletion and the stream go through `Store` as the server's do.
//! Everything lives in a temporary directory, removed at the end.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::event_type::EventTypePattern;
use herald_core::id::{DeliveryId, EventId, WebhookId};
use herald_core::time::Timestamp;
use herald_sqlite::{SqliteConfig, SqliteStore};
use herald_store::{NewEvent, NewWebhook, Store};
use rusqlite::params;
use tokio::time::MissedTickBehavior;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const PUBLISHERS: usize = 8;
/// How long the stream runs before the deletion starts, for the baseline.
const BASELINE: Duration = Duration::from_secs(5);
/// How long the stream goes on after the deletion returned.
const AFTERWARDS: Duration = Duration::from_secs(1);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let backlog = args.next().transpose()?.unwrap_or(1_000_000);
    let rate = args.next().transpose()?.unwrap_or(2_000).max(1);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("herald.db");
    let (doomed, live) = (WebhookId::new(), WebhookId::new());
    {
        let store = SqliteStore::open(&path, SqliteConfig::default())?;
        store.create_webhook(webhook(doomed, "backlog"), 10).await?;
        store.create_webhook(webhook(live, "stream"), 10).await?;
    }
    let filled = Instant::now();
    fill_backlog(&path, doomed, backlog)?;
    println!(
        "backlog: {backlog} pending deliveries written in {:.1} s",
        filled.elapsed().as_secs_f64()
    );

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, SqliteConfig::default())?);
    let started = Instant::now();
    let stream = start_stream(Arc::clone(&store), rate);
    tokio::time::sleep(BASELINE).await;
    let deletion_start = started.elapsed();
    let deleting = Instant::now();
    assert!(store.delete_webhook(doomed).await?, "the webhook existed");
    let deletion = deleting.elapsed();
    let deletion_end = started.elapsed();
    tokio::time::sleep(AFTERWARDS).await;

    let mut samples = Vec::new();
    for publisher in stream {
        samples.extend(publisher.stop().await?);
    }
    let during: Vec<Duration> = samples
        .iter()
        .filter(|(at, _)| *at >= deletion_start && *at < deletion_end)
        .map(|(_, latency)| *latency)
        .collect();
    let before: Vec<Duration> = samples
        .iter()
        .filter(|(at, _)| *at < deletion_start)
        .map(|(_, latency)| *latency)
        .collect();
    println!(
        "deletion: {:.1} s ({:.0} deliveries/s)",
        deletion.as_secs_f64(),
        backlog as f64 / deletion.as_secs_f64()
    );
    report("publish before the deletion", before);
    report("publish during the deletion", during);
    println!("peak RSS: {:.1} MB", peak_rss_mb()?);
    Ok(())
}

fn webhook(id: WebhookId, event_type: &str) -> NewWebhook {
    NewWebhook {
        health_overrides: Default::default(),
        flow_limits: Default::default(),
        ordering: Default::default(),
        id,
        name: event_type.to_owned(),
        url_display: "http://127.0.0.1:9/".to_owned(),
        url_sealed: vec![1],
        secret_sealed: vec![2],
        event_types: vec![
            EventTypePattern::parse("event_types", event_type).expect("a valid type"),
        ],
        project: None,
        enabled: true,
    }
}

/// One event and one pending delivery of `webhook` per backlog item, in one
/// transaction, as a long outage of the webhook's receiver leaves them.
fn fill_backlog(path: &Path, webhook: WebhookId, backlog: u64) -> Result<()> {
    let mut conn = rusqlite::Connection::open(path)?;
    let tx = conn.transaction()?;
    {
        let mut event = tx.prepare(
            "INSERT INTO events (id, event_type, project, payload, properties, created_at) \
             VALUES (?1, 'backlog', NULL, ?2, '{}', ?3)",
        )?;
        let mut delivery = tx.prepare(
            "INSERT INTO deliveries (id, event_id, webhook_id, event_type, status, next_attempt_at, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 'backlog', 'pending', ?4, ?4, ?4)",
        )?;
        let now = Timestamp::now().millis();
        // Due an hour from now: a backlog waiting out its retry schedule.
        let due = now + 3_600_000;
        for n in 0..backlog {
            let event_id = EventId::new();
            let payload = format!(r#"{{"n":{n}}}"#);
            event.execute(params![event_id.as_bytes(), payload.as_bytes(), now])?;
            delivery.execute(params![
                DeliveryId::new().as_bytes(),
                event_id.as_bytes(),
                webhook.as_bytes(),
                due
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// A publisher task and the switch that stops it.
struct Publisher {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<Vec<(Duration, Duration)>>>,
}

impl Publisher {
    /// Each sample: when the publish started (since the stream began), and how
    /// long it took.
    async fn stop(self) -> Result<Vec<(Duration, Duration)>> {
        // The task may have ended on an error already; its result says so.
        let _ = self.stop.send(());
        self.task.await?
    }
}

fn start_stream(store: Arc<dyn Store>, rate: u64) -> Vec<Publisher> {
    let started = Instant::now();
    let period = Duration::from_secs_f64(PUBLISHERS as f64 / rate as f64);
    (0..PUBLISHERS)
        .map(|_| {
            let store = Arc::clone(&store);
            let (stop, mut stopped) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut ticks = tokio::time::interval(period);
                // A late publish is not made up for: the stream stays a stream.
                ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = &mut stopped => return Ok(samples),
                        _ = ticks.tick() => {}
                    }
                    let at = started.elapsed();
                    let sent = Instant::now();
                    let published = store.publish(stream_event(), None).await?;
                    samples.push((at, sent.elapsed()));
                    assert_eq!(published.deliveries, 1);
                }
            });
            Publisher { stop, task }
        })
        .collect()
}

fn stream_event() -> NewEvent {
    NewEvent {
        id: EventId::new(),
        event_type: "stream".to_owned(),
        project: None,
        payload: br#"{"stream":true}"#.to_vec(),
        properties: BTreeMap::new(),
        ordering_key: None,
    }
}

fn report(label: &str, mut latencies: Vec<Duration>) {
    if latencies.is_empty() {
        println!("{label}: no publishes");
        return;
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    println!(
        "{label}: {} publishes, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        at(0.50),
        at(0.99),
        at(1.0)
    );
}

/// The process's peak resident set size, from /proc (Linux).
fn peak_rss_mb() -> Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(kib / 1024.0)
}
