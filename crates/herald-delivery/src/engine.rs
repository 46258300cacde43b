//! The dispatcher: claims due deliveries by lease, runs one task per attempt
//! within the in-flight bounds, records each attempt and what happens next.
//!
//! Fairness comes from the per-webhook bound: a webhook with too much in
//! flight is left out of claims, so a receiver that hangs for the whole
//! timeout holds back only its own deliveries. Nothing here holds a store
//! transaction across an HTTP call: claiming and recording are separate calls.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use herald_catalogue::keys::HERALD_PREFIX;
use herald_core::cipher::SecretCipher;
use herald_core::id::{AttemptId, DeliveryId, EventId, WebhookId};
use herald_core::retry::{RetrySchedule, parse_retry_after};
use herald_core::time::Timestamp;
use herald_store::{
    AttemptOutcome, AttemptRecord, ClaimRequest, ClaimedDelivery, EventRecord, HealthSignal,
    LeaseToken, NewEvent, NextStep, Store, StoreError, WebhookRecord, lease_for,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalogue::LiveCatalogue;
use crate::client::{Exchange, Reply, Sender};
use crate::health;
use crate::metrics::{self, Trigger};
use crate::operational::{Operational, Streaks, health_reports};
use crate::{DeliveryConfig, DeliveryError, Unsealable};

/// Extra time `join` allows past the request timeout for recording attempts.
const RECORD_GRACE: Duration = Duration::from_secs(5);
const STORE_BACKOFF_MIN: Duration = Duration::from_millis(100);
const STORE_BACKOFF_MAX: Duration = Duration::from_secs(5);
const RECORD_TRIES: u32 = 3;

/// The delivery engine; [`Engine::start`] runs it.
pub struct Engine;

impl Engine {
    /// Starts the dispatcher on the current tokio runtime. It stops claiming
    /// when `shutdown` is cancelled. `catalogue` gives each event type's family,
    /// which decides the native headers its deliveries carry; the handle shares it
    /// with the API.
    pub fn start(
        store: Arc<dyn Store>,
        cipher: SecretCipher,
        config: DeliveryConfig,
        catalogue: Arc<LiveCatalogue>,
        shutdown: CancellationToken,
    ) -> Result<EngineHandle, DeliveryError> {
        check_config(&config)?;
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| DeliveryError::NoRuntime)?;
        let sender = Sender::new(&config, cipher).map_err(DeliveryError::Client)?;
        let shared = Arc::new(Shared {
            store,
            catalogue,
            streaks: Streaks::default(),
            sender,
            slots: Mutex::new(Slots::new(
                config.max_in_flight,
                config.max_in_flight_per_webhook,
            )),
            config,
            unopenable: Mutex::new(Unopenable::default()),
            wake: Notify::new(),
            shutdown,
            tasks: TaskTracker::new(),
        });
        shared
            .tasks
            .spawn_on(dispatch(Arc::clone(&shared)), &runtime);
        Ok(EngineHandle { shared })
    }
}

fn check_config(config: &DeliveryConfig) -> Result<(), DeliveryError> {
    let at_least_one = [
        ("max_in_flight", config.max_in_flight),
        (
            "max_in_flight_per_webhook",
            config.max_in_flight_per_webhook,
        ),
        ("claim_batch", config.claim_batch),
    ];
    for (setting, value) in at_least_one {
        if value == 0 {
            return Err(DeliveryError::Config {
                setting,
                rule: "must be at least 1",
            });
        }
    }
    if config.health.failing_after == 0 {
        return Err(DeliveryError::Config {
            setting: "health.failing_after",
            rule: "must be at least 1",
        });
    }
    if config.health.longest_pause < config.health.first_pause {
        return Err(DeliveryError::Config {
            setting: "health.longest_pause",
            rule: "must be at least health.first_pause",
        });
    }
    let longer_than_zero = [
        ("request_timeout", config.request_timeout),
        ("poll_interval", config.poll_interval),
        ("health.first_pause", config.health.first_pause),
    ];
    for (setting, value) in longer_than_zero {
        if value.is_zero() {
            return Err(DeliveryError::Config {
                setting,
                rule: "must be longer than zero",
            });
        }
    }
    Ok(())
}

/// Controls a running engine. Cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<Shared>,
}

