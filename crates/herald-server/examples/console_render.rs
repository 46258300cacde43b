//! Measures how long the console's heaviest pages take to render with
//! 1,000,000 deliveries in the store (issue 13: every page under 20 ms at the
//! p99): the overview (with the last day's outcome counts), the webhook list,
//! a webhook's delivery log (its first page and a page half a million
//! deliveries deep) and a delivery's detail.
//!
//! ```text
//! cargo run --release -p herald-server --example console_render -- [DELIVERIES] [RENDERS]
//! HERALD_RENDER_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo run --release -p herald-server --example console_render -- [DELIVERIES] [RENDERS]
//! ```
//!
//! Defaults: 1,000,000 deliveries, 200 renders of each page. Herald starts as
//! the binary starts it: SQLite in a temporary directory, or, with
//! `HERALD_RENDER_DATABASE_URL`, PostgreSQL in a fresh schema of that
//! database, created for the run and dropped after it. The webhook, one
//! event and its delivery with a real attempt go through the API, then the
//! other deliveries are written straight into the database (publishing a
//! million events through the API would take most of the run), half succeeded
//! and half failed, none due. Each render is one GET over loopback with a
//! session cookie, timed at the client: an upper bound of the server's time.

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use herald_app::monitors::MonitorsConfig;
use herald_app::stores::{PostgresTarget, StoreChoice};
use herald_app::{AppConfig, Limits, Retention};
use herald_core::cipher::SecretCipher;
use herald_core::id::{DeliveryId, EventId, WebhookId};
use herald_core::time::Timestamp;
use herald_delivery::DeliveryConfig;
use herald_postgres::PgConfig;
use herald_server::{Herald, HeraldConfig, HttpLimits};
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use rusqlite::params;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const TOKEN: &str = "console-render-admin-token-0123456789";

/// Where the run's store lives.
enum Backend {
    Sqlite,
    /// A database URL and the fresh schema the run creates and drops.
    Postgres {
        url: String,
        schema: String,
    },
}

impl Backend {
    fn from_env() -> Self {
        match std::env::var("HERALD_RENDER_DATABASE_URL") {
            Ok(url) if !url.trim().is_empty() => Backend::Postgres {
                url,
                schema: format!(
                    "console_render_{}_{}",
                    std::process::id(),
                    Timestamp::now().millis()
                ),
            },
            _ => Backend::Sqlite,
        }
    }

