//! The Prometheus exposition: the one recorder every crate's metrics go to,
//! the HTTP metrics, and the process metrics read from `/proc` at scrape time.
//!
//! Why `metrics` with `metrics-exporter-prometheus` rather than
//! `prometheus-client`: the facade lets the engine, the application and the
//! stores record without knowing about Prometheus or being handed a
//! registry, so no constructor between the binary and the writer thread
//! changes; the exporter is used without its HTTP listener, and the server
//! serves the text itself (behind the `read` scope, or on `[metrics] listen`).
//!
//! The recorder is global and installed once per process: every Herald in
//! the process (tests start many) records to it.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::Unit;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

pub const BUILD_INFO: &str = "herald_build_info";
pub const HTTP_REQUESTS: &str = "herald_http_requests_total";
pub const HTTP_DURATION: &str = "herald_http_request_duration_seconds";

/// OpenTelemetry's semantic conventions' buckets for HTTP durations
/// (`http.client.request.duration`, `http.server.request.duration`).
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Waits that can reach the retry schedule's scale: lag and publish to success.
const WAIT_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0,
    86400.0,
];
/// Fetches and searches of repositories.
const GIT_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Group commits: one fsync each.
const COMMIT_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// How often recorded histogram samples are folded into their buckets, so
/// that samples do not pile up in memory when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The recorder, once installed.
static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder (once per process) and answers its handle.
pub fn recorder() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        // Only an empty list of buckets is refused, and none is empty; were
        // one, its histograms would render as summaries.
        let recorder = with_buckets()
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed already; /metrics shows only what reaches this one");
        }
        describe();
        metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    })
}

fn with_buckets() -> Result<PrometheusBuilder, BuildError> {
    let buckets = [
        (HTTP_DURATION, HTTP_BUCKETS),
        (herald_delivery::metrics::ATTEMPT_DURATION, HTTP_BUCKETS),
        (herald_delivery::metrics::LAG, WAIT_BUCKETS),
        (herald_delivery::metrics::PUBLISH_TO_SUCCESS, WAIT_BUCKETS),
        (herald_app::metrics::MONITOR_FETCH_DURATION, GIT_BUCKETS),
        (herald_app::metrics::MONITOR_SEARCH_DURATION, GIT_BUCKETS),
        (herald_store::metrics::COMMIT_DURATION, COMMIT_BUCKETS),
        (herald_store::metrics::COMMIT_BATCH_SIZE, BATCH_BUCKETS),
    ];
    buckets
        .into_iter()
        .try_fold(PrometheusBuilder::new(), |builder, (name, values)| {
            builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), values)
        })
}

fn describe() {
    metrics::describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label says which Herald runs"
    );
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "API requests by route template, method and status class"
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "How long API requests took to answer, by route template"
    );
    herald_delivery::metrics::describe();
    herald_app::metrics::describe();
    herald_store::metrics::describe();
}

/// Folds recorded samples into their buckets every few seconds until
/// `shutdown`, if the recorder is installed.
pub fn spawn_upkeep(shutdown: CancellationToken) {
    let Some(handle) = HANDLE.get().cloned() else {
        return;
    };
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = ticks.tick() => handle.run_upkeep(),
            }
        }
    });
}

/// One API request was answered.
pub fn record_request(route: &str, method: &str, status: u16, duration: Duration) {
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!(
        HTTP_REQUESTS,
        "route" => route.to_owned(),
        "method" => method.to_owned(),
        "status" => class
    )
    .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route.to_owned()).record(duration.as_secs_f64());
}

/// The exposition: every recorded metric, then the process's own; `None`
/// when no recorder was installed (`[metrics] enabled = false`).
pub fn render() -> Option<String> {
    let mut text = HANDLE.get()?.render();
    text.push_str(&process_metrics());
    Some(text)
}

/// The process metrics Prometheus' own client libraries export, under the
/// names dashboards expect (`process_*`, without Herald's prefix), read from
/// `/proc/self` (Linux; elsewhere they are left out).
fn process_metrics() -> String {
    let mut text = String::new();
    if let Some(rss) = resident_bytes() {
        push_metric(
            &mut text,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes",
            rss,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        push_metric(
            &mut text,
            "process_open_fds",
            "gauge",
            "Open file descriptors",
            fds.count() as f64,
        );
    }
    if let Some(cpu) = cpu_seconds() {
        push_metric(
            &mut text,
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds",
            cpu,
        );
    }
    text
}

fn push_metric(text: &mut String, name: &str, kind: &str, help: &str, value: f64) {
    text.push_str(&format!(
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n\n"
    ));
}

/// `VmRSS` from `/proc/self/status`, which is in kB.
fn resident_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0)
}

/// `utime` + `stime` from `/proc/self/stat`, in clock ticks of `USER_HZ`,
/// which Linux fixes at 100 for this interface on every architecture.
fn cpu_seconds() -> Option<f64> {
    const USER_HZ: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields count from after it.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `after_name` starts at field 3.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}
