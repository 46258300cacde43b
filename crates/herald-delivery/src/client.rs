//! The one HTTP client for outgoing webhooks, and one exchange with a receiver.
//!
//! The client uses rustls (ring), ignores system proxies, follows no redirects
//! and resolves names through the address guard, so a name that resolves to a
//! refused address is never connected to. IP-literal URLs skip resolvers
//! altogether, so [`Sender::send`] checks those itself before sending.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use herald_catalogue::Family;
use herald_core::USER_AGENT;
use herald_core::cipher::SecretCipher;
use herald_core::time::Timestamp;
use herald_store::WebhookRecord;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use tokio::time::{Instant, timeout_at};
use url::Host;

use crate::metrics::Outcome;
use crate::{DeliveryConfig, Unsealable};
use herald_guard::{AddressGuard, HostRefused};

use crate::request::{self, Message, Prepared, TargetError};
use crate::targets::OpenedTargets;

/// Resolves with the system resolver and drops the addresses the guard refuses.
struct GuardedResolver {
    guard: AddressGuard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept = guard.keep_allowed(&host, resolved)?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

fn install_crypto_provider() {
    // Fails only when a provider is installed already, which then serves as well.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn build_client(
    config: &DeliveryConfig,
    guard: AddressGuard,
) -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(redirect::Policy::none())
        .timeout(config.request_timeout)
        .user_agent(USER_AGENT)
        .dns_resolver(GuardedResolver { guard })
        .build()
}

/// A response, read up to the body cap.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Why the body could not be read to its end (or to the cap).
    pub body_error: Option<String>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// No response came.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: String,
    /// Retrying cannot help: the target is refused or the webhook cannot be read.
    pub permanent: bool,
    /// What kind of failure, for the metrics.
    pub outcome: Outcome,
}

impl Failure {
    fn permanent(error: impl fmt::Display, outcome: Outcome) -> Self {
        Self {
            error: error.to_string(),
            permanent: true,
            outcome,
        }
    }
}

/// One request and what came of it, ready for the log.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub started_at: Timestamp,
    pub duration: Duration,
    pub request_url: String,
    pub request_headers: Vec<(String, String)>,
    pub result: Result<Reply, Failure>,
}

impl Exchange {
    pub fn duration_ms(&self) -> u32 {
        u32::try_from(self.duration.as_millis()).unwrap_or(u32::MAX)
    }
}

/// Sends webhook requests: unseals the target, signs, checks the address,
/// and reads the capped response within the timeout.
pub(crate) struct Sender {
    client: reqwest::Client,
    guard: AddressGuard,
    cipher: SecretCipher,
    targets: OpenedTargets,
    timeout: Duration,
    body_cap: usize,
}

impl Sender {
    pub fn new(config: &DeliveryConfig, cipher: SecretCipher) -> Result<Self, reqwest::Error> {
        let guard = AddressGuard::new(config.allow_cidrs.clone());
        Ok(Self {
            client: build_client(config, guard.clone())?,
            guard,
            cipher,
            targets: OpenedTargets::default(),
            timeout: config.request_timeout,
            body_cap: config.response_body_cap,
        })
    }

    /// POSTs `payload` to the webhook as event `message_id` of `event_type`,
    /// with the native headers of the type's `family` and those its
    /// `properties` call for. Nothing is sent when this node's key cannot
    /// open the webhook's URL or secret.
    pub async fn send(
        &self,
        webhook: &WebhookRecord,
        message_id: &str,
        event_type: &str,
        family: Family,
        payload: Vec<u8>,
        properties: &BTreeMap<String, String>,
    ) -> Result<Exchange, Unsealable> {
        let started_at = Timestamp::now();
        let clock = Instant::now();
        let message = Message {
            id: message_id,
            event_type,
            timestamp_secs: started_at.seconds(),
            payload: &payload,
            properties,
        };
        let target = match self.targets.open(&self.cipher, webhook) {
            Ok(target) => Ok(target),
            Err(TargetError::Unsealable(unsealable)) => return Err(unsealable),
            Err(TargetError::Invalid(error)) => Err(error),
        };
        let prepared = target.and_then(|t| request::prepare(&t, &message, family));
        let (request_url, request_headers, result) = match prepared {
            Err(error) => (
                webhook.url_display.clone(),
                Vec::new(),
                Err(Failure::permanent(error, Outcome::InvalidTarget)),
            ),
            Ok(prepared) => {
                let logged = request::redacted(&prepared.headers);
                let display = prepared.display_url.clone();
                (display, logged, self.exchange(prepared, payload).await)
            }
        };
        Ok(Exchange {
            started_at,
            duration: clock.elapsed(),
            request_url,
            request_headers,
            result,
        })
    }

