//! The application's metrics: their names, in one place, one named function
//! per thing reported, and the gauges a scrape refreshes ([`App::refresh_gauges`]).
//!
//! Labels are bounded: families, code host kinds, results and states come
//! from fixed lists; no id, URL, project key or error text is a label.
//! Publishing is a hot path, so its counters are registered once and kept as
//! handles; the rest are rare enough to register on each call.

use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use herald_catalogue::Family;
use herald_core::time::Timestamp;
use herald_store::{Backlog, RequestOutcome, ShownHealth, StoreError, lease_for};
use metrics::{Counter, Unit};

use crate::App;

pub const EVENTS_PUBLISHED: &str = "herald_events_published_total";
pub const IDEMPOTENT_REPLAYS: &str = "herald_publish_idempotent_replays_total";
pub const PUBLISH_REFUSED: &str = "herald_publish_validation_failures_total";
pub const RECEIVER_REQUESTS: &str = "herald_receiver_requests_total";
pub const MONITOR_FETCHES: &str = "herald_monitor_fetches_total";
pub const MONITOR_FETCH_DURATION: &str = "herald_monitor_fetch_duration_seconds";
pub const MONITOR_SEARCHES: &str = "herald_monitor_searches_total";
pub const MONITOR_SEARCH_DURATION: &str = "herald_monitor_search_duration_seconds";
pub const MONITOR_COMMITS_SEARCHED: &str = "herald_monitor_commits_searched_total";
pub const MONITOR_NOTIFICATIONS: &str = "herald_monitor_notifications_total";
pub const DELIVERIES_PENDING: &str = "herald_deliveries_pending";
pub const OLDEST_DUE_AGE: &str = "herald_backlog_oldest_due_age_seconds";
pub const WEBHOOKS: &str = "herald_webhooks";

/// How long a backlog snapshot serves scrapes: counting the due range of a
/// large backlog costs milliseconds, which one scrape every few seconds can
/// afford and a burst of scrapers (several Prometheus servers) need not pay again.
const SNAPSHOT_TTL: Duration = Duration::from_secs(5);

const FAMILIES: [Family; 7] = [
    Family::Sourcegraph,
    Family::CodeMonitor,
    Family::SonarQube,
    Family::Semgrep,
    Family::CodeHost,
    Family::Herald,
    Family::Custom,
];

struct PublishHandles {
    published: Vec<Counter>,
    replays: Counter,
    refused: Counter,
}

fn publish_handles() -> &'static PublishHandles {
    static HANDLES: OnceLock<PublishHandles> = OnceLock::new();
    HANDLES.get_or_init(|| PublishHandles {
        published: FAMILIES
            .iter()
            .map(|family| metrics::counter!(EVENTS_PUBLISHED, "family" => family.as_str()))
            .collect(),
        replays: metrics::counter!(IDEMPOTENT_REPLAYS),
        refused: metrics::counter!(PUBLISH_REFUSED),
    })
}

/// Describes every metric of the application to the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        EVENTS_PUBLISHED,
        "Events accepted by the publish API, by event family"
    );
    metrics::describe_counter!(
        IDEMPOTENT_REPLAYS,
        "Publishes answered from an idempotency key seen before (nothing stored)"
    );
    metrics::describe_counter!(
        PUBLISH_REFUSED,
        "Publishes refused as invalid: bad fields, unknown type, schema violation, too large"
    );
    metrics::describe_counter!(
        RECEIVER_REQUESTS,
        "Requests to receivers, by code host kind and result"
    );
    metrics::describe_counter!(MONITOR_FETCHES, "Repository fetches by result");
    metrics::describe_histogram!(
        MONITOR_FETCH_DURATION,
        Unit::Seconds,
        "How long repository fetches took, by result"
    );
    metrics::describe_counter!(MONITOR_SEARCHES, "Code monitor searches by result");
    metrics::describe_histogram!(
        MONITOR_SEARCH_DURATION,
        Unit::Seconds,
        "How long one pass over a repository's new commits took"
    );
    metrics::describe_counter!(
        MONITOR_COMMITS_SEARCHED,
        "Commits code monitor searches went through"
    );
    metrics::describe_counter!(
        MONITOR_NOTIFICATIONS,
        "Code monitor notifications published (one per part)"
    );
    metrics::describe_gauge!(
        DELIVERIES_PENDING,
        "Pending deliveries by state: due (waiting for a slot), scheduled (a retry later), leased (being attempted), waiting (behind an earlier delivery of its ordering key)"
    );
    metrics::describe_gauge!(
        OLDEST_DUE_AGE,
        Unit::Seconds,
        "How long the longest-waiting due delivery has been due; 0 when none is"
    );
    metrics::describe_gauge!(
        WEBHOOKS,
        "Webhooks by health state: healthy, failing (a probe decides), paused, disabled (for failing or by a person)"
    );
}

pub fn record_published(family: Family) {
    let handles = publish_handles();
    let index = FAMILIES.iter().position(|f| *f == family).unwrap_or(0);
    if let Some(counter) = handles.published.get(index) {
        counter.increment(1);
    }
}