/// What a test request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    /// A 2xx answer.
    pub success: bool,
    pub status: Option<u16>,
    pub duration_ms: u32,
    /// The response body, capped like the delivery log's.
    pub body_excerpt: Option<String>,
    /// Why no response came, where a redirect pointed, or why the body was cut.
    pub error: Option<String>,
}

impl EngineHandle {
    /// New work was committed (a publish, a redeliver): look for due deliveries now.
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// The catalogue the engine reads families from, for the API to share.
    pub fn catalogue(&self) -> &Arc<LiveCatalogue> {
        &self.shared.catalogue
    }

    /// Why this node should not be given work, if it should not: its key
    /// could not open a webhook's sealed values, so it leaves their deliveries
    /// to other nodes until it is restarted with the right key.
    pub fn fault(&self) -> Option<String> {
        self.shared.unopenable().first.clone()
    }

    /// Sends one request synchronously to the webhook (the Test button), through
    /// the same client, guard and signing (native headers included) as real
    /// deliveries; records nothing.
    pub async fn send_test(
        &self,
        webhook: &WebhookRecord,
        event_type: &str,
        payload: Vec<u8>,
    ) -> Result<TestOutcome, Unsealable> {
        let message_id = EventId::new().to_string();
        let family = self.shared.catalogue.family_of(event_type).await;
        // A test is no search's notification: it has no part to announce.
        let exchange = self
            .shared
            .sender
            .send(
                webhook,
                &message_id,
                event_type,
                family,
                payload,
                &BTreeMap::new(),
            )
            .await?;
        let duration_ms = exchange.duration_ms();
        metrics::record_attempt(
            outcome_of(&exchange),
            Trigger::Test,
            exchange.duration,
            self.shared.config.metrics_per_webhook.then_some(webhook.id),
        );
        Ok(match exchange.result {
            Ok(reply) => TestOutcome {
                success: is_success(reply.status),
                status: Some(reply.status),
                duration_ms,
                error: reply_error(&reply),
                body_excerpt: Some(reply.body),
            },
            Err(failure) => TestOutcome {
                success: false,
                status: None,
                duration_ms,
                body_excerpt: None,
                error: Some(failure.error),
            },
        })
    }

    /// Waits for the dispatcher and in-flight attempts to finish after shutdown.
    /// The wait is bounded: attempts cut short keep their lease, which expires
    /// and makes them due again.
    pub async fn join(self) {
        let shared = self.shared;
        shared.shutdown.cancelled().await;
        shared.tasks.close();
        let grace = shared.config.request_timeout + RECORD_GRACE;
        if tokio::time::timeout(grace, shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                still_running = shared.tasks.len(),
                "delivery attempts still in flight at shutdown; they will be retried when their leases expire"
            );
        }
    }
}

struct Shared {
    store: Arc<dyn Store>,
    catalogue: Arc<LiveCatalogue>,
    /// Consecutive failed attempts per webhook, for `herald:delivery.recovered`.
    streaks: Streaks,
    sender: Sender,
    slots: Mutex<Slots>,
    config: DeliveryConfig,
    unopenable: Mutex<Unopenable>,
    /// Woken by `wake()` and by freed slots that make more work claimable.
    wake: Notify,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Shared {
    fn slots(&self) -> MutexGuard<'_, Slots> {
        // The slot counts stay consistent even if a holder panicked: every
        // update is a single step.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unopenable(&self) -> MutexGuard<'_, Unopenable> {
        // Each update is a single insert or assignment, consistent after a panic.
        self.unopenable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps until woken, `for_at_most` passes, or shutdown. Returns false on shutdown.
    async fn pause(&self, for_at_most: Duration) -> bool {
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            () = self.wake.notified() => true,
            () = tokio::time::sleep(for_at_most) => true,
        }
    }
}

/// Webhooks whose sealed values this node's key cannot open. Their deliveries
/// are left out of this node's claims (another node's key may open them), and
/// the first failure is the node's health fault until it restarts.
#[derive(Default)]
struct Unopenable {
    webhooks: HashSet<WebhookId>,
    first: Option<String>,
}

/// In-flight counts, overall and per webhook.
///
/// The store cannot cap a claim per webhook, so a claim is never larger than
/// the room left to any webhook it may return; and a webhook is left out of
/// claims once less than half its bound is free, so that room (and with it the
/// claim size) stays at least half the bound instead of dwindling to one.
struct Slots {
    total: usize,
    per_webhook: HashMap<WebhookId, usize>,
    max_total: usize,
    max_per_webhook: usize,
    refill: usize,
}

