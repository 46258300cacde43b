//! When to try a failed delivery again.

use std::time::Duration;

use rand::Rng;

use crate::time::Timestamp;

/// Delays after each failed attempt. After the last delay is used up, the
/// delivery is marked failed (and stays redeliverable).
#[derive(Debug, Clone, PartialEq)]
pub struct RetrySchedule {
    pub delays: Vec<Duration>,
    /// Each delay is spread uniformly by ± this fraction, so a receiver that comes
    /// back is not hit by every queued delivery at once.
    pub jitter: f64,
    /// The most a `Retry-After` header may postpone a retry.
    pub max_retry_after: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        let mins = |m: u64| Duration::from_secs(m * 60);
        Self {
            delays: vec![
                Duration::from_secs(5),
                mins(5),
                mins(30),
                mins(120),
                mins(300),
                mins(600),
                mins(600),
            ],
            jitter: 0.2,
            max_retry_after: Duration::from_secs(3600),
        }
    }
}

impl RetrySchedule {
    /// The delay before the next attempt, after attempt number `failed_attempt`
    /// (1-based) failed; `None` when the schedule is exhausted.
    /// A `Retry-After` (429 or 503 only) may lengthen the delay, never shorten it,
    /// and never beyond `max_retry_after`.
    pub fn next_delay(
        &self,
        failed_attempt: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let index = usize::try_from(failed_attempt.checked_sub(1)?).ok()?;
        let base = *self.delays.get(index)?;
        let jittered = self.jittered(base);
        Some(match retry_after {
            Some(asked) => jittered.max(asked.min(self.max_retry_after)),
            None => jittered,
        })
    }

    /// The wait before trying again when the receiver asked for `asked` (a
    /// 429 or 503 with `Retry-After`) about a delivery published `age` ago:
    /// what it asked (capped by `max_retry_after`) and no retry used up, as
    /// long as the wait ends within the span the whole schedule would have
    /// taken; `None` once it would not, when the answer counts as a failure
    /// like any other. A receiver that asks for quiet forever therefore
    /// cannot keep a delivery pending longer than failures would have.
    pub fn deferral(&self, asked: Duration, age: Duration) -> Option<Duration> {
        let wait = asked.min(self.max_retry_after);
        let span: Duration = self.delays.iter().sum();
        (!wait.is_zero() && age.saturating_add(wait) <= span).then_some(wait)
    }

    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    fn jittered(&self, base: Duration) -> Duration {
        if self.jitter <= 0.0 || base.is_zero() {
            return base;
        }
        let factor = rand::rng().random_range((1.0 - self.jitter)..=(1.0 + self.jitter));
        base.mul_f64(factor.max(0.0))
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let delta_ms = when.as_millisecond().saturating_sub(now.millis());
    Some(Duration::from_millis(u64::try_from(delta_ms).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_is_eight_attempts_with_bounded_jitter() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 8);
        for _ in 0..200 {
            let d = s.next_delay(2, None).unwrap();
            assert!(
                d >= Duration::from_secs(240) && d <= Duration::from_secs(360),
                "{d:?}"
            );
        }
        assert_eq!(s.next_delay(8, None), None);
        assert_eq!(s.next_delay(0, None), None);
    }

    #[test]
    fn retry_after_lengthens_but_is_capped() {
        let s = RetrySchedule {
            jitter: 0.0,
            ..RetrySchedule::default()
        };
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            s.next_delay(1, Some(Duration::from_secs(86_400))),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn a_wait_the_receiver_asks_for_is_free_only_within_the_schedules_span() {
        let s = RetrySchedule {
            delays: vec![Duration::from_secs(5), Duration::from_secs(60)],
            jitter: 0.2,
            max_retry_after: Duration::from_secs(30),
        };
        let asked = Duration::from_secs(1);
        assert_eq!(s.deferral(asked, Duration::ZERO), Some(asked));
        assert_eq!(s.deferral(asked, Duration::from_secs(64)), Some(asked));
        assert_eq!(s.deferral(asked, Duration::from_secs(65)), None);
        assert_eq!(
            s.deferral(Duration::from_secs(3600), Duration::ZERO),
            Some(Duration::from_secs(30)),
            "capped like any Retry-After"
        );
        assert_eq!(s.deferral(Duration::ZERO, Duration::ZERO), None);
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = Timestamp::parse_rfc3339("2026-11-22T08:49:37Z").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