pub fn record_replay() {
    publish_handles().replays.increment(1);
}

pub fn record_publish_refused() {
    publish_handles().refused.increment(1);
}

/// A receiver's answer, as the `result` label says it.
pub fn receiver_result(outcome: RequestOutcome) -> &'static str {
    match outcome {
        RequestOutcome::Processed | RequestOutcome::Ping => "accepted",
        RequestOutcome::Duplicate => "duplicate",
        RequestOutcome::Unverified => "unverified",
        RequestOutcome::Ignored => "ignored",
        RequestOutcome::TooLarge => "too_large",
        RequestOutcome::Invalid => "rejected",
    }
}

/// `kind` is a code host kind's name, or `unknown` when no receiver matched.
pub fn record_receiver_request(kind: &'static str, result: &'static str) {
    metrics::counter!(RECEIVER_REQUESTS, "kind" => kind, "result" => result).increment(1);
}

pub fn record_fetch(succeeded: bool, duration: Duration) {
    let result = if succeeded { "success" } else { "failure" };
    metrics::counter!(MONITOR_FETCHES, "result" => result).increment(1);
    metrics::histogram!(MONITOR_FETCH_DURATION, "result" => result).record(duration.as_secs_f64());
}

/// `result` is `success`, `history_rewritten` or `failure`.
pub fn record_search(result: &'static str, duration: Duration) {
    metrics::counter!(MONITOR_SEARCHES, "result" => result).increment(1);
    metrics::histogram!(MONITOR_SEARCH_DURATION).record(duration.as_secs_f64());
}

pub fn record_commits_searched(commits: u64) {
    metrics::counter!(MONITOR_COMMITS_SEARCHED).increment(commits);
}

pub fn record_notifications(parts: usize) {
    metrics::counter!(MONITOR_NOTIFICATIONS).increment(u64::try_from(parts).unwrap_or(u64::MAX));
}

/// What the store-backed gauges show, and the overview's backlog.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    pub(crate) backlog: Backlog,
    /// Webhooks by [`ShownHealth`], in the order of [`ShownHealth::ALL`].
    pub(crate) webhooks: [u64; 4],
}

/// The last snapshot and when it was taken.
#[derive(Default)]
pub(crate) struct SnapshotCache {
    taken: Mutex<Option<(Instant, Snapshot)>>,
}

impl App {
    /// Sets the gauges a scrape reads from the store: the backlog by state,
    /// the oldest due delivery's age and the webhooks by health state. The
    /// store is asked at most once every few seconds; a failure leaves the
    /// last values.
    pub async fn refresh_gauges(&self) {
        let snapshot = match self.snapshot().await {
            Ok(snapshot) => snapshot,
            Err(error) => {
                tracing::warn!(%error, "metrics: cannot read the backlog from the store");
                return;
            }
        };
        set_backlog(&snapshot.backlog);
        for (state, count) in ShownHealth::ALL.iter().zip(snapshot.webhooks) {
            metrics::gauge!(WEBHOOKS, "state" => state.as_str()).set(count as f64);
        }
        self.inner.opened.record_pool_metrics();
    }

    /// The backlog and the webhooks by health, at most [`SNAPSHOT_TTL`] old:
    /// scrapes and the console's overview share it.
    pub(crate) async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let cached = *self
            .inner
            .snapshots
            .taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((taken, snapshot)) = cached
            && taken.elapsed() < SNAPSHOT_TTL
        {
            return Ok(snapshot);
        }
        let longest_lease = lease_for(self.inner.request_timeout);
        let backlog = self.store().backlog(longest_lease).await?;
        let webhooks = self.store().list_webhooks().await?;
        let now = Timestamp::now();
        let mut by_health = [0u64; 4];
        for webhook in &webhooks {
            let shown = webhook.shown_health(now);
            if let Some(index) = ShownHealth::ALL.iter().position(|s| *s == shown) {
                by_health[index] += 1;
            }
        }
        let snapshot = Snapshot {
            backlog,
            webhooks: by_health,
        };
        *self
            .inner
            .snapshots
            .taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), snapshot));
        Ok(snapshot)
    }
}

fn set_backlog(backlog: &Backlog) {
    metrics::gauge!(DELIVERIES_PENDING, "state" => "due").set(backlog.due as f64);
    metrics::gauge!(DELIVERIES_PENDING, "state" => "scheduled").set(backlog.scheduled as f64);
    metrics::gauge!(DELIVERIES_PENDING, "state" => "leased").set(backlog.leased as f64);
    metrics::gauge!(DELIVERIES_PENDING, "state" => "waiting").set(backlog.waiting as f64);
    let age = backlog.oldest_due_at.map_or(0.0, |due_at| {
        let millis = Timestamp::now().millis().saturating_sub(due_at.millis());
        Duration::from_millis(u64::try_from(millis).unwrap_or(0)).as_secs_f64()
    });
    metrics::gauge!(OLDEST_DUE_AGE).set(age);
}
