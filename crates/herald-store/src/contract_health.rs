//! Contract cases for endpoint health (run through
//! [`store_contract_tests!`](crate::store_contract_tests) with the others):
//! the stored health gates claims on every node, a pause leaves deliveries
//! untouched, one probe at a time, and a disabled webhook keeps its backlog.
//!
//! Pauses are compressed to a fraction of a second through the policy; the
//! waits poll the store until its own clock has passed them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::id::{DeliveryId, WebhookId};

use crate::contract::{
    attempt, claim, claim_with, create, detail, event, get_webhook, publish, record, update,
    webhook,
};
use crate::{
    AttemptOutcome, ClaimedDelivery, DeliveryStatus, FlowLimits, HealthChange, HealthNote,
    HealthOverrides, HealthPolicy, HealthSignal, HealthState, LeaseToken, NextStep, Recorded,
    SettingsChange, Store, WebhookPatch,
};

const PAUSE: Duration = Duration::from_millis(300);
/// How long a wait for the store's clock to pass a pause may take at most.
const DEADLINE: Duration = Duration::from_secs(20);

fn policy(failing_after: u32, disable_after: Option<u32>) -> HealthPolicy {
    HealthPolicy {
        failing_after,
        disable_after,
        first_pause: PAUSE,
        longest_pause: PAUSE * 4,
    }
}

fn failure() -> HealthSignal {
    HealthSignal::Failure {
        error: "HTTP 500".to_owned(),
    }
}

async fn note(
    store: &Arc<dyn Store>,
    webhook: WebhookId,
    signal: HealthSignal,
    policy: HealthPolicy,
) -> Vec<HealthChange> {
    store
        .note_health(webhook, signal, policy)
        .await
        .expect("note_health")
}

/// Records a failed attempt that is to be retried at once, noting its
/// failure with it as the engine does.
async fn fail(
    store: &Arc<dyn Store>,
    claimed: &ClaimedDelivery,
    policy: HealthPolicy,
) -> Vec<HealthChange> {
    let recorded = record_noting(store, claimed, claimed.lease, failure(), policy).await;
    assert!(recorded.moved_on, "the lease was current");
    recorded.health.expect("the note was made")
}

/// Records a failed attempt under `lease`, due again at once, with `signal`
/// noted about its endpoint.
async fn record_noting(
    store: &Arc<dyn Store>,
    claimed: &ClaimedDelivery,
    lease: LeaseToken,
    signal: HealthSignal,
    policy: HealthPolicy,
) -> Recorded {
    let outcome = AttemptOutcome {
        lease,
        attempt: attempt(claimed, Some(500), None),
        next: NextStep::RetryIn(Duration::ZERO),
    };
    let note = HealthNote {
        webhook: claimed.webhook.id,
        signal,
        policy,
    };
    store
        .record_attempt_noting_health(outcome, note)
        .await
        .expect("record_attempt_noting_health")
}

fn of(claimed: &[ClaimedDelivery], webhook: WebhookId) -> Vec<DeliveryId> {
    claimed
        .iter()
        .filter(|c| c.webhook.id == webhook)
        .map(|c| c.delivery_id)
        .collect()
}

