//! Measures what retention leaves behind on PostgreSQL: each cycle publishes
//! EVENTS events (with idempotency keys), delivers every one through claims and
//! recorded attempts as the engine does, then purges with retention 0, and
//! prints each table's size (`pg_total_relation_size`: heap, indexes, TOAST)
//! after the work, after the purge, and after waiting for autovacuum.
//! Across cycles the sizes should level off: purged rows are dead tuples that
//! autovacuum makes reusable, so the next cycle fills the same pages.
//!
//! ```text
//! cargo run --release -p herald-postgres --example retention_cycles -- [EVENTS] [CYCLES] [AUTOVACUUM_WAIT_S]
//! ```
//!
//! The server comes from `HERALD_BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); it relies on autovacuum, as
//! PostgreSQL has it by default; where it is off, the run vacuums each table
//! itself after the purge instead of waiting. The run works in a schema of its
//! own, dropped at the end.

#![allow(clippy::unwrap_used)] // a measuring tool run by hand: a failed step ends it with the cause

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::event_type::EventTypePattern;
use herald_core::id::{AttemptId, EventId, WebhookId};
use herald_core::time::Timestamp;
use herald_postgres::{PgConfig, PgStore};
use herald_store::{
    AttemptOutcome, AttemptRecord, ClaimRequest, NewEvent, NewWebhook, NextStep, PurgePolicy, Store,
};
use sqlx::{Connection, PgConnection, Row};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const PAYLOAD_BYTES: usize = 512;
const PUBLISHERS: usize = 256;
const DELIVERERS: usize = 16;
const CLAIM_BATCH: usize = 256;
const PURGE_BATCH: u32 = 1000;
const TABLES: [&str; 4] = ["events", "deliveries", "attempts", "idempotency_keys"];

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::var("HERALD_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let events = args.next().transpose()?.unwrap_or(1_000_000);
    let cycles = args.next().transpose()?.unwrap_or(3);
    let autovacuum_wait = Duration::from_secs(args.next().transpose()?.unwrap_or(180));

    let schema = format!("herald_retention_{}", uuid::Uuid::now_v7().simple());
    let outcome = run(&url, &schema, events, cycles, autovacuum_wait).await;
    drop_schema(&url, &schema).await?;
    outcome
}

async fn run(
    url: &str,
    schema: &str,
    events: u64,
    cycles: u64,
    autovacuum_wait: Duration,
) -> Result<()> {
    let config = PgConfig {
        schema: Some(schema.to_owned()),
        max_connections: 24,
        ..PgConfig::default()
    };
    let store = Arc::new(PgStore::connect(url, config).await?);
    store.migrate().await?;
    store.create_webhook(webhook(), u32::MAX).await?;
    let mut conn = PgConnection::connect(url).await?;
    let autovacuum: String = sqlx::query_scalar("SHOW autovacuum")
        .fetch_one(&mut conn)
        .await?;
    println!(
        "autovacuum={autovacuum}; {events} events of {PAYLOAD_BYTES} B per cycle, fan-out 1, {cycles} cycles"
    );
    print_header();
    for cycle in 1..=cycles {
        let started = Instant::now();
        publish_all(&store, events, cycle).await?;
        let published = started.elapsed();
        deliver_all(&store, events).await?;
        let delivered = started.elapsed() - published;
        print_sizes(&mut conn, schema, cycle, "after delivery").await?;

        let purge_started = Instant::now();
        let report = store
            .purge(PurgePolicy {
                retention: Duration::ZERO,
                idempotency_ttl: Duration::ZERO,
                batch: PURGE_BATCH,
            })
            .await?;
        let purged = purge_started.elapsed();
        print_sizes(&mut conn, schema, cycle, "after purge").await?;
        let when = if autovacuum == "on" {
            let vacuumed = wait_for_autovacuum(&mut conn, schema, autovacuum_wait).await?;
            if vacuumed {
                "after autovacuum"
            } else {
                "autovacuum pending"
            }
        } else {
            vacuum(&mut conn, schema).await?;
            "after VACUUM"
        };
        print_sizes(&mut conn, schema, cycle, when).await?;
        println!(
            "  cycle {cycle}: published in {:.1} s, delivered in {:.1} s, purged {} events, {} deliveries, {} attempts, {} keys in {:.1} s",
            published.as_secs_f64(),
            delivered.as_secs_f64(),
            report.events,
            report.deliveries,
            report.attempts,
            report.idempotency_keys,
            purged.as_secs_f64()
        );
    }
    conn.close().await?;
    store.close().await;
    Ok(())
}

