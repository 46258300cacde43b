//! Measures how long the console's heaviest pages take to render with
//! 1,000,000 deliveries in the store (issue 13: every page under 20 ms at the
//! p99): the webhook list, a webhook's delivery log (its first page and a page
//! half a million deliveries deep) and a delivery's detail.
//!
//! ```text
//! cargo run --release -p herald-server --example console_render -- [DELIVERIES] [RENDERS]
//! ```
//!
//! Defaults: 1,000,000 deliveries, 200 renders of each page. Herald starts as
//! the binary starts it (SQLite in a temporary directory); the webhook, one
//! event and its delivery with a real attempt go through the API, then the
//! other deliveries are written straight into the database (publishing a
//! million events through the API would take most of the run), half succeeded
//! and half failed, none due. Each render is one GET over loopback with a
//! session cookie, timed at the client: an upper bound of the server's time.

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use herald_app::monitors::MonitorsConfig;
use herald_app::stores::StoreChoice;
use herald_app::{AppConfig, Limits, Retention};
use herald_core::cipher::SecretCipher;
use herald_core::id::{DeliveryId, EventId, WebhookId};
use herald_core::time::Timestamp;
use herald_delivery::DeliveryConfig;
use herald_server::{Herald, HeraldConfig, HttpLimits};
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use rusqlite::params;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const TOKEN: &str = "console-render-admin-token-0123456789";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let deliveries = args.next().transpose()?.unwrap_or(1_000_000);
    let renders = args.next().transpose()?.unwrap_or(200).max(1);
    let _ = rustls::crypto::ring::default_provider().install_default();

    let dir = tempfile::tempdir()?;
    let shutdown = CancellationToken::new();
    let running = Herald::start(config(dir.path())?, shutdown.clone()).await?;
    let base = format!("http://{}", running.local_addr());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    let webhook = setup(&client, &base).await?;
    let first = first_delivery(&client, &base, &webhook).await?;
    let filled = Instant::now();
    let deep = fill(&dir.path().join("herald.db"), &webhook, deliveries)?;
    println!(
        "store: {deliveries} deliveries written in {:.1} s",
        filled.elapsed().as_secs_f64()
    );

    let cookie = sign_in(&client, &base).await?;
    let pages = [
        // Each with what the page must show, so that a page that rendered
        // nothing (an error, an empty log) is not timed as a fast one.
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

fn config(dir: &Path) -> Result<HeraldConfig> {
    Ok(HeraldConfig {
        listen: "127.0.0.1:0".parse()?,
        admin_token: TOKEN.to_owned(),
        http: HttpLimits::default(),
        metrics_listen: None,
        app: AppConfig {
            store: StoreChoice::Sqlite(dir.join("herald.db")),
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