impl Slots {
    fn new(max_total: usize, max_per_webhook: usize) -> Self {
        Self {
            total: 0,
            per_webhook: HashMap::new(),
            max_total,
            max_per_webhook,
            refill: max_per_webhook.div_ceil(2),
        }
    }

    fn room(&self, in_flight: usize) -> usize {
        self.max_per_webhook.saturating_sub(in_flight)
    }

    /// Webhooks to leave out of the next claim.
    fn skipped(&self) -> Vec<WebhookId> {
        self.per_webhook
            .iter()
            .filter(|(_, n)| self.room(**n) < self.refill)
            .map(|(id, _)| *id)
            .collect()
    }

    /// How many deliveries the next claim may lease.
    fn claim_limit(&self, claim_batch: usize) -> usize {
        let least_room = self
            .per_webhook
            .values()
            .map(|n| self.room(*n))
            .filter(|room| *room >= self.refill)
            .fold(self.max_per_webhook, usize::min);
        claim_batch
            .min(self.max_total.saturating_sub(self.total))
            .min(least_room)
    }

    fn take(&mut self, webhook: WebhookId) {
        self.total += 1;
        *self.per_webhook.entry(webhook).or_default() += 1;
    }

    /// Frees a slot; true when that makes more work claimable.
    fn give_back(&mut self, webhook: WebhookId) -> bool {
        let webhook_claimable = self.give_back_webhook(webhook);
        self.give_back_total() || webhook_claimable
    }

    /// Frees the webhook's share of a slot; true when that makes the webhook claimable again.
    fn give_back_webhook(&mut self, webhook: WebhookId) -> bool {
        let Some(n) = self.per_webhook.get_mut(&webhook) else {
            return false;
        };
        let was_skipped = self.max_per_webhook.saturating_sub(*n) < self.refill;
        *n = n.saturating_sub(1);
        let now_claimable = self.max_per_webhook.saturating_sub(*n) >= self.refill;
        if *n == 0 {
            self.per_webhook.remove(&webhook);
        }
        was_skipped && now_claimable
    }

    /// Frees the node-wide share of a slot; true when the node was full.
    fn give_back_total(&mut self) -> bool {
        let was_full = self.total >= self.max_total;
        self.total = self.total.saturating_sub(1);
        was_full
    }
}

/// Holds one slot for the life of an attempt task, even one that panics.
///
/// The webhook's share is given back as soon as the HTTP exchange ends
/// ([`SlotGuard::exchange_done`]): the per-webhook bound is about what a receiver
/// sees, and recording the attempt (a durable write) need not hold it. The
/// node-wide share is kept until the attempt is recorded, which bounds the
/// memory of attempts waiting on the store.
struct SlotGuard {
    shared: Arc<Shared>,
    webhook: WebhookId,
    holds_webhook_share: bool,
}

impl SlotGuard {
    fn exchange_done(&mut self) {
        if std::mem::take(&mut self.holds_webhook_share)
            && self.shared.slots().give_back_webhook(self.webhook)
        {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let more_claimable = {
            let mut slots = self.shared.slots();
            if std::mem::take(&mut self.holds_webhook_share) {
                slots.give_back(self.webhook)
            } else {
                slots.give_back_total()
            }
        };
        if more_claimable {
            self.shared.wake.notify_one();
        }
    }
}

struct Backoff(Duration);

impl Backoff {
    fn next(&mut self) -> Duration {
        let now = self.0;
        self.0 = (self.0 * 2).min(STORE_BACKOFF_MAX);
        now
    }