    async fn exchange(&self, prepared: Prepared, payload: Vec<u8>) -> Result<Reply, Failure> {
        if let Some(ip) = literal_ip(prepared.url.host()) {
            self.guard
                .check(ip)
                .map_err(|refused| Failure::permanent(refused, Outcome::RefusedByGuard))?;
        }
        let deadline = Instant::now() + self.timeout;
        let sending = self
            .client
            .post(prepared.url)
            .headers(prepared.headers)
            .body(payload)
            .send();
        let response = match timeout_at(deadline, sending).await {
            Err(_) => return Err(self.timed_out()),
            Ok(Err(e)) => return Err(self.transport_failure(e)),
            Ok(Ok(response)) => response,
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let (body, body_error) = self.read_capped(response, deadline).await;
        Ok(Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            body_error,
        })
    }

    /// Reads the body as it streams in and stops at the cap, so a huge or
    /// endless response costs no more than the cap.
    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        deadline: Instant,
    ) -> (Vec<u8>, Option<String>) {
        let mut body = Vec::new();
        while body.len() < self.body_cap {
            match timeout_at(deadline, response.chunk()).await {
                Err(_) => return (body, Some(self.timed_out().error)),
                Ok(Err(e)) => return (body, Some(describe(e))),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => {
                    let take = chunk.len().min(self.body_cap - body.len());
                    body.extend_from_slice(&chunk[..take]);
                }
            }
        }
        (body, None)
    }

    fn timed_out(&self) -> Failure {
        Failure {
            error: format!("timed out after {:?}", self.timeout),
            permanent: false,
            outcome: Outcome::Timeout,
        }
    }

    fn transport_failure(&self, e: reqwest::Error) -> Failure {
        if e.is_timeout() {
            return self.timed_out();
        }
        match guard_refusal(&e) {
            Some(refused) => Failure::permanent(refused, Outcome::RefusedByGuard),
            None => Failure {
                outcome: transport_outcome(&e),
                error: describe(e),
                permanent: false,
            },
        }
    }
}

fn literal_ip(host: Option<Host<&str>>) -> Option<IpAddr> {
    match host? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

/// The error and its causes on one line, without the URL reqwest would add
/// (the log shows the display URL next to it already).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        let part = inner.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = inner.source();
    }
    text
}

/// A failure before any answer: the TLS handshake, the name lookup, or else
/// the connection (refused, reset, or cut before an answer).
fn transport_outcome(e: &reqwest::Error) -> Outcome {
    let mut cause: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(inner) = cause {
        if inner.downcast_ref::<rustls::Error>().is_some() {
            return Outcome::Tls;
        }
        // hyper-util names a failed lookup so; the resolver's own error is an io::Error.
        if inner.to_string().starts_with("dns error") {
            return Outcome::Dns;
        }
        cause = inner.source();
    }
    Outcome::Connect
}

fn guard_refusal(e: &reqwest::Error) -> Option<&HostRefused> {
    let mut cause: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(inner) = cause {
        if let Some(refused) = inner.downcast_ref::<HostRefused>() {
            return Some(refused);
        }
        cause = inner.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses_and_says_why_when_none_remain() {
        let refusing = GuardedResolver {
            guard: AddressGuard::default(),
        };
        let err = refusing
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .unwrap();
        let refused = err.downcast_ref::<HostRefused>().expect("a guard refusal");
        assert!(
            refused
                .to_string()
                .contains("localhost resolves only to refused addresses"),
            "{refused}"
        );

        let allowing = GuardedResolver {
            guard: AddressGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
        };
        let kept: Vec<SocketAddr> = allowing
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!kept.is_empty());
        assert!(
            kept.iter().all(|a| a.ip().is_loopback() && a.is_ipv4()),
            "{kept:?}"
        );
    }

    #[test]
    fn literal_hosts_are_recognised() {
        let v4 = url::Url::parse("http://127.0.0.1:8080/").unwrap();
        let v6 = url::Url::parse("http://[::ffff:7f00:1]/").unwrap();
        let name = url::Url::parse("http://example.com/").unwrap();
        assert_eq!(literal_ip(v4.host()), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(
            literal_ip(v6.host()),
            Some("::ffff:127.0.0.1".parse().unwrap())
        );
        assert_eq!(literal_ip(name.host()), None);
    }
}
