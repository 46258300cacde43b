//! Flow control for one webhook on this node, as pure rules over the time the
//! caller passes: [`Window`], how many attempts may be in flight (adaptive
//! concurrency, AIMD), and [`Pace`], how many may start per second (a token
//! bucket for the webhook's `max_per_second`). The engine's `Slots` keeps one
//! of each per webhook and asks them before it starts an attempt.
//!
//! Both are per node: the store knows no live nodes (a dead node's work is
//! simply due again when its leases expire), so nothing can divide a limit
//! among nodes honestly. With N nodes a webhook may see up to N times its
//! `max_in_flight` and `max_per_second`.

use std::time::{Duration, Instant};

use crate::client::Exchange;
use crate::metrics::Outcome;

/// Where an adaptive window starts: modest, so a receiver that cannot take
/// much never gets a burst of the node's whole per-webhook bound.
pub(crate) const START: usize = 4;
/// The cut when the receiver says it is overloaded (a timeout, a refused
/// connection, a 429 or a 503).
const OVERLOAD_CUT: f64 = 0.5;
/// The cut when answers come back well slower than the recent best: requests
/// are queueing at the receiver.
const QUEUEING_CUT: f64 = 0.9;
/// Answers are "near the best" while no slower than twice the best plus this:
/// loopback jitter and a loaded machine must not read as queueing.
const NEAR_BEST_SLACK: Duration = Duration::from_millis(20);
/// The least time between two cuts, when no round trip has been measured.
const LEAST_CALM: Duration = Duration::from_millis(50);
/// How fast the recent best forgets a faster past: 1/256 of the gap a sample.
const BEST_DRIFT: u32 = 256;
/// The smoothed latency's weight on each new sample: 1/8.
const SMOOTHING: u32 = 8;

/// What one exchange says about the receiver's load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feedback {
    /// A 2xx answer after this long.
    Answered(Duration),
    /// A timeout, a connection that failed, a 429 or a 503.
    Overloaded,
    /// Anything else (a 500, a 404, no exchange at all): says nothing about load.
    Neutral,
}

/// What the exchange says about the receiver's load. A refused connection
/// counts as overload: a receiver out of sockets or workers looks like that.
pub(crate) fn feedback(exchange: &Exchange) -> Feedback {
    match &exchange.result {
        Ok(reply) if (200..300).contains(&reply.status) => Feedback::Answered(exchange.duration),
        Ok(reply) if matches!(reply.status, 429 | 503) => Feedback::Overloaded,
        Ok(_) => Feedback::Neutral,
        Err(failure) if matches!(failure.outcome, Outcome::Timeout | Outcome::Connect) => {
            Feedback::Overloaded
        }
        Err(_) => Feedback::Neutral,
    }
}

/// How many attempts may be in flight to one webhook: additive increase
/// (one more per window of fast answers), multiplicative decrease (halved on
/// overload, by a tenth when latency climbs away from its recent best), at
/// most one cut per round trip, always between 1 and the ceiling. A fixed
/// window is simply the ceiling.
#[derive(Debug, Clone)]
pub(crate) struct Window {
    limit: f64,
    ceiling: usize,
    adaptive: bool,
    best: Option<Duration>,
    smoothed: Option<Duration>,
    /// No cut before this, so one burst of slow answers cuts once.
    calm_until: Option<Instant>,
    /// When an exchange last said overload.
    last_overload: Option<Instant>,
}

impl Window {
    pub(crate) fn new(ceiling: usize, adaptive: bool) -> Self {
        let ceiling = ceiling.max(1);
        let start = if adaptive {
            START.min(ceiling)
        } else {
            ceiling
        };
        Self {
            limit: start as f64,
            ceiling,
            adaptive,
            best: None,
            smoothed: None,
            calm_until: None,
            last_overload: None,
        }
    }

    /// Attempts that may be in flight now (at least 1).
    pub(crate) fn limit(&self) -> usize {
        // The limit stays within [1, ceiling], so the cast only drops the fraction.
        (self.limit.floor() as usize).clamp(1, self.ceiling)
    }

    /// The webhook's own `max_in_flight` or the node's bound changed.
    pub(crate) fn set_ceiling(&mut self, ceiling: usize) {
        let ceiling = ceiling.max(1);
        if ceiling == self.ceiling {
            return;
        }
        self.ceiling = ceiling;
        self.limit = if self.adaptive {
            self.limit.min(ceiling as f64)
        } else {
            ceiling as f64
        };
    }

    /// Learns from an exchange. A fixed window learns the latency too (the
    /// engine's claim-ahead asks for it) but never moves its limit.
    pub(crate) fn note(&mut self, feedback: Feedback, now: Instant) {
        match feedback {
            Feedback::Answered(latency) => {
                let (best, smoothed) = self.learn(latency);
                if self.adaptive {
                    self.answered(latency, best, smoothed, now);
                }
            }
            Feedback::Overloaded => {
                self.last_overload = Some(now);
                if self.adaptive {
                    self.cut(OVERLOAD_CUT, now);
                }
            }
            Feedback::Neutral => {}
        }
    }

    /// The smoothed latency of recent 2xx answers, once there was one.
    pub(crate) fn recent_latency(&self) -> Option<Duration> {
        self.smoothed
    }

    /// Whether an exchange said overload (a timeout, refused connection, 429
    /// or 503) within `span` before `now`.
    pub(crate) fn overloaded_within(&self, span: Duration, now: Instant) -> bool {
        self.last_overload
            .is_some_and(|at| now.saturating_duration_since(at) < span)
    }