    fn reset(&mut self) {
        self.0 = STORE_BACKOFF_MIN;
    }
}

async fn dispatch(shared: Arc<Shared>) {
    let lease = lease_for(shared.config.request_timeout);
    let poll = shared.config.poll_interval;
    let mut backoff = Backoff(STORE_BACKOFF_MIN);
    // Whether the last look found past-due work it could not claim (it belongs
    // to webhooks at their bound, or fell due just after the claim).
    let mut looked_again = false;
    while !shared.shutdown.is_cancelled() {
        let (limit, mut skip_webhooks) = {
            let slots = shared.slots();
            (
                slots.claim_limit(shared.config.claim_batch),
                slots.skipped(),
            )
        };
        skip_webhooks.extend(shared.unopenable().webhooks.iter().copied());
        if limit == 0 {
            // Every slot is busy; a freed one wakes us.
            if !shared.pause(poll).await {
                break;
            }
            continue;
        }
        let request = ClaimRequest {
            limit,
            lease,
            skip_webhooks,
        };
        let claimed = match shared.store.claim_due(request).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "claiming due deliveries failed; trying again shortly");
                if !shared.pause(backoff.next()).await {
                    break;
                }
                continue;
            }
        };
        backoff.reset();
        let got_all_asked = claimed.len() == limit;
        for delivery in claimed {
            launch(&shared, delivery);
        }
        if got_all_asked {
            looked_again = false;
            continue;
        }
        let wait = match shared.store.next_due_at().await {
            Ok(Some(due)) if due > Timestamp::now() => until(due).min(poll),
            Ok(Some(_)) if !looked_again => {
                looked_again = true;
                continue;
            }
            Ok(_) => poll,
            Err(e) => {
                tracing::warn!(error = %e, "reading when work falls due failed; trying again shortly");
                backoff.next()
            }
        };
        looked_again = false;
        if !shared.pause(wait).await {
            break;
        }
    }
    tracing::debug!("delivery dispatcher stopped");
}

fn until(due: Timestamp) -> Duration {
    let ms = due.millis().saturating_sub(Timestamp::now().millis());
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn launch(shared: &Arc<Shared>, delivery: ClaimedDelivery) {
    let webhook = delivery.webhook.id;
    shared.slots().take(webhook);
    let mut slot = SlotGuard {
        shared: Arc::clone(shared),
        webhook,
        holds_webhook_share: true,
    };
    shared.tasks.spawn(async move {
        let shared = Arc::clone(&slot.shared);
        metrics::record_in_flight(true);
        attempt(&shared, delivery, &mut slot).await;
        metrics::record_in_flight(false);
        drop(slot);
    });
}

async fn attempt(shared: &Shared, delivery: ClaimedDelivery, slot: &mut SlotGuard) {
    let ClaimedDelivery {
        delivery_id,
        lease,
        attempt_number,
        failures_in_schedule,
        due_at,
        event,
        webhook,
    } = delivery;
    metrics::record_lag(due_at, Timestamp::now());
    let trigger = Trigger::of_claim(attempt_number, failures_in_schedule);
    let EventRecord {
        id: event_id,
        event_type,
        payload,
        properties,
        created_at: published_at,
        ..
    } = event;
    let family = shared.catalogue.family_of(&event_type).await;
    let sent = shared
        .sender
        .send(
            &webhook,
            &event_id.to_string(),
            &event_type,
            family,
            payload,
            &properties,
        )
        .await;
    slot.exchange_done();
    let exchange = match sent {
        Ok(exchange) => exchange,
        Err(unsealable) => return give_back(shared, delivery_id, lease, unsealable).await,
    };
    let (next, error) = judge(&exchange, failures_in_schedule, &shared.config.retry);
    let signal = health::signal(
        &exchange,
        &next,
        error.as_deref(),
        shared.config.retry.max_retry_after,
    );
    let exhausted = matches!(next, NextStep::Failed) && !is_permanent(&exchange);
    log_attempt(&webhook, attempt_number, &exchange, &next, error.as_deref());
    let labelled = shared.config.metrics_per_webhook.then_some(webhook.id);
    report_attempt(&exchange, &next, exhausted, trigger, published_at, labelled);
    let duration_ms = exchange.duration_ms();
    let (response_status, response_headers, response_body) = match exchange.result {
        Ok(reply) => (Some(reply.status), reply.headers, Some(reply.body)),
        Err(_) => (None, Vec::new(), None),
    };
    let attempt = AttemptRecord {
        id: AttemptId::new(),
        delivery_id,
        number: attempt_number,
        started_at: exchange.started_at,
        duration_ms,
        request_url: exchange.request_url,
        request_headers: exchange.request_headers,
        response_status,
        response_headers,
        response_body,
        error,
    };
    let outcome = AttemptOutcome {
        lease,
        attempt,
        next,
    };
    let recorded = record(shared.store.as_ref(), outcome.clone()).await;
    if let (true, Some(signal)) = (recorded, signal) {
        note_health(shared, &webhook, signal).await;
    }
    // Only the attempt that moved the delivery on reports it, so a stale lease
    // never reports twice; and nothing is reported about Herald's own events,
    // which would feed back into themselves.
    if recorded && !event_type.starts_with(HERALD_PREFIX) {
        let operational = Operational {
            webhook: &webhook,
            event_id,
            event_type: &event_type,
            outcome: &outcome,
            exhausted,
        };
        for report in shared.streaks.reports(&operational) {
            publish_report(shared, report).await;
        }
    }
}

/// This node cannot open the webhook's sealed values, which is no fault of the
/// delivery: it is released unattempted (no attempt logged or counted, due
/// again at once for other nodes), its webhook is left out of this node's
/// claims, and the node reports itself unhealthy so a load balancer takes it
/// out. Should the release fail, the lease simply expires.
async fn give_back(
    shared: &Shared,
    delivery_id: DeliveryId,
    lease: LeaseToken,
    unsealable: Unsealable,
) {
    tracing::error!(delivery = %delivery_id, error = %unsealable, "delivery released unattempted: this node cannot open the webhook's sealed values");
    {
        let mut unopenable = shared.unopenable();
        unopenable.webhooks.insert(unsealable.webhook);
        unopenable
            .first
            .get_or_insert_with(|| unsealable.to_string());
    }
    if let Err(error) = shared.store.release(delivery_id, lease).await {
        tracing::warn!(delivery = %delivery_id, %error, "releasing a delivery failed; it is due again when its lease expires");
    }
}

/// Notes what the attempt says about the endpoint and reports the changes.
/// Only the attempt that moved its delivery on gets here, and the store hands
/// each change to one caller, so a change is reported once across nodes; it
/// is about the webhook, not the attempt, so attempts at `herald:*` events
/// count too (a change needs a state change, so this cannot loop).
async fn note_health(shared: &Shared, webhook: &WebhookRecord, signal: HealthSignal) {
    let changes = health::note(shared.store.as_ref(), webhook, signal, shared.config.health).await;
    for report in health_reports(webhook, &changes) {
        publish_report(shared, report).await;
    }
}

/// Publishes an operational event like any other, so every webhook subscribed
/// to it gets a delivery; a failure is logged, as the attempt itself stands.
async fn publish_report(shared: &Shared, report: NewEvent) {
    let event_type = report.event_type.clone();
    match shared.store.publish(report, None).await {
        Ok(published) if published.deliveries > 0 => shared.wake.notify_one(),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, event_type, "cannot publish an operational event"),
    }
}

