//! The scenarios of BENCHMARKS.md. Each is bounded in events and in time and
//! starts its own herald on a fresh data directory (and, on PostgreSQL, a fresh
//! schema), so runs don't interact; the rig, relay and monitors scenarios need
//! no herald. On PostgreSQL the publish and delivery scenarios run `--nodes`
//! processes on the one schema and spread publishes across them. Every
//! scenario fails unless its counts match (every request answered, every
//! delivery received), so a run that finishes has checked the rig works.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::ValueEnum;
use serde_json::json;

use crate::Args;
use crate::load::{self, LoadResult, Shape, Sink};
use crate::machine::MachineCpu;
use crate::monitors::{self, BenchRepo};
use crate::postgres::DbCpu;
use crate::receiver::{Behaviour, Receiver, SECRET};
use crate::relay::Relay;
use crate::report::{Figure, Report};
use crate::target::Herald;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// The load generator against the receiver alone: the rig's own ceiling.
    Rig,
    /// The load generator through a minimal non-durable forwarder to the
    /// receiver: the machine's ceiling for one request in, one out. Runs
    /// whenever publish, delivery or capacity do, which are read against it.
    Relay,
    /// Single-event publishes, 64 concurrent, 1 subscribed webhook.
    Publish,
    /// End-to-end deliveries/s at fan-out 1 and 10, with idle and peak RSS.
    Delivery,
    /// One webhook's delivery capacity with the CPU it takes, then latency
    /// at 80 % of that capacity, paced open loop.
    Capacity,
    /// Publish-to-receipt latency at a steady rate.
    Latency,
    /// A backlog published while the receiver is down, then drained.
    Backlog,
    /// One hanging receiver beside nine healthy ones.
    Noisy,
    /// Signed GitHub `push` deliveries to a receiver, verified and normalized.
    Incoming,
    /// The incoming scenario's signed requests while 64 clients flood the same
    /// receiver with 25 MiB bodies under a wrong signature: peak RSS and the
    /// signed requests' rate.
    IngestFlood,
    /// Code monitor scan rate vs `git log -p -G`, and the cost of 10 monitors vs 1.
    Monitors,
    /// Nine healthy webhooks with and without a tenth whose endpoint is dead
    /// (answers 500) with a large backlog; endpoint health's time compressed
    /// 60-fold: the healthy rate and the dead one's attempts in 10 minutes.
    DeadEndpoint,
    /// A receiver that allows 500 requests/s and answers 429 with
    /// `Retry-After: 1` beyond: Herald's rate and share of 429s, with
    /// `Retry-After` alone and with the webhook's `max_per_second = 500`.
    RateLimited,
    /// A receiver whose latency climbs from 5 ms to about 500 ms with
    /// requests in progress: adaptive concurrency against a fixed limit of 32.
    SlowReceiver,
    /// Events over 1,000 ordering keys to a webhook ordered by key, against
    /// the same events to an unordered one: the ordered rate as a fraction.
    Ordered,
}

/// How big each scenario is; `--quick` shrinks everything so CI only checks the rig works.
struct Sizes {
    concurrency: usize,
    publish_events: u64,
    delivery_events: u64,
    latency_rate: u64,
    latency_secs: u64,
    /// How long the capacity scenario offers 80 % of the measured capacity.
    capacity_paced_secs: u64,
    backlog_events: u64,
    noisy_events: u64,
    incoming_requests: u64,
    /// Clients flooding a receiver with unverified bodies, and each body's size.
    flood_clients: usize,
    flood_body_bytes: usize,
    monitor_commits: usize,
    /// Deliveries queued for the dead endpoint.
    dead_backlog_events: u64,
    rate_limited_events: u64,
    slow_receiver_events: u64,
    ordered_events: u64,
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
                capacity_paced_secs: 2,
                backlog_events: 2_000,
                noisy_events: 300,
                incoming_requests: 1_000,
                flood_clients: 8,
                flood_body_bytes: 1024 * 1024,
                monitor_commits: 300,
                dead_backlog_events: 2_000,
                rate_limited_events: 1_000,
                slow_receiver_events: 300,
                ordered_events: 2_000,
                phase_limit: Duration::from_secs(120),
            }
        } else {
            Self {
                concurrency: 64,
                publish_events: 200_000,
                delivery_events: 50_000,
                latency_rate: 1_000,
                latency_secs: 30,
                capacity_paced_secs: 20,
                backlog_events: 1_000_000,
                noisy_events: 10_000,
                incoming_requests: 100_000,
                flood_clients: 64,
                flood_body_bytes: 25 * 1024 * 1024,
                monitor_commits: 10_000,
                dead_backlog_events: 100_000,
                rate_limited_events: 10_000,
                slow_receiver_events: 5_000,
                ordered_events: 50_000,
                phase_limit: Duration::from_secs(900),
            }
        }
    }
}

const BASE_CONFIG: &str = "[delivery]\npoll_interval = \"100ms\"\n";