    fn store(&self, dir: &Path) -> StoreChoice {
        match self {
            Backend::Sqlite => StoreChoice::Sqlite(dir.join("herald.db")),
            Backend::Postgres { url, schema } => StoreChoice::Postgres(PostgresTarget::new(
                url.clone(),
                PgConfig {
                    schema: Some(schema.clone()),
                    ..PgConfig::default()
                },
            )),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres { .. } => "PostgreSQL",
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let deliveries = args.next().transpose()?.unwrap_or(1_000_000);
    let renders = args.next().transpose()?.unwrap_or(200).max(1);
    let _ = rustls::crypto::ring::default_provider().install_default();

    let backend = Backend::from_env();
    let dir = tempfile::tempdir()?;
    let measured = measure(&backend, dir.path(), deliveries, renders).await;
    if let Backend::Postgres { url, schema } = &backend {
        drop_schema(url, schema).await?;
    }
    measured
}

async fn measure(backend: &Backend, dir: &Path, deliveries: u64, renders: u64) -> Result<()> {
    let shutdown = CancellationToken::new();
    let running = Herald::start(config(dir, backend.store(dir))?, shutdown.clone()).await?;
    let base = format!("http://{}", running.local_addr());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    let webhook = setup(&client, &base).await?;
    let first = first_delivery(&client, &base, &webhook).await?;
    let filled = Instant::now();
    let deep = match backend {
        Backend::Sqlite => fill(&dir.join("herald.db"), &webhook, deliveries)?,
        Backend::Postgres { url, schema } => fill_pg(url, schema, &webhook, deliveries).await?,
    };
    println!(
        "store: {}, {deliveries} deliveries written in {:.1} s",
        backend.name(),
        filled.elapsed().as_secs_f64()
    );

    let cookie = sign_in(&client, &base).await?;
    let pages = [
        // Each with what the page must show, so that a page that rendered
        // nothing (an error, an empty log) is not timed as a fast one.
        (
            "overview".to_owned(),
            "/console".to_owned(),
            "Deliveries created in the last 24 hours",
        ),
        (
            "webhook list".to_owned(),
            "/console/webhooks".to_owned(),
            "bench",
        ),
        (
            "delivery log, first page".to_owned(),
            format!("/console/webhooks/{webhook}"),
            "/console/deliveries/",
        ),
        (
            format!("delivery log, {} deliveries deep", deliveries / 2),
            format!("/console/webhooks/{webhook}?cursor={deep}"),
            "/console/deliveries/",
        ),
        (
            "delivery detail".to_owned(),
            format!("/console/deliveries/{first}"),
            "0123456789abcdef",
        ),
    ];
    for (label, path, shown) in &pages {
        let times = time_renders(&client, &base, &cookie, path, shown, renders).await?;
        report(label, times);
    }
    shutdown.cancel();
    running.wait().await?;
    Ok(())
}

fn config(dir: &Path, store: StoreChoice) -> Result<HeraldConfig> {
    Ok(HeraldConfig {
        listen: "127.0.0.1:0".parse()?,
        admin_token: TOKEN.to_owned(),
        http: HttpLimits::default(),
        metrics_listen: None,
        metrics_enabled: true,
        app: AppConfig {
            store,
            cipher: SecretCipher::new(&SecretCipher::generate_key())?,
            secret_key_file: dir.join("secret.key"),
            delivery: DeliveryConfig {
                // The one real delivery fails fast on a closed loopback port.
                allow_cidrs: vec!["127.0.0.0/8".parse()?],
                retry: herald_core::retry::RetrySchedule {
                    delays: Vec::new(),
                    ..Default::default()
                },
                ..DeliveryConfig::default()
            },
            limits: Limits::default(),
            retention: Retention {
                max_age: Duration::from_secs(30 * 24 * 3600),
                purge_interval: Duration::from_secs(24 * 3600),
                idempotency_ttl: Duration::from_secs(24 * 3600),
            },
            monitors: MonitorsConfig::new(dir.join("mirrors"), None),
            external_url: String::new(),
        },
    })
}

async fn api(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Result<Value> {
    let response = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    if !status.is_success() {
        return Err(format!("{path}: {status} {answer}").into());
    }
    Ok(answer)
}

/// A custom type and a webhook to a closed loopback port; its id.
async fn setup(client: &reqwest::Client, base: &str) -> Result<String> {
    let any = json!({"description": "bench", "schema": {}, "example": {}});
    api(
        client,
        base,
        reqwest::Method::PUT,
        "/api/v1/event-types/bench:event",
        any,
    )
    .await?;
    let webhook =
        json!({"name": "bench", "url": "http://127.0.0.1:9/hook", "event_types": ["bench:event"]});
    let created = api(
        client,
        base,
        reqwest::Method::POST,
        "/api/v1/webhooks",
        webhook,
    )
    .await?;
    created["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no webhook id".into())
}

/// Publishes one event and waits for its delivery's attempt: the detail page
/// then shows a payload and an attempt with its error.
async fn first_delivery(client: &reqwest::Client, base: &str, webhook: &str) -> Result<String> {
    let event = json!({"type": "bench:event", "payload": {"commit": "0123456789abcdef", "files": ["a.rs", "b.rs"]}});
    api(client, base, reqwest::Method::POST, "/api/v1/events", event).await?;
    let path = format!("/api/v1/webhooks/{webhook}/deliveries");
    for _ in 0..100 {
        let page = api(client, base, reqwest::Method::GET, &path, Value::Null).await?;
        if let Some(delivery) = page["items"].get(0).filter(|d| d["status"] != "pending") {
            return delivery["id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| "no delivery id".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the first delivery was never attempted".into())
}

/// Writes `count` events with one finished delivery each, in one transaction;
/// answers the id of the delivery in the middle, as a deep page's cursor.
fn fill(path: &Path, webhook: &str, count: u64) -> Result<DeliveryId> {
    let webhook: WebhookId = webhook.parse().map_err(|_| "a webhook id")?;
    let mut conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    let tx = conn.transaction()?;
    let mut middle = DeliveryId::new();
    {
        let mut event = tx.prepare(
            "INSERT INTO events (id, event_type, project, payload, properties, created_at) \
             VALUES (?1, 'bench:event', NULL, ?2, '{}', ?3)",
        )?;
        let mut delivery = tx.prepare(
            "INSERT INTO deliveries (id, event_id, webhook_id, event_type, status, attempts, last_status_code, last_error, created_at, updated_at) \
             VALUES (?1, ?2, ?3, 'bench:event', ?4, 1, ?5, NULL, ?6, ?6)",
        )?;
        let now = Timestamp::now().millis();
        for n in 0..count {
            let event_id = EventId::new();
            let id = DeliveryId::new();
            if n == count / 2 {
                middle = id;
            }
            let (status, code) = if n % 2 == 0 {
                ("succeeded", 200)
            } else {
                ("failed", 500)
            };
            let payload = format!(r#"{{"n":{n}}}"#);
            event.execute(params![event_id.as_bytes(), payload.as_bytes(), now])?;
            delivery.execute(params![
                id.as_bytes(),
                event_id.as_bytes(),
                webhook.as_bytes(),
                status,
                code,
                now
            ])?;
        }
    }
    tx.commit()?;
    Ok(middle)
}

/// [`fill`] on PostgreSQL: the same rows, inserted from arrays in batches.
async fn fill_pg(url: &str, schema: &str, webhook: &str, count: u64) -> Result<DeliveryId> {
    const BATCH: u64 = 10_000;
    let webhook: WebhookId = webhook.parse().map_err(|_| "a webhook id")?;
    let mut conn = pg_connection(url).await?;
    sqlx::query("SELECT set_config('search_path', $1, false)")
        .bind(schema)
        .execute(&mut conn)
        .await?;
    let now = Timestamp::now().millis();
    let mut middle = DeliveryId::new();
    let mut n = 0;
    while n < count {
        let size = BATCH.min(count - n);
        let numbers: Vec<i64> = (n..n + size).map(|k| k as i64).collect();
        let events: Vec<uuid::Uuid> = (0..size).map(|_| EventId::new().as_uuid()).collect();
        let ids: Vec<DeliveryId> = (0..size).map(|_| DeliveryId::new()).collect();
        if (n..n + size).contains(&(count / 2)) {
            middle = ids[(count / 2 - n) as usize];
        }
        let ids: Vec<uuid::Uuid> = ids.iter().map(DeliveryId::as_uuid).collect();
        sqlx::query(
            "INSERT INTO events (id, event_type, project, payload, properties, created_at) \
             SELECT id, 'bench:event', NULL, convert_to('{\"n\":' || n || '}', 'UTF8'), '{}', $3 \
             FROM UNNEST($1::uuid[], $2::bigint[]) AS t(id, n)",
        )
        .bind(&events)
        .bind(&numbers)
        .bind(now)
        .execute(&mut conn)
        .await?;
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, webhook_id, event_type, status, attempts, \
               last_status_code, last_error, created_at, updated_at) \
             SELECT id, event_id, $4, 'bench:event', \
               CASE WHEN n % 2 = 0 THEN 'succeeded' ELSE 'failed' END, 1, \
               CASE WHEN n % 2 = 0 THEN 200 ELSE 500 END, NULL, $5, $5 \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::bigint[]) AS t(id, event_id, n)",
        )
        .bind(&ids)
        .bind(&events)
        .bind(&numbers)
        .bind(webhook.as_uuid())
        .bind(now)
        .execute(&mut conn)
        .await?;
        n += size;
    }
    // Statistics for the planner, as autovacuum would have them by now.
    sqlx::query("ANALYZE events").execute(&mut conn).await?;
    sqlx::query("ANALYZE deliveries").execute(&mut conn).await?;
    Ok(middle)
}

async fn pg_connection(url: &str) -> Result<sqlx::PgConnection> {
    use sqlx::Connection;
    Ok(sqlx::PgConnection::connect(url).await?)
}

/// Drops the run's schema with everything in it.
async fn drop_schema(url: &str, schema: &str) -> Result<()> {
    let mut conn = pg_connection(url).await?;
    let statement = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Signs in with the admin token; the session's `Cookie` header value.
async fn sign_in(client: &reqwest::Client, base: &str) -> Result<String> {
    let response = client
        .post(format!("{base}/sign-in"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={TOKEN}&next=%2Fconsole"))
        .send()
        .await?;
    let cookie = response
        .headers()
        .get(SET_COOKIE)
        .ok_or("no session cookie")?
        .to_str()?;
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}

async fn time_renders(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    path: &str,
    shown: &str,
    renders: u64,
) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    // One render first, not counted: it warms SQLite's page cache as the
    // console's own traffic would.
    for n in 0..=renders {
        let started = Instant::now();
        let response = client
            .get(format!("{base}{path}"))
            .header(COOKIE, cookie)
            .send()
            .await?;
        let status = response.status();
        let body = response.bytes().await?;
        let took = started.elapsed();
        if status != 200 || !String::from_utf8_lossy(&body).contains(shown) {
            return Err(format!("{path}: {status}, without {shown:?}").into());
        }
        if n > 0 {
            times.push(took);
        }
    }
    Ok(times)
}

fn report(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "{label}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} renders)",
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        at(1.0).as_secs_f64() * 1000.0,
        times.len()
    );
}
