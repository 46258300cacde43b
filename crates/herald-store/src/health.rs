//! Endpoint health: the state every node shares about one webhook's endpoint,
//! and the one rule that moves it (both stores apply [`WebhookHealth::note`]
//! and [`WebhookHealth::gate`]; neither re-implements them in SQL).
//!
//! ```text
//! healthy ──(failing_after consecutive failures)──▶ paused until T
//! paused ──(T passes; a claim takes the oldest due delivery)──▶ probing
//! probing ──success──▶ healthy (the backlog is released)
//! probing ──failure──▶ paused (the pause doubles, up to longest_pause)
//! any ──(disable_after consecutive failures)──▶ disabled, until a person enables it
//! healthy ──(429/503 with Retry-After)──▶ throttled until the time asked
//! ```
//!
//! While a webhook is paused, throttled or disabled its deliveries are not
//! claimed at all: their due times and attempt counts are left alone, so none
//! loses an attempt from its schedule, and a pause of a webhook with a million
//! queued deliveries is one row written, not a million.

use std::time::Duration;

use herald_core::time::Timestamp;

/// How often a success is written when nothing else changed: `last_success`
/// is accurate to this, and a steady stream of successes is not a write each.
pub const LAST_SUCCESS_GRANULARITY: Duration = Duration::from_secs(60);

/// The stored state of a webhook's endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HealthState {
    /// Deliveries flow; fewer than `failing_after` attempts have failed in a row.
    #[default]
    Healthy,
    /// No attempts until `until`; then one probe.
    Paused,
    /// One probe delivery is claimed; `until` is the end of its lease, after
    /// which (its node died) another probe may be claimed.
    Probing,
    /// The endpoint asked to be left alone (`Retry-After`) until `until`; then
    /// deliveries flow again.
    Throttled,
    /// No attempts until a person enables the webhook again.
    Disabled,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Paused => "paused",
            Self::Probing => "probing",
            Self::Throttled => "throttled",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "healthy" => Self::Healthy,
            "paused" => Self::Paused,
            "probing" => Self::Probing,
            "throttled" => Self::Throttled,
            "disabled" => Self::Disabled,
            _ => return None,
        })
    }
}

/// The state as a person sees it: `failing` covers a pause that has ended
/// and its probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShownHealth {
    Healthy,
    Failing,
    Paused,
    Disabled,
}

impl ShownHealth {
    /// Every state, in the order they are listed (the metrics' label values).
    pub const ALL: [Self; 4] = [Self::Healthy, Self::Failing, Self::Paused, Self::Disabled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Failing => "failing",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }
}

/// A webhook's endpoint health, as stored with the webhook.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookHealth {
    pub state: HealthState,
    /// Failed attempts in a row, whatever their deliveries.
    pub consecutive_failures: u32,
    /// Pauses since the webhook was last healthy: the backoff's position.
    pub pauses: u32,
    /// Paused and throttled: when attempts may resume. Probing: when the
    /// probe's lease ends.
    pub until: Option<Timestamp>,
    /// When the current run of failures began.
    pub failing_since: Option<Timestamp>,
    pub last_error: Option<String>,
    /// Within [`LAST_SUCCESS_GRANULARITY`] of the last successful attempt.
    pub last_success: Option<Timestamp>,
    /// Why the engine disabled the webhook.
    pub disabled_reason: Option<String>,
}

/// The health settings in force for one webhook: the node's `[delivery.health]`
/// with the webhook's own overrides applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Consecutive failed attempts that pause the webhook (at least 1).
    pub failing_after: u32,
    /// Consecutive failed attempts that disable it; `None`: never.
    pub disable_after: Option<u32>,
    /// The first pause; each one after a failed probe is twice as long.
    pub first_pause: Duration,
    /// The longest pause.
    pub longest_pause: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            failing_after: 4,
            disable_after: Some(40),
            first_pause: Duration::from_secs(60),
            longest_pause: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl HealthPolicy {
    /// The length of the pause after `pauses` earlier ones.
    pub fn pause(&self, pauses: u32) -> Duration {
        let factor = 1u32.checked_shl(pauses.min(31)).unwrap_or(u32::MAX);
        self.first_pause
            .checked_mul(factor)
            .unwrap_or(self.longest_pause)
            .min(self.longest_pause)
    }
}