/// The attempt's metrics: its outcome, and what it meant for the delivery.
/// A success on the schedule is the delivery's first (a delivery stays
/// pending until one), so it measures publish-to-success latency.
fn report_attempt(
    exchange: &Exchange,
    next: &NextStep,
    exhausted: bool,
    trigger: Trigger,
    published_at: Timestamp,
    webhook: Option<WebhookId>,
) {
    metrics::record_attempt(outcome_of(exchange), trigger, exchange.duration, webhook);
    match next {
        NextStep::Succeeded if trigger == Trigger::Scheduled => {
            metrics::record_first_success(published_at, Timestamp::now());
        }
        NextStep::Failed if exhausted => metrics::record_exhausted(),
        NextStep::FailedAndDisableWebhook { .. } => metrics::record_webhook_disabled(),
        _ => {}
    }
}

fn outcome_of(exchange: &Exchange) -> metrics::Outcome {
    match &exchange.result {
        Ok(reply) => metrics::Outcome::of_status(reply.status),
        Err(failure) => failure.outcome,
    }
}

fn is_permanent(exchange: &Exchange) -> bool {
    matches!(&exchange.result, Err(failure) if failure.permanent)
}

/// Records the attempt, trying a few times: a lost record leaves the lease to
/// expire and the delivery to be attempted again, which is safe but noisy.
/// True when the attempt moved the delivery on (its lease was still held).
async fn record(store: &dyn Store, outcome: AttemptOutcome) -> bool {
    let mut backoff = Backoff(STORE_BACKOFF_MIN);
    for _ in 0..RECORD_TRIES {
        match store.record_attempt(outcome.clone()).await {
            Ok(true) => return true,
            Ok(false) => {
                tracing::info!(delivery = %outcome.attempt.delivery_id, "attempt recorded after its lease ran out; another attempt owns the delivery");
                return false;
            }
            Err(StoreError::Closed) => break,
            Err(e) => {
                tracing::warn!(delivery = %outcome.attempt.delivery_id, error = %e, "recording an attempt failed");
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
    tracing::warn!(delivery = %outcome.attempt.delivery_id, "attempt not recorded; it will be retried when its lease expires");
    false
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// What to note about an answer beyond its status.
fn reply_error(reply: &Reply) -> Option<String> {
    if (300..400).contains(&reply.status) {
        let target = reply
            .header("location")
            .unwrap_or("nowhere (no Location header)");
        return Some(format!(
            "redirected to {target}; redirects are not followed"
        ));
    }
    reply.body_error.clone()
}

/// What happens to the delivery after this exchange, and the error text for the log.
fn judge(
    exchange: &Exchange,
    failures_in_schedule: u32,
    schedule: &RetrySchedule,
) -> (NextStep, Option<String>) {
    let retry = |retry_after: Option<Duration>| match schedule
        .next_delay(failures_in_schedule + 1, retry_after)
    {
        Some(delay) => NextStep::RetryIn(delay),
        None => NextStep::Failed,
    };
    let reply = match &exchange.result {
        Err(failure) if failure.permanent => {
            return (NextStep::Failed, Some(failure.error.clone()));
        }
        Err(failure) => return (retry(None), Some(failure.error.clone())),
        Ok(reply) => reply,
    };
    let next = match reply.status {
        s if is_success(s) => NextStep::Succeeded,
        410 => NextStep::FailedAndDisableWebhook {
            reason: "the receiver answered 410 Gone".to_owned(),
        },
        429 | 503 => retry(
            reply
                .header("retry-after")
                .and_then(|v| parse_retry_after(v, Timestamp::now())),
        ),
        _ => retry(None),
    };
    (next, reply_error(reply))
}

fn log_attempt(
    webhook: &WebhookRecord,
    number: u32,
    exchange: &Exchange,
    next: &NextStep,
    error: Option<&str>,
) {
    let status = exchange.result.as_ref().ok().map(|r| r.status);
    let url = exchange.request_url.as_str();
    let duration_ms = exchange.duration_ms();
    match next {
        NextStep::Succeeded => {
            tracing::debug!(webhook = %webhook.id, url, attempt = number, ?status, duration_ms, "delivered");
        }
        NextStep::RetryIn(delay) => {
            tracing::info!(webhook = %webhook.id, url, attempt = number, ?status, ?error, retry_in = ?delay, "delivery attempt failed; will retry");
        }
        NextStep::Failed => {
            tracing::warn!(webhook = %webhook.id, url, attempt = number, ?status, ?error, "delivery exhausted: failed for good");
        }
        NextStep::FailedAndDisableWebhook { reason } => {
            tracing::warn!(webhook = %webhook.id, url, attempt = number, reason, "webhook disabled");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Failure;

    fn exchange(result: Result<Reply, Failure>) -> Exchange {
        Exchange {
            started_at: Timestamp(0),
            duration: Duration::from_millis(3),
            request_url: "http://x.example/".into(),
            request_headers: vec![],
            result,
        }
    }

    fn reply(status: u16, headers: &[(&str, &str)]) -> Exchange {
        exchange(Ok(Reply {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: String::new(),
            body_error: None,
        }))
    }

    fn schedule() -> RetrySchedule {
        RetrySchedule {
            delays: vec![Duration::from_secs(5), Duration::from_secs(60)],
            jitter: 0.0,
            max_retry_after: Duration::from_secs(600),
        }
    }

    #[test]
    fn two_hundreds_succeed() {
        assert_eq!(
            judge(&reply(204, &[]), 0, &schedule()),
            (NextStep::Succeeded, None)
        );
    }

    #[test]
    fn failures_follow_the_schedule_then_give_up() {
        assert_eq!(
            judge(&reply(500, &[]), 0, &schedule()).0,
            NextStep::RetryIn(Duration::from_secs(5))
        );
        assert_eq!(
            judge(&reply(404, &[]), 1, &schedule()).0,
            NextStep::RetryIn(Duration::from_secs(60))
        );
        assert_eq!(judge(&reply(500, &[]), 2, &schedule()).0, NextStep::Failed);
    }

    #[test]
    fn a_redirect_is_a_failure_that_records_its_location() {
        let (next, error) = judge(
            &reply(302, &[("location", "http://elsewhere.example/")]),
            0,
            &schedule(),
        );
        assert_eq!(next, NextStep::RetryIn(Duration::from_secs(5)));
        assert!(error.unwrap().contains("http://elsewhere.example/"));
    }

    #[test]
    fn gone_disables_the_webhook() {
        let (next, _) = judge(&reply(410, &[]), 0, &schedule());
        assert!(
            matches!(next, NextStep::FailedAndDisableWebhook { reason } if reason.contains("410"))
        );
    }

    #[test]
    fn retry_after_is_honoured_only_on_429_and_503() {
        let asked = [("retry-after", "120")];
        assert_eq!(
            judge(&reply(429, &asked), 0, &schedule()).0,
            NextStep::RetryIn(Duration::from_secs(120))
        );
        assert_eq!(
            judge(&reply(503, &asked), 0, &schedule()).0,
            NextStep::RetryIn(Duration::from_secs(120))
        );
        assert_eq!(
            judge(&reply(500, &asked), 0, &schedule()).0,
            NextStep::RetryIn(Duration::from_secs(5))
        );
    }

    #[test]
    fn transport_failures_retry_and_refusals_do_not() {
        let timeout = exchange(Err(Failure {
            error: "timed out".into(),
            permanent: false,
            outcome: metrics::Outcome::Timeout,
        }));
        assert_eq!(
            judge(&timeout, 0, &schedule()),
            (
                NextStep::RetryIn(Duration::from_secs(5)),
                Some("timed out".into())
            )
        );
        let refused = exchange(Err(Failure {
            error: "refused 10.0.0.1".into(),
            permanent: true,
            outcome: metrics::Outcome::RefusedByGuard,
        }));
        assert_eq!(
            judge(&refused, 0, &schedule()),
            (NextStep::Failed, Some("refused 10.0.0.1".into()))
        );
    }

    #[test]
    fn settings_that_would_stall_or_spin_the_engine_are_refused() {
        assert!(check_config(&DeliveryConfig::default()).is_ok());
        let no_slots = DeliveryConfig {
            max_in_flight_per_webhook: 0,
            ..DeliveryConfig::default()
        };
        let spinning = DeliveryConfig {
            poll_interval: Duration::ZERO,
            ..DeliveryConfig::default()
        };
        let err = check_config(&no_slots).unwrap_err().to_string();
        assert!(
            err.contains("max_in_flight_per_webhook must be at least 1"),
            "{err}"
        );
        let err = check_config(&spinning).unwrap_err().to_string();
        assert!(
            err.contains("poll_interval must be longer than zero"),
            "{err}"
        );
    }

    #[test]
    fn slots_bound_claims_per_webhook_and_overall() {
        let mut slots = Slots::new(10, 4);
        let (a, b) = (WebhookId::new(), WebhookId::new());
        assert_eq!(
            slots.claim_limit(100),
            4,
            "a claim may all be for one webhook"
        );
        for _ in 0..4 {
            slots.take(a);
        }
        assert_eq!(slots.skipped(), vec![a], "at its bound");
        assert!(
            !slots.give_back(a),
            "a still has less than half its bound free"
        );
        assert_eq!(slots.skipped(), vec![a]);
        assert_eq!(slots.claim_limit(100), 4);
        slots.take(b);
        slots.take(b);
        assert_eq!(slots.claim_limit(100), 2, "b has room for two more");
        assert!(slots.give_back(a), "a has half its bound free again");
        assert!(slots.skipped().is_empty());
        for _ in 0..6 {
            slots.take(WebhookId::new());
        }
        assert_eq!(slots.claim_limit(100), 0, "ten in flight overall");
        assert!(slots.give_back(b), "a slot freed overall");
        assert_eq!(slots.claim_limit(100), 1);
    }

    #[test]
    fn an_exchange_that_ended_frees_its_webhook_but_not_the_node() {
        let mut slots = Slots::new(4, 4);
        let a = WebhookId::new();
        for _ in 0..4 {
            slots.take(a);
        }
        assert_eq!(slots.claim_limit(100), 0, "the node is full");
        assert!(!slots.give_back_webhook(a));
        assert!(
            slots.give_back_webhook(a),
            "a has half its bound free again"
        );
        assert!(slots.skipped().is_empty());
        assert_eq!(
            slots.claim_limit(100),
            0,
            "still recording: the node stays full"
        );
        assert!(slots.give_back_total(), "recorded: the node has room");
        assert_eq!(slots.claim_limit(100), 1);
    }
}
