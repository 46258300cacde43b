//! The delivery engine against a real SQLite store and a real HTTP receiver on
//! 127.0.0.1. Every wait is bounded; nothing asserts on how long things took.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

mod catalogue;
mod flow;
mod health;
mod receiver;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use herald_core::cipher::{SealedColumn, SecretCipher};
use herald_core::event_type::EventTypePattern;
use herald_core::id::{EventId, WebhookId};
use herald_core::retry::RetrySchedule;
use herald_core::secret::Secret;
use herald_core::webhook::TargetUrl;
use herald_delivery::{
    DeliveryConfig, Engine, EngineHandle, JanitorConfig, LiveCatalogue, spawn_janitor,
};
use herald_sqlite::{SqliteConfig, SqliteStore};
use herald_store::{
    AttemptRecord, DeliveryDetail, DeliveryQuery, DeliveryRecord, DeliveryStatus, HealthPolicy,
    HealthState, NewEvent, NewWebhook, PurgePolicy, Store, WebhookRecord,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use receiver::Receiver;

const WAIT: Duration = Duration::from_secs(20);
const BODY_CAP: usize = 1024;

/// Polls `probe` until it yields a value, for at most [`WAIT`].
async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast_schedule(retries: usize) -> RetrySchedule {
    RetrySchedule {
        delays: vec![Duration::from_millis(10); retries],
        jitter: 0.0,
        max_retry_after: Duration::from_secs(3600),
    }
}

fn config() -> DeliveryConfig {
    DeliveryConfig {
        request_timeout: Duration::from_secs(5),
        max_in_flight: 16,
        max_in_flight_per_webhook: 2,
        claim_batch: 16,
        poll_interval: Duration::from_millis(50),
        retry: fast_schedule(2),
        response_body_cap: BODY_CAP,
        allow_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
        health: compressed_health(),
        adaptive_concurrency: true,
        metrics_per_webhook: false,
    }
}

/// Endpoint health with its pauses compressed to fractions of a second, so
/// tests with failing receivers never wait out a real minute.
fn compressed_health() -> HealthPolicy {
    HealthPolicy {
        first_pause: Duration::from_millis(100),
        longest_pause: Duration::from_millis(800),
        ..HealthPolicy::default()
    }
}

/// A store in a temporary directory, an engine over it, and the cipher that
/// seals webhook secrets.
struct Harness {
    store: Arc<dyn Store>,
    catalogue: Arc<LiveCatalogue>,
    cipher: SecretCipher,
    shutdown: CancellationToken,
    engine: EngineHandle,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(config: DeliveryConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Arc::new(
            SqliteStore::open(&dir.path().join("herald.db"), SqliteConfig::default()).unwrap(),
        );
        let catalogue = Arc::new(LiveCatalogue::load(sqlite.clone()).await.unwrap());
        let store: Arc<dyn Store> = sqlite;
        let cipher = SecretCipher::new(&SecretCipher::generate_key()).unwrap();
        let shutdown = CancellationToken::new();
        let engine = Engine::start(
            Arc::clone(&store),
            cipher.clone(),
            config,
            Arc::clone(&catalogue),
            shutdown.clone(),
        )
        .unwrap();
        Self {
            store,
            catalogue,
            cipher,
            shutdown,
            engine,
            _dir: dir,
        }
    }

    /// Stops this engine and starts another over the same store.
    async fn restart(self, config: DeliveryConfig) -> Self {
        let cipher = self.cipher.clone();
        self.restart_with(cipher, config).await
    }

    /// Stops this engine and starts another over the same store with `cipher`,
    /// as another node with its own secrets key would.
    async fn restart_with(self, cipher: SecretCipher, config: DeliveryConfig) -> Self {
        self.shutdown.cancel();
        self.engine.join().await;
        let shutdown = CancellationToken::new();
        let engine = Engine::start(
            Arc::clone(&self.store),
            cipher.clone(),
            config,
            Arc::clone(&self.catalogue),
            shutdown.clone(),
        )
        .unwrap();
        Self {
            shutdown,
            engine,
            cipher,
            ..self
        }
    }

    /// A webhook for the types these tests publish. Not `*`: that would also
    /// subscribe it to the engine's own `herald:*` reports about it.
    async fn webhook(&self, url: &str, secret: &Secret) -> WebhookRecord {
        self.webhook_for(url, secret, &["changeset:*", "ping", "sonarqube:*"])
            .await
    }

    async fn webhook_for(&self, url: &str, secret: &Secret, patterns: &[&str]) -> WebhookRecord {
        self.create_webhook(url, secret, patterns, |_| {}).await
    }

    /// A webhook like [`Harness::webhook`] with its own settings set by `tune`.
    async fn tuned_webhook(&self, url: &str, tune: impl FnOnce(&mut NewWebhook)) -> WebhookRecord {
        let patterns = ["changeset:*", "ping", "sonarqube:*"];
        self.create_webhook(url, &Secret::generate(), &patterns, tune)
            .await
    }

    async fn create_webhook(
        &self,
        url: &str,
        secret: &Secret,
        patterns: &[&str],
        tune: impl FnOnce(&mut NewWebhook),
    ) -> WebhookRecord {
        let target = TargetUrl::parse(url).unwrap();
        let id = WebhookId::new();
        let mut new = NewWebhook {
            health_overrides: Default::default(),
            flow_limits: Default::default(),
            ordering: Default::default(),
            id,
            name: "receiver".into(),
            url_display: target.display(),
            url_sealed: self.cipher.seal(
                target.expose().as_bytes(),
                &SealedColumn::WebhookUrl.of(id.0),
            ),
            secret_sealed: self.cipher.seal(
                secret.expose().as_bytes(),
                &SealedColumn::WebhookSecret.of(id.0),
            ),
            event_types: patterns
                .iter()
                .map(|p| EventTypePattern::parse("event_types", p).unwrap())
                .collect(),
            project: None,
            enabled: true,
        };
        tune(&mut new);
        self.store.create_webhook(new, 100).await.unwrap()
    }

    async fn publish(&self, event_type: &str, payload: &[u8]) -> EventId {
        let event = NewEvent {
            id: EventId::new(),
            event_type: event_type.into(),
            project: None,
            payload: payload.to_vec(),
            properties: BTreeMap::new(),
            ordering_key: None,
        };
        let published = self.store.publish(event, None).await.unwrap();
        self.engine.wake();
        published.event_id
    }

    async fn deliveries(&self, webhook: WebhookId) -> Vec<DeliveryRecord> {
        let query = DeliveryQuery {
            webhook_id: webhook,
            status: None,
            since: None,
            until: None,
            cursor: None,
            limit: 500,
        };
        self.store.list_deliveries(query).await.unwrap().items
    }

    /// Waits until every delivery of `webhook` (`count` of them) has `status`.
    async fn settled(
        &self,
        webhook: WebhookId,
        count: usize,
        status: DeliveryStatus,
    ) -> Vec<DeliveryRecord> {
        eventually(&format!("{count} deliveries {status:?}"), async || {
            let all = self.deliveries(webhook).await;
            (all.len() == count && all.iter().all(|d| d.status == status)).then_some(all)
        })
        .await
    }

    /// The one delivery of `webhook`, once it has `status`, with its attempts.
    async fn only_delivery(&self, webhook: WebhookId, status: DeliveryStatus) -> DeliveryDetail {
        let delivery = self.settled(webhook, 1, status).await.remove(0);
        self.store.get_delivery(delivery.id).await.unwrap().unwrap()
    }

    /// Stops the engine and waits for every attempt task. The store stays
    /// open, with its files, for as long as the answer lives: the database's
    /// directory must outlive every use of the store (see [`Stopped`]).
    async fn stop(self) -> Stopped {
        self.shutdown.cancel();
        self.engine.join().await;
        Stopped {
            store: self.store,
            _dir: self._dir,
        }
    }
}

/// What is left of a stopped harness: its store, and the directory that holds
/// the database. A read-only SQLite connection opens the write-ahead log on its
/// first read, by name, so a store whose directory has been removed fails
/// there, on whichever reader thread has not read yet.
struct Stopped {
    // Declared first, so dropping closes the store before the directory goes.
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

/// Standard Webhooks, written from the specification rather than with
/// herald-core's signer: HMAC-SHA256 of `id.timestamp.body` keyed with the
/// base64-decoded part of a `whsec_` secret, sent as `v1,<base64>`.
fn verify_standard_webhook(secret: &str, headers: &axum::http::HeaderMap, body: &[u8]) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", header("webhook-id"), header("webhook-timestamp")).as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header("webhook-signature")
        .split(' ')
        .any(|sig| sig == expected)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_the_exact_bytes_with_a_signature_an_independent_verifier_accepts() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    let secret = Secret::generate();
    let first = h.webhook(&receiver.url("/ok"), &secret).await;
    let second = h.webhook(&receiver.url("/ok?copy=2"), &secret).await;
    // Odd spacing, key order and escapes: any re-serialization would change them.
    let payload = "{\"z\": 1,   \"a\":\"\u{e9}\\u00e9\",\"n\":[1.50, 2e3]}\n".as_bytes();
    let event_id = h.publish("changeset:update", payload).await;

    h.settled(first.id, 1, DeliveryStatus::Succeeded).await;
    h.settled(second.id, 1, DeliveryStatus::Succeeded).await;
    let hits = receiver.hits("/ok");
    assert_eq!(hits.len(), 2, "one request per webhook");
    for hit in &hits {
        assert_eq!(hit.body.as_ref(), payload);
        assert!(verify_standard_webhook(
            secret.expose(),
            &hit.headers,
            &hit.body
        ));
        assert_eq!(
            hit.headers["webhook-id"],
            event_id.to_string().as_str(),
            "the event id, the same for every webhook"
        );
        assert_eq!(
            hit.headers["content-type"],
            "application/json; charset=utf-8"
        );
        assert_eq!(hit.headers["user-agent"], herald_core::USER_AGENT);
        assert_eq!(hit.headers["x-herald-event-type"], "changeset:update");
        let ts: i64 = hit.headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(ts > 1_700_000_000, "unix seconds, got {ts}");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_with_credentials_sends_basic_auth_and_logs_it_obscured() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    let url = receiver
        .url("/ok")
        .replace("http://", "http://ops%40corp:p%3Ass@");
    let webhook = h.webhook(&url, &Secret::generate()).await;
    h.publish("ping", b"{}").await;

    let detail = h.only_delivery(webhook.id, DeliveryStatus::Succeeded).await;
    let hit = receiver.hits("/ok").remove(0);
    let expected = format!("Basic {}", STANDARD.encode("ops@corp:p:ss"));
    assert_eq!(hit.headers["authorization"], expected.as_str());
    let attempt = &detail.attempts[0];
    assert!(
        attempt.request_url.contains("***:***@127.0.0.1"),
        "{}",
        attempt.request_url
    );
    assert_eq!(
        header(&attempt.request_headers, "authorization"),
        Some("<redacted>")
    );
    let logged = format!("{attempt:?}");
    assert!(
        !logged.contains("p%3Ass") && !logged.contains("ops%40corp") && !logged.contains(&expected),
        "{logged}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_key_cannot_open_a_webhook_gives_its_deliveries_back_and_reports_a_fault() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    let right_key = h.cipher.clone();
    let webhook = h.webhook(&receiver.url("/ok"), &Secret::generate()).await;
    let wrong_key = SecretCipher::new(&SecretCipher::generate_key()).unwrap();
    let h = h.restart_with(wrong_key, config()).await;
    assert_eq!(h.engine.fault(), None);
    for n in 0..3 {
        h.publish("ping", format!("{{\"n\":{n}}}").as_bytes()).await;
    }

    let fault = eventually("the node reports its key fault", async || h.engine.fault()).await;
    assert!(fault.contains("secrets key"), "{fault}");
    // Released, not leased: due now, pending, and no attempt made or counted.
    let released = eventually("every delivery released", async || {
        let all = h.deliveries(webhook.id).await;
        let now = herald_core::time::Timestamp::now();
        (all.len() == 3
            && all
                .iter()
                .all(|d| d.next_attempt_at.is_some_and(|at| at <= now)))
        .then_some(all)
    })
    .await;
    for delivery in &released {
        assert_eq!(delivery.status, DeliveryStatus::Pending);
        assert_eq!(delivery.attempts, 0);
        let detail = h.store.get_delivery(delivery.id).await.unwrap().unwrap();
        assert!(detail.attempts.is_empty(), "{:?}", detail.attempts);
    }
    assert!(receiver.hits("/ok").is_empty());

    // A node with the cluster's key delivers them.
    let h = h.restart_with(right_key, config()).await;
    h.engine.wake();
    h.settled(webhook.id, 3, DeliveryStatus::Succeeded).await;
    assert_eq!(h.engine.fault(), None);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_retried_with_the_same_id_until_it_succeeds() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    let secret = Secret::generate();
    let webhook = h.webhook(&receiver.url("/flaky"), &secret).await;
    h.publish("ping", b"{\"n\":1}").await;

    let detail = h.only_delivery(webhook.id, DeliveryStatus::Succeeded).await;
    let statuses: Vec<_> = detail.attempts.iter().map(|a| a.response_status).collect();
    assert_eq!(statuses, vec![Some(500), Some(200)]);
    assert_eq!(detail.delivery.attempts, 2);
    let hits = receiver.hits("/flaky");
    assert_eq!(hits[0].headers["webhook-id"], hits[1].headers["webhook-id"]);
    assert!(hits.iter().all(|hit| verify_standard_webhook(
        secret.expose(),
        &hit.headers,
        &hit.body
    )));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_schedule_ends_in_failed() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    let webhook = h
        .webhook(&receiver.url("/always-500"), &Secret::generate())
        .await;
    h.publish("ping", b"{}").await;

    let detail = h.only_delivery(webhook.id, DeliveryStatus::Failed).await;
    assert_eq!(detail.attempts.len(), 3, "the first try and two retries");
    assert!(
        detail
            .attempts
            .iter()
            .all(|a| a.response_status == Some(500))
    );
    assert_eq!(receiver.hits("/always-500").len(), 3);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_webhook() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    let webhook = h.webhook(&receiver.url("/gone"), &Secret::generate()).await;
    h.publish("ping", b"{}").await;

    let detail = h.only_delivery(webhook.id, DeliveryStatus::Failed).await;
    assert_eq!(detail.attempts.len(), 1, "a 410 is not retried");
    let webhook = h.store.get_webhook(webhook.id).await.unwrap().unwrap();
    assert!(!webhook.enabled);
    assert!(webhook.disabled_reason.unwrap().contains("410"));
    // Its health says so too, for the webhook's page.
    let health = eventually("the 410 noted in the health", async || {
        let webhook = h.store.get_webhook(webhook.id).await.unwrap()?;
        (webhook.health.consecutive_failures == 1).then_some(webhook.health)
    })
    .await;
    assert_eq!(health.last_error.as_deref(), Some("HTTP 410"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_a_failure_that_records_its_location_and_is_not_followed() {
    let receiver = Receiver::start().await;
    let h = Harness::start(DeliveryConfig {
        retry: fast_schedule(0),
        ..config()
    })
    .await;
    let webhook = h
        .webhook(&receiver.url("/redirect"), &Secret::generate())
        .await;
    h.publish("ping", b"{}").await;

    let detail = h.only_delivery(webhook.id, DeliveryStatus::Failed).await;
    let attempt = &detail.attempts[0];
    assert_eq!(attempt.response_status, Some(302));
    let error = attempt.error.as_deref().unwrap();
    assert!(error.contains(&receiver.url("/redirect-target")), "{error}");
    assert_eq!(
        header(&attempt.response_headers, "location"),
        Some(receiver.url("/redirect-target").as_str())
    );
    assert!(receiver.hits("/redirect-target").is_empty());
    h.stop().await;
}

fn refused_once(detail: &DeliveryDetail, reason: &str) -> AttemptRecord {
    assert_eq!(detail.attempts.len(), 1, "a refused target is not retried");
    let attempt = detail.attempts[0].clone();
    assert_eq!(attempt.response_status, None);
    let error = attempt.error.as_deref().unwrap();
    assert!(
        error.contains(reason) && error.contains("loopback"),
        "{error}"
    );
    attempt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_refuses_loopback_unless_allowed() {
    let receiver = Receiver::start().await;
    let refusing = DeliveryConfig {
        allow_cidrs: vec![],
        ..config()
    };
    let h = Harness::start(refusing.clone()).await;
    let literal = h.webhook(&receiver.url("/ok"), &Secret::generate()).await;
    let by_name = h
        .webhook(
            &receiver.url("/ok").replace("127.0.0.1", "localhost"),
            &Secret::generate(),
        )
        .await;
    h.publish("ping", b"{}").await;

    let literal_detail = h.only_delivery(literal.id, DeliveryStatus::Failed).await;
    refused_once(&literal_detail, "refused 127.0.0.1");
    let by_name_detail = h.only_delivery(by_name.id, DeliveryStatus::Failed).await;
    refused_once(
        &by_name_detail,
        "localhost resolves only to refused addresses",
    );
    assert!(receiver.hits("/ok").is_empty());

    let h = h.restart(config()).await;
    h.store
        .redeliver(literal_detail.delivery.id)
        .await
        .unwrap()
        .unwrap();
    h.store
        .redeliver(by_name_detail.delivery.id)
        .await
        .unwrap()
        .unwrap();
    h.engine.wake();
    h.settled(literal.id, 1, DeliveryStatus::Succeeded).await;
    h.settled(by_name.id, 1, DeliveryStatus::Succeeded).await;
    assert_eq!(receiver.hits("/ok").len(), 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_does_not_hold_back_a_healthy_one() {
    let receiver = Receiver::start().await;
    // Long enough that the hanging requests are still waiting when the healthy
    // webhook is done; the receiver is released at the end, so no test waits it out.
    let h = Harness::start(DeliveryConfig {
        request_timeout: Duration::from_secs(15),
        ..config()
    })
    .await;
    let hanging = h.webhook(&receiver.url("/hang"), &Secret::generate()).await;
    let healthy = h.webhook(&receiver.url("/ok"), &Secret::generate()).await;
    for i in 0..20 {
        h.publish("ping", format!("{{\"i\":{i}}}").as_bytes()).await;
    }

    h.settled(healthy.id, 20, DeliveryStatus::Succeeded).await;
    assert_eq!(receiver.hits("/ok").len(), 20);
    let stuck = h.deliveries(hanging.id).await;
    assert!(
        stuck
            .iter()
            .all(|d| d.status == DeliveryStatus::Pending && d.attempts == 0)
    );
    assert_eq!(
        receiver.hanging_now(),
        2,
        "the hanging webhook holds exactly its own two slots"
    );
    assert_eq!(
        receiver.most_hanging_at_once(),
        2,
        "never more than its per-webhook bound"
    );

    receiver.release();
    h.settled(hanging.id, 20, DeliveryStatus::Succeeded).await;
    assert_eq!(receiver.most_hanging_at_once(), 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_postpones_the_retry() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    let webhook = h.webhook(&receiver.url("/busy"), &Secret::generate()).await;
    h.publish("ping", b"{}").await;

    let (delivery, attempt) = eventually("the 429 attempt recorded", async || {
        let delivery = h.deliveries(webhook.id).await.pop()?;
        let detail = h.store.get_delivery(delivery.id).await.unwrap()?;
        let attempt = detail.attempts.first()?.clone();
        Some((detail.delivery, attempt))
    })
    .await;
    assert_eq!(attempt.response_status, Some(429));
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    // The schedule says 10 ms; the receiver asked for 120 s, which ends past
    // the schedule's whole 20 ms span, so this 429 used up a retry.
    let postponed_ms = delivery.next_attempt_at.unwrap().millis() - attempt.started_at.millis();
    assert!(
        postponed_ms >= 110_000,
        "retry due {postponed_ms} ms after the attempt"
    );
    assert_eq!(receiver.hits("/busy").len(), 1);
    // The receiver asked for the whole webhook to wait, not just this delivery.
    let throttled = h.store.get_webhook(webhook.id).await.unwrap().unwrap();
    assert_eq!(throttled.health.state, HealthState::Throttled);
    assert_eq!(throttled.health.consecutive_failures, 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_the_receiver_asks_for_uses_up_no_retry() {
    let receiver = Receiver::start().await;
    // Counted as a failure, the 429 would wait out the schedule's 30 s first
    // retry, longer than `eventually` waits.
    let h = Harness::start(DeliveryConfig {
        retry: RetrySchedule {
            delays: vec![Duration::from_secs(30); 2],
            ..fast_schedule(0)
        },
        ..config()
    })
    .await;
    let webhook = h
        .webhook(&receiver.url("/busy-once"), &Secret::generate())
        .await;
    h.publish("ping", b"{}").await;

    let detail = h.only_delivery(webhook.id, DeliveryStatus::Succeeded).await;
    let [asked, retried] = &detail.attempts[..] else {
        panic!("expected two attempts, got {:?}", detail.attempts);
    };
    assert_eq!(asked.response_status, Some(429));
    assert_eq!(retried.response_status, Some(204));
    let waited_ms = retried.started_at.millis() - asked.started_at.millis();
    assert!(
        (1_000..5_000).contains(&waited_ms),
        "the retry came {waited_ms} ms after the 429 that asked for 1 s"
    );
    assert_eq!(receiver.hits("/busy-once").len(), 2);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_body_is_capped() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    let webhook = h.webhook(&receiver.url("/big"), &Secret::generate()).await;
    h.publish("ping", b"{}").await;

    let detail = h.only_delivery(webhook.id, DeliveryStatus::Succeeded).await;
    let body = detail.attempts[0].response_body.as_deref().unwrap();
    assert_eq!(body.len(), BODY_CAP);
    assert!(body.bytes().all(|b| b == b'x'));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_answers_synchronously_and_records_nothing() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    let secret = Secret::generate();
    let webhook = h.webhook(&receiver.url("/ok"), &secret).await;

    let outcome = h
        .engine
        .send_test(&webhook, "herald:ping", b"{\"zen\":\"hi\"}".to_vec())
        .await
        .unwrap();
    assert!(outcome.success);
    assert_eq!(outcome.status, Some(200));
    assert_eq!(outcome.body_excerpt.as_deref(), Some("thanks"));
    assert_eq!(outcome.error, None);
    let hit = receiver.hits("/ok").remove(0);
    assert_eq!(hit.body.as_ref(), b"{\"zen\":\"hi\"}");
    assert_eq!(hit.headers["x-herald-event-type"], "herald:ping");
    assert!(verify_standard_webhook(
        secret.expose(),
        &hit.headers,
        &hit.body
    ));
    assert!(h.deliveries(webhook.id).await.is_empty());

    let gone = h.webhook(&receiver.url("/gone"), &secret).await;
    let outcome = h
        .engine
        .send_test(&gone, "herald:ping", b"{}".to_vec())
        .await
        .unwrap();
    assert!(!outcome.success);
    assert_eq!(outcome.status, Some(410));
    assert!(
        h.store.get_webhook(gone.id).await.unwrap().unwrap().enabled,
        "a test changes nothing"
    );
    h.stop().await;

    let refusing = Harness::start(DeliveryConfig {
        allow_cidrs: vec![],
        ..config()
    })
    .await;
    let webhook = refusing.webhook(&receiver.url("/ok"), &secret).await;
    let outcome = refusing
        .engine
        .send_test(&webhook, "herald:ping", b"{}".to_vec())
        .await
        .unwrap();
    assert!(!outcome.success);
    assert_eq!(outcome.status, None);
    assert!(outcome.error.unwrap().contains("loopback"));
    assert_eq!(receiver.hits("/ok").len(), 1);
    refusing.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_janitor_purges_finished_deliveries() {
    let receiver = Receiver::start().await;
    let h = Harness::start(config()).await;
    let webhook = h.webhook(&receiver.url("/ok"), &Secret::generate()).await;
    h.publish("ping", b"{}").await;
    let delivery = h
        .only_delivery(webhook.id, DeliveryStatus::Succeeded)
        .await
        .delivery;

    let janitor = JanitorConfig {
        interval: Duration::from_millis(50),
        policy: PurgePolicy {
            retention: Duration::ZERO,
            idempotency_ttl: Duration::ZERO,
            batch: 100,
        },
    };
    let stop_janitor = CancellationToken::new();
    let task = spawn_janitor(Arc::clone(&h.store), janitor, stop_janitor.clone());
    eventually("the delivery purged", async || {
        h.store
            .get_delivery(delivery.id)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    stop_janitor.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_failures_are_retried_and_logged_without_a_status() {
    let receiver = Receiver::start().await;
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let h = Harness::start(DeliveryConfig {
        request_timeout: Duration::from_millis(300),
        retry: fast_schedule(1),
        ..config()
    })
    .await;
    let refused = h.webhook(&closed_url, &Secret::generate()).await;
    let hanging = h.webhook(&receiver.url("/hang"), &Secret::generate()).await;
    h.publish("ping", b"{}").await;

    for (webhook, expected) in [
        (refused.id, "error sending request"),
        (hanging.id, "timed out after 300ms"),
    ] {
        let detail = h.only_delivery(webhook, DeliveryStatus::Failed).await;
        assert_eq!(
            detail.attempts.len(),
            2,
            "retried once, as the schedule says"
        );
        for attempt in &detail.attempts {
            assert_eq!(attempt.response_status, None);
            let error = attempt.error.as_deref().unwrap();
            assert!(error.contains(expected), "{error}");
        }
    }
    receiver.release();
    h.stop().await;
}