/// A webhook's own health settings; `None` takes the node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthOverrides {
    pub failing_after: Option<u32>,
    /// `Some(None)` switches auto-disable off for this webhook.
    pub disable_after: Option<Option<u32>>,
}

impl HealthOverrides {
    /// `disable_after` as a person gives it, where 0 switches auto-disable
    /// off, in the form kept here.
    pub fn disable_after_given(given: Option<u32>) -> Option<Option<u32>> {
        given.map(|n| (n > 0).then_some(n))
    }

    pub fn apply(&self, node: HealthPolicy) -> HealthPolicy {
        HealthPolicy {
            failing_after: self.failing_after.unwrap_or(node.failing_after).max(1),
            disable_after: self.disable_after.unwrap_or(node.disable_after),
            ..node
        }
    }
}

/// What one attempt says about the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthSignal {
    /// A 2xx answer.
    Success,
    /// No answer, or one that is not a success.
    Failure { error: String },
    /// A 429 or 503 with `Retry-After`: the endpoint is alive and asks for a
    /// pause of the whole webhook. Not counted as a failure.
    Throttled { wait: Duration, error: String },
    /// A 410 Gone, which disables the webhook by itself (it is no longer
    /// enabled): counted and kept as the last error so its page shows why,
    /// and nothing else changes.
    Gone { error: String },
}

/// An attempt's health signal, to be noted with the attempt's record
/// ([`Store::record_attempt_noting_health`](crate::Store::record_attempt_noting_health)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthNote {
    pub webhook: herald_core::id::WebhookId,
    pub signal: HealthSignal,
    /// The settings in force for the webhook.
    pub policy: HealthPolicy,
}

/// What recording an attempt together with its health note did.
#[derive(Debug)]
pub struct Recorded {
    /// The attempt moved its delivery on (its lease was current); only then
    /// is its health noted.
    pub moved_on: bool,
    /// The changes to report, or why the note could not be made (the
    /// attempt's record stands either way).
    pub health: crate::StoreResult<Vec<HealthChange>>,
}

/// A change a person is told about (a `herald:webhook.*` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthChange {
    /// `failing_after` attempts failed in a row.
    Failing {
        consecutive_failures: u32,
        since: Timestamp,
        last_error: Option<String>,
    },
    /// No attempts until `until`, then one probe. Reported for the first
    /// pause of a run of failures only: the later ones (each failed probe)
    /// show in the webhook's health, so a webhook subscribed to news about
    /// itself cannot feed its own backlog one event per pause.
    Paused {
        until: Timestamp,
        consecutive_failures: u32,
    },
    /// Disabled by the engine after `consecutive_failures` failures.
    Disabled {
        reason: String,
        consecutive_failures: u32,
        last_error: Option<String>,
    },
    /// A success after a pause: the backlog is released.
    Recovered {
        failed_attempts: u32,
        failing_since: Option<Timestamp>,
    },
}

/// What claims may do with a webhook's due deliveries now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Claim only the oldest due delivery, and mark the webhook probing.
    Probe,
    Closed,
}

/// What [`WebhookHealth::note`] decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Noted {
    /// The stored health must be written.
    pub changed: bool,
    pub changes: Vec<HealthChange>,
}

impl WebhookHealth {
    /// What claims may do with the webhook's deliveries at `now`.
    pub fn gate(&self, now: Timestamp) -> Gate {
        let passed = self.until.is_none_or(|until| until <= now);
        match self.state {
            HealthState::Healthy => Gate::Open,
            HealthState::Throttled if passed => Gate::Open,
            HealthState::Paused | HealthState::Probing if passed => Gate::Probe,
            HealthState::Throttled
            | HealthState::Paused
            | HealthState::Probing
            | HealthState::Disabled => Gate::Closed,
        }
    }

