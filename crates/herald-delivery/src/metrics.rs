//! The engine's metrics: their names, in one place, and one named function
//! per thing the engine reports. Counters and histograms with fixed labels
//! are registered once and kept as handles, so an attempt costs a few atomic
//! operations and no allocation.
//!
//! Labels are bounded: an attempt's outcome and trigger come from fixed
//! lists; no URL or error text is ever a label, and a webhook id only on the
//! attempts counter when the operator asked for it (`[metrics] per_webhook`).

use std::sync::OnceLock;
use std::time::Duration;

use herald_core::id::WebhookId;
use herald_core::time::Timestamp;
use metrics::{Counter, Gauge, Histogram, Unit};

pub const ATTEMPTS: &str = "herald_delivery_attempts_total";
pub const ATTEMPT_DURATION: &str = "herald_delivery_attempt_duration_seconds";
pub const LAG: &str = "herald_delivery_lag_seconds";
pub const PUBLISH_TO_SUCCESS: &str = "herald_delivery_publish_to_success_seconds";
pub const EXHAUSTED: &str = "herald_deliveries_exhausted_total";
pub const WEBHOOKS_DISABLED: &str = "herald_webhooks_disabled_total";
pub const IN_FLIGHT: &str = "herald_delivery_attempts_in_flight";

/// How an attempt ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// A 1xx or 3xx answer (redirects are not followed).
    HttpOther,
    Http4xx,
    Http5xx,
    Timeout,
    Connect,
    Dns,
    Tls,
    RefusedByGuard,
    /// The webhook's URL could not be used (it does not parse, or has no host).
    InvalidTarget,
}

impl Outcome {
    const ALL: [Outcome; 10] = [
        Outcome::Success,
        Outcome::HttpOther,
        Outcome::Http4xx,
        Outcome::Http5xx,
        Outcome::Timeout,
        Outcome::Connect,
        Outcome::Dns,
        Outcome::Tls,
        Outcome::RefusedByGuard,
        Outcome::InvalidTarget,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::HttpOther => "http_other",
            Outcome::Http4xx => "http_4xx",
            Outcome::Http5xx => "http_5xx",
            Outcome::Timeout => "timeout",
            Outcome::Connect => "connect",
            Outcome::Dns => "dns",
            Outcome::Tls => "tls",
            Outcome::RefusedByGuard => "refused_by_guard",
            Outcome::InvalidTarget => "invalid_target",
        }
    }

    /// The outcome of an answer with this status.
    pub fn of_status(status: u16) -> Self {
        match status {
            200..=299 => Outcome::Success,
            400..=499 => Outcome::Http4xx,
            500..=599 => Outcome::Http5xx,
            _ => Outcome::HttpOther,
        }
    }

    fn index(self) -> usize {
        Outcome::ALL
            .iter()
            .position(|outcome| *outcome == self)
            .unwrap_or(0)
    }
}

/// What started an attempt, as the `trigger` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A first attempt or a retry on the schedule.
    Scheduled,
    /// A person asked for it: a redelivery or a recovery.
    Manual,
    /// The Test button: sent, never recorded.
    Test,
}

impl Trigger {
    const ALL: [Trigger; 3] = [Trigger::Scheduled, Trigger::Manual, Trigger::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Scheduled => "scheduled",
            Trigger::Manual => "manual",
            Trigger::Test => "test",
        }
    }

    /// A redelivery or a recovery restarts the schedule with attempts already
    /// logged; a retry on the schedule has failures in it, and a first attempt
    /// has no attempts before it.
    pub fn of_claim(attempt_number: u32, failures_in_schedule: u32) -> Self {
        if attempt_number > 1 && failures_in_schedule == 0 {
            Trigger::Manual
        } else {
            Trigger::Scheduled
        }
    }

    fn index(self) -> usize {
        Trigger::ALL
            .iter()
            .position(|trigger| *trigger == self)
            .unwrap_or(0)
    }
}

struct Handles {
    attempts: Vec<Counter>,
    durations: Vec<Histogram>,
    lag: Histogram,
    publish_to_success: Histogram,
    exhausted: Counter,
    webhooks_disabled: Counter,
    in_flight: Gauge,
}

