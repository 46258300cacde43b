//! Measures `PgStore::publish` throughput: many concurrent publishers, group
//! commit, `synchronous_commit` as the server has it (on by default).
//!
//! ```text
//! cargo run --release -p herald-postgres --example publish_throughput -- [EVENTS] [PUBLISHERS] [FAN_OUT]
//! ```
//!
//! The server comes from `HERALD_BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). The run works in a schema of its
//! own, dropped at the end.

#![allow(clippy::unwrap_used)] // a measuring tool run by hand: a failed step ends it with the cause

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use herald_core::event_type::EventTypePattern;
use herald_core::id::{EventId, WebhookId};
use herald_postgres::{PgConfig, PgStore};
use herald_store::{NewEvent, NewWebhook, Store};
use sqlx::{Connection, PgConnection};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const PAYLOAD_BYTES: usize = 512;

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::var("HERALD_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let events = args.next().transpose()?.unwrap_or(200_000);
    let publishers = args.next().transpose()?.unwrap_or(512);
    let fan_out = args.next().transpose()?.unwrap_or(1);

    let schema = format!("herald_bench_{}", uuid::Uuid::now_v7().simple());
    let outcome = run(&url, &schema, events, publishers, fan_out).await;
    drop_schema(&url, &schema).await?;
    outcome
}

async fn run(
    url: &str,
    schema: &str,
    events: usize,
    publishers: usize,
    fan_out: usize,
) -> Result<()> {
    let config = PgConfig {
        schema: Some(schema.to_owned()),
        ..PgConfig::default()
    };
    let store = Arc::new(PgStore::connect(url, config.clone()).await?);
    store.migrate().await?;
    for i in 0..fan_out {
        store.create_webhook(webhook(i), u32::MAX).await?;
    }
    let mut conn = PgConnection::connect(url).await?;
    let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut conn)
        .await?;
    let server: String = sqlx::query_scalar("SELECT version()")
        .fetch_one(&mut conn)
        .await?;
    println!("server: {server}");
    println!(
        "synchronous_commit={synchronous_commit}, {events} events of {PAYLOAD_BYTES} B, {publishers} concurrent publishers, \
         fan-out {fan_out}, {} writers, batches of at most {}",
        config.publish_writers, config.publish_batch
    );

    // A short warm-up fills the pool and the statement caches.
    publish_all(&store, publishers * 4, publishers).await?;
    let started = Instant::now();
    let deliveries = publish_all(&store, events, publishers).await?;
    let elapsed = started.elapsed();
    let rate = events as f64 / elapsed.as_secs_f64();
    println!(
        "published {events} events ({deliveries} deliveries) in {:.2} s: {rate:.0} events/s, {:.0} deliveries/s",
        elapsed.as_secs_f64(),
        deliveries as f64 / elapsed.as_secs_f64()
    );
    let size: String = sqlx::query_scalar(
        "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
    )
    .bind(schema)
    .fetch_one(&mut conn)
    .await?;
    println!("schema size after the run: {size}");
    conn.close().await?;
    store.close().await;
    Ok(())
}

/// Publishes `events` events from `publishers` tasks; returns the deliveries created.
async fn publish_all(store: &Arc<PgStore>, events: usize, publishers: usize) -> Result<u64> {
    let payload = vec![b'x'; PAYLOAD_BYTES - 12];
    let tasks: Vec<_> = (0..publishers)
        .map(|p| {
            let store = Arc::clone(store);
            let body =
                format!(r#"{{"data":"{}"}}"#, String::from_utf8_lossy(&payload)).into_bytes();
            let share = events / publishers + usize::from(p < events % publishers);
            tokio::spawn(async move {
                let mut deliveries = 0u64;
                for _ in 0..share {
                    let event = NewEvent {
                        id: EventId::new(),
                        event_type: "repo:push".to_owned(),
                        project: Some("bench".to_owned()),
                        payload: body.clone(),
                        properties: BTreeMap::new(),
                        ordering_key: None,
                    };
                    deliveries += u64::from(store.publish(event, None).await?.deliveries);
                }
                Ok::<_, herald_store::StoreError>(deliveries)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total)
}

fn webhook(i: usize) -> NewWebhook {
    NewWebhook {
        health_overrides: Default::default(),
        flow_limits: Default::default(),
        ordering: Default::default(),
        id: WebhookId::new(),
        name: format!("bench {i}"),
        url_display: format!("https://receiver.example/{i}"),
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
