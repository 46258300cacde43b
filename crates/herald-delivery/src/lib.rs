//! Outgoing delivery.
//!
//! Layout:
//! - `guard`: the address guard. Refuses private, loopback, link-local, CGNAT,
//!   multicast and cloud-metadata targets unless an allowed CIDR covers them.
//! - `client`: the one HTTP client for outgoing webhooks: rustls, no proxy, no
//!   redirects, a DNS resolver that runs every resolved address through the guard.
//! - `request`: builds a signed request from an event and a webhook, and redacts
//!   it for the log.
//! - `engine`: the dispatcher. Claims due deliveries by lease, sends them with
//!   bounded concurrency overall and per webhook, records each attempt and
//!   schedules retries.
//! - `janitor`: purges old deliveries, attempts, events and idempotency keys.

use std::time::Duration;

use herald_core::retry::RetrySchedule;
use ipnet::IpNet;

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
        }
    }
}
