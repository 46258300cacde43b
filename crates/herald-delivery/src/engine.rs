//! The dispatcher: claims due deliveries by lease, runs one task per attempt
//! within the in-flight bounds, records each attempt and what happens next.
//!
//! Fairness comes from the per-webhook bound: a webhook with too much in
//! flight is left out of claims, so a receiver that hangs for the whole
//! timeout holds back only its own deliveries. Nothing here holds a store
//! transaction across an HTTP call: claiming and recording are separate calls.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use herald_catalogue::keys::HERALD_PREFIX;
use herald_core::cipher::SecretCipher;
use herald_core::id::{AttemptId, DeliveryId, EventId, WebhookId};
use herald_core::retry::{RetrySchedule, parse_retry_after};
use herald_core::time::Timestamp;
use herald_store::{
    AttemptOutcome, AttemptRecord, ClaimRequest, ClaimedDelivery, EventRecord, FlowLimits,
    HealthChange, HealthNote, LeaseToken, NewEvent, NextStep, Store, StoreError, WebhookRecord,
    lease_for,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::catalogue::LiveCatalogue;
use crate::client::{Exchange, Reply, Sender};
use crate::flow::{self, Feedback, Pace, Window};
use crate::health;
use crate::metrics::{self, Trigger};
use crate::operational::{Operational, Streaks, health_reports};
use crate::{DeliveryConfig, DeliveryError, Unsealable};

/// Extra time `join` allows past the request timeout for recording attempts.
const RECORD_GRACE: Duration = Duration::from_secs(5);
const STORE_BACKOFF_MIN: Duration = Duration::from_millis(100);
const STORE_BACKOFF_MAX: Duration = Duration::from_secs(5);
const RECORD_TRIES: u32 = 3;
/// The shortest sleep while deliveries wait, so a token due at once never spins.
const LEAST_WAITING_PAUSE: Duration = Duration::from_millis(1);
/// A webhook with nothing in flight or waiting for this long is forgotten
/// on this node (its learned window and pace start afresh), so the lanes of
/// deleted or quiet webhooks do not pile up.
const LANE_IDLE: Duration = Duration::from_secs(600);
/// A webhook whose recent answers came back within this claims ahead: up to a
/// window's worth more than it has in flight, waiting here, so that a freed
/// slot starts the next attempt at once rather than after a claim's commit.
/// Well inside the shortest wait a claimed delivery is allowed (2.5 s: half
/// the lease's least slack past the request timeout), so what waits starts
/// within it.
const CLAIM_AHEAD_WITHIN: Duration = Duration::from_millis(250);
/// A webhook whose receiver said overload (a timeout, refused connection, 429
/// or 503) within this does not claim ahead: a full window is what runs a
/// rate-limited receiver dry, and what waits behind a receiver that times out
/// would outlast its wait.
const CLAIM_AHEAD_CALM: Duration = Duration::from_secs(10);

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
                config.adaptive_concurrency,
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

/// In-flight counts, overall and per webhook, and each webhook's flow control
/// on this node (its [`Lane`]).
///
/// The store cannot cap a claim per webhook, so a claim is never larger than
/// the room the node's per-webhook bound leaves any webhook it may return; and
/// a webhook is left out of claims once less than half its window is free, so
/// that claims stay large instead of dwindling to one. A webhook whose own
/// window or pace is narrower than a claim brought keeps the rest waiting
/// here, leased, and is left out of claims while any wait; what cannot start
/// within its wait (half the lease's slack past the request timeout, so the
/// attempt still ends inside the lease) is released unattempted.
///
/// A webhook that answers fast, has no pace and showed no overload lately
/// ([`Lane::claims_ahead`]) claims ahead instead: it may hold a window's
/// worth waiting beyond its window in flight (and its room for a claim grows
/// by as much), and is left out of claims only once less than half of that
/// is free. An attempt that ends starts the next waiting
/// one at once ([`Slots::start_waiting`]), so a fast receiver's window stays
/// full while the next claim is being committed.
struct Slots {
    total: usize,
    lanes: HashMap<WebhookId, Lane>,
    max_total: usize,
    max_per_webhook: usize,
    adaptive: bool,
}

/// One webhook's attempts on this node.
struct Lane {
    in_flight: usize,
    window: Window,
    pace: Option<Pace>,
    /// Claimed deliveries waiting for room or a token, oldest first.
    waiting: VecDeque<Waiting>,
    /// When an attempt last started or ended.
    last_used: Instant,
    /// When the throttle this node last noted for the webhook ends: the
    /// dispatcher looks then rather than at its next poll, so a receiver's
    /// `Retry-After: 1` costs one second, not one second and a poll interval.
    reopens_at: Option<Instant>,
    /// No overload within [`CLAIM_AHEAD_CALM`], as of the latest exchange.
    calm: bool,
}

struct Waiting {
    delivery: ClaimedDelivery,
    /// Released unattempted if it has not started by then.
    release_at: Instant,
}

impl Lane {
    fn room(&self) -> usize {
        self.window.limit().saturating_sub(self.in_flight)
    }

    /// Whether the webhook claims ahead: no pace to wait for, no overload
    /// lately, and its recent answers came back fast.
    fn claims_ahead(&self) -> bool {
        self.pace.is_none()
            && self.calm
            && self
                .window
                .recent_latency()
                .is_some_and(|latency| latency <= CLAIM_AHEAD_WITHIN)
    }

    /// How many deliveries beyond the window the lane may hold waiting.
    fn ahead(&self) -> usize {
        if self.claims_ahead() {
            self.window.limit()
        } else {
            0
        }
    }

    /// Deliveries the lane holds: in flight, and claimed and waiting.
    fn held(&self) -> usize {
        self.in_flight + self.waiting.len()
    }

    /// Left out of claims: less than half the window free (counting what
    /// waits, for a lane that claims ahead), or, for one that does not,
    /// anything waiting.
    fn skipped(&self) -> bool {
        let limit = self.window.limit();
        let ahead = self.ahead();
        let free = (limit + ahead).saturating_sub(self.held());
        (ahead == 0 && !self.waiting.is_empty()) || free < limit.div_ceil(2)
    }

    /// The most one claim may bring the lane: the node's per-webhook bound
    /// past what it holds, plus what it may claim ahead.
    fn claim_room(&self, node_bound: usize) -> usize {
        (node_bound + self.ahead()).saturating_sub(self.held())
    }

    /// Follows the webhook's own limits as the latest claim read them.
    fn follow(&mut self, limits: &FlowLimits, node_bound: usize, now: Instant) {
        let own = limits
            .max_in_flight
            .map_or(node_bound, |n| usize::try_from(n).unwrap_or(usize::MAX));
        self.window.set_ceiling(own.min(node_bound));
        self.pace = match (limits.max_per_second, self.pace.take()) {
            (Some(rate), Some(pace)) if pace.per_second() == rate => Some(pace),
            (Some(rate), _) => Some(Pace::new(rate, now)),
            (None, _) => None,
        };
    }

    fn idle_for_long(&self, now: Instant) -> bool {
        self.in_flight == 0
            && self.waiting.is_empty()
            && now.saturating_duration_since(self.last_used) >= LANE_IDLE
    }

    /// Moves what waits into `ready`, oldest first, while the node has room
    /// (`total` of `max_total`, counted here) and the lane may start one;
    /// stops at one past its wait, which is for releasing, not starting.
    fn start_ready(
        &mut self,
        total: &mut usize,
        max_total: usize,
        now: Instant,
        ready: &mut Vec<ClaimedDelivery>,
    ) {
        while self
            .waiting
            .front()
            .is_some_and(|waiting| waiting.release_at > now)
            && *total < max_total
            && self.may_start(now)
        {
            if let Some(next) = self.waiting.pop_front() {
                self.in_flight += 1;
                *total += 1;
                ready.push(next.delivery);
            }
        }
    }

    /// Whether one more attempt may start now; takes its token if so.
    fn may_start(&mut self, now: Instant) -> bool {
        self.room() > 0 && self.pace.as_mut().is_none_or(|pace| pace.take(now))
    }

    /// When something waiting may start or must be released, if anything
    /// waits. A token is no reason to look while the node is full: a freed
    /// slot wakes the dispatcher.
    fn next_event(&mut self, now: Instant, node_full: bool) -> Option<Instant> {
        let release_at = self.waiting.front()?.release_at;
        let may_start = self.room() > 0 && !node_full;
        let token_at = match (&mut self.pace, may_start) {
            (Some(pace), true) => Some(pace.next_token_at(now)),
            _ => None,
        };
        Some(token_at.map_or(release_at, |at| at.min(release_at)))
    }
}

/// What the waiting deliveries need now.
#[derive(Default)]
struct WaitingWork {
    start: Vec<ClaimedDelivery>,
    release: Vec<ClaimedDelivery>,
    /// When to look again.
    next: Option<Instant>,
}

impl Slots {
    fn new(max_total: usize, max_per_webhook: usize, adaptive: bool) -> Self {
        Self {
            total: 0,
            lanes: HashMap::new(),
            max_total,
            max_per_webhook,
            adaptive,
        }
    }

    /// The webhook was throttled until `at` (the store keeps the latest of
    /// its throttles, and so does this).
    fn reopen_at(&mut self, webhook: WebhookId, at: Instant) {
        if let Some(lane) = self.lanes.get_mut(&webhook) {
            lane.reopens_at = Some(lane.reopens_at.map_or(at, |latest| latest.max(at)));
        }
    }

    /// Webhooks to leave out of the next claim.
    fn skipped(&self) -> Vec<WebhookId> {
        self.lanes
            .iter()
            .filter(|(_, lane)| lane.skipped())
            .map(|(id, _)| *id)
            .collect()
    }

    /// How many deliveries the next claim may lease: no more than the node's
    /// free slots, nor the room the node's per-webhook bound leaves a webhook
    /// the claim may return.
    fn claim_limit(&self, claim_batch: usize) -> usize {
        let least_room = self
            .lanes
            .values()
            .filter(|lane| !lane.skipped())
            .map(|lane| lane.claim_room(self.max_per_webhook))
            .fold(self.max_per_webhook, usize::min);
        claim_batch
            .min(self.max_total.saturating_sub(self.total))
            .min(least_room)
    }

    /// A claimed delivery: returned if it may start now (its slot taken),
    /// else kept waiting until `release_at`.
    fn admit(
        &mut self,
        delivery: ClaimedDelivery,
        now: Instant,
        release_at: Instant,
    ) -> Option<ClaimedDelivery> {
        let (node_bound, adaptive) = (self.max_per_webhook, self.adaptive);
        let node_full = self.total >= self.max_total;
        let lane = self
            .lanes
            .entry(delivery.webhook.id)
            .or_insert_with(|| Lane {
                in_flight: 0,
                window: Window::new(node_bound, adaptive),
                pace: None,
                waiting: VecDeque::new(),
                last_used: now,
                reopens_at: None,
                calm: true,
            });
        lane.last_used = now;
        lane.follow(&delivery.webhook.flow_limits, node_bound, now);
        if lane.waiting.is_empty() && !node_full && lane.may_start(now) {
            lane.in_flight += 1;
            self.total += 1;
            Some(delivery)
        } else {
            lane.waiting.push_back(Waiting {
                delivery,
                release_at,
            });
            None
        }
    }

    /// Starts what waits and may start, and hands back what waited too long.
    fn waiting_work(&mut self, now: Instant) -> WaitingWork {
        let mut work = WaitingWork::default();
        self.lanes.retain(|_, lane| !lane.idle_for_long(now));
        for lane in self.lanes.values_mut() {
            match lane.reopens_at {
                Some(at) if at <= now => lane.reopens_at = None,
                Some(at) => work.next = Some(work.next.map_or(at, |next: Instant| next.min(at))),
                None => {}
            }
            while lane
                .waiting
                .front()
                .is_some_and(|waiting| waiting.release_at <= now)
            {
                if let Some(expired) = lane.waiting.pop_front() {
                    work.release.push(expired.delivery);
                }
            }
            lane.start_ready(&mut self.total, self.max_total, now, &mut work.start);
            if let Some(at) = lane.next_event(now, self.total >= self.max_total) {
                work.next = Some(work.next.map_or(at, |next: Instant| next.min(at)));
            }
        }
        work
    }

    /// Everything waiting for the webhook, oldest first.
    fn take_waiting(&mut self, webhook: WebhookId) -> Vec<ClaimedDelivery> {
        self.lanes.get_mut(&webhook).map_or_else(Vec::new, |lane| {
            lane.waiting
                .drain(..)
                .map(|waiting| waiting.delivery)
                .collect()
        })
    }

    /// Frees the webhook's share of a slot after its exchange, and lets the
    /// window learn from it; true when that makes the webhook claimable again.
    fn give_back_webhook(&mut self, webhook: WebhookId, feedback: Feedback, now: Instant) -> bool {
        let Some(lane) = self.lanes.get_mut(&webhook) else {
            return false;
        };
        let was_skipped = lane.skipped();
        lane.in_flight = lane.in_flight.saturating_sub(1);
        lane.last_used = now;
        lane.window.note(feedback, now);
        lane.calm = !lane.window.overloaded_within(CLAIM_AHEAD_CALM, now);
        was_skipped && !lane.skipped()
    }

    /// What waits for the webhook and may start now, its slots taken: the
    /// attempt that freed room starts them itself instead of waking the
    /// dispatcher, which may be waiting on a claim. What is past its wait is
    /// left for [`Slots::waiting_work`] to release.
    fn start_waiting(&mut self, webhook: WebhookId, now: Instant) -> Vec<ClaimedDelivery> {
        let mut ready = Vec::new();
        if let Some(lane) = self.lanes.get_mut(&webhook) {
            lane.start_ready(&mut self.total, self.max_total, now, &mut ready);
        }
        ready
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
/// The webhook's share is given back as soon as a successful HTTP exchange
/// ends ([`SlotGuard::exchange_done`]): the per-webhook bound is about what a
/// receiver sees, and recording the attempt (a durable write) need not hold
/// it; a failed one keeps it until the endpoint's health is noted. The
/// node-wide share is kept until the attempt is recorded, which bounds the
/// memory of attempts waiting on the store.
struct SlotGuard {
    shared: Arc<Shared>,
    webhook: WebhookId,
    holds_webhook_share: bool,
}

impl SlotGuard {
    fn exchange_done(&mut self, feedback: Feedback) {
        if std::mem::take(&mut self.holds_webhook_share) {
            let webhook = self.webhook;
            self.hand_on(|slots, now| slots.give_back_webhook(webhook, feedback, now));
        }
    }

    /// Gives a share back (`give_back` says whether more became claimable),
    /// starts what waits for the webhook and now may, and wakes the
    /// dispatcher if it has more to claim. Nothing new starts once shutdown
    /// began: what waits keeps its lease until it expires.
    fn hand_on(&self, give_back: impl FnOnce(&mut Slots, Instant) -> bool) {
        let now = Instant::now();
        let (claimable, ready) = {
            let mut slots = self.shared.slots();
            let claimable = give_back(&mut slots, now);
            let ready = if self.shared.shutdown.is_cancelled() {
                Vec::new()
            } else {
                slots.start_waiting(self.webhook, now)
            };
            (claimable, ready)
        };
        for delivery in ready {
            start(&self.shared, delivery);
        }
        if claimable {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let holds_webhook_share = std::mem::take(&mut self.holds_webhook_share);
        let webhook = self.webhook;
        self.hand_on(|slots, now| {
            let webhook_claimable =
                holds_webhook_share && slots.give_back_webhook(webhook, Feedback::Neutral, now);
            // A node that was full may have deliveries of other webhooks waiting.
            slots.give_back_total() || webhook_claimable
        });
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
    let wait_budget = wait_budget(lease, shared.config.request_timeout);
    let poll = shared.config.poll_interval;
    let mut backoff = Backoff(STORE_BACKOFF_MIN);
    // Whether the last look found past-due work it could not claim (it belongs
    // to webhooks at their bound, or fell due just after the claim).
    let mut looked_again = false;
    while !shared.shutdown.is_cancelled() {
        tend_waiting(&shared, poll).await;
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
            if !shared.pause(tend_waiting(&shared, poll).await).await {
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
        let release_at = Instant::now() + wait_budget;
        for delivery in claimed {
            launch(&shared, delivery, release_at);
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
        let wait = wait.min(tend_waiting(&shared, poll).await);
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

/// How long a claimed delivery may wait on this node for room or a token:
/// half of what its lease allows past the request timeout, so that an attempt
/// started at the end of the wait still ends well inside the lease.
fn wait_budget(lease: Duration, request_timeout: Duration) -> Duration {
    lease.saturating_sub(request_timeout) / 2
}

/// Starts waiting deliveries that may start, releases those that waited too
/// long, and answers how long until the waiting need a look again (at most
/// `poll`).
async fn tend_waiting(shared: &Arc<Shared>, poll: Duration) -> Duration {
    let now = Instant::now();
    let work = shared.slots().waiting_work(now);
    for delivery in work.start {
        start(shared, delivery);
    }
    for delivery in work.release {
        release_unstarted(
            shared,
            delivery,
            "its webhook's flow limits left it no room in time",
        )
        .await;
    }
    work.next
        .map_or(poll, |at| at.saturating_duration_since(now).min(poll))
        .max(LEAST_WAITING_PAUSE)
}

/// A delivery that waited on this node and may not start (no room or token
/// in time, or its webhook closed) goes back to the store as it was: due
/// now, no attempt logged or counted. Should the release fail, its lease
/// simply expires.
async fn release_unstarted(shared: &Shared, delivery: ClaimedDelivery, why: &str) {
    tracing::debug!(delivery = %delivery.delivery_id, webhook = %delivery.webhook.id, why, "released unattempted");
    if let Err(error) = shared
        .store
        .release(delivery.delivery_id, delivery.lease)
        .await
    {
        tracing::warn!(delivery = %delivery.delivery_id, %error, "releasing a delivery failed; it is due again when its lease expires");
    }
}

/// Hands a claimed delivery to its webhook's lane: it starts now, or waits.
fn launch(shared: &Arc<Shared>, delivery: ClaimedDelivery, release_at: Instant) {
    let admitted = shared.slots().admit(delivery, Instant::now(), release_at);
    if let Some(delivery) = admitted {
        start(shared, delivery);
    }
}

/// Runs the attempt of a delivery whose slot is taken.
fn start(shared: &Arc<Shared>, delivery: ClaimedDelivery) {
    let webhook = delivery.webhook.id;
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
    let feedback = sent.as_ref().map_or(Feedback::Neutral, flow::feedback);
    let succeeded = matches!(feedback, Feedback::Answered(_));
    if succeeded {
        slot.exchange_done(feedback);
    }
    let exchange = match sent {
        Ok(exchange) => exchange,
        Err(unsealable) => return give_back(shared, delivery_id, lease, unsealable).await,
    };
    let age = until_now(published_at);
    let (next, error) = judge(&exchange, failures_in_schedule, age, &shared.config.retry);
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
    let note = health::note_of(&webhook, signal, shared.config.health);
    let noted = record(shared.store.as_ref(), &webhook, &outcome, note).await;
    if let Some(noted) = &noted {
        after_health(shared, &webhook, noted).await;
    }
    let recorded = noted.is_some();
    // A failed exchange holds its webhook's share until its health is noted,
    // so a dead endpoint gets no more than its window of attempts beyond
    // `failing_after` before the pause closes it.
    slot.exchange_done(feedback);
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

/// Acts on what the attempt said about the endpoint, once it is noted with
/// the attempt's record. Only the attempt that moved its delivery on gets
/// here, and the store hands each change to one caller, so a change is
/// reported once across nodes; it is about the webhook, not the attempt, so
/// attempts at `herald:*` events count too (a change needs a state change,
/// so this cannot loop).
///
/// A webhook that this signal closed (throttled, paused, disabled) gets back
/// what waits for it on this node, so no attempt starts after the receiver
/// asked for quiet or the pause began.
async fn after_health(shared: &Shared, webhook: &WebhookRecord, noted: &health::Noted) {
    if let Some(wait) = noted.throttled_for {
        shared.slots().reopen_at(webhook.id, Instant::now() + wait);
    }
    let closed = noted.throttled_for.is_some()
        || noted.changes.iter().any(|change| {
            matches!(
                change,
                HealthChange::Paused { .. } | HealthChange::Disabled { .. }
            )
        });
    if closed {
        let waiting = shared.slots().take_waiting(webhook.id);
        for delivery in waiting {
            release_unstarted(shared, delivery, "its webhook is paused").await;
        }
    }
    for report in health_reports(webhook, &noted.changes) {
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

/// Records the attempt with its health note, trying a few times: a lost
/// record leaves the lease to expire and the delivery to be attempted again,
/// which is safe but noisy. Some when the attempt moved the delivery on (its
/// lease was still held), with what its note changed.
async fn record(
    store: &dyn Store,
    webhook: &WebhookRecord,
    outcome: &AttemptOutcome,
    note: HealthNote,
) -> Option<health::Noted> {
    let mut backoff = Backoff(STORE_BACKOFF_MIN);
    for _ in 0..RECORD_TRIES {
        match store
            .record_attempt_noting_health(outcome.clone(), note.clone())
            .await
        {
            Ok(recorded) if recorded.moved_on => {
                return Some(health::noted(webhook, &note, recorded.health));
            }
            Ok(_) => {
                tracing::info!(delivery = %outcome.attempt.delivery_id, "attempt recorded after its lease ran out; another attempt owns the delivery");
                return None;
            }
            Err(StoreError::Closed) => break,
            Err(e) => {
                tracing::warn!(delivery = %outcome.attempt.delivery_id, error = %e, "recording an attempt failed");
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
    tracing::warn!(delivery = %outcome.attempt.delivery_id, "attempt not recorded; it will be retried when its lease expires");
    None
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

/// How long ago `then` was, by the wall clock.
fn until_now(then: Timestamp) -> Duration {
    let ms = Timestamp::now().millis().saturating_sub(then.millis());
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// What happens to the delivery after this exchange, and the error text for
/// the log. A receiver's `Retry-After` on a 429 or 503 is flow control, not
/// a failure: the delivery waits as asked without using up a retry, within
/// the schedule's span (`RetrySchedule::deferral`); the whole webhook is
/// throttled for it as well (`health::signal`).
fn judge(
    exchange: &Exchange,
    failures_in_schedule: u32,
    age: Duration,
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
        429 | 503 => match reply
            .header("retry-after")
            .and_then(|v| parse_retry_after(v, Timestamp::now()))
        {
            Some(asked) => schedule
                .deferral(asked, age)
                .map_or_else(|| retry(Some(asked)), NextStep::Deferred),
            None => retry(None),
        },
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
        NextStep::Deferred(delay) => {
            tracing::debug!(webhook = %webhook.id, url, attempt = number, ?status, retry_in = ?delay, "the receiver asked for a wait");
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
            judge(&reply(204, &[]), 0, Duration::ZERO, &schedule()),
            (NextStep::Succeeded, None)
        );
    }

    #[test]
    fn failures_follow_the_schedule_then_give_up() {
        assert_eq!(
            judge(&reply(500, &[]), 0, Duration::ZERO, &schedule()).0,
            NextStep::RetryIn(Duration::from_secs(5))
        );
        assert_eq!(
            judge(&reply(404, &[]), 1, Duration::ZERO, &schedule()).0,
            NextStep::RetryIn(Duration::from_secs(60))
        );
        assert_eq!(
            judge(&reply(500, &[]), 2, Duration::ZERO, &schedule()).0,
            NextStep::Failed
        );
    }

    #[test]
    fn a_redirect_is_a_failure_that_records_its_location() {
        let (next, error) = judge(
            &reply(302, &[("location", "http://elsewhere.example/")]),
            0,
            Duration::ZERO,
            &schedule(),
        );
        assert_eq!(next, NextStep::RetryIn(Duration::from_secs(5)));
        assert!(error.unwrap().contains("http://elsewhere.example/"));
    }

    #[test]
    fn gone_disables_the_webhook() {
        let (next, _) = judge(&reply(410, &[]), 0, Duration::ZERO, &schedule());
        assert!(
            matches!(next, NextStep::FailedAndDisableWebhook { reason } if reason.contains("410"))
        );
    }

    #[test]
    fn retry_after_on_429_and_503_defers_without_using_a_retry_within_the_span() {
        let asked = [("retry-after", "30")];
        for status in [429, 503] {
            assert_eq!(
                judge(&reply(status, &asked), 1, Duration::ZERO, &schedule()).0,
                NextStep::Deferred(Duration::from_secs(30))
            );
            // 40 s old: the wait would end past the schedule's 65 s span, so
            // the answer counts as a failure, and the wait still stands.
            assert_eq!(
                judge(
                    &reply(status, &asked),
                    0,
                    Duration::from_secs(40),
                    &schedule()
                )
                .0,
                NextStep::RetryIn(Duration::from_secs(30))
            );
        }
        assert_eq!(
            judge(&reply(500, &asked), 0, Duration::ZERO, &schedule()).0,
            NextStep::RetryIn(Duration::from_secs(5))
        );
        assert_eq!(
            judge(&reply(429, &[]), 0, Duration::ZERO, &schedule()).0,
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
            judge(&timeout, 0, Duration::ZERO, &schedule()),
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
            judge(&refused, 0, Duration::ZERO, &schedule()),
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

    fn claimed(webhook: WebhookId, limits: FlowLimits) -> ClaimedDelivery {
        ClaimedDelivery {
            delivery_id: DeliveryId::new(),
            lease: LeaseToken(1),
            attempt_number: 1,
            failures_in_schedule: 0,
            due_at: Timestamp(0),
            event: EventRecord {
                id: EventId::new(),
                event_type: "push".into(),
                project: None,
                payload: b"{}".to_vec(),
                properties: BTreeMap::new(),
                ordering_key: None,
                created_at: Timestamp(0),
            },
            webhook: WebhookRecord {
                id: webhook,
                name: "w".into(),
                url_display: "https://hooks.example.com/".into(),
                url_sealed: vec![],
                secret_sealed: vec![],
                event_types: vec![],
                project: None,
                enabled: true,
                disabled_reason: None,
                health: Default::default(),
                health_overrides: Default::default(),
                flow_limits: limits,
                ordering: Default::default(),
                created_at: Timestamp(0),
                updated_at: Timestamp(0),
            },
        }
    }

    /// Admits `n` deliveries for `webhook`; how many started.
    fn admit(slots: &mut Slots, webhook: WebhookId, limits: FlowLimits, n: usize) -> usize {
        let now = Instant::now();
        let release_at = now + Duration::from_secs(5);
        (0..n)
            .filter(|_| {
                slots
                    .admit(claimed(webhook, limits), now, release_at)
                    .is_some()
            })
            .count()
    }

    const NONE: FlowLimits = FlowLimits {
        max_in_flight: None,
        max_per_second: None,
    };

    #[test]
    fn slots_bound_claims_per_webhook_and_overall() {
        let mut slots = Slots::new(10, 4, false);
        let (a, b) = (WebhookId::new(), WebhookId::new());
        let now = Instant::now();
        assert_eq!(
            slots.claim_limit(100),
            4,
            "a claim may all be for one webhook"
        );
        assert_eq!(admit(&mut slots, a, NONE, 4), 4);
        assert_eq!(slots.skipped(), vec![a], "at its bound");
        assert!(
            !slots.give_back_webhook(a, Feedback::Neutral, now),
            "a still has less than half its bound free"
        );
        slots.give_back_total();
        assert_eq!(slots.skipped(), vec![a]);
        assert_eq!(slots.claim_limit(100), 4);
        assert_eq!(admit(&mut slots, b, NONE, 2), 2);
        assert_eq!(slots.claim_limit(100), 2, "b has room for two more");
        assert!(
            slots.give_back_webhook(a, Feedback::Neutral, now),
            "a has half its bound free again"
        );
        slots.give_back_total();
        assert!(slots.skipped().is_empty());
        for _ in 0..6 {
            admit(&mut slots, WebhookId::new(), NONE, 1);
        }
        assert_eq!(slots.claim_limit(100), 0, "ten in flight overall");
        slots.give_back_webhook(b, Feedback::Neutral, now);
        assert!(slots.give_back_total(), "a slot freed overall");
        assert_eq!(slots.claim_limit(100), 1);
    }

    #[test]
    fn an_exchange_that_ended_frees_its_webhook_but_not_the_node() {
        let mut slots = Slots::new(4, 4, false);
        let a = WebhookId::new();
        let now = Instant::now();
        assert_eq!(admit(&mut slots, a, NONE, 4), 4);
        assert_eq!(slots.claim_limit(100), 0, "the node is full");
        assert!(!slots.give_back_webhook(a, Feedback::Neutral, now));
        assert!(
            slots.give_back_webhook(a, Feedback::Neutral, now),
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

    #[test]
    fn a_webhooks_own_max_in_flight_holds_the_rest_waiting_then_releases_it() {
        let mut slots = Slots::new(100, 32, false);
        let a = WebhookId::new();
        let own = FlowLimits {
            max_in_flight: Some(2),
            max_per_second: None,
        };
        let now = Instant::now();
        assert_eq!(admit(&mut slots, a, own, 5), 2, "two start, three wait");
        assert_eq!(slots.skipped(), vec![a], "no more claims while some wait");
        assert!(
            !slots.give_back_webhook(a, Feedback::Neutral, now),
            "still some waiting: not claimable"
        );
        assert_eq!(
            slots.start_waiting(a, now).len(),
            1,
            "the freed room starts one that waits"
        );
        assert!(
            slots.start_waiting(a, now).is_empty(),
            "two in flight again"
        );
        slots.give_back_webhook(a, Feedback::Neutral, now);
        let work = slots.waiting_work(now);
        assert_eq!((work.start.len(), work.release.len()), (1, 0));
        let later = now + Duration::from_secs(6);
        let work = slots.waiting_work(later);
        assert_eq!(
            (work.start.len(), work.release.len()),
            (0, 1),
            "what could not start within its wait is released"
        );
        assert_eq!(slots.skipped(), vec![a], "still two in flight");
    }

    #[test]
    fn a_webhooks_pace_starts_what_its_bucket_holds_then_one_per_token() {
        let mut slots = Slots::new(100, 32, false);
        let a = WebhookId::new();
        let paced = FlowLimits {
            max_in_flight: None,
            max_per_second: Some(2),
        };
        let now = Instant::now();
        assert_eq!(admit(&mut slots, a, paced, 4), 1, "the bucket holds one");
        let work = slots.waiting_work(now);
        assert!(work.start.is_empty());
        let next = work.next.expect("a token is due");
        assert!(next > now && next <= now + Duration::from_millis(600));
        let work = slots.waiting_work(now + Duration::from_millis(600));
        assert_eq!(work.start.len(), 1, "one token in half a second");
    }

    #[test]
    fn a_lane_idle_for_long_is_forgotten_and_one_in_use_is_not() {
        let mut slots = Slots::new(100, 32, true);
        let (quiet, busy) = (WebhookId::new(), WebhookId::new());
        let now = Instant::now();
        admit(&mut slots, quiet, NONE, 1);
        admit(&mut slots, busy, NONE, 1);
        slots.give_back_webhook(quiet, Feedback::Neutral, now);
        slots.waiting_work(now + LANE_IDLE / 2);
        assert_eq!(slots.lanes.len(), 2, "not idle for long yet");
        slots.waiting_work(now + LANE_IDLE * 2);
        assert!(!slots.lanes.contains_key(&quiet));
        assert!(slots.lanes.contains_key(&busy), "still has one in flight");
    }

    #[test]
    fn a_throttle_that_ends_is_when_the_dispatcher_looks_next() {
        let mut slots = Slots::new(100, 32, true);
        let (a, b) = (WebhookId::new(), WebhookId::new());
        admit(&mut slots, a, NONE, 1);
        admit(&mut slots, b, NONE, 1);
        let now = Instant::now();
        assert_eq!(slots.waiting_work(now).next, None);
        let (one, two) = (now + Duration::from_secs(1), now + Duration::from_secs(2));
        slots.reopen_at(a, one);
        slots.reopen_at(b, two);
        slots.reopen_at(b, one);
        assert_eq!(
            slots.waiting_work(now).next,
            Some(one),
            "the soonest end among the webhooks"
        );
        assert_eq!(
            slots.waiting_work(one).next,
            Some(two),
            "each webhook's latest throttle"
        );
        assert_eq!(slots.waiting_work(two).next, None, "all looked at");
    }

    #[test]
    fn a_webhook_that_answers_fast_claims_a_window_ahead_and_starts_it_as_slots_free() {
        let mut slots = Slots::new(100, 4, false);
        let a = WebhookId::new();
        let now = Instant::now();
        assert_eq!(admit(&mut slots, a, NONE, 4), 4);
        for _ in 0..2 {
            slots.give_back_webhook(a, Feedback::Answered(Duration::from_millis(2)), now);
        }
        assert_eq!(admit(&mut slots, a, NONE, 2), 2, "back to its window");
        assert!(slots.skipped().is_empty(), "answers fast: claims ahead");
        assert_eq!(admit(&mut slots, a, NONE, 1), 0, "one waits");
        assert_eq!(
            slots.claim_limit(100),
            3,
            "its bound of four, plus a window ahead, less the five it holds"
        );
        assert_eq!(admit(&mut slots, a, NONE, 3), 0, "these wait too");
        assert_eq!(slots.skipped(), vec![a], "a window held ahead");
        slots.give_back_webhook(a, Feedback::Answered(Duration::from_millis(2)), now);
        assert_eq!(
            slots.start_waiting(a, now).len(),
            1,
            "the freed slot starts the next at once"
        );
        assert!(slots.start_waiting(a, now).is_empty(), "the window is full");
    }

    #[test]
    fn a_slow_paced_or_overloaded_webhook_does_not_claim_ahead() {
        let mut slots = Slots::new(100, 4, false);
        let (slow, paced, overloaded) = (WebhookId::new(), WebhookId::new(), WebhookId::new());
        let rate = FlowLimits {
            max_in_flight: None,
            max_per_second: Some(1000),
        };
        let now = Instant::now();
        admit(&mut slots, slow, NONE, 4);
        admit(&mut slots, paced, rate, 4);
        admit(&mut slots, overloaded, NONE, 4);
        for _ in 0..4 {
            slots.give_back_webhook(slow, Feedback::Answered(Duration::from_secs(1)), now);
            slots.give_back_webhook(paced, Feedback::Answered(Duration::from_millis(2)), now);
        }
        for _ in 0..3 {
            slots.give_back_webhook(
                overloaded,
                Feedback::Answered(Duration::from_millis(2)),
                now,
            );
        }
        slots.give_back_webhook(overloaded, Feedback::Overloaded, now);
        let soon = now + CLAIM_AHEAD_CALM / 2;
        slots.give_back_webhook(
            overloaded,
            Feedback::Answered(Duration::from_millis(2)),
            soon,
        );
        for (webhook, limits) in [(slow, NONE), (paced, rate), (overloaded, NONE)] {
            admit(&mut slots, webhook, limits, 4);
            assert!(
                slots.skipped().contains(&webhook),
                "its window is full and nothing is claimed ahead"
            );
        }
        let calm_again = now + CLAIM_AHEAD_CALM * 2;
        slots.give_back_webhook(
            overloaded,
            Feedback::Answered(Duration::from_millis(2)),
            calm_again,
        );
        assert!(
            !slots.skipped().contains(&overloaded),
            "no overload for a while: claims ahead again"
        );
    }

    #[test]
    fn an_adaptive_window_starts_modest() {
        let mut slots = Slots::new(100, 32, true);
        let a = WebhookId::new();
        assert_eq!(admit(&mut slots, a, NONE, 10), flow::START);
    }
}