    /// A claim took the probe delivery, leased until `lease_end`.
    pub fn start_probe(&mut self, lease_end: Timestamp) {
        self.state = HealthState::Probing;
        self.until = Some(lease_end);
    }

    /// A person enabled the webhook: it starts afresh, keeping the history
    /// (last error, last success).
    pub fn reset(&mut self) {
        *self = Self {
            last_error: self.last_error.take(),
            last_success: self.last_success,
            ..Self::default()
        };
    }

    /// Whether a success at `now` would change nothing worth writing: the
    /// engine then need not ask the store at all.
    pub fn success_changes_nothing(&self, now: Timestamp) -> bool {
        self.state == HealthState::Healthy
            && self.consecutive_failures == 0
            && self
                .last_success
                .is_some_and(|last| last.saturating_add(LAST_SUCCESS_GRANULARITY) > now)
    }

    pub fn shown(&self, now: Timestamp) -> ShownHealth {
        match (self.state, self.gate(now)) {
            (HealthState::Disabled, _) => ShownHealth::Disabled,
            (HealthState::Healthy, _) | (HealthState::Throttled, Gate::Open) => {
                ShownHealth::Healthy
            }
            (_, Gate::Closed) if self.state != HealthState::Probing => ShownHealth::Paused,
            _ => ShownHealth::Failing,
        }
    }

    /// When attempts resume, if the webhook is paused now.
    pub fn paused_until(&self, now: Timestamp) -> Option<Timestamp> {
        match self.shown(now) {
            ShownHealth::Paused => self.until,
            _ => None,
        }
    }

    /// Applies one attempt's signal, by the store's clock `now`.
    pub fn note(&mut self, signal: &HealthSignal, policy: &HealthPolicy, now: Timestamp) -> Noted {
        match signal {
            HealthSignal::Success => self.succeeded(now),
            HealthSignal::Failure { error } => self.failed(error, policy, now),
            HealthSignal::Throttled { wait, error } => self.throttled(*wait, error, now),
            HealthSignal::Gone { error } => self.gone(error, now),
        }
    }

    fn succeeded(&mut self, now: Timestamp) -> Noted {
        let mut noted = Noted {
            changed: !self.success_changes_nothing(now),
            changes: Vec::new(),
        };
        self.last_success = Some(now);
        // Only a person enables a disabled webhook again; a late success of
        // an attempt that was in flight is just noted.
        if self.state == HealthState::Disabled {
            return noted;
        }
        if matches!(self.state, HealthState::Paused | HealthState::Probing) {
            noted.changes.push(HealthChange::Recovered {
                failed_attempts: self.consecutive_failures,
                failing_since: self.failing_since,
            });
        }
        if self.state != HealthState::Throttled {
            self.state = HealthState::Healthy;
            self.until = None;
        }
        self.consecutive_failures = 0;
        self.pauses = 0;
        self.failing_since = None;
        noted
    }