/// Claims (one at a time, with a short lease it never uses) until one of
/// `webhook`'s deliveries comes back: the pause has ended by the store's clock.
async fn wait_for_probe(
    store: &Arc<dyn Store>,
    webhook: WebhookId,
    lease: Duration,
) -> ClaimedDelivery {
    let start = Instant::now();
    loop {
        let claimed = claim_with(store, 10, lease, Vec::new()).await;
        if let Some(probe) = claimed.into_iter().find(|c| c.webhook.id == webhook) {
            return probe;
        }
        assert!(start.elapsed() < DEADLINE, "the pause never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn failures_pause_the_webhook_then_one_probe_releases_the_backlog(store: Arc<dyn Store>) {
    let dead = create(&store, webhook("dead", None, &["push"])).await;
    let live = create(&store, webhook("live", None, &["pull"])).await;
    for _ in 0..3 {
        publish(&store, event("push", None)).await;
    }
    let policy = policy(2, Some(40));

    let first = claim(&store, 10).await;
    let tried = of(&first, dead.id);
    assert_eq!(tried.len(), 3);
    assert!(
        fail(&store, &first[0], policy).await.is_empty(),
        "one failure is no news"
    );
    let changes = fail(&store, &first[1], policy).await;
    assert!(
        matches!(
            changes[..],
            [
                HealthChange::Failing {
                    consecutive_failures: 2,
                    ..
                },
                HealthChange::Paused { .. }
            ]
        ),
        "{changes:?}"
    );
    assert!(
        record(
            &store,
            &first[2],
            NextStep::RetryIn(Duration::ZERO),
            Some(500)
        )
        .await
    );
    let paused = get_webhook(&store, dead.id).await.health;
    assert_eq!(paused.state, HealthState::Paused);
    assert_eq!(paused.consecutive_failures, 2);
    assert_eq!(paused.last_error.as_deref(), Some("HTTP 500"));
    assert!(paused.until.is_some());

    // Paused: the dead webhook's deliveries, all due, are passed over; the
    // live one's are not; nothing of the dead one's changes.
    publish(&store, event("pull", None)).await;
    let during = claim(&store, 10).await;
    assert!(of(&during, dead.id).is_empty(), "claimed while paused");
    assert_eq!(of(&during, live.id).len(), 1);
    let before: Vec<_> = {
        let mut all = Vec::new();
        for id in &tried {
            all.push(detail(&store, *id).await.delivery);
        }
        all
    };
    assert!(
        before
            .iter()
            .all(|d| d.status == DeliveryStatus::Pending && d.attempts == 1)
    );

    // After the pause: the oldest due delivery alone, as a probe.
    let probe = wait_for_probe(&store, dead.id, Duration::from_secs(3600)).await;
    assert_eq!(
        probe.delivery_id, tried[0],
        "the probe is the oldest due delivery"
    );
    assert_eq!(probe.attempt_number, 2, "no attempt was lost to the pause");
    assert_eq!(
        get_webhook(&store, dead.id).await.health.state,
        HealthState::Probing
    );
    assert!(
        of(&claim(&store, 10).await, dead.id).is_empty(),
        "one probe at a time"
    );

    assert!(record(&store, &probe, NextStep::Succeeded, Some(200)).await);
    let changes = note(&store, dead.id, HealthSignal::Success, policy).await;
    assert_eq!(
        changes,
        vec![HealthChange::Recovered {
            failed_attempts: 2,
            failing_since: paused.failing_since,
        }]
    );
    let healthy = get_webhook(&store, dead.id).await.health;
    assert_eq!(
        (healthy.state, healthy.consecutive_failures),
        (HealthState::Healthy, 0)
    );
    assert!(healthy.last_success.is_some());
    let rest = of(&claim(&store, 10).await, dead.id);
    assert_eq!(
        rest,
        tried[1..].to_vec(),
        "the backlog is released, nothing skipped"
    );
    for id in &tried[1..] {
        assert_eq!(detail(&store, *id).await.delivery.attempts, 1);
    }
}

pub async fn one_probe_is_claimed_among_concurrent_claims(store: Arc<dyn Store>) {
    let dead = create(&store, webhook("dead", None, &["push"])).await;
    for _ in 0..6 {
        publish(&store, event("push", None)).await;
    }
    let policy = policy(1, None);
    let first = claim(&store, 1).await;
    assert_eq!(first.len(), 1);
    fail(&store, &first[0], policy).await;
    // One claim takes the probe; the others race for one that is taken.
    wait_for_probe(&store, dead.id, Duration::from_secs(3600)).await;
    let mut claimed = HashSet::new();
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { claim(&store, 10).await })
        })
        .collect();
    for racer in racers {
        for c in racer.await.unwrap() {
            claimed.insert(c.delivery_id);
        }
    }
    assert!(claimed.is_empty(), "claimed beside the probe: {claimed:?}");
}

pub async fn an_abandoned_probe_is_taken_again_when_its_lease_ends(store: Arc<dyn Store>) {
    let dead = create(&store, webhook("dead", None, &["push"])).await;
    publish(&store, event("push", None)).await;
    let policy = policy(1, None);
    let first = claim(&store, 1).await;
    fail(&store, &first[0], policy).await;
    let lost = wait_for_probe(&store, dead.id, Duration::from_millis(200)).await;
    // Its node died: the probe's lease runs out, and another probe is taken.
    let again = wait_for_probe(&store, dead.id, Duration::from_secs(3600)).await;
    assert_eq!(
        again.delivery_id, lost.delivery_id,
        "the same oldest delivery"
    );
    assert_eq!(again.attempt_number, lost.attempt_number);
}

