//! `herald-bench`: measures the `herald` binary on this machine.
//!
//! Layout:
//! - `target`: starts a release `herald` on a fresh data directory (or uses a
//!   running one), and speaks its API.
//! - `postgres`: a fresh schema per run on PostgreSQL (`--database-url`), and
//!   the database server's CPU time from `/proc`.
//! - `receiver`: a hyper server answering 204 that counts deliveries, verifies a
//!   sample of signatures and records publish-to-receipt latency.
//! - `load`: drives publishes over keep-alive connections with bounded
//!   concurrency, flat out or at a steady rate, or paced open loop.
//! - `relay`: the minimal non-durable forwarder the relay scenario measures,
//!   run as a child process of this binary (`--serve-relay`).
//! - `machine`: how busy the whole machine was, from `/proc/stat`.
//! - `scenarios`: the scenarios of BENCHMARKS.md, each bounded in events and time.
//! - `monitors`: scenario 8, code monitors against `git log -G` on a generated
//!   repository, without a herald process.
//! - `report`: medians, the table on stdout and the JSON file.

mod load;
mod machine;
mod monitors;
mod postgres;
mod receiver;
mod relay;
mod report;
mod scenarios;
mod target;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

#[derive(Debug, Parser)]
#[command(version, about = "Throughput, latency and memory benchmarks of herald")]
pub struct Args {
    /// Small sizes for every scenario: checks the rig works (CI), measures nothing.
    #[arg(long)]
    quick: bool,
    /// The herald binary to start (default: target/release/herald).
    #[arg(long, default_value = "target/release/herald")]
    herald: PathBuf,
    /// Benchmark a running herald instead of starting one (memory figures are then skipped).
    #[arg(long, requires = "token")]
    url: Option<String>,
    /// The admin token of the running herald given by --url.
    #[arg(long, env = "HERALD_TOKEN")]
    token: Option<String>,
    /// Run herald on the PostgreSQL database at this URL (each run in a fresh
    /// schema, dropped afterwards) instead of SQLite.
    #[arg(long, value_name = "URL", conflicts_with = "url")]
    database_url: Option<String>,
    /// Herald processes on the one PostgreSQL database in the publish and
    /// delivery scenarios; publishes are spread across them.
    #[arg(long, default_value_t = 1, requires = "database_url", value_parser = clap::value_parser!(u16).range(1..=16))]
    nodes: u16,
    /// Scenarios to run (default: all). Repeatable. Naming publish, delivery or
    /// capacity also runs relay, as their figures are read against it.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<scenarios::Scenario>,
    /// Runs per scenario; the figure reported is the median.
    #[arg(long)]
    runs: Option<usize>,
    /// Keep the monitors scenario's generated repository in DIR and reuse it on
    /// later runs (generated there if absent) instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    monitor_repo: Option<PathBuf>,
    /// The latency scenario's steady offered load, in events per second
    /// (default 1,000; 100 with --quick): two builds' latency compared at the
    /// same load, which the capacity scenario's 80 % of each one's own
    /// capacity is not.
    #[arg(long, value_name = "EV_PER_S", value_parser = clap::value_parser!(u64).range(1..))]
    latency_rate: Option<u64>,
    /// Where the JSON results go.
    #[arg(long, default_value = "target/herald-bench.json")]
    out: PathBuf,
    /// Internal: run as the relay scenario's forwarder to URL (the bench starts
    /// it as a child process and stops it).
    #[arg(long, value_name = "URL", hide = true)]
    serve_relay: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args.serve_relay {
        Some(forward_to) => runtime.block_on(relay::serve(forward_to)),
        None => runtime.block_on(scenarios::run_all(args)),
    }
}
