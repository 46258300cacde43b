//! Outgoing delivery.
//!
//! Layout:
//! - [`guard`]: the address guard, re-exported from `herald-guard` (which the
//!   repository fetches share). Refuses every address that is not globally
//!   reachable, and their IPv6 forms, unless an allowed CIDR covers it.
//! - `client`: the one HTTP client for outgoing webhooks: rustls (ring), no proxy,
//!   no redirects, a DNS resolver that runs every resolved address through the
//!   guard; and one exchange with a receiver, its response read up to a cap
//!   within the request timeout.
//! - [`request`]: the headers of a signed request (Standard Webhooks, event type,
//!   the family's native headers, basic auth from the URL) and their redacted
//!   copy for the log.
//! - `targets`: each webhook's URL and secret as this node last opened them,
//!   kept beside the sealed bytes they came from, so an attempt opens them
//!   only when they changed.
//! - [`catalogue`]: [`LiveCatalogue`], the event catalogue with the stored custom
//!   types, shared by the engine (families) and the API (validation, changes).
//! - `operational`: the `herald:*` events the engine publishes about its
//!   deliveries (a webhook disabled, retries exhausted, a webhook recovered).
//! - `engine`: the dispatcher ([`Engine`], [`EngineHandle`]). Claims due
//!   deliveries by lease, sends them with bounded concurrency overall and per
//!   webhook, records each attempt and schedules retries; also the Test button's
//!   synchronous send.
//! - [`metrics`]: the engine's metric names and one function per thing it
//!   reports (an attempt with its outcome and trigger, lag, exhaustion).
//! - `flow`: flow control for one webhook on this node, as pure rules: the
//!   adaptive in-flight window (AIMD) and the `max_per_second` token bucket,
//!   which the engine's slots ask before starting an attempt.
//! - `health`: what a recorded attempt tells the store about its endpoint
//!   (success, failure, or a `Retry-After` that throttles the whole webhook);
//!   the store keeps the health every node shares and gates claims with it.
//! - `janitor`: purges old deliveries, attempts, events and idempotency keys.

use std::time::Duration;

use herald_core::retry::RetrySchedule;
pub use herald_store::HealthPolicy;
use ipnet::IpNet;

pub mod catalogue;
mod client;
mod engine;
mod flow;
mod health;
mod janitor;
pub mod metrics;
mod operational;
pub mod request;
mod targets;

pub use catalogue::{ChangeError, LiveCatalogue};
pub use engine::{Engine, EngineHandle, TestOutcome};
pub use herald_guard as guard;
pub use herald_guard::AddressGuard;
pub use janitor::{JanitorConfig, spawn_janitor};

/// Why the delivery engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("could not build the HTTP client for outgoing webhooks: {0}")]
    Client(#[source] reqwest::Error),
    #[error("the delivery engine must be started inside a tokio runtime")]
    NoRuntime,
    #[error("delivery setting {setting} {rule}")]
    Config {
        setting: &'static str,
        rule: &'static str,
    },
}

/// This node's secrets key cannot open a webhook's sealed URL or secret: the
/// node is at fault, not the delivery, which is left for another node.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "this node's secrets key cannot open the sealed {what} of webhook {webhook}: \
     every node sharing a database needs the same secret.key"
)]
pub struct Unsealable {
    pub webhook: herald_core::id::WebhookId,
    pub what: &'static str,
}

/// Settings of the delivery engine.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// The whole attempt: connect, send, and read the (capped) response.
    pub request_timeout: Duration,
    /// Attempts in flight on this node at once.
    pub max_in_flight: usize,
    /// Attempts in flight to one webhook at once, so a hanging receiver holds
    /// back only its own deliveries.
    pub max_in_flight_per_webhook: usize,
    /// Deliveries leased per claim.
    pub claim_batch: usize,
    /// The longest the dispatcher sleeps before looking for due work it was not
    /// woken for (work published by another node, retries falling due).
    pub poll_interval: Duration,
    pub retry: RetrySchedule,
    /// The most response body bytes kept in the log.
    pub response_body_cap: usize,
    /// Targets in these networks are allowed even though the guard refuses
    /// their kind (e.g. 127.0.0.0/8 for tests).
    pub allow_cidrs: Vec<IpNet>,
    /// When a failing endpoint is paused or disabled (`[delivery.health]`);
    /// each webhook may override `failing_after` and `disable_after`.
    pub health: HealthPolicy,
    /// Whether each webhook's in-flight window follows its receiver (AIMD,
    /// from 4 up to its bound) or is fixed at the bound.
    pub adaptive_concurrency: bool,
    /// Whether the attempts counter carries each webhook's id (`[metrics]
    /// per_webhook`): one series per webhook, so off by default.
    pub metrics_per_webhook: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            max_in_flight: 256,
            max_in_flight_per_webhook: 32,
            claim_batch: 256,
            poll_interval: Duration::from_secs(1),
            retry: RetrySchedule::default(),
            response_body_cap: 16 * 1024,
            allow_cidrs: Vec::new(),
            health: HealthPolicy::default(),
            adaptive_concurrency: true,
            metrics_per_webhook: false,
        }
    }
}