/// The relay's figure, which Herald's one-in-one-out figures are read against.
const RELAY_FIGURE: &str = "relay.requests_per_s";

/// Herald's figures reported as a percentage of the relay measured in the same
/// invocation, with the least percentage each should reach: publishing is one
/// request in, delivering at fan-out 1 is one in and one out, as the relay is.
const RELATIVE_TO_RELAY: [(&str, f64); 3] = [
    ("publish.events_per_s", 60.0),
    ("delivery.fanout1.deliveries_per_s", 40.0),
    ("capacity.deliveries_per_s", 40.0),
];

/// The offered load of the capacity scenario's latency phase, as a share of
/// the capacity it just measured: loaded, but not overloaded.
const CAPACITY_LOAD_SHARE: f64 = 0.8;

pub async fn run_all(args: Args) -> Result<()> {
    let mut sizes = Sizes::new(args.quick);
    if let Some(rate) = args.latency_rate {
        sizes.latency_rate = rate;
    }
    let runs = args.runs.unwrap_or(if args.quick { 1 } else { 3 });
    let scenarios = with_relay_when_needed(&args.scenarios);
    let mut report = Report::new(args.quick, runs, sizes.concurrency);
    for (figure, at_least_pct) in RELATIVE_TO_RELAY {
        report.fraction(
            &format!("{figure}.pct_of_relay"),
            figure,
            RELAY_FIGURE,
            at_least_pct,
        );
    }
    report.setting("publish_events", sizes.publish_events);
    report.setting("delivery_events", sizes.delivery_events);
    report.setting("latency_rate_per_s", sizes.latency_rate);
    report.setting("latency_secs", sizes.latency_secs);
    report.setting("capacity_paced_secs", sizes.capacity_paced_secs);
    report.setting("backlog_events", sizes.backlog_events);
    report.setting("noisy_events", sizes.noisy_events);
    report.setting("incoming_requests", sizes.incoming_requests);
    report.setting("monitor_commits", sizes.monitor_commits as u64);
    report.setting("dead_backlog_events", sizes.dead_backlog_events);
    report.setting("rate_limited_events", sizes.rate_limited_events);
    report.setting("slow_receiver_events", sizes.slow_receiver_events);
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
                Scenario::Backlog
                    | Scenario::Noisy
                    | Scenario::Delivery
                    | Scenario::Capacity
                    | Scenario::DeadEndpoint
                    | Scenario::RateLimited
                    | Scenario::SlowReceiver
                    | Scenario::Ordered
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

/// Every scenario when none is named; otherwise the ones named, with the relay
/// run first if a scenario that is read against it was named without it, so
/// every fraction of the relay compares figures of the same invocation.
fn with_relay_when_needed(selected: &[Scenario]) -> Vec<Scenario> {
    if selected.is_empty() {
        return Scenario::value_variants().to_vec();
    }
    let needs_relay = selected.iter().any(|s| {
        matches!(
            s,
            Scenario::Publish | Scenario::Delivery | Scenario::Capacity
        )
    });
    let mut chosen = selected.to_vec();
    if needs_relay && !chosen.contains(&Scenario::Relay) {
        eprintln!("adding the relay scenario: publish, delivery and capacity are read against it");
        chosen.insert(0, Scenario::Relay);
    }
    chosen
}

async fn run_one(
    scenario: Scenario,
    args: &Args,
    sizes: &Sizes,
    monitor_repo: &mut Option<BenchRepo>,
) -> Result<Vec<Figure>> {
    match scenario {
        Scenario::Rig => rig(sizes).await,
        Scenario::Relay => relay(sizes).await,
        Scenario::Publish => publish(args, sizes).await,
        Scenario::Delivery => {
            let mut figures = delivery(args, sizes, 1).await?;
            figures.extend(delivery(args, sizes, 10).await?);
            Ok(figures)
        }
        Scenario::Capacity => capacity(args, sizes).await,
        Scenario::Latency => latency(args, sizes).await,
        Scenario::Backlog => backlog(args, sizes).await,
        Scenario::Noisy => noisy(args, sizes).await,
        Scenario::Incoming => incoming(args, sizes).await,
        Scenario::IngestFlood => ingest_flood(args, sizes).await,
        Scenario::DeadEndpoint => dead_endpoint(args, sizes).await,
        Scenario::RateLimited => rate_limited(args, sizes).await,
        Scenario::SlowReceiver => slow_receiver(args, sizes).await,
        Scenario::Ordered => ordered(args, sizes).await,
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

/// Publishes `events` flat out and waits until `receiver` has `expected`
/// deliveries: the time from the first publish to the last receipt.
async fn publish_until_received(
    herald: &Herald,
    receiver: &Receiver,
    (events, expected): (u64, u64),
    sizes: &Sizes,
    what: &str,
) -> Result<Duration> {
    let start = Instant::now();
    let published = load::flat_out(
        &publish_sink(herald),
        events,
        sizes.concurrency,
        sizes.phase_limit,
    )
    .await;
    ensure_all_accepted(&format!("{what} publishing"), &published, events)?;
    if !receiver
        .counters
        .wait_for(expected, sizes.phase_limit)
        .await
    {
        bail!(
            "{what}: only {} of {expected} deliveries arrived in time",
            receiver.counters.received.load(Ordering::Relaxed)
        );
    }
    Ok(receiver
        .counters
        .last_receipt()
        .map_or(start.elapsed(), |last| last - start))
}

/// Fails unless all `expected` requests of a load were answered with success
/// (none refused, none cut off by the phase's time limit).
fn ensure_all_accepted(what: &str, result: &LoadResult, expected: u64) -> Result<()> {
    if result.errors > 0 || result.accepted != expected {
        bail!(
            "{what}: {} of {expected} requests accepted, {} refused or failed",
            result.accepted,
            result.errors
        );
    }
    Ok(())
}

/// Fails unless the receiver got exactly `expected` requests.
fn ensure_received(what: &str, receiver: &Receiver, expected: u64) -> Result<()> {
    let received = receiver
        .counters
        .received
        .load(std::sync::atomic::Ordering::Relaxed);
    if received != expected {
        bail!("{what}: the receiver got {received} requests, expected {expected}");
    }
    Ok(())
}

async fn rig(sizes: &Sizes) -> Result<Vec<Figure>> {
    let receiver = Receiver::start(Behaviour::Answer).await?;
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
    ensure_all_accepted("rig", &result, sizes.publish_events)?;
    ensure_received("rig", &receiver, result.accepted)?;
    Ok(vec![Figure::new(
        "rig.requests_per_s",
        result.per_second(),
        "req/s",
        None,
    )])
}

/// The same load as the publish scenario (events, concurrency) through the
/// relay instead of herald: each accepted request was also received, so its
/// rate is both what went in and what came out.
async fn relay(sizes: &Sizes) -> Result<Vec<Figure>> {
    let receiver = Receiver::start(Behaviour::Answer).await?;
    let relay = Relay::start(&std::env::current_exe()?, &receiver.url()).await?;
    let cpu_start = relay.cpu_time();
    let sink = Sink {
        urls: vec![relay.url.clone()],
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
    let cpu_spent = relay
        .cpu_time()
        .zip(cpu_start)
        .and_then(|(end, start)| end.checked_sub(start));
    relay.stop().await;
    ensure_all_accepted("relay", &result, sizes.publish_events)?;
    ensure_received("relay", &receiver, result.accepted)?;
    let mut figures = vec![Figure::new(
        RELAY_FIGURE,
        result.per_second(),
        "req/s",
        None,
    )];
    if let Some(spent) = cpu_spent {
        figures.push(Figure::new(
            "relay.cpu_us_per_request",
            spent.as_secs_f64() * 1e6 / result.accepted.max(1) as f64,
            "us",
            None,
        ));
    }
    Ok(figures)
}

async fn publish(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let herald = start_herald(args, BASE_CONFIG, usize::from(args.nodes)).await?;
    let receiver = Receiver::start(Behaviour::Answer).await?;
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
    let delivered = receiver.counters.received.load(Ordering::Relaxed);
    let cpu_figures = cpu.figures(&herald, "publish", "event", result.accepted);
    herald.stop().await;
    ensure_all_accepted("publish", &result, sizes.publish_events)?;
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
    // The publish rate is read beside this: on two cores, the deliveries
    // made while publishing take CPU the publishes could have had.
    figures.push(Figure::new(
        "publish.delivered_meanwhile_pct",
        delivered as f64 * 100.0 / result.accepted.max(1) as f64,
        "%",
        None,
    ));
    figures.extend(cpu_figures);
    Ok(figures)
}

async fn delivery(args: &Args, sizes: &Sizes, fan_out: u64) -> Result<Vec<Figure>> {
    let herald = start_herald(args, BASE_CONFIG, usize::from(args.nodes)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = herald.rss_kib();
    let receiver = Receiver::start(Behaviour::Answer).await?;
    for i in 0..fan_out {
        herald
            .create_webhook(&format!("bench-{i}"), &receiver.url(), SECRET)
            .await?;
    }
    let expected = sizes.delivery_events * fan_out;
    let cpu = CpuMeter::start(args, &herald).await;
    let rate = publish_and_deliver(&herald, &receiver, sizes, fan_out).await?;
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
        rate,
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

/// Publishes the delivery scenario's events flat out to `herald`, whose
/// `fan_out` webhooks all point at `receiver`; returns the deliveries per
/// second from the first publish to the last receipt, publishing included.
async fn publish_and_deliver(
    herald: &Herald,
    receiver: &Receiver,
    sizes: &Sizes,
    fan_out: u64,
) -> Result<f64> {
    let expected = sizes.delivery_events * fan_out;
    let start = Instant::now();
    let published = load::flat_out(
        &publish_sink(herald),
        sizes.delivery_events,
        sizes.concurrency,
        sizes.phase_limit,
    )
    .await;
    ensure_all_accepted(
        &format!("fan-out {fan_out} publishing"),
        &published,
        sizes.delivery_events,
    )?;
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
    Ok(expected as f64 / elapsed.as_secs_f64())
}

/// Scenario 2's delivery capacity: one webhook and a fast receiver, first
/// flat out for the capacity and what it costs the machine, then a fresh
/// herald offered a share of that capacity open loop, for the latency a
/// delivery sees when the system keeps up: queueing without overload.
async fn capacity(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let (rate, mut figures) = capacity_flat_out(args, sizes).await?;
    figures.extend(latency_when_loaded(args, sizes, rate * CAPACITY_LOAD_SHARE).await?);
    Ok(figures)
}

/// Deliveries/s with one webhook, events published flat out, and how busy the
/// machine (every process, from `/proc/stat`) and herald (its own
/// `/proc/<pid>/stat`) were, each as a percentage of every core's time.
async fn capacity_flat_out(args: &Args, sizes: &Sizes) -> Result<(f64, Vec<Figure>)> {
    let herald = start_herald(args, BASE_CONFIG, 1).await?;
    let receiver = Receiver::start(Behaviour::Answer).await?;
    herald
        .create_webhook("bench", &receiver.url(), SECRET)
        .await?;
    let (machine_start, herald_start) = (MachineCpu::now(), herald.cpu_time());
    let rate = publish_and_deliver(&herald, &receiver, sizes, 1).await?;
    let (machine_end, herald_end) = (MachineCpu::now(), herald.cpu_time());
    herald.stop().await;
    check_signatures(&receiver)?;
    let mut figures = vec![Figure::new("capacity.deliveries_per_s", rate, "dl/s", None)];
    if let (Some(start), Some(end)) = (machine_start, machine_end) {
        if let Some(pct) = end.busy_pct_since(&start) {
            figures.push(Figure::new("capacity.machine_busy_pct", pct, "%", None));
        }
        let herald_spent = herald_end
            .zip(herald_start)
            .and_then(|(end, start)| end.checked_sub(start));
        if let (Some(spent), Some(all)) = (herald_spent, end.capacity_since(&start))
            && !all.is_zero()
        {
            figures.push(Figure::new(
                "capacity.herald_busy_pct_of_machine",
                spent.as_secs_f64() * 100.0 / all.as_secs_f64(),
                "%",
                None,
            ));
        }
    }
    Ok((rate, figures))
}

/// A fresh herald offered `rate` events/s open loop with one webhook: the
/// publish-to-receipt latency of every delivery, from each event's due time.
async fn latency_when_loaded(args: &Args, sizes: &Sizes, rate: f64) -> Result<Vec<Figure>> {
    let herald = start_herald(args, BASE_CONFIG, 1).await?;
    let receiver = Receiver::start(Behaviour::Answer).await?;
    herald
        .create_webhook("bench", &receiver.url(), SECRET)
        .await?;
    let paced = load::paced(
        &publish_sink(&herald),
        rate,
        Duration::from_secs(sizes.capacity_paced_secs),
        sizes.phase_limit,
    )
    .await;
    receiver
        .counters
        .wait_for(paced.scheduled, sizes.phase_limit)
        .await;
    herald.stop().await;
    ensure_all_accepted("capacity, paced", &paced.load, paced.scheduled)?;
    ensure_received("capacity, paced", &receiver, paced.scheduled)?;
    check_signatures(&receiver)?;
    let latencies = sorted_latencies(&receiver)?;
    Ok(vec![
        Figure::new("capacity.offered_per_s", rate, "ev/s", None),
        Figure::new(
            "capacity.loaded_p50_ms",
            percentile_ms(&latencies, 0.50),
            "ms",
            None,
        ),
        Figure::new(
            "capacity.loaded_p99_ms",
            percentile_ms(&latencies, 0.99),
            "ms",
            None,
        ),
        Figure::new(
            "capacity.loaded_max_send_lag_ms",
            paced.max_lag.as_secs_f64() * 1e3,
            "ms",
            None,
        ),
    ])
}

/// Every publish-to-receipt latency the receiver recorded, sorted; fails if none.
fn sorted_latencies(receiver: &Receiver) -> Result<Vec<u64>> {
    let mut latencies = receiver.counters.latencies_us();
    if latencies.is_empty() {
        bail!("no deliveries arrived");
    }
    latencies.sort_unstable();
    Ok(latencies)
}

/// The `p` quantile (0 to 1) of sorted microseconds, in milliseconds.
fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    let index = ((sorted_us.len().saturating_sub(1)) as f64 * p).round() as usize;
    sorted_us
        .get(index)
        .map_or(f64::NAN, |us| *us as f64 / 1000.0)
}

async fn latency(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let herald = start_herald(args, BASE_CONFIG, 1).await?;
    let receiver = Receiver::start(Behaviour::Answer).await?;
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
    ensure_all_accepted("latency", &result, sizes.latency_rate * sizes.latency_secs)?;
    ensure_received("latency", &receiver, result.accepted)?;
    check_signatures(&receiver)?;
    let latencies = sorted_latencies(&receiver)?;
    Ok(vec![
        Figure::at_most("latency.p50_ms", percentile_ms(&latencies, 0.50), "ms", 5.0),
        Figure::at_most(
            "latency.p99_ms",
            percentile_ms(&latencies, 0.99),
            "ms",
            25.0,
        ),
        Figure::new("latency.achieved_rate", result.per_second(), "ev/s", None),
    ])
}

/// The receiver is down while the backlog is published; with the retry schedule
/// compressed to one retry after 1 s, every delivery ends failed. Then the
/// receiver comes back and `recover` requeues them all at once: the drain.
async fn backlog(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    // The backlog is built by failing every delivery against a stopped
    // receiver, then drained by `recover`: endpoint health must not pause the
    // webhook and hold those failures back, so its threshold is out of reach.
    // Adaptive concurrency is off: a receiver that never answers keeps the
    // window at its start of 4 or below (it opens only on 2xx answers), and
    // the 2,000,000 refused attempts would take hours at that. The drain then
    // runs at the fixed per-webhook bound, as it did before adaptive
    // concurrency existed.
    let config = "[delivery]\npoll_interval = \"100ms\"\nretry_schedule = [\"1s\"]\nretry_jitter = 0.0\n\
        adaptive_concurrency = false\n\
        [delivery.health]\nfailing_after = 1000000000\ndisable_after = 0\n";
    let herald = start_herald(args, config, 1).await?;
    let addr = Receiver::start(Behaviour::Answer).await?.stop().await;
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
    ensure_all_accepted("backlog publishing", &published, sizes.backlog_events)?;
    let n = published.accepted;
    let data_bytes = herald.storage_bytes().await?;
    wait_until_none_pending(&herald, &hook, sizes.phase_limit).await?;

    let receiver = Receiver::start_on(addr, Behaviour::Answer).await?;
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

/// How many ordering keys the ordered scenario spreads its events over.
const ORDERING_KEYS: u64 = 1_000;

/// The same keyed events, flat out, to an unordered webhook and then (on a
/// fresh herald) to one ordered by key: each key's deliveries then go one at
/// a time, in order, and the 1,000 keys must keep the rate near unordered.
async fn ordered(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let unordered = keyed_rate(args, sizes, "none").await?;
    let ordered = keyed_rate(args, sizes, "key").await?;
    Ok(vec![
        Figure::new("ordered.unordered_per_s", unordered, "dl/s", None),
        Figure::new("ordered.ordered_per_s", ordered, "dl/s", None),
        Figure::new("ordered.ratio", ordered / unordered, "x", Some(0.8)),
    ])
}

/// Deliveries per second, first publish to last receipt, of the ordered
/// scenario's events to one webhook with `ordering`.
async fn keyed_rate(args: &Args, sizes: &Sizes, ordering: &str) -> Result<f64> {
    let herald = start_herald(args, BASE_CONFIG, usize::from(args.nodes)).await?;
    let receiver = Receiver::start(Behaviour::Answer).await?;
    herald
        .create_webhook_ordered("ordered", &receiver.url(), SECRET, ordering)
        .await?;
    let sink = Sink {
        shape: Shape::KeyedEvent {
            keys: ORDERING_KEYS,
        },
        ..publish_sink(&herald)
    };
    let start = Instant::now();
    let published = load::flat_out(
        &sink,
        sizes.ordered_events,
        sizes.concurrency,
        sizes.phase_limit,
    )
    .await;
    ensure_all_accepted(
        &format!("ordered ({ordering}) publishing"),
        &published,
        sizes.ordered_events,
    )?;
    if !receiver
        .counters
        .wait_for(sizes.ordered_events, sizes.phase_limit)
        .await
    {
        bail!("ordered ({ordering}): too few deliveries arrived in time");
    }
    let elapsed = receiver
        .counters
        .last_receipt()
        .map_or(start.elapsed(), |last| last - start);
    herald.stop().await;
    check_signatures(&receiver)?;
    Ok(sizes.ordered_events as f64 / elapsed.as_secs_f64())
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
    let healthy = Receiver::start(Behaviour::Answer).await?;
    let hanging = Receiver::start(Behaviour::Hang).await?;
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
    let elapsed = publish_until_received(
        &herald,
        &healthy,
        (sizes.noisy_events, expected),
        sizes,
        "noisy",
    )
    .await?;
    herald.stop().await;
    check_signatures(&healthy)?;
    Ok(expected as f64 / elapsed.as_secs_f64())
}

/// Endpoint health compressed 60-fold for the dead-endpoint scenario: the
/// first pause of a minute is a second, the longest of 24 hours is 24
/// minutes, so 10 minutes of the real schedule (4 failures, then probes after
/// pauses of 1, 2 and 4 minutes) take 10 seconds.
const DEAD_HEALTH: &str = "[delivery.health]\nfirst_pause = \"1s\"\nlongest_pause = \"24m\"\n";
/// Ten real minutes, compressed like [`DEAD_HEALTH`].
const DEAD_WINDOW: Duration = Duration::from_secs(10);

/// Nine healthy webhooks alone, then beside a tenth whose endpoint answers
/// every request 500 with a backlog queued before they start: the healthy
/// ones' rate must hold (≥ 95 %), and the dead one must get at most 20
/// attempts in its first (compressed) 10 minutes.
async fn dead_endpoint(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let (alone, _) = beside_dead(args, sizes, false).await?;
    let (beside, dead_attempts) = beside_dead(args, sizes, true).await?;
    Ok(vec![
        Figure::new("dead_endpoint.healthy_alone_per_s", alone, "dl/s", None),
        Figure::new(
            "dead_endpoint.healthy_beside_dead_per_s",
            beside,
            "dl/s",
            None,
        ),
        Figure::new("dead_endpoint.ratio", beside / alone, "x", Some(0.95)),
        Figure::at_most(
            "dead_endpoint.dead_attempts_in_10_min",
            dead_attempts as f64,
            "req",
            20.0,
        ),
    ])
}

/// The healthy webhooks' rate, and with the dead one the attempts it got in
/// the (compressed) 10 minutes from its first.
async fn beside_dead(args: &Args, sizes: &Sizes, with_dead: bool) -> Result<(f64, u64)> {
    let config = format!("{BASE_CONFIG}{DEAD_HEALTH}");
    let herald = start_herald(args, &config, 1).await?;
    let dead = Receiver::start(Behaviour::Fail).await?;
    let healthy = Receiver::start(Behaviour::Answer).await?;
    if with_dead {
        // Created alone first: the backlog is the dead webhook's only.
        herald.create_webhook("dead", &dead.url(), SECRET).await?;
        let published = load::flat_out(
            &publish_sink(&herald),
            sizes.dead_backlog_events,
            sizes.concurrency,
            sizes.phase_limit,
        )
        .await;
        ensure_all_accepted(
            "dead-endpoint backlog",
            &published,
            sizes.dead_backlog_events,
        )?;
    }
    for i in 0..9 {
        herald
            .create_webhook(&format!("healthy-{i}"), &healthy.url(), SECRET)
            .await?;
    }
    let expected = sizes.noisy_events * 9;
    let elapsed = publish_until_received(
        &herald,
        &healthy,
        (sizes.noisy_events, expected),
        sizes,
        "dead-endpoint",
    )
    .await?;
    let dead_attempts = match dead.counters.first_refused() {
        Some(first) if with_dead => {
            let window_end = first + DEAD_WINDOW;
            tokio::time::sleep_until(window_end.into()).await;
            dead.counters.refused_within(DEAD_WINDOW)
        }
        Some(_) => bail!("dead-endpoint: the dead receiver got requests with no webhook"),
        None if with_dead => bail!("dead-endpoint: the dead webhook was never attempted"),
        None => 0,
    };
    herald.stop().await;
    check_signatures(&healthy)?;
    Ok((expected as f64 / elapsed.as_secs_f64(), dead_attempts))
}

/// What the rate-limited receiver allows.
const RECEIVER_ALLOWS_PER_S: u64 = 500;

/// A receiver allowing 500 requests/s (429 with `Retry-After: 1` beyond),
/// first with Herald relying on `Retry-After` (which pauses the whole
/// webhook) and adaptive concurrency, then with the webhook's own
/// `max_per_second` at the receiver's rate.
async fn rate_limited(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let (asked_rate, asked_429) = rate_limited_run(args, sizes, None).await?;
    let (paced_rate, paced_429) =
        rate_limited_run(args, sizes, Some(RECEIVER_ALLOWS_PER_S)).await?;
    let allowed = RECEIVER_ALLOWS_PER_S as f64;
    Ok(vec![
        Figure::new(
            "rate_limited.retry_after.deliveries_per_s",
            asked_rate,
            "dl/s",
            None,
        ),
        Figure::new(
            "rate_limited.retry_after.pct_of_allowed",
            100.0 * asked_rate / allowed,
            "%",
            Some(90.0),
        ),
        Figure::at_most("rate_limited.retry_after.pct_429", asked_429, "%", 5.0),
        Figure::new(
            "rate_limited.max_per_second.deliveries_per_s",
            paced_rate,
            "dl/s",
            None,
        ),
        Figure::new(
            "rate_limited.max_per_second.pct_of_allowed",
            100.0 * paced_rate / allowed,
            "%",
            Some(90.0),
        ),
        Figure::at_most("rate_limited.max_per_second.pct_429", paced_429, "%", 5.0),
    ])
}

/// Herald's delivery rate against the rate-limited receiver, and the share of
/// its attempts answered 429.
async fn rate_limited_run(
    args: &Args,
    sizes: &Sizes,
    max_per_second: Option<u64>,
) -> Result<(f64, f64)> {
    let herald = start_herald(args, BASE_CONFIG, 1).await?;
    let receiver = Receiver::start(Behaviour::RateLimited {
        per_second: RECEIVER_ALLOWS_PER_S,
    })
    .await?;
    let hook = herald
        .create_webhook("rate-limited", &receiver.url(), SECRET)
        .await?;
    if let Some(limit) = max_per_second {
        herald
            .call(
                "PATCH",
                &format!("/api/v1/webhooks/{hook}"),
                json!({"max_per_second": limit}),
            )
            .await?;
    }
    let n = sizes.rate_limited_events;
    let elapsed = publish_until_received(&herald, &receiver, (n, n), sizes, "rate-limited").await?;
    herald.stop().await;
    check_signatures(&receiver)?;
    let refused = receiver.counters.refused.load(Ordering::Relaxed) as f64;
    let pct_429 = 100.0 * refused / (refused + n as f64);
    Ok((n as f64 / elapsed.as_secs_f64(), pct_429))
}

/// A receiver answering after 5 ms plus 20 ms for each request in progress
/// beyond 8: about 500 ms at 32 at once. Its throughput peaks at 8 in
/// progress, so a fixed limit of 32 gets less from it than a window that
/// follows its latency. The request timeout is 1 s.
async fn slow_receiver(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let adaptive = slow_receiver_run(args, sizes, true).await?;
    let fixed = slow_receiver_run(args, sizes, false).await?;
    Ok(vec![
        Figure::new(
            "slow_receiver.adaptive.deliveries_per_s",
            adaptive.rate,
            "dl/s",
            None,
        ),
        Figure::new(
            "slow_receiver.adaptive.timeouts",
            adaptive.timeouts as f64,
            "req",
            None,
        ),
        Figure::new(
            "slow_receiver.adaptive.most_in_progress",
            adaptive.most_in_progress as f64,
            "req",
            None,
        ),
        Figure::new(
            "slow_receiver.fixed32.deliveries_per_s",
            fixed.rate,
            "dl/s",
            None,
        ),
        Figure::new(
            "slow_receiver.fixed32.timeouts",
            fixed.timeouts as f64,
            "req",
            None,
        ),
        Figure::new(
            "slow_receiver.fixed32.most_in_progress",
            fixed.most_in_progress as f64,
            "req",
            None,
        ),
        Figure::new(
            "slow_receiver.adaptive_vs_fixed",
            adaptive.rate / fixed.rate,
            "x",
            Some(1.0),
        ),
    ])
}

struct SlowRun {
    rate: f64,
    /// Requests the receiver saw arrive but never finished: Herald gave up.
    timeouts: u64,
    most_in_progress: u64,
}

async fn slow_receiver_run(args: &Args, sizes: &Sizes, adaptive: bool) -> Result<SlowRun> {
    let config = format!(
        "{BASE_CONFIG}request_timeout = \"1s\"\nmax_in_flight_per_webhook = 32\nadaptive_concurrency = {adaptive}\n"
    );
    let herald = start_herald(args, &config, 1).await?;
    let receiver = Receiver::start(Behaviour::Slow {
        base: Duration::from_millis(5),
        knee: 8,
        step: Duration::from_millis(20),
    })
    .await?;
    herald
        .create_webhook("slow", &receiver.url(), SECRET)
        .await?;
    let n = sizes.slow_receiver_events;
    let elapsed =
        publish_until_received(&herald, &receiver, (n, n), sizes, "slow-receiver").await?;
    herald.stop().await;
    check_signatures(&receiver)?;
    let counters = &receiver.counters;
    let received = counters.received.load(Ordering::Relaxed);
    Ok(SlowRun {
        rate: n as f64 / elapsed.as_secs_f64(),
        timeouts: counters
            .arrived_total
            .load(Ordering::Relaxed)
            .saturating_sub(received),
        most_in_progress: counters.most_in_progress.load(Ordering::Relaxed),
    })
}

/// A real GitHub `push` body (vendored with its source and licence in herald-ingest).
const GITHUB_PUSH: &[u8] =
    include_bytes!("../../herald-ingest/tests/fixtures/code-hosts/github/push.json");

/// Creates a GitHub receiver with the bench's secret; answers its id.
async fn github_receiver(herald: &Herald) -> Result<String> {
    let receiver = herald
        .call(
            "POST",
            "/api/v1/receivers",
            json!({"kind": "github", "urn": "https://github.com", "secret": SECRET}),
        )
        .await?;
    match receiver["id"].as_str() {
        Some(id) => Ok(id.to_owned()),
        None => bail!("no id in {receiver}"),
    }
}

/// Real GitHub `push` requests to `url`, signed with the bench's secret.
fn signed_push_sink(url: String) -> Sink {
    Sink {
        urls: vec![url],
        token: None,
        shape: Shape::GitHubPush {
            body: bytes::Bytes::from_static(GITHUB_PUSH),
            signature: format!("sha256={}", hex_hmac(SECRET.as_bytes(), GITHUB_PUSH)),
            run: crate::receiver::now_us(),
        },
    }
}

/// Signed GitHub `push` deliveries posted to a receiver: each is verified over the
/// raw body, deduplicated, logged, normalized and published as `repo:push`.
async fn incoming(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let herald = start_herald(args, BASE_CONFIG, 1).await?;
    let id = github_receiver(&herald).await?;
    let sink = signed_push_sink(format!("{}/.api/webhooks/{id}", herald.base));
    let result = load::flat_out(
        &sink,
        sizes.incoming_requests,
        sizes.concurrency,
        sizes.phase_limit,
    )
    .await;
    herald.stop().await;
    ensure_all_accepted("incoming", &result, sizes.incoming_requests)?;
    Ok(vec![Figure::new(
        "incoming.verified_requests_per_s",
        result.per_second(),
        "req/s",
        Some(15_000.0),
    )])
}

/// The incoming scenario's signed requests to a receiver that
/// `sizes.flood_clients` clients flood with bodies of `sizes.flood_body_bytes`
/// under a wrong signature, each client sending one after the other: the
/// bytes those bodies may hold are what the unverified budget bounds.
async fn ingest_flood(args: &Args, sizes: &Sizes) -> Result<Vec<Figure>> {
    let herald = start_herald(args, BASE_CONFIG, 1).await?;
    let id = github_receiver(&herald).await?;
    let address = herald.base.trim_start_matches("http://").to_owned();
    let path = format!("/.api/webhooks/{id}");
    let stop = tokio_util::sync::CancellationToken::new();
    let body = bytes::Bytes::from(vec![b' '; sizes.flood_body_bytes]);
    let flooders: Vec<_> = (0..sizes.flood_clients)
        .map(|_| {
            tokio::spawn(flood(
                address.clone(),
                path.clone(),
                body.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let sink = signed_push_sink(format!("{}{path}", herald.base));
    let signed = sizes.incoming_requests / 10;
    let result = load::flat_out(&sink, signed, sizes.concurrency, sizes.phase_limit).await;
    stop.cancel();
    let mut flood_requests = 0;
    for flooder in flooders {
        flood_requests += flooder.await.unwrap_or(0);
    }
    let peak_rss = herald.peak_rss_kib();
    herald.stop().await;
    eprintln!(
        "ingest_flood: {} signed accepted, {} refused (429/503 under the flood), {flood_requests} flood bodies sent",
        result.accepted, result.errors
    );
    let mut figures = vec![
        Figure::new(
            "ingest_flood.signed_requests_per_s",
            result.per_second(),
            "req/s",
            None,
        ),
        Figure::new(
            "ingest_flood.signed_accepted_share",
            result.accepted as f64 / signed.max(1) as f64,
            "x",
            None,
        ),
    ];
    if let Some(peak) = peak_rss {
        figures.push(Figure::new(
            "ingest_flood.peak_rss_mb",
            peak as f64 / 1024.0,
            "MB",
            None,
        ));
    }
    Ok(figures)
}

/// Sends `body` to `path` under a wrong signature, again and again until
/// `stop`; returns how many it started.
async fn flood(
    address: String,
    path: String,
    body: bytes::Bytes,
    stop: tokio_util::sync::CancellationToken,
) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: herald\r\nContent-Type: application/json\r\n\
         X-GitHub-Event: push\r\nX-Hub-Signature-256: sha256={}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        "0".repeat(64),
        body.len()
    );
    let mut sent = 0;
    while !stop.is_cancelled() {
        let Ok(mut stream) = tokio::net::TcpStream::connect(&address).await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        sent += 1;
        let exchange = async {
            stream.write_all(head.as_bytes()).await?;
            // The server may refuse and close before the body is all sent.
            let _ = stream.write_all(&body).await;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await
        };
        tokio::select! {
            () = stop.cancelled() => break,
            _ = exchange => {}
        }
    }
    sent
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_runs_first_when_a_scenario_read_against_it_is_named() {
        assert_eq!(
            with_relay_when_needed(&[Scenario::Capacity]),
            [Scenario::Relay, Scenario::Capacity]
        );
        assert_eq!(
            with_relay_when_needed(&[Scenario::Publish, Scenario::Relay]),
            [Scenario::Publish, Scenario::Relay]
        );
        assert_eq!(
            with_relay_when_needed(&[Scenario::Latency]),
            [Scenario::Latency]
        );
        assert!(with_relay_when_needed(&[]).contains(&Scenario::Relay));
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let sorted = [1_000, 2_000, 3_000, 4_000, 5_000];
        assert_eq!(percentile_ms(&sorted, 0.5), 3.0);
        assert_eq!(percentile_ms(&sorted, 0.99), 5.0);
        assert!(percentile_ms(&[], 0.5).is_nan());
    }
}
