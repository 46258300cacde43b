//! The scenarios of BENCHMARKS.md. Each is bounded in events and in time and
//! starts its own herald on a fresh data directory (and, on PostgreSQL, a fresh
//! schema), so runs don't interact; the monitors scenario needs no herald. On
//! PostgreSQL the publish and delivery scenarios run `--nodes` processes on the
//! one schema and spread publishes across them.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::ValueEnum;
use serde_json::json;

use crate::Args;
use crate::load::{self, Shape, Sink};
use crate::monitors::{self, BenchRepo};
use crate::postgres::DbCpu;
use crate::receiver::{Receiver, SECRET};
use crate::report::{Figure, Report};
use crate::target::Herald;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// The load generator against the receiver alone: the rig's own ceiling.
    Rig,
    /// Single-event publishes, 64 concurrent, 1 subscribed webhook.
    Publish,
    /// End-to-end deliveries/s at fan-out 1 and 10, with idle and peak RSS.
    Delivery,
    /// Publish-to-receipt latency at a steady rate.
    Latency,
    /// A backlog published while the receiver is down, then drained.
    Backlog,
    /// One hanging receiver beside nine healthy ones.
    Noisy,
    /// Signed GitHub `push` deliveries to a receiver, verified and normalized.
    Incoming,
    /// Code monitor scan rate vs `git log -p -G`, and the cost of 10 monitors vs 1.
    Monitors,
}

/// How big each scenario is; `--quick` shrinks everything so CI only checks the rig works.
struct Sizes {
    concurrency: usize,
    publish_events: u64,
    delivery_events: u64,
    latency_rate: u64,
    latency_secs: u64,
    backlog_events: u64,
    noisy_events: u64,
    incoming_requests: u64,
    monitor_commits: usize,
    /// The most any one phase may take before the scenario gives up.
    phase_limit: Duration,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                concurrency: 16,
                publish_events: 2_000,
                delivery_events: 1_000,
                latency_rate: 100,
                latency_secs: 2,
                backlog_events: 2_000,
                noisy_events: 300,
                incoming_requests: 1_000,
                monitor_commits: 300,
                phase_limit: Duration::from_secs(120),
            }
        } else {
            Self {
                concurrency: 64,
                publish_events: 200_000,
                delivery_events: 50_000,
                latency_rate: 1_000,
                latency_secs: 30,
                backlog_events: 1_000_000,
                noisy_events: 10_000,
                incoming_requests: 100_000,
                monitor_commits: 10_000,
                phase_limit: Duration::from_secs(900),
            }
        }
    }
}

const BASE_CONFIG: &str = "[delivery]\npoll_interval = \"100ms\"\n";

pub async fn run_all(args: Args) -> Result<()> {
    let sizes = Sizes::new(args.quick);
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 });
    let scenarios = if args.scenarios.is_empty() {
        Scenario::value_variants().to_vec()
    } else {
        args.scenarios.clone()
    };
    let mut report = Report::new(args.quick, runs, sizes.concurrency);
    report.setting("publish_events", sizes.publish_events);
    report.setting("delivery_events", sizes.delivery_events);
    report.setting("latency_rate_per_s", sizes.latency_rate);
    report.setting("latency_secs", sizes.latency_secs);
    report.setting("backlog_events", sizes.backlog_events);
    report.setting("noisy_events", sizes.noisy_events);
    report.setting("incoming_requests", sizes.incoming_requests);
    report.setting("monitor_commits", sizes.monitor_commits as u64);
    report.label(
        "store",
        if args.database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
    );
    report.setting("nodes", u64::from(args.nodes));
    // Generated on first use, outside any timing, and searched by every run.
    let mut monitor_repo = None;
    for scenario in scenarios {
        if args.url.is_some()
            && matches!(
                scenario,
                Scenario::Backlog | Scenario::Noisy | Scenario::Delivery
            )
        {
            eprintln!("skipping {scenario:?}: it needs a fresh herald it starts itself");
            continue;
        }
        for run in 0..runs {
            eprintln!("{scenario:?}: run {} of {runs}", run + 1);
            let figures = run_one(scenario, &args, &sizes, &mut monitor_repo).await?;
            report.add(figures);
        }
    }
    report.print();
    report.write(&args.out)?;
    eprintln!("results written to {}", args.out.display());
    Ok(())
}

