//! The stores' metrics, shared by both backends: their names, in one place,
//! and one function per thing a store reports. Handles are registered once,
//! since the writer reports on every commit.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Gauge, Histogram, Unit};

pub const COMMIT_BATCH_SIZE: &str = "herald_store_commit_batch_size";
pub const COMMIT_DURATION: &str = "herald_store_commit_duration_seconds";
pub const WRITER_QUEUE_DEPTH: &str = "herald_store_writer_queue_depth";
pub const POOL_CONNECTIONS: &str = "herald_store_pool_connections";
pub const POOL_WAITING: &str = "herald_store_pool_waiting";

struct Handles {
    batch_size: Histogram,
    commit_duration: Histogram,
    queue_depth: Gauge,
}

fn handles() -> &'static Handles {
    static HANDLES: OnceLock<Handles> = OnceLock::new();
    HANDLES.get_or_init(|| Handles {
        batch_size: metrics::histogram!(COMMIT_BATCH_SIZE),
        commit_duration: metrics::histogram!(COMMIT_DURATION),
        queue_depth: metrics::gauge!(WRITER_QUEUE_DEPTH),
    })
}

/// Describes every store metric to the installed recorder.
pub fn describe() {
    metrics::describe_histogram!(
        COMMIT_BATCH_SIZE,
        "Write jobs (SQLite) or publishes (PostgreSQL) committed together in one transaction"
    );
    metrics::describe_histogram!(
        COMMIT_DURATION,
        Unit::Seconds,
        "How long each group commit took, fsync included"
    );
    metrics::describe_gauge!(
        WRITER_QUEUE_DEPTH,
        "Write jobs waiting for the writer after the last group was taken"
    );
    metrics::describe_gauge!(
        POOL_CONNECTIONS,
        "PostgreSQL pool connections by state (in_use, idle)"
    );
    metrics::describe_gauge!(
        POOL_WAITING,
        "Callers waiting for a PostgreSQL pool connection: above 0 for long, the pool is too small"
    );
}

/// A group of `jobs` was committed in `duration`.
pub fn record_commit(jobs: usize, duration: Duration) {
    let handles = handles();
    handles.batch_size.record(jobs as f64);
    handles.commit_duration.record(duration.as_secs_f64());
}

/// `waiting` jobs were queued behind the group the writer just took.
pub fn record_queue_depth(waiting: usize) {
    handles().queue_depth.set(waiting as f64);
}

pub fn record_pool(in_use: usize, idle: usize, waiting: usize) {
    metrics::gauge!(POOL_CONNECTIONS, "state" => "in_use").set(in_use as f64);
    metrics::gauge!(POOL_CONNECTIONS, "state" => "idle").set(idle as f64);
    metrics::gauge!(POOL_WAITING).set(waiting as f64);
}