pub async fn a_webhook_disabled_for_failing_keeps_its_backlog_until_enabled(store: Arc<dyn Store>) {
    let dead = create(&store, webhook("dead", None, &["push"])).await;
    for _ in 0..2 {
        publish(&store, event("push", None)).await;
    }
    let policy = policy(5, Some(2));
    let first = claim(&store, 10).await;
    assert!(fail(&store, &first[0], policy).await.is_empty());
    let changes = fail(&store, &first[1], policy).await;
    assert!(
        matches!(&changes[..], [HealthChange::Disabled { consecutive_failures: 2, reason, .. }] if reason.contains("HTTP 500")),
        "{changes:?}"
    );
    let disabled = get_webhook(&store, dead.id).await;
    assert!(disabled.enabled, "the person's switch is untouched");
    assert_eq!(disabled.health.state, HealthState::Disabled);
    assert!(disabled.health.disabled_reason.is_some());

    let published = publish(&store, event("push", None)).await;
    assert_eq!(published.deliveries, 1, "new events are still kept for it");
    tokio::time::sleep(PAUSE * 2).await;
    assert!(
        of(&claim(&store, 10).await, dead.id).is_empty(),
        "claimed while disabled"
    );
    for c in &first {
        let kept = detail(&store, c.delivery_id).await.delivery;
        assert_eq!((kept.status, kept.attempts), (DeliveryStatus::Pending, 1));
    }

    let enabled = update(
        &store,
        dead.id,
        WebhookPatch {
            enabled: Some(true),
            ..WebhookPatch::default()
        },
    )
    .await;
    assert_eq!(enabled.health.state, HealthState::Healthy);
    assert_eq!(enabled.health.consecutive_failures, 0);
    assert_eq!(
        enabled.health.last_error.as_deref(),
        Some("HTTP 500"),
        "history kept"
    );
    assert_eq!(
        of(&claim(&store, 10).await, dead.id).len(),
        3,
        "the whole backlog"
    );
}

pub async fn retry_after_closes_the_whole_webhook_until_then(store: Arc<dyn Store>) {
    let busy = create(&store, webhook("busy", None, &["push"])).await;
    for _ in 0..3 {
        publish(&store, event("push", None)).await;
    }
    let first = claim(&store, 1).await;
    assert!(
        record(
            &store,
            &first[0],
            NextStep::RetryIn(Duration::ZERO),
            Some(429)
        )
        .await
    );
    let asked = HealthSignal::Throttled {
        wait: PAUSE,
        error: "HTTP 429".to_owned(),
    };
    let changes = note(&store, busy.id, asked, policy(4, Some(40))).await;
    assert!(changes.is_empty(), "flow control is no news: {changes:?}");
    let health = get_webhook(&store, busy.id).await.health;
    assert_eq!(
        (health.state, health.consecutive_failures),
        (HealthState::Throttled, 0)
    );
    assert!(
        claim(&store, 10).await.is_empty(),
        "nothing before the time asked"
    );

    let start = Instant::now();
    let after = loop {
        let claimed = claim(&store, 10).await;
        if !claimed.is_empty() {
            break claimed;
        }
        assert!(start.elapsed() < DEADLINE, "the throttle never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        after.len(),
        3,
        "all of it at once: no probe after a throttle"
    );
}

/// An attempt whose lease ran out is only logged: what it says about the
/// endpoint is the current attempt's to say, so the health stays as it was
/// and nothing is reported. The current attempt's failure is then noted.
pub async fn a_stale_attempt_notes_nothing_about_its_endpoint(store: Arc<dyn Store>) {
    let hook = create(&store, webhook("w", None, &["push"])).await;
    publish(&store, event("push", None)).await;
    let claimed = claim(&store, 1).await.remove(0);
    let policy = policy(1, None);

    let stale = LeaseToken(claimed.lease.0.wrapping_add(1));
    let recorded = record_noting(&store, &claimed, stale, failure(), policy).await;
    assert!(!recorded.moved_on);
    assert_eq!(recorded.health.expect("nothing to note"), Vec::new());
    let health = get_webhook(&store, hook.id).await.health;
    assert_eq!(
        (health.state, health.consecutive_failures),
        (HealthState::Healthy, 0)
    );
    assert_eq!(detail(&store, claimed.delivery_id).await.attempts.len(), 1);

    let changes = fail(&store, &claimed, policy).await;
    assert!(
        matches!(
            changes[..],
            [HealthChange::Failing { .. }, HealthChange::Paused { .. }]
        ),
        "{changes:?}"
    );
    let health = get_webhook(&store, hook.id).await.health;
    assert_eq!(
        (health.state, health.consecutive_failures),
        (HealthState::Paused, 1)
    );
    assert_eq!(detail(&store, claimed.delivery_id).await.attempts.len(), 2);
}

/// Failed attempts of one webhook recorded at once (in one batch, where a
/// store batches its records) each count: the failures add up to the
/// threshold, and the change they make is reported to exactly one of them.
pub async fn failures_recorded_at_once_each_count_once(store: Arc<dyn Store>) {
    const ATTEMPTS: u32 = 8;
    let hook = create(&store, webhook("w", None, &["push"])).await;
    for _ in 0..ATTEMPTS {
        publish(&store, event("push", None)).await;
    }
    let claimed = claim(&store, 10).await;
    assert_eq!(claimed.len(), ATTEMPTS as usize);
    let policy = policy(ATTEMPTS, None);

    let recorders: Vec<_> = claimed
        .into_iter()
        .map(|c| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let recorded = record_noting(&store, &c, c.lease, failure(), policy).await;
                assert!(recorded.moved_on, "the lease was current");
                recorded.health.expect("the note was made")
            })
        })
        .collect();
    let mut reported = Vec::new();
    for recorder in recorders {
        reported.extend(recorder.await.unwrap());
    }
    assert!(
        matches!(
            reported[..],
            [
                HealthChange::Failing {
                    consecutive_failures: ATTEMPTS,
                    ..
                },
                HealthChange::Paused { .. }
            ]
        ),
        "{reported:?}"
    );
    let health = get_webhook(&store, hook.id).await.health;
    assert_eq!(
        (health.state, health.consecutive_failures),
        (HealthState::Paused, ATTEMPTS)
    );
}