async fn run_one(
    scenario: Scenario,
    args: &Args,
    sizes: &Sizes,
    monitor_repo: &mut Option<BenchRepo>,
) -> Result<Vec<Figure>> {
    match scenario {
        Scenario::Rig => rig(sizes).await,
        Scenario::Publish => publish(args, sizes).await,
        Scenario::Delivery => {
            let mut figures = delivery(args, sizes, 1).await?;
            figures.extend(delivery(args, sizes, 10).await?);
            Ok(figures)
        }
        Scenario::Latency => latency(args, sizes).await,
        Scenario::Backlog => backlog(args, sizes).await,
        Scenario::Noisy => noisy(args, sizes).await,
        Scenario::Incoming => incoming(args, sizes).await,
        Scenario::Monitors => {
            let repo = match monitor_repo {
                Some(repo) => repo,
                None => monitor_repo.insert(
                    BenchRepo::prepare(args.monitor_repo.clone(), sizes.monitor_commits).await?,
                ),
            };
            monitors::run(repo, sizes.phase_limit).await
        }
    }
}

/// One herald, or on PostgreSQL `nodes` of them on one fresh schema.
async fn start_herald(args: &Args, config: &str, nodes: usize) -> Result<Herald> {
    match (&args.url, &args.token, &args.database_url) {
        (Some(url), Some(token), _) => Ok(Herald::remote(url, token)),
        (_, _, Some(database)) => {
            Herald::start_on_postgres(&args.herald, config, database, nodes).await
        }
        _ => Herald::start(&args.herald, config).await,
    }
}

fn publish_sink(herald: &Herald) -> Sink {
    Sink {
        shape: Shape::Event,
        urls: herald
            .bases
            .iter()
            .map(|base| format!("{base}/api/v1/events"))
            .collect(),
        token: Some(herald.token.clone()),
    }
}

/// CPU spent over one phase by the database server (when it runs on this
/// machine) and by the herald nodes this run started.
struct CpuMeter {
    db: Option<DbCpu>,
    db_start: Option<Duration>,
    herald_start: Option<Duration>,
}

impl CpuMeter {
    async fn start(args: &Args, herald: &Herald) -> Self {
        let db = match &args.database_url {
            Some(url) => DbCpu::locate(url).await,
            None => None,
        };
        let db_start = db.as_ref().and_then(DbCpu::total);
        Self {
            db,
            db_start,
            herald_start: herald.cpu_time(),
        }
    }

    /// Microseconds of CPU per unit of work (`per` of them, named `unit`).
    fn figures(&self, herald: &Herald, prefix: &str, unit: &str, per: u64) -> Vec<Figure> {
        let per_unit = |start: Option<Duration>, end: Option<Duration>| {
            let spent = end?.checked_sub(start?)?;
            Some(spent.as_secs_f64() * 1e6 / per.max(1) as f64)
        };
        let mut figures = Vec::new();
        let db_end = self.db.as_ref().and_then(DbCpu::total);
        if let Some(us) = per_unit(self.db_start, db_end) {
            figures.push(Figure::new(
                &format!("{prefix}.db_cpu_us_per_{unit}"),
                us,
                "us",
                None,
            ));
        }
        if let Some(us) = per_unit(self.herald_start, herald.cpu_time()) {
            figures.push(Figure::new(
                &format!("{prefix}.herald_cpu_us_per_{unit}"),
                us,
                "us",
                None,
            ));
        }
        figures
    }
}

fn check_signatures(receiver: &Receiver) -> Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let bad = receiver.counters.signatures_bad.load(Relaxed);
    if bad > 0 {
        bail!(
            "{bad} of {} sampled signatures did not verify",
            receiver.counters.signatures_checked.load(Relaxed)
        );
    }
    Ok(())
}

async fn rig(sizes: &Sizes) -> Result<Vec<Figure>> {
    let receiver = Receiver::start(false).await?;
    let sink = Sink {
        urls: vec![receiver.url()],
        token: None,
        shape: Shape::Event,
    };
    let result = load::flat_out(
        &sink,
        sizes.publish_events,
        sizes.concurrency,
        sizes.phase_limit,
    )
    .await;
    Ok(vec![Figure::new(
        "rig.requests_per_s",
        result.per_second(),
        "req/s",
        None,
    )])
}

async fn publish(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let herald = start_herald(args, BASE_CONFIG, usize::from(args.nodes)).await?;
    let receiver = Receiver::start(false).await?;
    herald
        .create_webhook("bench", &receiver.url(), SECRET)
        .await?;
    let cpu = CpuMeter::start(args, &herald).await;
    let result = load::flat_out(
        &publish_sink(&herald),
        sizes.publish_events,
        sizes.concurrency,
        sizes.phase_limit,
    )
    .await;
    let cpu_figures = cpu.figures(&herald, "publish", "event", result.accepted);
    herald.stop().await;
    if result.errors > 0 {
        bail!("{} publishes failed", result.errors);
    }
    // SQLite's target is the product's; PostgreSQL's is issue 7's.
    let target = if args.database_url.is_some() {
        10_000.0
    } else {
        20_000.0
    };
    let mut figures = vec![Figure::new(
        "publish.events_per_s",
        result.per_second(),
        "ev/s",
        Some(target),
    )];
    figures.extend(cpu_figures);
    Ok(figures)
}