async fn publish_all(store: &Arc<PgStore>, events: u64, cycle: u64) -> Result<()> {
    let body = format!(r#"{{"data":"{}"}}"#, "x".repeat(PAYLOAD_BYTES - 12)).into_bytes();
    let tasks: Vec<_> = (0..PUBLISHERS as u64)
        .map(|p| {
            let store = Arc::clone(store);
            let body = body.clone();
            tokio::spawn(async move {
                let mut n = p;
                while n < events {
                    let event = NewEvent {
                        id: EventId::new(),
                        event_type: "repo:push".to_owned(),
                        project: Some("retention".to_owned()),
                        payload: body.clone(),
                        properties: BTreeMap::new(),
                        ordering_key: None,
                    };
                    store.publish(event, Some(format!("c{cycle}-{n}"))).await?;
                    n += PUBLISHERS as u64;
                }
                Ok::<_, herald_store::StoreError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Claims and records a successful attempt for every due delivery, the way
/// the engine does after a 2xx, until `events` of them are done.
async fn deliver_all(store: &Arc<PgStore>, events: u64) -> Result<()> {
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks: Vec<_> = (0..DELIVERERS)
        .map(|_| {
            let (store, done) = (Arc::clone(store), Arc::clone(&done));
            tokio::spawn(async move {
                while done.load(std::sync::atomic::Ordering::Relaxed) < events {
                    let claimed = store
                        .claim_due(ClaimRequest {
                            limit: CLAIM_BATCH,
                            lease: Duration::from_secs(60),
                            skip_webhooks: Vec::new(),
                        })
                        .await?;
                    if claimed.is_empty() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                    for delivery in claimed {
                        let attempt = AttemptRecord {
                            id: AttemptId::new(),
                            delivery_id: delivery.delivery_id,
                            number: delivery.attempt_number,
                            started_at: Timestamp::now(),
                            duration_ms: 3,
                            request_url: delivery.webhook.url_display.clone(),
                            request_headers: vec![(
                                "content-type".to_owned(),
                                "application/json".to_owned(),
                            )],
                            response_status: Some(204),
                            response_headers: Vec::new(),
                            response_body: Some(String::new()),
                            error: None,
                        };
                        store
                            .record_attempt(AttemptOutcome {
                                lease: delivery.lease,
                                attempt,
                                next: NextStep::Succeeded,
                            })
                            .await?;
                        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                Ok::<_, herald_store::StoreError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Does what autovacuum would, on a server where it is off (CI machines turn
/// it off): plain `VACUUM` marks the purged rows' space reusable (and cuts
/// off empty pages at a table's end), so the next cycle shows whether that
/// space is reused.
async fn vacuum(conn: &mut PgConnection, schema: &str) -> Result<()> {
    for table in TABLES {
        let statement = format!("VACUUM \"{schema}\".\"{table}\"");
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Waits until autovacuum has run on every table since the purge, up to `limit`.
async fn wait_for_autovacuum(
    conn: &mut PgConnection,
    schema: &str,
    limit: Duration,
) -> Result<bool> {
    let since: f64 = sqlx::query_scalar("SELECT extract(epoch FROM now())::float8")
        .fetch_one(&mut *conn)
        .await?;
    let deadline = Instant::now() + limit;
    loop {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = ANY($2) \
             AND n_dead_tup > 0 AND coalesce(extract(epoch FROM last_autovacuum), 0) < $3",
        )
        .bind(schema)
        .bind(&TABLES[..])
        .bind(since)
        .fetch_one(&mut *conn)
        .await?;
        if pending == 0 {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn print_header() {
    println!(
        "{:<5} {:<20} {:>12} {:>12} {:>12} {:>12} {:>12} {:>14}",
        "cycle", "when", "events", "deliveries", "attempts", "idem_keys", "total", "dead tuples"
    );
}

async fn print_sizes(conn: &mut PgConnection, schema: &str, cycle: u64, when: &str) -> Result<()> {
    let mut sizes = Vec::new();
    for table in TABLES {
        let bytes: i64 = sqlx::query_scalar(
            "SELECT pg_total_relation_size(format('%I.%I', $1::text, $2::text)::regclass)",
        )
        .bind(schema)
        .bind(table)
        .fetch_one(&mut *conn)
        .await?;
        sizes.push(bytes);
    }
    let dead: i64 = sqlx::query(
        "SELECT coalesce(sum(n_dead_tup), 0)::bigint AS dead FROM pg_stat_user_tables WHERE schemaname = $1",
    )
    .bind(schema)
    .fetch_one(&mut *conn)
    .await?
    .try_get("dead")?;
    let mib = |b: i64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    println!(
        "{cycle:<5} {when:<20} {:>12} {:>12} {:>12} {:>12} {:>12} {dead:>14}",
        mib(sizes[0]),
        mib(sizes[1]),
        mib(sizes[2]),
        mib(sizes[3]),
        mib(sizes.iter().sum())
    );
    Ok(())
}

fn webhook() -> NewWebhook {
    NewWebhook {
        health_overrides: Default::default(),
        flow_limits: Default::default(),
        ordering: Default::default(),
        id: WebhookId::new(),
        name: "retention".to_owned(),
        url_display: "https://receiver.example/hook".to_owned(),
        url_sealed: vec![0; 40],
        secret_sealed: vec![0; 72],
        event_types: vec![
            EventTypePattern::parse("event_types", "repo:*").expect("a valid pattern"),
        ],
        project: None,
        enabled: true,
    }
}

async fn drop_schema(url: &str, schema: &str) -> Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}