/// The handles, registered with whatever recorder is installed when the
/// engine first reports (the server installs its recorder before it starts
/// the engine).
fn handles() -> &'static Handles {
    static HANDLES: OnceLock<Handles> = OnceLock::new();
    HANDLES.get_or_init(|| {
        let mut attempts = Vec::new();
        for outcome in Outcome::ALL {
            for trigger in Trigger::ALL {
                attempts.push(metrics::counter!(
                    ATTEMPTS,
                    "outcome" => outcome.as_str(),
                    "trigger" => trigger.as_str()
                ));
            }
        }
        let durations = Outcome::ALL
            .iter()
            .map(|outcome| metrics::histogram!(ATTEMPT_DURATION, "outcome" => outcome.as_str()))
            .collect();
        Handles {
            attempts,
            durations,
            lag: metrics::histogram!(LAG),
            publish_to_success: metrics::histogram!(PUBLISH_TO_SUCCESS),
            exhausted: metrics::counter!(EXHAUSTED),
            webhooks_disabled: metrics::counter!(WEBHOOKS_DISABLED),
            in_flight: metrics::gauge!(IN_FLIGHT),
        }
    })
}

/// Describes every metric of the engine to the installed recorder.
pub fn describe() {
    metrics::describe_counter!(
        ATTEMPTS,
        "Delivery attempts by outcome and by what triggered them"
    );
    metrics::describe_histogram!(
        ATTEMPT_DURATION,
        Unit::Seconds,
        "How long each delivery attempt took, connect to last byte read, by outcome"
    );
    metrics::describe_histogram!(
        LAG,
        Unit::Seconds,
        "How late attempts start: from when the delivery fell due to when it was claimed"
    );
    metrics::describe_histogram!(
        PUBLISH_TO_SUCCESS,
        Unit::Seconds,
        "From an event's publication to its delivery's first successful attempt"
    );
    metrics::describe_counter!(
        EXHAUSTED,
        "Deliveries that failed for good because their retry schedule ran out"
    );
    metrics::describe_counter!(
        WEBHOOKS_DISABLED,
        "Webhooks the engine disabled (the endpoint answered 410 Gone)"
    );
    metrics::describe_gauge!(IN_FLIGHT, "Delivery attempts in flight on this node");
}

/// One attempt ended with `outcome` after `duration`. `webhook` is set only
/// with `[metrics] per_webhook`: the counter then carries the webhook's id,
/// one series per webhook, outcome and trigger, registered on each call.
pub fn record_attempt(
    outcome: Outcome,
    trigger: Trigger,
    duration: Duration,
    webhook: Option<WebhookId>,
) {
    let handles = handles();
    match webhook {
        Some(id) => metrics::counter!(
            ATTEMPTS,
            "outcome" => outcome.as_str(),
            "trigger" => trigger.as_str(),
            "webhook" => id.to_string()
        )
        .increment(1),
        None => {
            let index = outcome.index() * Trigger::ALL.len() + trigger.index();
            if let Some(counter) = handles.attempts.get(index) {
                counter.increment(1);
            }
        }
    }
    if let Some(histogram) = handles.durations.get(outcome.index()) {
        histogram.record(duration.as_secs_f64());
    }
}

/// A claimed delivery had been due since `due_at` when its attempt started.
pub fn record_lag(due_at: Timestamp, started_at: Timestamp) {
    handles().lag.record(seconds_between(due_at, started_at));
}

/// A delivery of an event published at `published_at` first succeeded at `at`.
pub fn record_first_success(published_at: Timestamp, at: Timestamp) {
    handles()
        .publish_to_success
        .record(seconds_between(published_at, at));
}

pub fn record_exhausted() {
    handles().exhausted.increment(1);
}

pub fn record_webhook_disabled() {
    handles().webhooks_disabled.increment(1);
}

/// An attempt started (`true`) or ended (`false`).
pub fn record_in_flight(started: bool) {
    let gauge = &handles().in_flight;
    if started {
        gauge.increment(1.0);
    } else {
        gauge.decrement(1.0);
    }
}

/// Never negative: clocks of different nodes (or the database's) may disagree slightly.
fn seconds_between(earlier: Timestamp, later: Timestamp) -> f64 {
    let millis = later.millis().saturating_sub(earlier.millis()).max(0);
    Duration::from_millis(u64::try_from(millis).unwrap_or(0)).as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_their_class() {
        assert_eq!(Outcome::of_status(204), Outcome::Success);
        assert_eq!(Outcome::of_status(302), Outcome::HttpOther);
        assert_eq!(Outcome::of_status(404), Outcome::Http4xx);
        assert_eq!(Outcome::of_status(503), Outcome::Http5xx);
    }

    #[test]
    fn a_restarted_schedule_with_attempts_before_it_is_manual() {
        assert_eq!(Trigger::of_claim(1, 0), Trigger::Scheduled);
        assert_eq!(Trigger::of_claim(3, 2), Trigger::Scheduled);
        assert_eq!(Trigger::of_claim(2, 0), Trigger::Manual);
    }
}