async fn delivery(args: &Args, sizes: &Sizes, fan_out: u64) -> Result<Vec<Figure>> {
    let herald = start_herald(args, BASE_CONFIG, usize::from(args.nodes)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = herald.rss_kib();
    let receiver = Receiver::start(false).await?;
    for i in 0..fan_out {
        herald
            .create_webhook(&format!("bench-{i}"), &receiver.url(), SECRET)
            .await?;
    }
    let expected = sizes.delivery_events * fan_out;
    let cpu = CpuMeter::start(args, &herald).await;
    let start = Instant::now();
    let published = load::flat_out(
        &publish_sink(&herald),
        sizes.delivery_events,
        sizes.concurrency,
        sizes.phase_limit,
    )
    .await;
    if published.errors > 0 {
        bail!("{} publishes failed", published.errors);
    }
    if !receiver
        .counters
        .wait_for(expected, sizes.phase_limit)
        .await
    {
        bail!(
            "fan-out {fan_out}: only {} of {expected} deliveries arrived in time",
            receiver
                .counters
                .received
                .load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    let elapsed = receiver
        .counters
        .last_receipt()
        .map_or(start.elapsed(), |last| last - start);
    let peak_rss = herald.peak_rss_kib();
    let cpu_figures = cpu.figures(
        &herald,
        &format!("delivery.fanout{fan_out}"),
        "delivery",
        expected,
    );
    herald.stop().await;
    check_signatures(&receiver)?;
    let target = if fan_out == 1 { 10_000.0 } else { 25_000.0 };
    let mut figures = vec![Figure::new(
        &format!("delivery.fanout{fan_out}.deliveries_per_s"),
        expected as f64 / elapsed.as_secs_f64(),
        "dl/s",
        Some(target),
    )];
    figures.extend(cpu_figures);
    if let (Some(idle), true) = (idle_rss, fan_out == 1) {
        figures.push(Figure::at_most(
            "memory.idle_rss_mb",
            idle as f64 / 1024.0,
            "MB",
            30.0,
        ));
    }
    if let Some(peak) = peak_rss {
        figures.push(Figure::at_most(
            &format!("memory.peak_rss_fanout{fan_out}_mb"),
            peak as f64 / 1024.0,
            "MB",
            150.0,
        ));
    }
    Ok(figures)
}

async fn latency(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let herald = start_herald(args, BASE_CONFIG, 1).await?;
    let receiver = Receiver::start(false).await?;
    herald
        .create_webhook("bench", &receiver.url(), SECRET)
        .await?;
    let result = load::steady(
        &publish_sink(&herald),
        sizes.latency_rate,
        Duration::from_secs(sizes.latency_secs),
    )
    .await;
    receiver
        .counters
        .wait_for(result.accepted, sizes.phase_limit)
        .await;
    herald.stop().await;
    check_signatures(&receiver)?;
    let mut latencies = receiver.counters.latencies_us();
    if latencies.is_empty() {
        bail!("no deliveries arrived");
    }
    latencies.sort_unstable();
    let pct =
        |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    Ok(vec![
        Figure::at_most("latency.p50_ms", pct(0.50), "ms", 5.0),
        Figure::at_most("latency.p99_ms", pct(0.99), "ms", 25.0),
        Figure::new("latency.achieved_rate", result.per_second(), "ev/s", None),
    ])
}

/// The receiver is down while the backlog is published; with the retry schedule
/// compressed to one retry after 1 s, every delivery ends failed. Then the
/// receiver comes back and `recover` requeues them all at once: the drain.
async fn backlog(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let config =
        "[delivery]\npoll_interval = \"100ms\"\nretry_schedule = [\"1s\"]\nretry_jitter = 0.0\n";
    let herald = start_herald(args, config, 1).await?;
    let addr = Receiver::start(false).await?.stop().await;
    let hook = herald
        .create_webhook("bench", &format!("http://{addr}/"), SECRET)
        .await?;
    let published = load::flat_out(
        &publish_sink(&herald),
        sizes.backlog_events,
        sizes.concurrency,
        sizes.phase_limit,
    )
    .await;
    let n = published.accepted;
    let data_bytes = herald.storage_bytes().await?;
    wait_until_none_pending(&herald, &hook, sizes.phase_limit).await?;

    let receiver = Receiver::start_on(addr, false).await?;
    let start = Instant::now();
    herald
        .call(
            "POST",
            &format!("/api/v1/webhooks/{hook}/recover"),
            json!({"since": "1970-01-01T00:00:00Z"}),
        )
        .await?;
    let mut peak_rss_kib = 0;
    while !receiver
        .counters
        .wait_for(n, Duration::from_millis(250))
        .await
    {
        peak_rss_kib = peak_rss_kib.max(herald.rss_kib().unwrap_or(0));
        if start.elapsed() > sizes.phase_limit {
            bail!(
                "backlog: only {} of {n} drained in time",
                receiver
                    .counters
                    .received
                    .load(std::sync::atomic::Ordering::Relaxed)
            );
        }
    }
    let elapsed = receiver
        .counters
        .last_receipt()
        .map_or(start.elapsed(), |last| last - start);
    herald.stop().await;
    check_signatures(&receiver)?;
    Ok(vec![
        Figure::new(
            "backlog.drain_per_s",
            n as f64 / elapsed.as_secs_f64(),
            "dl/s",
            None,
        ),
        Figure::at_most(
            "backlog.peak_rss_mb",
            peak_rss_kib as f64 / 1024.0,
            "MB",
            200.0,
        ),
        Figure::new(
            "backlog.bytes_per_pending_delivery",
            data_bytes as f64 / n.max(1) as f64,
            "B",
            None,
        ),
    ])
}

async fn wait_until_none_pending(herald: &Herald, hook: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let page = herald
            .call(
                "GET",
                &format!("/api/v1/webhooks/{hook}/deliveries?status=pending&limit=1"),
                serde_json::Value::Null,
            )
            .await?;
        if page["items"].as_array().is_some_and(Vec::is_empty) {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("deliveries still pending after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Nine healthy webhooks with and without a tenth whose receiver hangs for the
/// full timeout: the healthy ones' rate must hold.
async fn noisy(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let alone = healthy_rate(args, sizes, false).await?;
    let beside_hang = healthy_rate(args, sizes, true).await?;
    Ok(vec![
        Figure::new("noisy.healthy_alone_per_s", alone, "dl/s", None),
        Figure::new(
            "noisy.healthy_beside_hanging_per_s",
            beside_hang,
            "dl/s",
            None,
        ),
        Figure::new("noisy.ratio", beside_hang / alone, "x", Some(0.9)),
    ])
}

async fn healthy_rate(args: &Args, sizes: &Sizes, with_hanging: bool) -> Result<f64> {
    let herald = start_herald(args, BASE_CONFIG, 1).await?;
    let healthy = Receiver::start(false).await?;
    let hanging = Receiver::start(true).await?;
    for i in 0..9 {
        herald
            .create_webhook(&format!("healthy-{i}"), &healthy.url(), SECRET)
            .await?;
    }
    if with_hanging {
        herald
            .create_webhook("hanging", &hanging.url(), SECRET)
            .await?;
    }
    let expected = sizes.noisy_events * 9;
    let start = Instant::now();
    load::flat_out(
        &publish_sink(&herald),
        sizes.noisy_events,
        sizes.concurrency,
        sizes.phase_limit,
    )
    .await;
    if !healthy.counters.wait_for(expected, sizes.phase_limit).await {
        bail!("noisy: healthy receivers got too few deliveries in time");
    }
    let elapsed = healthy
        .counters
        .last_receipt()
        .map_or(start.elapsed(), |last| last - start);
    herald.stop().await;
    check_signatures(&healthy)?;
    Ok(expected as f64 / elapsed.as_secs_f64())
}

/// A real GitHub `push` body (vendored with its source and licence in herald-ingest).
const GITHUB_PUSH: &[u8] =
    include_bytes!("../../herald-ingest/tests/fixtures/code-hosts/github/push.json");

/// Signed GitHub `push` deliveries posted to a receiver: each is verified over the
/// raw body, deduplicated, logged, normalized and published as `repo:push`.
async fn incoming(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let herald = start_herald(args, BASE_CONFIG, 1).await?;
    let receiver = herald
        .call(
            "POST",
            "/api/v1/receivers",
            json!({"kind": "github", "urn": "https://github.com", "secret": SECRET}),
        )
        .await?;
    let Some(id) = receiver["id"].as_str() else {
        bail!("no id in {receiver}");
    };
    let sink = Sink {
        urls: vec![format!("{}/.api/webhooks/{id}", herald.base)],
        token: None,
        shape: Shape::GitHubPush {
            body: bytes::Bytes::from_static(GITHUB_PUSH),
            signature: format!("sha256={}", hex_hmac(SECRET.as_bytes(), GITHUB_PUSH)),
            run: crate::receiver::now_us(),
        },
    };
    let result = load::flat_out(
        &sink,
        sizes.incoming_requests,
        sizes.concurrency,
        sizes.phase_limit,
    )
    .await;
    herald.stop().await;
    if result.errors > 0 {
        bail!("{} incoming requests were refused", result.errors);
    }
    Ok(vec![Figure::new(
        "incoming.verified_requests_per_s",
        result.per_second(),
        "req/s",
        Some(15_000.0),
    )])
}

fn hex_hmac(key: &[u8], body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
