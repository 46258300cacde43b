//! What each recorded attempt tells the store about its endpoint's health
//! (`herald_store::health` holds the rule, the store the state every node
//! shares), and the operational events the changes call for.
//!
//! The engine itself keeps no health: a paused webhook is simply not handed
//! out by claims, on any node.

use std::time::Duration;

use herald_core::retry::parse_retry_after;
use herald_core::time::Timestamp;
use herald_store::{
    HealthChange, HealthNote, HealthPolicy, HealthSignal, NextStep, StoreResult, WebhookRecord,
};

use crate::client::Exchange;

/// What the exchange says about the endpoint. A 410 is noted as such (the
/// webhook is disabled for it anyway); a 429 or 503 with `Retry-After`
/// throttles the whole webhook, for at most `max_wait`.
pub(crate) fn signal(
    exchange: &Exchange,
    next: &NextStep,
    error: Option<&str>,
    max_wait: Duration,
) -> HealthSignal {
    let status = exchange.result.as_ref().ok().map(|reply| reply.status);
    let described = || match (status, error) {
        (Some(status), Some(error)) => format!("HTTP {status}: {error}"),
        (Some(status), None) => format!("HTTP {status}"),
        (None, Some(error)) => error.to_owned(),
        (None, None) => "no response".to_owned(),
    };
    match next {
        NextStep::Succeeded => HealthSignal::Success,
        NextStep::FailedAndDisableWebhook { .. } => HealthSignal::Gone { error: described() },
        NextStep::RetryIn(_) | NextStep::Deferred(_) | NextStep::Failed => {
            let asked = exchange
                .result
                .as_ref()
                .ok()
                .filter(|reply| matches!(reply.status, 429 | 503))
                .and_then(|reply| reply.header("retry-after"))
                .and_then(|value| parse_retry_after(value, Timestamp::now()));
            match asked {
                Some(wait) if !wait.is_zero() => HealthSignal::Throttled {
                    wait: wait.min(max_wait),
                    error: described(),
                },
                _ => HealthSignal::Failure { error: described() },
            }
        }
    }
}

/// The note recorded with an attempt: its signal, under the webhook's
/// settings. Every success is noted, even when the claim's copy of the
/// health looked clean: failures noted since the claim must be reset by it
/// (the store writes nothing when nothing changes).
pub(crate) fn note_of(
    webhook: &WebhookRecord,
    signal: HealthSignal,
    node: HealthPolicy,
) -> HealthNote {
    HealthNote {
        webhook: webhook.id,
        signal,
        policy: webhook.health_overrides.apply(node),
    }
}

/// What an attempt's noted health asks of this node.
pub(crate) struct Noted {
    /// The receiver asked for quiet this long (`Retry-After`).
    pub throttled_for: Option<Duration>,
    /// The changes this node is to report.
    pub changes: Vec<HealthChange>,
}

/// Logs what the store made of the note. One it could not make is logged and
/// changes nothing: health is advice, and the attempt itself is recorded.
pub(crate) fn noted(
    webhook: &WebhookRecord,
    note: &HealthNote,
    result: StoreResult<Vec<HealthChange>>,
) -> Noted {
    let throttled_for = match &note.signal {
        HealthSignal::Throttled { wait, .. } => Some(*wait),
        _ => None,
    };
    let changes = match result {
        Ok(changes) => {
            for change in &changes {
                log_change(webhook, change);
            }
            changes
        }
        Err(error) => {
            tracing::warn!(webhook = %webhook.id, %error, "noting the endpoint's health failed");
            Vec::new()
        }
    };
    Noted {
        throttled_for,
        changes,
    }
}

fn log_change(webhook: &WebhookRecord, change: &HealthChange) {
    let url = webhook.url_display.as_str();
    match change {
        HealthChange::Failing {
            consecutive_failures,
            ..
        } => {
            tracing::warn!(webhook = %webhook.id, url, consecutive_failures, "endpoint failing");
        }
        HealthChange::Paused { until, .. } => {
            tracing::warn!(webhook = %webhook.id, url, until = %until.to_rfc3339(), "webhook paused");
        }
        HealthChange::Disabled { reason, .. } => {
            tracing::warn!(webhook = %webhook.id, url, reason, "webhook disabled for failing");
        }
        HealthChange::Recovered {
            failed_attempts, ..
        } => {
            tracing::info!(webhook = %webhook.id, url, failed_attempts, "endpoint recovered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{Failure, Reply};

    fn reply(status: u16, headers: &[(&str, &str)]) -> Exchange {
        Exchange {
            started_at: Timestamp(0),
            duration: Duration::from_millis(3),
            request_url: "http://x.example/".into(),
            request_headers: vec![],
            result: Ok(Reply {
                status,
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                body: String::new(),
                body_error: None,
            }),
        }
    }

    const MAX: Duration = Duration::from_secs(600);
    const RETRY: NextStep = NextStep::RetryIn(Duration::from_secs(5));

    #[test]
    fn a_success_is_a_success_and_a_410_is_noted_as_gone() {
        assert_eq!(
            signal(&reply(204, &[]), &NextStep::Succeeded, None, MAX),
            HealthSignal::Success
        );
        let gone = NextStep::FailedAndDisableWebhook {
            reason: "gone".into(),
        };
        assert_eq!(
            signal(&reply(410, &[]), &gone, None, MAX),
            HealthSignal::Gone {
                error: "HTTP 410".into()
            }
        );
    }

    #[test]
    fn retry_after_on_429_or_503_throttles_within_the_cap() {
        assert_eq!(
            signal(&reply(429, &[("retry-after", "2")]), &RETRY, None, MAX),
            HealthSignal::Throttled {
                wait: Duration::from_secs(2),
                error: "HTTP 429".into()
            }
        );
        assert_eq!(
            signal(&reply(503, &[("retry-after", "99999")]), &RETRY, None, MAX),
            HealthSignal::Throttled {
                wait: MAX,
                error: "HTTP 503".into()
            }
        );
        for (status, headers) in [(429, &[][..]), (500, &[("retry-after", "2")][..])] {
            assert_eq!(
                signal(&reply(status, headers), &RETRY, None, MAX),
                HealthSignal::Failure {
                    error: format!("HTTP {status}")
                }
            );
        }
    }

    #[test]
    fn no_response_is_a_failure_with_its_reason() {
        let timeout = Exchange {
            result: Err(Failure {
                error: "timed out".into(),
                permanent: false,
                outcome: crate::metrics::Outcome::Timeout,
            }),
            ..reply(200, &[])
        };
        assert_eq!(
            signal(&timeout, &RETRY, Some("timed out"), MAX),
            HealthSignal::Failure {
                error: "timed out".into()
            }
        );
    }
}