    /// Folds a 2xx answer's latency into the recent best and the smoothed latency.
    fn learn(&mut self, latency: Duration) -> (Duration, Duration) {
        let best = match self.best {
            Some(best) if best <= latency => best + (latency - best) / BEST_DRIFT,
            _ => latency,
        };
        self.best = Some(best);
        let smoothed = match self.smoothed {
            Some(s) if s <= latency => s + (latency - s) / SMOOTHING,
            Some(s) => s - (s - latency) / SMOOTHING,
            None => latency,
        };
        self.smoothed = Some(smoothed);
        (best, smoothed)
    }

    fn answered(&mut self, latency: Duration, best: Duration, smoothed: Duration, now: Instant) {
        let near = best * 2 + NEAR_BEST_SLACK;
        if smoothed > near {
            self.cut(QUEUEING_CUT, now);
        } else if latency <= near {
            self.limit = (self.limit + 1.0 / self.limit).min(self.ceiling as f64);
        }
    }

    fn cut(&mut self, factor: f64, now: Instant) {
        if self.calm_until.is_some_and(|calm| now < calm) {
            return;
        }
        self.limit = (self.limit * factor).max(1.0);
        let round_trip = self.smoothed.unwrap_or(LEAST_CALM).max(LEAST_CALM);
        self.calm_until = Some(now + round_trip);
    }
}

/// A token bucket for `max_per_second`. It holds a tenth of a second's worth
/// (at least one token), so even after a quiet spell no second sees much more
/// than the rate: at most a tenth more.
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    per_second: u32,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

impl Pace {
    pub(crate) fn new(per_second: u32, now: Instant) -> Self {
        let per_second = per_second.max(1);
        let capacity = f64::from(per_second.div_ceil(10));
        Self {
            per_second,
            capacity,
            tokens: capacity,
            at: now,
        }
    }

    pub(crate) fn per_second(&self) -> u32 {
        self.per_second
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(self.per_second)).min(self.capacity);
        self.at = now;
    }

    /// Takes a token if one is there.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token is there.
    pub(crate) fn next_token_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        let missing = (1.0 - self.tokens).max(0.0);
        now + Duration::from_secs_f64(missing / f64::from(self.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn answered(window: &mut Window, latency: Duration, times: usize, now: &mut Instant) {
        for _ in 0..times {
            *now += latency;
            window.note(Feedback::Answered(latency), *now);
        }
    }

    #[test]
    fn fast_answers_open_the_window_up_to_the_ceiling() {
        let mut now = Instant::now();
        let mut window = Window::new(32, true);
        assert_eq!(window.limit(), START);
        answered(&mut window, 2 * MS, 100, &mut now);
        let after_100 = window.limit();
        assert!(after_100 > START && after_100 < 32, "{after_100}");
        answered(&mut window, 2 * MS, 2000, &mut now);
        assert_eq!(window.limit(), 32, "bounded by the ceiling");
    }

    #[test]
    fn overload_halves_once_per_round_trip_and_never_below_one() {
        let mut now = Instant::now();
        let mut window = Window::new(32, true);
        answered(&mut window, 10 * MS, 2000, &mut now);
        assert_eq!(window.limit(), 32);
        for _ in 0..20 {
            window.note(Feedback::Overloaded, now);
        }
        assert_eq!(window.limit(), 16, "a burst of timeouts cuts once");
        for _ in 0..20 {
            now += Duration::from_secs(1);
            window.note(Feedback::Overloaded, now);
        }
        assert_eq!(window.limit(), 1);
    }

    #[test]
    fn latency_climbing_away_from_the_best_shrinks_the_window() {
        let mut now = Instant::now();
        let mut window = Window::new(32, true);
        answered(&mut window, 5 * MS, 2000, &mut now);
        assert_eq!(window.limit(), 32);
        answered(&mut window, 400 * MS, 60, &mut now);
        assert!(window.limit() < 16, "{}", window.limit());
    }

    #[test]
    fn neutral_answers_change_nothing_and_a_fixed_window_never_moves() {
        let now = Instant::now();
        let mut window = Window::new(32, true);
        window.note(Feedback::Neutral, now);
        assert_eq!(window.limit(), START);
        let mut fixed = Window::new(32, false);
        fixed.note(Feedback::Overloaded, now);
        assert_eq!(fixed.limit(), 32);
        fixed.set_ceiling(5);
        assert_eq!(fixed.limit(), 5);
    }

    #[test]
    fn a_lower_ceiling_takes_effect_at_once() {
        let mut now = Instant::now();
        let mut window = Window::new(32, true);
        answered(&mut window, 2 * MS, 2000, &mut now);
        window.set_ceiling(3);
        assert_eq!(window.limit(), 3);
        window.set_ceiling(0);
        assert_eq!(window.limit(), 1);
    }

    #[test]
    fn the_pace_allows_a_tenth_of_a_seconds_worth_then_the_rate() {
        let start = Instant::now();
        let mut pace = Pace::new(100, start);
        let burst = (0..1000).take_while(|_| pace.take(start)).count();
        assert_eq!(burst, 10);
        let next = pace.next_token_at(start);
        assert_eq!(next.duration_since(start), Duration::from_millis(10));
        assert!(pace.take(next));
        assert!(!pace.take(next));
        let later = start + Duration::from_secs(60);
        let burst = (0..1000).take_while(|_| pace.take(later)).count();
        assert_eq!(
            burst, 10,
            "a quiet spell saves up a tenth of a second's worth"
        );
        let mut slow = Pace::new(2, start);
        assert!(slow.take(start), "at least one token");
        assert!(!slow.take(start));
    }
}