    fn failed(&mut self, error: &str, policy: &HealthPolicy, now: Timestamp) -> Noted {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let since = *self.failing_since.get_or_insert(now);
        self.last_error = Some(error.to_owned());
        let mut changes = Vec::new();
        let failures = self.consecutive_failures;
        let disable = policy.disable_after.is_some_and(|n| failures >= n.max(1));
        if self.state == HealthState::Disabled {
            // Counted only.
        } else if disable {
            let reason = format!(
                "the endpoint failed {failures} attempts in a row (the last: {error}); \
                 enable the webhook to try again"
            );
            self.state = HealthState::Disabled;
            self.until = None;
            self.disabled_reason = Some(reason.clone());
            changes.push(HealthChange::Disabled {
                reason,
                consecutive_failures: failures,
                last_error: self.last_error.clone(),
            });
        } else if self.state == HealthState::Probing
            || (matches!(self.state, HealthState::Healthy | HealthState::Throttled)
                && failures >= policy.failing_after.max(1))
        {
            let until = now.saturating_add(policy.pause(self.pauses));
            if self.pauses == 0 {
                changes.push(HealthChange::Failing {
                    consecutive_failures: failures,
                    since,
                    last_error: self.last_error.clone(),
                });
                changes.push(HealthChange::Paused {
                    until,
                    consecutive_failures: failures,
                });
            }
            self.pauses = self.pauses.saturating_add(1);
            self.state = HealthState::Paused;
            self.until = Some(until);
        }
        // Paused already: an attempt that was in flight when the pause began
        // failed too; it counts, the pause stands.
        Noted {
            changed: true,
            changes,
        }
    }

    fn gone(&mut self, error: &str, now: Timestamp) -> Noted {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.failing_since.get_or_insert(now);
        self.last_error = Some(error.to_owned());
        Noted {
            changed: true,
            changes: Vec::new(),
        }
    }