pub async fn health_settings_round_trip(store: Arc<dyn Store>) {
    let own = HealthOverrides {
        failing_after: Some(7),
        disable_after: Some(None),
    };
    let mut new = webhook("tuned", None, &["push"]);
    new.health_overrides = own;
    let created = create(&store, new).await;
    assert_eq!(created.health_overrides, own);
    assert_eq!(get_webhook(&store, created.id).await.health_overrides, own);
    let changed = HealthOverrides {
        failing_after: None,
        disable_after: Some(Some(12)),
    };
    let updated = update(
        &store,
        created.id,
        WebhookPatch {
            settings: SettingsChange {
                failing_after: Some(None),
                disable_after: Some(Some(12)),
                ..SettingsChange::default()
            },
            ..WebhookPatch::default()
        },
    )
    .await;
    assert_eq!(updated.health_overrides, changed);
    let never = update(
        &store,
        created.id,
        WebhookPatch {
            settings: SettingsChange {
                disable_after: Some(Some(0)),
                ..SettingsChange::default()
            },
            ..WebhookPatch::default()
        },
    )
    .await;
    assert_eq!(
        never.health_overrides.disable_after,
        Some(None),
        "0 switches auto-disable off"
    );
    let changed = update(
        &store,
        created.id,
        WebhookPatch {
            settings: SettingsChange {
                disable_after: Some(Some(12)),
                ..SettingsChange::default()
            },
            ..WebhookPatch::default()
        },
    )
    .await
    .health_overrides;
    assert_eq!(
        get_webhook(&store, created.id).await.health_overrides,
        changed
    );
    assert_eq!(
        changed.apply(HealthPolicy::default()).disable_after,
        Some(12)
    );
}

/// A webhook's own flow limits are kept as given, changed by a patch, come
/// back with its claimed deliveries (which is where the engine reads them),
/// and are left alone by a patch that does not name them.
pub async fn flow_limits_round_trip(store: Arc<dyn Store>) {
    let own = FlowLimits {
        max_in_flight: Some(3),
        max_per_second: Some(50),
    };
    let mut new = webhook("paced", None, &["push"]);
    new.flow_limits = own;
    let created = create(&store, new).await;
    assert_eq!(created.flow_limits, own);
    assert_eq!(get_webhook(&store, created.id).await.flow_limits, own);
    publish(&store, event("push", None)).await;
    let claimed = claim(&store, 10).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].webhook.flow_limits, own);

    let renamed = update(
        &store,
        created.id,
        WebhookPatch {
            name: Some("renamed".into()),
            ..WebhookPatch::default()
        },
    )
    .await;
    assert_eq!(
        renamed.flow_limits, own,
        "a patch without limits keeps them"
    );
    // Two changes naming different settings, one after the other: the
    // second leaves the first's standing (each is merged under the store's
    // lock, so this holds for concurrent changes too).
    update(
        &store,
        created.id,
        WebhookPatch {
            settings: SettingsChange {
                max_in_flight: Some(None),
                ..SettingsChange::default()
            },
            ..WebhookPatch::default()
        },
    )
    .await;
    let updated = update(
        &store,
        created.id,
        WebhookPatch {
            settings: SettingsChange {
                max_per_second: Some(Some(1)),
                ..SettingsChange::default()
            },
            ..WebhookPatch::default()
        },
    )
    .await;
    let changed = FlowLimits {
        max_in_flight: None,
        max_per_second: Some(1),
    };
    assert_eq!(updated.flow_limits, changed);
    assert_eq!(get_webhook(&store, created.id).await.flow_limits, changed);
    let listed = store.list_webhooks().await.expect("list");
    assert_eq!(listed[0].flow_limits, changed);
}