    /// Flow control the endpoint asked for is routine, not news: it shows in
    /// the webhook's health and is reported by no event.
    fn throttled(&mut self, wait: Duration, error: &str, now: Timestamp) -> Noted {
        let until = now.saturating_add(wait);
        self.last_error = Some(error.to_owned());
        match self.state {
            HealthState::Disabled => {}
            HealthState::Healthy => {
                self.state = HealthState::Throttled;
                self.until = Some(until);
            }
            // The probe was answered, just not yet: probe again when asked.
            HealthState::Probing => {
                self.state = HealthState::Paused;
                self.until = Some(until);
            }
            HealthState::Throttled | HealthState::Paused => {
                self.until = Some(self.until.map_or(until, |t| t.max(until)));
            }
        }
        Noted {
            changed: true,
            changes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy {
            failing_after: 2,
            disable_after: Some(5),
            first_pause: Duration::from_secs(60),
            longest_pause: Duration::from_secs(200),
        }
    }

    fn fail() -> HealthSignal {
        HealthSignal::Failure {
            error: "HTTP 500".into(),
        }
    }

    const T: Timestamp = Timestamp(1_000_000);

    #[test]
    fn pauses_double_up_to_the_longest() {
        let p = policy();
        let pauses: Vec<u64> = (0..4).map(|n| p.pause(n).as_secs()).collect();
        assert_eq!(pauses, [60, 120, 200, 200]);
        assert_eq!(p.pause(u32::MAX), Duration::from_secs(200));
    }

    #[test]
    fn failures_pause_then_a_probe_recovers() {
        let p = policy();
        let mut h = WebhookHealth::default();
        assert!(h.note(&fail(), &p, T).changes.is_empty());
        assert_eq!(h.gate(T), Gate::Open);
        let noted = h.note(&fail(), &p, T);
        assert!(matches!(
            noted.changes[0],
            HealthChange::Failing {
                consecutive_failures: 2,
                ..
            }
        ));
        let until = T.saturating_add(Duration::from_secs(60));
        assert!(matches!(noted.changes[1], HealthChange::Paused { until: u, .. } if u == until));
        assert_eq!(h.gate(T), Gate::Closed);
        assert_eq!(h.shown(T), ShownHealth::Paused);
        assert_eq!(h.paused_until(T), Some(until));
        assert_eq!(h.gate(until), Gate::Probe);
        assert_eq!(h.shown(until), ShownHealth::Failing);

        h.start_probe(until.saturating_add(Duration::from_secs(15)));
        assert_eq!(h.gate(until), Gate::Closed, "one probe at a time");
        let noted = h.note(&fail(), &p, until);
        assert!(noted.changes.is_empty(), "a run's later pauses are no news");
        assert_eq!(
            h.until,
            Some(until.saturating_add(Duration::from_secs(120)))
        );

        h.start_probe(until);
        let noted = h.note(&HealthSignal::Success, &p, until);
        assert_eq!(
            noted.changes,
            vec![HealthChange::Recovered {
                failed_attempts: 3,
                failing_since: Some(T)
            }]
        );
        assert_eq!(h.state, HealthState::Healthy);
        assert_eq!((h.consecutive_failures, h.pauses, h.until), (0, 0, None));
        assert_eq!(h.gate(until), Gate::Open);
    }

    #[test]
    fn an_abandoned_probe_can_be_taken_again_when_its_lease_ends() {
        let mut h = WebhookHealth::default();
        h.start_probe(T);
        assert_eq!(h.gate(Timestamp(T.0 - 1)), Gate::Closed);
        assert_eq!(h.gate(T), Gate::Probe);
    }

    #[test]
    fn enough_failures_disable_until_reset_and_auto_disable_can_be_off() {
        let p = policy();
        let mut h = WebhookHealth::default();
        let mut disabled = Vec::new();
        for _ in 0..5 {
            h.start_probe(T);
            disabled.extend(h.note(&fail(), &p, T).changes);
        }
        assert!(matches!(
            disabled.last(),
            Some(HealthChange::Disabled {
                consecutive_failures: 5,
                ..
            })
        ));
        assert_eq!(h.state, HealthState::Disabled);
        assert_eq!(h.gate(Timestamp(i64::MAX)), Gate::Closed);
        assert!(h.note(&HealthSignal::Success, &p, T).changes.is_empty());
        assert_eq!(h.state, HealthState::Disabled, "only a person enables it");
        h.reset();
        assert_eq!(h.state, HealthState::Healthy);
        assert!(
            h.last_error.is_some() && h.last_success.is_some(),
            "history is kept"
        );

        let never = HealthPolicy {
            disable_after: None,
            ..p
        };
        let mut h = WebhookHealth::default();
        for _ in 0..100 {
            h.start_probe(T);
            h.note(&fail(), &never, T);
        }
        assert_eq!(h.state, HealthState::Paused);
    }

    #[test]
    fn retry_after_throttles_without_counting_a_failure() {
        let p = policy();
        let mut h = WebhookHealth::default();
        let asked = HealthSignal::Throttled {
            wait: Duration::from_secs(2),
            error: "HTTP 429".into(),
        };
        let noted = h.note(&asked, &p, T);
        assert!(
            noted.changed && noted.changes.is_empty(),
            "routine, not news"
        );
        assert_eq!(h.consecutive_failures, 0);
        assert_eq!(h.gate(T), Gate::Closed);
        assert_eq!(h.shown(T), ShownHealth::Paused);
        let after = T.saturating_add(Duration::from_secs(2));
        assert_eq!(h.gate(after), Gate::Open, "no probe: the endpoint is alive");
        assert_eq!(h.shown(after), ShownHealth::Healthy);
        h.note(&asked, &p, T.saturating_add(Duration::from_secs(1)));
        assert_eq!(
            h.until,
            Some(T.saturating_add(Duration::from_secs(3))),
            "extended"
        );
    }

    #[test]
    fn steady_successes_are_written_once_a_minute() {
        let p = policy();
        let mut h = WebhookHealth::default();
        assert!(h.note(&HealthSignal::Success, &p, T).changed);
        assert!(h.success_changes_nothing(T.saturating_add(Duration::from_secs(59))));
        assert!(!h.success_changes_nothing(T.saturating_add(LAST_SUCCESS_GRANULARITY)));
        h.note(&fail(), &p, T);
        assert!(!h.success_changes_nothing(T));
    }

    #[test]
    fn overrides_replace_the_node_settings() {
        let node = policy();
        let own = HealthOverrides {
            failing_after: Some(0),
            disable_after: Some(None),
        };
        let applied = own.apply(node);
        assert_eq!((applied.failing_after, applied.disable_after), (1, None));
        assert_eq!(HealthOverrides::default().apply(node), node);
    }
}
