//! The behaviours every store implementation must show.
//!
//! Each case is a public async function that takes a freshly opened, empty store
//! and asserts one behaviour a user would notice. A store crate runs them all with
//! [`store_contract_tests!`](crate::store_contract_tests), which expands to one
//! `#[tokio::test]` per case (the calling crate needs `tokio` as a dev-dependency):
//!
//! ```ignore
//! herald_store::store_contract_tests!(async { fresh_store().await });
//! ```
//!
//! The factory expression is awaited once per test. It yields either an
//! `Arc<dyn Store>` or a `(Arc<dyn Store>, guard)` pair (see [`Fixture`]): the guard,
//! a temporary directory or a schema to drop, lives until the case has finished.
//!
//! Times are compared only with times the store itself reported, never with the
//! test's clock, so a store whose clock is the database's passes too. The few
//! sleeps make sure the store's clock has moved on; they assert nothing about speed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use herald_core::cipher::SealedColumn;
use herald_core::event_type::EventTypePattern;
use herald_core::id::{AttemptId, DeliveryId, EventId, WebhookId};
use herald_core::time::Timestamp;

use herald_core::ordering::DeliveryOrdering;

use crate::{
    AttemptOutcome, AttemptRecord, Backlog, CLEANUP_BATCH, ClaimRequest, ClaimedDelivery,
    DeliveryDetail, DeliveryQuery, DeliveryRecord, DeliveryStatus, DeliveryStatus as Status,
    FinishedCounts, KeyVerdict, LeaseToken, NewEvent, NewWebhook, NextStep, Published, PurgePolicy,
    PurgeReport, RECOVER_BATCH, SettingsChange, Store, StoreError, WebhookPatch, WebhookRecord,
    scope_label,
};

/// What a test factory yields: the store under test, and whatever must stay alive
/// while it is used.
pub trait Fixture: Send {
    fn store(&self) -> Arc<dyn Store>;
}

impl Fixture for Arc<dyn Store> {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(self)
    }
}

impl<G: Send> Fixture for (Arc<dyn Store>, G) {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.0)
    }
}

/// Expands to one `#[tokio::test]` per contract case. `$factory` is an async
/// expression yielding a fresh [`Fixture`](crate::contract::Fixture).
#[macro_export]
macro_rules! store_contract_tests {
    ($factory:expr $(,)?) => {
        $crate::store_contract_tests!(@cases $factory;
            webhook_round_trip,
            a_display_url_stored_with_its_token_is_read_masked,
            scope_limit_counts_each_scope_separately,
            moving_into_a_full_scope_is_refused_and_changes_nothing,
            disabling_a_webhook_fails_its_pending_deliveries,
            publish_fans_out_to_matching_webhooks_in_scope,
            fan_out_follows_webhook_changes,
            idempotent_publish_replays_the_first_answer,
            claim_returns_the_exact_event_and_the_webhook,
            claim_takes_the_oldest_due_first_up_to_the_limit,
            concurrent_claims_never_share_a_delivery,
            claims_skip_the_given_webhooks,
            an_expired_lease_makes_the_delivery_due_again,
            a_successful_attempt_marks_the_delivery_succeeded,
            a_retry_reschedules_and_counts_failures_in_the_schedule,
            a_deferral_reschedules_without_using_a_retry,
            a_failed_attempt_marks_the_delivery_failed,
            failed_and_disable_disables_the_webhook,
            a_stale_lease_only_appends_to_the_log,
            get_delivery_returns_the_event_and_attempts_oldest_first,
            list_deliveries_pages_newest_first,
            list_deliveries_filters_by_status_and_time,
            redeliver_queues_another_attempt_now,
            recover_requeues_failed_deliveries_since,
            recover_past_one_batch_requeues_each_failed_delivery_once,
            purge_removes_old_finished_work_and_keeps_pending,
            deleting_a_webhook_deletes_its_deliveries,
            deleting_a_webhook_past_one_batch_hides_and_deletes_all_of_it,
            an_interrupted_deletion_stays_hidden_and_finishes_later,
            disabling_past_one_batch_fails_every_pending_delivery,
            a_gone_past_one_batch_fails_the_whole_backlog,
            next_due_at_is_the_earliest_pending_delivery,
            a_released_delivery_is_due_again_with_no_attempt_counted,
            the_first_key_check_is_adopted_with_stored_values_rebound,
            a_key_that_cannot_open_a_stored_value_is_not_adopted,
            the_backlog_counts_pending_deliveries_by_state,
            finished_deliveries_are_counted_by_outcome_within_a_window,
            readiness_reports_the_schema_and_the_adopted_key_check,
            failures_pause_the_webhook_then_one_probe_releases_the_backlog,
            one_probe_is_claimed_among_concurrent_claims,
            an_abandoned_probe_is_taken_again_when_its_lease_ends,
            a_webhook_disabled_for_failing_keeps_its_backlog_until_enabled,
            retry_after_closes_the_whole_webhook_until_then,
            a_stale_attempt_notes_nothing_about_its_endpoint,
            failures_recorded_at_once_each_count_once,
            health_settings_round_trip,
            flow_limits_round_trip,
            an_ordered_key_is_claimed_head_first_one_at_a_time,
            a_retrying_head_holds_only_its_own_key,
            an_expired_lease_hands_the_head_to_another_claimer,
            a_key_published_while_its_head_finishes_keeps_its_order,
            concurrent_publishes_of_one_key_make_one_head,
            redeliveries_and_recoveries_go_outside_the_key_order,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $factory.await;
                let store = $crate::contract::Fixture::store(&fixture);
                $crate::contract::$case(store).await;
                drop(fixture);
            }
        )*
    };
}

const LIMIT: u32 = 10;
const LONG_LEASE: Duration = Duration::from_secs(3600);
/// Long enough for the store's clock to tick past a millisecond boundary.
const TICK: Duration = Duration::from_millis(20);

pub use crate::contract_health::*;
pub use crate::contract_ordering::*;

// ---- helpers ----

fn patterns(list: &[&str]) -> Vec<EventTypePattern> {
    list.iter()
        .map(|p| EventTypePattern::parse("event_types", p).expect("test patterns are valid"))
        .collect()
}

/// Sealed fields are opaque bytes to the store: include a NUL and non-UTF-8 bytes.
fn sealed(seed: &str, tag: u8) -> Vec<u8> {
    let mut bytes = vec![0x00, 0xff, 0xfe, tag];
    bytes.extend_from_slice(seed.as_bytes());
    bytes
}

pub(crate) fn webhook(name: &str, project: Option<&str>, types: &[&str]) -> NewWebhook {
    NewWebhook {
        id: WebhookId::new(),
        name: name.to_owned(),
        url_display: format!(
            "https://***:***@hooks.example.com/{}",
            name.replace(' ', "-")
        ),
        url_sealed: sealed(name, 1),
        secret_sealed: sealed(name, 2),
        event_types: patterns(types),
        project: project.map(str::to_owned),
        enabled: true,
        health_overrides: Default::default(),
        flow_limits: Default::default(),
        ordering: Default::default(),
    }
}

pub(crate) fn event(event_type: &str, project: Option<&str>) -> NewEvent {
    let id = EventId::new();
    NewEvent {
        id,
        event_type: event_type.to_owned(),
        project: project.map(str::to_owned),
        payload: format!(r#"{{"id":"{id}","type":"{event_type}"}}"#).into_bytes(),
        properties: BTreeMap::new(),
        ordering_key: None,
    }
}

pub(crate) async fn create(store: &Arc<dyn Store>, new: NewWebhook) -> WebhookRecord {
    store
        .create_webhook(new, LIMIT)
        .await
        .expect("create_webhook")
}

pub(crate) async fn update(
    store: &Arc<dyn Store>,
    id: WebhookId,
    patch: WebhookPatch,
) -> WebhookRecord {
    store
        .update_webhook(id, patch, LIMIT)
        .await
        .expect("update_webhook")
        .expect("the webhook exists")
}

pub(crate) async fn get_webhook(store: &Arc<dyn Store>, id: WebhookId) -> WebhookRecord {
    store
        .get_webhook(id)
        .await
        .expect("get_webhook")
        .expect("the webhook exists")
}

pub(crate) async fn publish(store: &Arc<dyn Store>, event: NewEvent) -> Published {
    store.publish(event, None).await.expect("publish")
}

/// Publishes `count` events from several tasks at once, so a store that commits
/// in groups stores a large backlog in few commits.
async fn publish_concurrently(store: &Arc<dyn Store>, event_type: &str, count: usize) {
    const TASKS: usize = 16;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = Arc::clone(store);
            let event_type = event_type.to_owned();
            tokio::spawn(async move {
                for _ in (task..count).step_by(TASKS) {
                    publish(&store, event(&event_type, None)).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("publish task");
    }
}

pub(crate) async fn claim_with(
    store: &Arc<dyn Store>,
    limit: usize,
    lease: Duration,
    skip: Vec<WebhookId>,
) -> Vec<ClaimedDelivery> {
    store
        .claim_due(ClaimRequest {
            limit,
            lease,
            skip_webhooks: skip,
        })
        .await
        .expect("claim_due")
}

pub(crate) async fn claim(store: &Arc<dyn Store>, limit: usize) -> Vec<ClaimedDelivery> {
    claim_with(store, limit, LONG_LEASE, Vec::new()).await
}

async fn claim_one(store: &Arc<dyn Store>) -> ClaimedDelivery {
    let mut claimed = claim(store, 1).await;
    assert_eq!(claimed.len(), 1, "expected one due delivery");
    claimed.remove(0)
}

pub(crate) fn attempt(
    claimed: &ClaimedDelivery,
    status: Option<u16>,
    error: Option<&str>,
) -> AttemptRecord {
    AttemptRecord {
        id: AttemptId::new(),
        delivery_id: claimed.delivery_id,
        number: claimed.attempt_number,
        started_at: Timestamp::from_millis(1_700_000_000_000 + i64::from(claimed.attempt_number)),
        duration_ms: 42,
        request_url: claimed.webhook.url_display.clone(),
        request_headers: vec![("webhook-id".to_owned(), claimed.event.id.to_string())],
        response_status: status,
        response_headers: Vec::new(),
        response_body: status.map(|s| format!("status {s}")),
        error: error.map(str::to_owned),
    }
}

pub(crate) async fn record_as(
    store: &Arc<dyn Store>,
    claimed: &ClaimedDelivery,
    lease: LeaseToken,
    next: NextStep,
    status: Option<u16>,
) -> bool {
    let error = status.is_none().then_some("connection refused");
    store
        .record_attempt(AttemptOutcome {
            lease,
            attempt: attempt(claimed, status, error),
            next,
        })
        .await
        .expect("record_attempt")
}

pub(crate) async fn record(
    store: &Arc<dyn Store>,
    claimed: &ClaimedDelivery,
    next: NextStep,
    status: Option<u16>,
) -> bool {
    record_as(store, claimed, claimed.lease, next, status).await
}

pub(crate) async fn detail(store: &Arc<dyn Store>, id: DeliveryId) -> DeliveryDetail {
    store
        .get_delivery(id)
        .await
        .expect("get_delivery")
        .expect("the delivery exists")
}

fn query(webhook_id: WebhookId, limit: u32) -> DeliveryQuery {
    DeliveryQuery {
        webhook_id,
        status: None,
        since: None,
        until: None,
        cursor: None,
        limit,
    }
}

/// Every page of a query, checking that the pages join without duplicates.
async fn all_pages(
    store: &Arc<dyn Store>,
    mut q: DeliveryQuery,
) -> (Vec<DeliveryRecord>, Vec<usize>) {
    let mut items: Vec<DeliveryRecord> = Vec::new();
    let mut sizes = Vec::new();
    for _ in 0..100 {
        let page = store
            .list_deliveries(q.clone())
            .await
            .expect("list_deliveries");
        sizes.push(page.items.len());
        items.extend(page.items);
        match page.next_cursor {
            Some(cursor) => q.cursor = Some(cursor),
            None => break,
        }
    }
    let distinct: HashSet<DeliveryId> = items.iter().map(|d| d.id).collect();
    assert_eq!(distinct.len(), items.len(), "pages repeat a delivery");
    (items, sizes)
}

async fn deliveries_of(store: &Arc<dyn Store>, webhook_id: WebhookId) -> Vec<DeliveryRecord> {
    all_pages(store, query(webhook_id, 100)).await.0
}

fn webhook_ids(claimed: &[ClaimedDelivery]) -> Vec<WebhookId> {
    let mut ids: Vec<WebhookId> = claimed.iter().map(|c| c.webhook.id).collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<WebhookId>) -> Vec<WebhookId> {
    ids.sort();
    ids
}

fn assert_scope_full(
    result: Result<impl std::fmt::Debug, StoreError>,
    project: Option<&str>,
    limit: u32,
) {
    match result {
        Err(StoreError::ScopeFull {
            scope,
            limit: reported,
        }) => {
            assert_eq!(scope, scope_label(project));
            assert_eq!(reported, limit);
        }
        other => panic!(
            "expected ScopeFull for {}, got {other:?}",
            scope_label(project)
        ),
    }
}

fn purge_everything_finished(batch: u32) -> PurgePolicy {
    PurgePolicy {
        retention: Duration::ZERO,
        idempotency_ttl: Duration::ZERO,
        batch,
    }
}

// ---- webhooks ----

/// Rows written before Herald masked query values and token paths still hold
/// them; reading masks them.
pub async fn a_display_url_stored_with_its_token_is_read_masked(store: Arc<dyn Store>) {
    let mut new = webhook("legacy", None, &["*"]);
    new.url_display = "https://hooks.slack.com/services/T0/B0/s3cret?token=t0ken".to_owned();
    let id = create(&store, new).await.id;
    let shown = "https://hooks.slack.com/services/T0/B0/***?token=***";
    assert_eq!(get_webhook(&store, id).await.url_display, shown);
    let listed = store.list_webhooks().await.unwrap();
    assert_eq!(listed[0].url_display, shown);
}

/// Every field survives create, get, list and update; delete removes the webhook.
pub async fn webhook_round_trip(store: Arc<dyn Store>) {
    let new = NewWebhook {
        health_overrides: Default::default(),
        flow_limits: Default::default(),
        ordering: Default::default(),
        id: WebhookId::new(),
        name: "Deploy notifier ✓".to_owned(),
        url_display: "https://***:***@hooks.example.com/in?x=***".to_owned(),
        url_sealed: vec![0, 1, 2, 0xff, 0, 0x80],
        secret_sealed: vec![0xde, 0xad, 0, 0xbe, 0xef],
        event_types: patterns(&["repo:push", "pr:*"]),
        project: Some("acme/app ü".to_owned()),
        enabled: true,
    };
    let created = create(&store, new.clone()).await;
    assert_eq!(created.id, new.id);
    assert_eq!(created.name, new.name);
    assert_eq!(created.url_display, new.url_display);
    assert_eq!(created.url_sealed, new.url_sealed);
    assert_eq!(created.secret_sealed, new.secret_sealed);
    assert_eq!(created.event_types, new.event_types);
    assert_eq!(created.project, new.project);
    assert!(created.enabled);
    assert_eq!(created.disabled_reason, None);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(
        store.get_webhook(new.id).await.unwrap(),
        Some(created.clone())
    );

    let mut second = webhook("second", None, &["*"]);
    second.enabled = false;
    let global = create(&store, second).await;
    assert!(!global.enabled);
    assert_eq!(global.project, None);
    assert_eq!(
        store.list_webhooks().await.unwrap(),
        vec![created.clone(), global.clone()]
    );

    tokio::time::sleep(TICK).await;
    let patch = WebhookPatch {
        name: Some("renamed".to_owned()),
        url: Some(("https://other.example/x".to_owned(), vec![9, 0, 9])),
        secret_sealed: Some(vec![0, 0, 7]),
        event_types: Some(patterns(&["issue:opened"])),
        project: Some(None),
        enabled: Some(false),
        settings: SettingsChange::default(),
        ordering: Some(DeliveryOrdering::Key),
    };
    let updated = update(&store, new.id, patch).await;
    let expected = WebhookRecord {
        name: "renamed".to_owned(),
        url_display: "https://other.example/x".to_owned(),
        url_sealed: vec![9, 0, 9],
        secret_sealed: vec![0, 0, 7],
        event_types: patterns(&["issue:opened"]),
        project: None,
        enabled: false,
        ordering: DeliveryOrdering::Key,
        updated_at: updated.updated_at,
        ..created.clone()
    };
    assert_eq!(updated, expected);
    assert!(
        updated.updated_at > created.updated_at,
        "updated_at must move on"
    );
    assert_eq!(get_webhook(&store, new.id).await, updated);

    let untouched = update(&store, new.id, WebhookPatch::default()).await;
    assert_eq!(
        WebhookRecord {
            updated_at: updated.updated_at,
            ..untouched
        },
        updated
    );

    let unknown = store
        .update_webhook(
            WebhookId::new(),
            WebhookPatch {
                name: Some("x".to_owned()),
                ..Default::default()
            },
            LIMIT,
        )
        .await
        .unwrap();
    assert_eq!(unknown, None);

    assert!(store.delete_webhook(new.id).await.unwrap());
    assert_eq!(store.get_webhook(new.id).await.unwrap(), None);
    assert!(!store.delete_webhook(new.id).await.unwrap());
    assert_eq!(store.list_webhooks().await.unwrap(), vec![global]);
}

/// The (limit+1)th webhook of a scope is refused, naming the scope; the global
/// scope and each project are counted on their own.
pub async fn scope_limit_counts_each_scope_separately(store: Arc<dyn Store>) {
    let limit = 3;
    for scope in [Some("alpha"), None, Some("beta")] {
        for i in 0..limit {
            let new = webhook(&format!("{} {i}", scope_label(scope)), scope, &["*"]);
            store
                .create_webhook(new, limit)
                .await
                .expect("room in the scope");
        }
        let refused = store
            .create_webhook(webhook("one too many", scope, &["*"]), limit)
            .await;
        assert_scope_full(refused, scope, limit);
    }
    let all = store.list_webhooks().await.unwrap();
    assert_eq!(all.len(), 9);
    assert!(
        all.iter().all(|w| w.name != "one too many"),
        "a refused webhook was stored"
    );
}

/// Editing a webhook inside a full scope is fine; moving one into it is refused
/// and changes nothing.
pub async fn moving_into_a_full_scope_is_refused_and_changes_nothing(store: Arc<dyn Store>) {
    let limit = 2;
    let first = store
        .create_webhook(webhook("a", Some("full"), &["*"]), limit)
        .await
        .unwrap();
    store
        .create_webhook(webhook("b", Some("full"), &["*"]), limit)
        .await
        .unwrap();
    let mover = store
        .create_webhook(webhook("mover", Some("other"), &["*"]), limit)
        .await
        .unwrap();

    let renamed = store
        .update_webhook(
            first.id,
            WebhookPatch {
                name: Some("a renamed".to_owned()),
                project: Some(Some("full".to_owned())),
                ..Default::default()
            },
            limit,
        )
        .await
        .expect("staying in a full scope is not a move")
        .expect("exists");
    assert_eq!(renamed.name, "a renamed");

    let refused = store
        .update_webhook(
            mover.id,
            WebhookPatch {
                name: Some("moved".to_owned()),
                project: Some(Some("full".to_owned())),
                enabled: Some(false),
                ..Default::default()
            },
            limit,
        )
        .await;
    assert_scope_full(refused, Some("full"), limit);
    assert_eq!(get_webhook(&store, mover.id).await, mover);

    let moved = store
        .update_webhook(
            mover.id,
            WebhookPatch {
                project: Some(None),
                ..Default::default()
            },
            limit,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.project, None);
}

/// Disabling, by update or with a reason, fails the webhook's pending deliveries;
/// enabling clears the reason and lets new events through again.
pub async fn disabling_a_webhook_fails_its_pending_deliveries(store: Arc<dyn Store>) {
    let a = create(&store, webhook("a", None, &["push"])).await;
    let b = create(&store, webhook("b", None, &["push"])).await;
    for _ in 0..2 {
        assert_eq!(publish(&store, event("push", None)).await.deliveries, 2);
    }

    let disabled = update(
        &store,
        a.id,
        WebhookPatch {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .await;
    assert!(!disabled.enabled);
    assert_eq!(disabled.disabled_reason, None);
    let a_deliveries = deliveries_of(&store, a.id).await;
    assert_eq!(a_deliveries.len(), 2);
    for d in &a_deliveries {
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(d.last_error.as_deref(), Some("webhook disabled"));
        assert_eq!(d.next_attempt_at, None);
    }
    assert!(
        deliveries_of(&store, b.id)
            .await
            .iter()
            .all(|d| d.status == DeliveryStatus::Pending)
    );

    let in_flight = claim(&store, 100).await;
    assert_eq!(webhook_ids(&in_flight), vec![b.id, b.id]);

    let reason = "the receiver answered 410 Gone";
    store.disable_webhook(b.id, reason).await.unwrap();
    let b_now = get_webhook(&store, b.id).await;
    assert!(!b_now.enabled);
    assert_eq!(b_now.disabled_reason.as_deref(), Some(reason));
    for d in deliveries_of(&store, b.id).await {
        assert_eq!(d.status, DeliveryStatus::Failed);
        assert_eq!(d.last_error.as_deref(), Some("webhook disabled"));
    }
    // The attempts that were in flight lost their lease with their delivery.
    for c in &in_flight {
        assert!(!record(&store, c, NextStep::Succeeded, Some(200)).await);
        assert_eq!(
            detail(&store, c.delivery_id).await.delivery.status,
            DeliveryStatus::Failed
        );
    }
    assert_eq!(publish(&store, event("push", None)).await.deliveries, 0);

    let enabled = update(
        &store,
        b.id,
        WebhookPatch {
            enabled: Some(true),
            ..Default::default()
        },
    )
    .await;
    assert!(enabled.enabled);
    assert_eq!(enabled.disabled_reason, None);
    assert_eq!(publish(&store, event("push", None)).await.deliveries, 1);
    assert_eq!(webhook_ids(&claim(&store, 100).await), vec![b.id]);
}

// ---- publish ----

/// An event reaches every enabled, matching webhook that is global or of its
/// project, and no other; an event nobody wants is stored all the same.
pub async fn publish_fans_out_to_matching_webhooks_in_scope(store: Arc<dyn Store>) {
    let exact_global = create(&store, webhook("exact", None, &["push:created"])).await;
    let family_global = create(&store, webhook("family", None, &["push:*"])).await;
    let p1_family = create(
        &store,
        webhook("p1 family", Some("p1"), &["issue:opened", "push:*"]),
    )
    .await;
    create(&store, webhook("p1 issues", Some("p1"), &["issue:opened"])).await;
    let p2_family = create(&store, webhook("p2 family", Some("p2"), &["push:*"])).await;
    let mut off = webhook("p1 disabled", Some("p1"), &["*"]);
    off.enabled = false;
    create(&store, off).await;

    let cases = [
        (
            event("push:created", Some("p1")),
            vec![exact_global.id, family_global.id, p1_family.id],
        ),
        (event("push:deleted", None), vec![family_global.id]),
        (
            event("push:deleted", Some("p2")),
            vec![family_global.id, p2_family.id],
        ),
        (
            event("push:created", Some("p3")),
            vec![exact_global.id, family_global.id],
        ),
    ];
    for (new, expected) in cases {
        let published = publish(&store, new.clone()).await;
        assert_eq!(published.event_id, new.id);
        assert!(!published.replayed);
        assert_eq!(
            published.deliveries as usize,
            expected.len(),
            "{} in {:?}",
            new.event_type,
            new.project
        );
        let claimed = claim(&store, 100).await;
        assert!(claimed.iter().all(|c| c.event.id == new.id));
        assert_eq!(
            webhook_ids(&claimed),
            sorted(expected),
            "{} in {:?}",
            new.event_type,
            new.project
        );
    }

    let unwanted = event("build:finished", Some("p1"));
    let published = publish(&store, unwanted.clone()).await;
    assert_eq!(
        published,
        Published {
            event_id: unwanted.id,
            deliveries: 0,
            replayed: false
        }
    );
    assert!(claim(&store, 100).await.is_empty());
    // The unwanted event is the only one without pending deliveries: a purge of
    // everything finished finds exactly it, which proves it was stored.
    tokio::time::sleep(TICK).await;
    let report = store
        .purge(PurgePolicy {
            idempotency_ttl: LONG_LEASE,
            ..purge_everything_finished(100)
        })
        .await
        .unwrap();
    assert_eq!(
        report,
        PurgeReport {
            events: 1,
            ..PurgeReport::default()
        }
    );
}

/// Fan-out sees every change to webhooks at once: patterns, scope, enabled,
/// creation and deletion.
pub async fn fan_out_follows_webhook_changes(store: Arc<dyn Store>) {
    let hook = create(&store, webhook("w", Some("p"), &["a:*"])).await;
    let fan_out = |event_type: &'static str, project: &'static str| {
        let store = Arc::clone(&store);
        async move {
            publish(&store, event(event_type, Some(project)))
                .await
                .deliveries
        }
    };
    assert_eq!(fan_out("b:x", "p").await, 0);
    update(
        &store,
        hook.id,
        WebhookPatch {
            event_types: Some(patterns(&["b:*"])),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(fan_out("b:x", "p").await, 1);
    update(
        &store,
        hook.id,
        WebhookPatch {
            project: Some(Some("q".to_owned())),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(fan_out("b:x", "p").await, 0);
    assert_eq!(fan_out("b:x", "q").await, 1);
    update(
        &store,
        hook.id,
        WebhookPatch {
            enabled: Some(false),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(fan_out("b:x", "q").await, 0);
    update(
        &store,
        hook.id,
        WebhookPatch {
            enabled: Some(true),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(fan_out("b:x", "q").await, 1);
    create(&store, webhook("global", None, &["b:x"])).await;
    assert_eq!(fan_out("b:x", "q").await, 2);
    assert!(store.delete_webhook(hook.id).await.unwrap());
    assert_eq!(fan_out("b:x", "q").await, 1);
}

/// A publish retried with the same idempotency key gets the first answer back
/// and stores nothing new.
pub async fn idempotent_publish_replays_the_first_answer(store: Arc<dyn Store>) {
    let hook = create(&store, webhook("w", None, &["*"])).await;
    let original = event("push", None);
    let first = store
        .publish(original.clone(), Some("key-1".to_owned()))
        .await
        .unwrap();
    assert_eq!(
        first,
        Published {
            event_id: original.id,
            deliveries: 1,
            replayed: false
        }
    );

    let retried = store
        .publish(event("push", None), Some("key-1".to_owned()))
        .await
        .unwrap();
    assert_eq!(
        retried,
        Published {
            event_id: original.id,
            deliveries: 1,
            replayed: true
        }
    );

    let claimed = claim(&store, 100).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event.id, original.id);
    assert_eq!(claimed[0].event.payload, original.payload);
    assert_eq!(deliveries_of(&store, hook.id).await.len(), 1);

    let other_key = store
        .publish(event("push", None), Some("key-2".to_owned()))
        .await
        .unwrap();
    assert!(!other_key.replayed);
    assert_ne!(other_key.event_id, original.id);
    let no_key_1 = publish(&store, event("push", None)).await;
    let no_key_2 = publish(&store, event("push", None)).await;
    assert_ne!(no_key_1.event_id, no_key_2.event_id);
    assert_eq!(deliveries_of(&store, hook.id).await.len(), 4);
}

// ---- claims ----

/// A claim hands over the payload byte for byte, the event's fields and the
/// webhook as stored.
pub async fn claim_returns_the_exact_event_and_the_webhook(store: Arc<dyn Store>) {
    let hook = create(&store, webhook("w", Some("p"), &["*"])).await;
    let payload = "{ \"z\":1,  \"a\" : [\"é\", \"\\u0000\", 1.0e3],\n\t\"crab\":\"🦀\" }\n";
    let new = NewEvent {
        id: EventId::new(),
        event_type: "push:created".to_owned(),
        project: Some("p".to_owned()),
        payload: payload.as_bytes().to_vec(),
        properties: BTreeMap::from([
            ("repo".to_owned(), "acme/app".to_owned()),
            ("empty".to_owned(), String::new()),
        ]),
        ordering_key: Some("acme/app#7".to_owned()),
    };
    publish(&store, new.clone()).await;

    let claimed = claim_one(&store).await;
    assert_eq!(claimed.event.id, new.id);
    assert_eq!(claimed.event.event_type, new.event_type);
    assert_eq!(claimed.event.project, new.project);
    assert_eq!(claimed.event.payload, new.payload);
    assert_eq!(claimed.event.properties, new.properties);
    assert_eq!(claimed.event.ordering_key, new.ordering_key);
    assert_eq!(claimed.webhook, hook);
    assert_eq!(claimed.attempt_number, 1);
    assert_eq!(claimed.failures_in_schedule, 0);
    let stored = detail(&store, claimed.delivery_id).await;
    assert_eq!(stored.event, claimed.event);
    assert_eq!(stored.delivery.webhook_id, hook.id);
}

/// Claims take the delivery that fell due first, and never more than asked.
pub async fn claim_takes_the_oldest_due_first_up_to_the_limit(store: Arc<dyn Store>) {
    create(&store, webhook("w", None, &["*"])).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(publish(&store, event("push", None)).await.event_id);
        tokio::time::sleep(TICK).await;
    }
    for expected in &ids {
        assert_eq!(&claim_one(&store).await.event.id, expected);
    }
    assert!(claim(&store, 10).await.is_empty());

    for _ in 0..3 {
        publish(&store, event("push", None)).await;
    }
    assert_eq!(claim(&store, 2).await.len(), 2);
    assert_eq!(claim(&store, 2).await.len(), 1);
}

/// Claims running at the same time split the work: no delivery is handed out twice.
pub async fn concurrent_claims_never_share_a_delivery(store: Arc<dyn Store>) {
    for name in ["a", "b", "c"] {
        create(&store, webhook(name, None, &["*"])).await;
    }
    for _ in 0..20 {
        publish(&store, event("push", None)).await;
    }
    let claimers: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { claim(&store, 10).await })
        })
        .collect();
    let mut seen = HashSet::new();
    for claimer in claimers {
        for claimed in claimer.await.expect("claim task") {
            assert!(
                seen.insert(claimed.delivery_id),
                "{:?} was claimed twice",
                claimed.delivery_id
            );
        }
    }
    for claimed in claim(&store, 100).await {
        assert!(
            seen.insert(claimed.delivery_id),
            "{:?} was claimed twice",
            claimed.delivery_id
        );
    }
    assert_eq!(seen.len(), 60);
}

/// Webhooks a node is too busy for are left to the next claim.
pub async fn claims_skip_the_given_webhooks(store: Arc<dyn Store>) {
    let a = create(&store, webhook("a", None, &["*"])).await;
    let b = create(&store, webhook("b", None, &["*"])).await;
    for _ in 0..2 {
        publish(&store, event("push", None)).await;
    }
    let without_a = claim_with(&store, 10, LONG_LEASE, vec![a.id]).await;
    assert_eq!(webhook_ids(&without_a), vec![b.id, b.id]);
    assert!(
        claim_with(&store, 10, LONG_LEASE, vec![a.id])
            .await
            .is_empty()
    );
    assert!(
        claim_with(&store, 10, LONG_LEASE, vec![a.id, b.id])
            .await
            .is_empty()
    );
    let without_b = claim_with(&store, 10, LONG_LEASE, vec![b.id]).await;
    assert_eq!(webhook_ids(&without_b), vec![a.id, a.id]);
}

/// A leased delivery is not due again until the lease ends; then it is claimed
/// afresh and the first holder can no longer move it on.
pub async fn an_expired_lease_makes_the_delivery_due_again(store: Arc<dyn Store>) {
    create(&store, webhook("w", None, &["*"])).await;
    publish(&store, event("push", None)).await;
    let first = claim_with(&store, 10, Duration::from_millis(200), Vec::new()).await;
    assert_eq!(first.len(), 1);
    assert!(
        claim(&store, 10).await.is_empty(),
        "a leased delivery was claimed again"
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = claim(&store, 10).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].delivery_id, first[0].delivery_id);
    assert_ne!(second[0].lease, first[0].lease);
    assert_eq!(second[0].attempt_number, 1);

    assert!(!record(&store, &first[0], NextStep::Succeeded, Some(200)).await);
    assert!(record(&store, &second[0], NextStep::Succeeded, Some(200)).await);
    let stored = detail(&store, first[0].delivery_id).await;
    assert_eq!(stored.delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(stored.attempts.len(), 2, "the late attempt is still logged");
}

pub async fn a_released_delivery_is_due_again_with_no_attempt_counted(store: Arc<dyn Store>) {
    create(&store, webhook("w", None, &["*"])).await;
    publish(&store, event("push", None)).await;
    let first = claim_one(&store).await;
    assert!(store.release(first.delivery_id, first.lease).await.unwrap());
    assert!(
        !store.release(first.delivery_id, first.lease).await.unwrap(),
        "a released lease is no longer current"
    );

    let again = claim_one(&store).await;
    assert_eq!(again.delivery_id, first.delivery_id, "due again at once");
    assert_eq!(again.attempt_number, 1, "no attempt was counted");
    let stored = detail(&store, first.delivery_id).await;
    assert_eq!(stored.delivery.status, DeliveryStatus::Pending);
    assert_eq!(stored.delivery.attempts, 0);
    assert!(stored.attempts.is_empty());
    assert!(
        !record(&store, &first, NextStep::Succeeded, Some(200)).await,
        "the released lease cannot move the delivery on"
    );
    assert!(record(&store, &again, NextStep::Succeeded, Some(200)).await);
}

/// Stands in for the cipher: "rebinds" by tagging the value with its place.
fn tagging_rebind() -> crate::Rebind {
    Arc::new(|column: SealedColumn, row, sealed: &[u8]| {
        let mut bound = format!("{}:{row}|", column.name()).into_bytes();
        bound.extend_from_slice(sealed);
        Some(bound)
    })
}

pub async fn the_first_key_check_is_adopted_with_stored_values_rebound(store: Arc<dyn Store>) {
    let hook = create(&store, webhook("w", None, &["*"])).await;
    let check = [1u8; 32];
    let verdict = store.adopt_key(check, tagging_rebind()).await.unwrap();
    assert_eq!(verdict, KeyVerdict::Adopted { rebound: 2 });
    let stored = get_webhook(&store, hook.id).await;
    let mut url = format!("webhooks.url:{}|", hook.id).into_bytes();
    url.extend_from_slice(&hook.url_sealed);
    let mut secret = format!("webhooks.secret:{}|", hook.id).into_bytes();
    secret.extend_from_slice(&hook.secret_sealed);
    assert_eq!(stored.url_sealed, url);
    assert_eq!(stored.secret_sealed, secret);

    assert_eq!(
        store.adopt_key(check, tagging_rebind()).await.unwrap(),
        KeyVerdict::Matches
    );
    assert_eq!(
        get_webhook(&store, hook.id).await.url_sealed,
        url,
        "values are rebound once, by the node that adopts"
    );
    assert_eq!(
        store.adopt_key([2u8; 32], tagging_rebind()).await.unwrap(),
        KeyVerdict::Mismatch
    );
}

pub async fn a_key_that_cannot_open_a_stored_value_is_not_adopted(store: Arc<dyn Store>) {
    let first = create(&store, webhook("first", None, &["*"])).await;
    let second = create(&store, webhook("second", None, &["*"])).await;
    let refuses_second: crate::Rebind =
        Arc::new(move |column: SealedColumn, row, sealed: &[u8]| {
            (row != second.id.as_uuid() || column != SealedColumn::WebhookSecret)
                .then(|| sealed.iter().rev().copied().collect())
        });
    assert_eq!(
        store.adopt_key([1u8; 32], refuses_second).await.unwrap(),
        KeyVerdict::Unopenable {
            column: SealedColumn::WebhookSecret,
            row: second.id.as_uuid()
        }
    );
    assert_eq!(
        get_webhook(&store, first.id).await.url_sealed,
        first.url_sealed,
        "nothing was rebound"
    );
    assert_eq!(
        store.adopt_key([2u8; 32], tagging_rebind()).await.unwrap(),
        KeyVerdict::Adopted { rebound: 4 },
        "no key check was stored"
    );
}

// ---- recording attempts ----

pub async fn a_successful_attempt_marks_the_delivery_succeeded(store: Arc<dyn Store>) {
    create(&store, webhook("w", None, &["*"])).await;
    publish(&store, event("push", None)).await;
    let claimed = claim_one(&store).await;
    assert!(record(&store, &claimed, NextStep::Succeeded, Some(204)).await);

    let stored = detail(&store, claimed.delivery_id).await.delivery;
    assert_eq!(stored.status, DeliveryStatus::Succeeded);
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.next_attempt_at, None);
    assert_eq!(stored.last_status_code, Some(204));
    assert_eq!(stored.last_error, None);
    assert!(claim(&store, 10).await.is_empty());
    assert_eq!(store.next_due_at().await.unwrap(), None);
}

/// A retry puts the delivery back in the queue at the given delay and moves the
/// schedule on, which the next claim reports.
pub async fn a_retry_reschedules_and_counts_failures_in_the_schedule(store: Arc<dyn Store>) {
    create(&store, webhook("w", None, &["*"])).await;
    publish(&store, event("push", None)).await;

    let first = claim_one(&store).await;
    assert!(record(&store, &first, NextStep::RetryIn(Duration::ZERO), Some(500)).await);
    let second = claim_one(&store).await;
    assert_eq!(second.delivery_id, first.delivery_id);
    assert_eq!((second.attempt_number, second.failures_in_schedule), (2, 1));

    assert!(record(&store, &second, NextStep::RetryIn(Duration::ZERO), None).await);
    let third = claim_one(&store).await;
    assert_eq!((third.attempt_number, third.failures_in_schedule), (3, 2));

    assert!(
        record(
            &store,
            &third,
            NextStep::RetryIn(Duration::from_secs(3600)),
            Some(503)
        )
        .await
    );
    assert!(
        claim(&store, 10).await.is_empty(),
        "a retry in an hour is not due"
    );
    let stored = detail(&store, first.delivery_id).await.delivery;
    assert_eq!(stored.status, DeliveryStatus::Pending);
    assert_eq!(stored.attempts, 3);
    assert_eq!(stored.last_status_code, Some(503));
    let next = stored
        .next_attempt_at
        .expect("a pending delivery has a next attempt");
    assert!(
        next >= stored.updated_at.saturating_add(Duration::from_secs(3599)),
        "{next:?}"
    );
    assert_eq!(store.next_due_at().await.unwrap(), Some(next));
}

/// A wait the receiver asked for puts the delivery back in the queue like a
/// retry, but leaves the schedule where it was.
pub async fn a_deferral_reschedules_without_using_a_retry(store: Arc<dyn Store>) {
    create(&store, webhook("w", None, &["*"])).await;
    publish(&store, event("push", None)).await;

    let first = claim_one(&store).await;
    assert!(
        record(
            &store,
            &first,
            NextStep::Deferred(Duration::ZERO),
            Some(429)
        )
        .await
    );
    let second = claim_one(&store).await;
    assert_eq!((second.attempt_number, second.failures_in_schedule), (2, 0));

    assert!(
        record(
            &store,
            &second,
            NextStep::RetryIn(Duration::ZERO),
            Some(500)
        )
        .await
    );
    let third = claim_one(&store).await;
    assert_eq!((third.attempt_number, third.failures_in_schedule), (3, 1));

    let asked = Duration::from_secs(3600);
    assert!(record(&store, &third, NextStep::Deferred(asked), Some(503)).await);
    assert!(claim(&store, 10).await.is_empty(), "deferred for an hour");
    let stored = detail(&store, first.delivery_id).await.delivery;
    assert_eq!(stored.status, DeliveryStatus::Pending);
    assert_eq!(stored.attempts, 3);
    assert!(
        stored.next_attempt_at.is_some_and(|next| next
            >= stored
                .updated_at
                .saturating_add(asked - Duration::from_secs(1))),
        "{stored:?}"
    );
}

pub async fn a_failed_attempt_marks_the_delivery_failed(store: Arc<dyn Store>) {
    create(&store, webhook("w", None, &["*"])).await;
    publish(&store, event("push", None)).await;
    let claimed = claim_one(&store).await;
    assert!(record(&store, &claimed, NextStep::Failed, None).await);

    let stored = detail(&store, claimed.delivery_id).await.delivery;
    assert_eq!(stored.status, DeliveryStatus::Failed);
    assert_eq!(stored.attempts, 1);
    assert_eq!(stored.next_attempt_at, None);
    assert_eq!(stored.last_status_code, None);
    assert_eq!(stored.last_error.as_deref(), Some("connection refused"));
    assert!(claim(&store, 10).await.is_empty());
    assert_eq!(store.next_due_at().await.unwrap(), None);
}

/// A 410 Gone fails the delivery and disables its webhook, which fails the
/// webhook's other pending deliveries; other webhooks are untouched.
pub async fn failed_and_disable_disables_the_webhook(store: Arc<dyn Store>) {
    let gone = create(&store, webhook("gone", None, &["*"])).await;
    let other = create(&store, webhook("other", None, &["*"])).await;
    for _ in 0..2 {
        publish(&store, event("push", None)).await;
    }
    let claimed = claim_with(&store, 1, LONG_LEASE, vec![other.id]).await;
    assert_eq!(claimed.len(), 1);
    let reason = "the receiver answered 410 Gone";
    let next = NextStep::FailedAndDisableWebhook {
        reason: reason.to_owned(),
    };
    assert!(record(&store, &claimed[0], next, Some(410)).await);

    let hook = get_webhook(&store, gone.id).await;
    assert!(!hook.enabled);
    assert_eq!(hook.disabled_reason.as_deref(), Some(reason));
    for d in deliveries_of(&store, gone.id).await {
        assert_eq!(d.status, DeliveryStatus::Failed);
        if d.id == claimed[0].delivery_id {
            assert_eq!(d.last_status_code, Some(410));
            assert_eq!(d.attempts, 1);
        } else {
            assert_eq!(d.last_error.as_deref(), Some("webhook disabled"));
        }
    }
    let others = deliveries_of(&store, other.id).await;
    assert_eq!(others.len(), 2);
    assert!(others.iter().all(|d| d.status == DeliveryStatus::Pending));
}

/// An attempt recorded under a lease that is no longer current is logged, but
/// the delivery stays as its current holder left it; a lease moves a delivery
/// on only once.
pub async fn a_stale_lease_only_appends_to_the_log(store: Arc<dyn Store>) {
    create(&store, webhook("w", None, &["*"])).await;
    publish(&store, event("push", None)).await;
    let claimed = claim_one(&store).await;
    let before = detail(&store, claimed.delivery_id).await.delivery;

    let stale = LeaseToken(claimed.lease.0.wrapping_add(1));
    assert!(!record_as(&store, &claimed, stale, NextStep::Failed, Some(500)).await);
    let after = detail(&store, claimed.delivery_id).await;
    assert_eq!(after.delivery, before);
    assert_eq!(after.attempts.len(), 1);

    assert!(record(&store, &claimed, NextStep::Succeeded, Some(200)).await);
    assert!(!record(&store, &claimed, NextStep::Failed, Some(500)).await);
    let done = detail(&store, claimed.delivery_id).await;
    assert_eq!(done.delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(done.delivery.attempts, 1);
    assert_eq!(done.attempts.len(), 3);
}

// ---- the delivery log ----

/// A delivery comes back with its event and every attempt, oldest first, with
/// all their fields.
pub async fn get_delivery_returns_the_event_and_attempts_oldest_first(store: Arc<dyn Store>) {
    let hook = create(&store, webhook("w", Some("p"), &["*"])).await;
    let mut new = event("push:created", Some("p"));
    new.properties
        .insert("branch".to_owned(), "main".to_owned());
    publish(&store, new.clone()).await;

    let first = claim_one(&store).await;
    let a1 = AttemptRecord {
        id: AttemptId::new(),
        delivery_id: first.delivery_id,
        number: 1,
        started_at: Timestamp::from_millis(1_700_000_000_123),
        duration_ms: 10_000,
        request_url: "https://***:***@hooks.example.com/in".to_owned(),
        request_headers: vec![
            (
                "content-type".to_owned(),
                "application/json; charset=utf-8".to_owned(),
            ),
            ("x-dup".to_owned(), "1".to_owned()),
            ("x-dup".to_owned(), "2".to_owned()),
            ("authorization".to_owned(), "[redacted]".to_owned()),
        ],
        response_status: None,
        response_headers: Vec::new(),
        response_body: None,
        error: Some("timed out after 10s".to_owned()),
    };
    let outcome = AttemptOutcome {
        lease: first.lease,
        attempt: a1.clone(),
        next: NextStep::RetryIn(Duration::ZERO),
    };
    assert!(store.record_attempt(outcome).await.unwrap());

    let second = claim_one(&store).await;
    let a2 = AttemptRecord {
        id: AttemptId::new(),
        delivery_id: first.delivery_id,
        number: 2,
        started_at: Timestamp::from_millis(1_700_000_005_456),
        duration_ms: 17,
        request_url: a1.request_url.clone(),
        request_headers: a1.request_headers.clone(),
        response_status: Some(201),
        response_headers: vec![
            ("location".to_owned(), "/elsewhere".to_owned()),
            ("content-type".to_owned(), "text/plain".to_owned()),
        ],
        response_body: Some("created ✓\n".to_owned()),
        error: None,
    };
    let outcome = AttemptOutcome {
        lease: second.lease,
        attempt: a2.clone(),
        next: NextStep::Succeeded,
    };
    assert!(store.record_attempt(outcome).await.unwrap());

    let got = detail(&store, first.delivery_id).await;
    assert_eq!(got.attempts, vec![a1, a2]);
    assert_eq!(
        got.event,
        crate::EventRecord {
            id: new.id,
            event_type: new.event_type.clone(),
            project: new.project.clone(),
            payload: new.payload.clone(),
            properties: new.properties.clone(),
            created_at: got.event.created_at,
            ordering_key: None,
        }
    );
    let d = &got.delivery;
    assert_eq!(
        (d.id, d.event_id, d.webhook_id),
        (first.delivery_id, new.id, hook.id)
    );
    assert_eq!(d.event_type, "push:created");
    assert_eq!(d.status, DeliveryStatus::Succeeded);
    assert_eq!(d.attempts, 2);
    assert_eq!(d.last_status_code, Some(201));
    assert_eq!(d.last_error, None);
    assert!(d.created_at >= got.event.created_at && d.updated_at >= d.created_at);
    assert_eq!(store.get_delivery(DeliveryId::new()).await.unwrap(), None);
}

/// A webhook's deliveries list newest first, and paging through them yields
/// each exactly once.
pub async fn list_deliveries_pages_newest_first(store: Arc<dyn Store>) {
    let hook = create(&store, webhook("w", None, &["*"])).await;
    let other = create(&store, webhook("other", None, &["*"])).await;
    let mut published = Vec::new();
    for _ in 0..7 {
        published.push(publish(&store, event("push", None)).await.event_id);
    }
    published.reverse();

    let whole = store.list_deliveries(query(hook.id, 7)).await.unwrap();
    assert_eq!(
        whole.next_cursor, None,
        "a page that holds everything is the last"
    );
    let newest_first: Vec<EventId> = whole.items.iter().map(|d| d.event_id).collect();
    assert_eq!(newest_first, published);
    assert!(whole.items.iter().all(|d| d.webhook_id == hook.id));

    let (paged, sizes) = all_pages(&store, query(hook.id, 3)).await;
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(paged, whole.items);

    assert_eq!(deliveries_of(&store, other.id).await.len(), 7);
    assert!(deliveries_of(&store, WebhookId::new()).await.is_empty());
}

/// Status and time filters narrow the list, and pages of a filtered list join up.
pub async fn list_deliveries_filters_by_status_and_time(store: Arc<dyn Store>) {
    let hook = create(&store, webhook("w", None, &["*"])).await;
    for _ in 0..3 {
        publish(&store, event("early", None)).await;
    }
    tokio::time::sleep(TICK).await;
    for _ in 0..4 {
        publish(&store, event("late", None)).await;
    }
    let all = deliveries_of(&store, hook.id).await;
    assert_eq!(all.len(), 7);

    let claimed = claim(&store, 100).await;
    let by_id = |id: DeliveryId| {
        claimed
            .iter()
            .find(|c| c.delivery_id == id)
            .expect("claimed")
    };
    assert!(record(&store, by_id(all[0].id), NextStep::Succeeded, Some(200)).await);
    assert!(record(&store, by_id(all[1].id), NextStep::Failed, Some(500)).await);

    let with = |status: Option<DeliveryStatus>,
                since: Option<Timestamp>,
                until: Option<Timestamp>,
                limit: u32| DeliveryQuery {
        status,
        since,
        until,
        ..query(hook.id, limit)
    };
    let ids = |items: &[DeliveryRecord]| items.iter().map(|d| d.id).collect::<Vec<_>>();

    let (succeeded, _) = all_pages(
        &store,
        with(Some(DeliveryStatus::Succeeded), None, None, 10),
    )
    .await;
    assert_eq!(ids(&succeeded), vec![all[0].id]);
    let (failed, _) = all_pages(&store, with(Some(DeliveryStatus::Failed), None, None, 10)).await;
    assert_eq!(ids(&failed), vec![all[1].id]);
    let (pending, sizes) =
        all_pages(&store, with(Some(DeliveryStatus::Pending), None, None, 2)).await;
    assert_eq!(ids(&pending), ids(&all[2..]));
    assert_eq!(sizes, vec![2, 2, 1]);

    let boundary = all[3].created_at;
    assert!(
        all[4].created_at < boundary,
        "the early deliveries were created before the late ones"
    );
    let (late, _) = all_pages(&store, with(None, Some(boundary), None, 3)).await;
    assert_eq!(ids(&late), ids(&all[..4]));
    let (early, _) = all_pages(&store, with(None, None, Some(boundary), 3)).await;
    assert_eq!(ids(&early), ids(&all[4..]));
    let (late_pending, _) = all_pages(
        &store,
        with(Some(DeliveryStatus::Pending), Some(boundary), None, 1),
    )
    .await;
    assert_eq!(ids(&late_pending), ids(&all[2..4]));
}

/// Redelivery queues one more attempt now with a fresh schedule, for finished
/// deliveries and ones waiting for a retry; one being attempted is left alone.
pub async fn redeliver_queues_another_attempt_now(store: Arc<dyn Store>) {
    create(&store, webhook("w", None, &["*"])).await;
    for _ in 0..3 {
        publish(&store, event("push", None)).await;
    }
    let mut claimed = claim(&store, 10).await;
    assert_eq!(claimed.len(), 3);
    let (failing, succeeding, waiting) = (claimed.remove(0), claimed.remove(0), claimed.remove(0));
    assert!(
        record(
            &store,
            &failing,
            NextStep::RetryIn(Duration::ZERO),
            Some(500)
        )
        .await
    );
    let failing = claim_one(&store).await;
    assert!(record(&store, &failing, NextStep::Failed, Some(500)).await);
    assert!(record(&store, &succeeding, NextStep::Succeeded, Some(200)).await);
    assert!(
        record(
            &store,
            &waiting,
            NextStep::RetryIn(Duration::from_secs(3600)),
            Some(503)
        )
        .await
    );
    assert!(claim(&store, 10).await.is_empty());

    for (id, attempts) in [
        (failing.delivery_id, 2),
        (succeeding.delivery_id, 1),
        (waiting.delivery_id, 1),
    ] {
        let queued = store
            .redeliver(id)
            .await
            .unwrap()
            .expect("the delivery exists");
        assert_eq!(queued.status, DeliveryStatus::Pending);
        assert_eq!(queued.attempts, attempts);
        let due = queued.next_attempt_at.expect("pending");
        assert!(
            due <= queued.updated_at,
            "a redelivery is due now, not at {due:?}"
        );
    }
    let mut claimed = claim(&store, 10).await;
    claimed.sort_by_key(|c| c.delivery_id);
    let mut expected = vec![
        (failing.delivery_id, 3),
        (succeeding.delivery_id, 2),
        (waiting.delivery_id, 2),
    ];
    expected.sort();
    let got: Vec<_> = claimed
        .iter()
        .map(|c| (c.delivery_id, c.attempt_number))
        .collect();
    assert_eq!(got, expected);
    assert!(claimed.iter().all(|c| c.failures_in_schedule == 0));

    let in_flight = &claimed[0];
    let before = detail(&store, in_flight.delivery_id).await.delivery;
    assert_eq!(
        store.redeliver(in_flight.delivery_id).await.unwrap(),
        Some(before.clone())
    );
    assert_eq!(detail(&store, in_flight.delivery_id).await.delivery, before);
    assert!(claim(&store, 10).await.is_empty());
    assert!(record(&store, in_flight, NextStep::Succeeded, Some(200)).await);

    assert_eq!(store.redeliver(DeliveryId::new()).await.unwrap(), None);
}

/// Recovery requeues the webhook's failed deliveries created at or after the
/// given time, and nothing else.
pub async fn recover_requeues_failed_deliveries_since(store: Arc<dyn Store>) {
    let a = create(&store, webhook("a", None, &["*"])).await;
    let b = create(&store, webhook("b", None, &["*"])).await;
    publish(&store, event("old", None)).await;
    tokio::time::sleep(TICK).await;
    publish(&store, event("new", None)).await;
    publish(&store, event("newer", None)).await;

    for claimed in claim(&store, 100).await {
        let next = if claimed.webhook.id == a.id && claimed.event.event_type == "newer" {
            NextStep::Succeeded
        } else {
            NextStep::Failed
        };
        assert!(record(&store, &claimed, next, Some(500)).await);
    }
    let a_deliveries = deliveries_of(&store, a.id).await;
    let [newer, new, old] = [&a_deliveries[0], &a_deliveries[1], &a_deliveries[2]];
    assert_eq!(old.event_type, "old");

    assert_eq!(store.recover(a.id, new.created_at).await.unwrap(), 1);
    assert_eq!(
        detail(&store, new.id).await.delivery.status,
        DeliveryStatus::Pending
    );
    assert_eq!(
        detail(&store, old.id).await.delivery.status,
        DeliveryStatus::Failed
    );
    assert_eq!(
        detail(&store, newer.id).await.delivery.status,
        DeliveryStatus::Succeeded
    );
    assert!(
        deliveries_of(&store, b.id)
            .await
            .iter()
            .all(|d| d.status == DeliveryStatus::Failed)
    );

    let claimed = claim(&store, 10).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery_id, new.id);
    assert_eq!(claimed[0].failures_in_schedule, 0);
    assert_eq!(
        store.recover(a.id, new.created_at).await.unwrap(),
        0,
        "nothing failed is left"
    );
    assert_eq!(
        store
            .recover(b.id, Timestamp::from_millis(0))
            .await
            .unwrap(),
        3
    );
}

/// A recovery larger than one batch requeues every failed delivery exactly once
/// and counts them exactly, passing over deliveries that did not fail and ones
/// older than `since` wherever the batches end.
pub async fn recover_past_one_batch_requeues_each_failed_delivery_once(store: Arc<dyn Store>) {
    let hook = create(&store, webhook("w", None, &["*"])).await;
    publish(&store, event("old", None)).await;
    tokio::time::sleep(TICK).await;
    let failing = RECOVER_BATCH as usize + 1;
    publish_concurrently(&store, "new", failing + 1).await;

    // The oldest due: the old delivery fails, one new one succeeds.
    for claimed in claim(&store, 2).await {
        let next = match claimed.event.event_type.as_str() {
            "old" => NextStep::Failed,
            _ => NextStep::Succeeded,
        };
        assert!(record(&store, &claimed, next, Some(500)).await);
    }
    // Disabling fails every pending delivery at once, far faster than
    // recording thousands of attempts.
    let disable = WebhookPatch {
        enabled: Some(false),
        ..Default::default()
    };
    update(&store, hook.id, disable).await;
    let (before, _) = all_pages(&store, query(hook.id, 1000)).await;
    let since = before
        .iter()
        .filter(|d| d.event_type == "new")
        .map(|d| d.created_at)
        .min()
        .expect("new deliveries");
    let count = |deliveries: &[DeliveryRecord], event_type: &str, status: DeliveryStatus| {
        deliveries
            .iter()
            .filter(|d| d.event_type == event_type && d.status == status)
            .count()
    };
    assert_eq!(count(&before, "new", DeliveryStatus::Failed), failing);

    assert_eq!(store.recover(hook.id, since).await.unwrap(), failing as u64);
    let (after, _) = all_pages(&store, query(hook.id, 1000)).await;
    assert_eq!(after.len(), failing + 2);
    assert_eq!(count(&after, "new", DeliveryStatus::Pending), failing);
    assert_eq!(count(&after, "new", DeliveryStatus::Succeeded), 1);
    assert_eq!(count(&after, "old", DeliveryStatus::Failed), 1);
    assert!(
        after
            .iter()
            .filter(|d| d.status == DeliveryStatus::Pending)
            .all(|d| d.next_attempt_at.is_some_and(|due| due <= d.updated_at)),
        "a recovered delivery is due now"
    );
    assert_eq!(
        store.recover(hook.id, since).await.unwrap(),
        0,
        "nothing failed is left"
    );
}

// ---- retention ----

/// Purging removes finished deliveries with their attempts and events past
/// retention, and expired idempotency keys, however small the batches; pending
/// deliveries keep themselves and their events.
pub async fn purge_removes_old_finished_work_and_keeps_pending(store: Arc<dyn Store>) {
    let hook = create(&store, webhook("w", None, &["push"])).await;
    for _ in 0..5 {
        publish(&store, event("push", None)).await;
    }
    let claimed = claim(&store, 10).await;
    assert_eq!(claimed.len(), 5);
    let (kept, finished) = claimed.split_first().expect("five claimed");
    assert!(
        record(
            &store,
            kept,
            NextStep::RetryIn(Duration::from_secs(3600)),
            Some(503)
        )
        .await
    );
    for (i, c) in finished.iter().enumerate() {
        let next = if i % 2 == 0 {
            NextStep::Succeeded
        } else {
            NextStep::Failed
        };
        assert!(record(&store, c, next, Some(200)).await);
    }
    let unwanted = store
        .publish(event("nobody:listens", None), Some("purge-key".to_owned()))
        .await
        .unwrap();
    assert_eq!(unwanted.deliveries, 0);

    let keep_all = PurgePolicy {
        retention: LONG_LEASE,
        idempotency_ttl: LONG_LEASE,
        batch: 2,
    };
    assert_eq!(store.purge(keep_all).await.unwrap(), PurgeReport::default());

    tokio::time::sleep(TICK).await;
    let report = store.purge(purge_everything_finished(2)).await.unwrap();
    assert_eq!(
        report,
        PurgeReport {
            events: 5,
            deliveries: 4,
            attempts: 4,
            idempotency_keys: 1
        }
    );

    for c in finished {
        assert_eq!(store.get_delivery(c.delivery_id).await.unwrap(), None);
    }
    let survivor = detail(&store, kept.delivery_id).await;
    assert_eq!(survivor.event, kept.event);
    assert_eq!(survivor.attempts.len(), 1);
    assert_eq!(deliveries_of(&store, hook.id).await.len(), 1);
    assert_eq!(
        store.purge(purge_everything_finished(2)).await.unwrap(),
        PurgeReport::default()
    );

    let again = store
        .publish(event("nobody:listens", None), Some("purge-key".to_owned()))
        .await
        .unwrap();
    assert!(!again.replayed, "an expired idempotency key was honoured");
    assert_ne!(again.event_id, unwanted.event_id);
}

/// Deleting a webhook deletes its deliveries and their attempts, not others'.
pub async fn deleting_a_webhook_deletes_its_deliveries(store: Arc<dyn Store>) {
    let a = create(&store, webhook("a", None, &["*"])).await;
    let b = create(&store, webhook("b", None, &["*"])).await;
    for _ in 0..2 {
        publish(&store, event("push", None)).await;
    }
    for claimed in claim(&store, 10).await {
        assert!(
            record(
                &store,
                &claimed,
                NextStep::RetryIn(Duration::ZERO),
                Some(500)
            )
            .await
        );
    }
    let a_deliveries = deliveries_of(&store, a.id).await;
    assert!(store.delete_webhook(a.id).await.unwrap());

    for d in &a_deliveries {
        assert_eq!(store.get_delivery(d.id).await.unwrap(), None);
    }
    assert!(deliveries_of(&store, a.id).await.is_empty());
    let b_deliveries = deliveries_of(&store, b.id).await;
    assert_eq!(b_deliveries.len(), 2);
    for d in &b_deliveries {
        assert_eq!(detail(&store, d.id).await.attempts.len(), 1);
    }
    assert_eq!(webhook_ids(&claim(&store, 10).await), vec![b.id, b.id]);
}

/// More deliveries than one cleanup batch holds.
const PAST_ONE_BATCH: usize = CLEANUP_BATCH as usize + 7;

/// Every delivery of a webhook, in pages of a thousand.
async fn every_delivery_of(store: &Arc<dyn Store>, webhook_id: WebhookId) -> Vec<DeliveryRecord> {
    all_pages(store, query(webhook_id, 1000)).await.0
}

/// A deleted webhook is gone from every read and every claim when the call
/// returns, however many deliveries it had, and nothing of it is left over.
pub async fn deleting_a_webhook_past_one_batch_hides_and_deletes_all_of_it(store: Arc<dyn Store>) {
    let doomed = create(&store, webhook("doomed", None, &["push"])).await;
    let kept = create(&store, webhook("kept", None, &["keep"])).await;
    publish_concurrently(&store, "push", PAST_ONE_BATCH).await;
    publish(&store, event("keep", None)).await;
    // A few of the doomed deliveries have attempts, and one is leased.
    let claimed = claim(&store, 4).await;
    for c in &claimed[1..] {
        assert!(record(&store, c, NextStep::RetryIn(Duration::ZERO), Some(500)).await);
    }
    let doomed_deliveries = every_delivery_of(&store, doomed.id).await;
    assert_eq!(doomed_deliveries.len(), PAST_ONE_BATCH);

    assert!(store.delete_webhook(doomed.id).await.unwrap());
    assert!(!store.delete_webhook(doomed.id).await.unwrap());

    assert_eq!(store.get_webhook(doomed.id).await.unwrap(), None);
    let listed = store.list_webhooks().await.unwrap();
    assert_eq!(
        listed.iter().map(|w| w.id).collect::<Vec<_>>(),
        vec![kept.id]
    );
    assert!(every_delivery_of(&store, doomed.id).await.is_empty());
    for d in [
        &doomed_deliveries[0],
        &doomed_deliveries[PAST_ONE_BATCH - 1],
    ] {
        assert_eq!(store.get_delivery(d.id).await.unwrap(), None);
        assert_eq!(store.redeliver(d.id).await.unwrap(), None);
    }
    assert_eq!(store.recover(doomed.id, Timestamp(0)).await.unwrap(), 0);
    assert_eq!(webhook_ids(&claim(&store, 100).await), vec![kept.id]);
    // The lease of the deleted delivery is void: its attempt moves nothing.
    assert!(!record(&store, &claimed[0], NextStep::Succeeded, Some(200)).await);
    assert_eq!(
        store.finish_cleanups().await.unwrap(),
        0,
        "nothing was left over"
    );
    assert_eq!(publish(&store, event("push", None)).await.deliveries, 0);
}

/// A deletion whose caller stops waiting half-way (or whose process dies) is
/// invisible from its first step on, and `finish_cleanups` completes it.
pub async fn an_interrupted_deletion_stays_hidden_and_finishes_later(store: Arc<dyn Store>) {
    let doomed = create(&store, webhook("doomed", None, &["push"])).await;
    publish_concurrently(&store, "push", 3 * CLEANUP_BATCH as usize).await;
    let sample = every_delivery_of(&store, doomed.id).await.remove(0);

    let deleting = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.delete_webhook(doomed.id).await })
    };
    while store.get_webhook(doomed.id).await.unwrap().is_some() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    deleting.abort();
    // Aborted or finished: either way, what is visible is the same.
    let _ = deleting.await;

    assert!(every_delivery_of(&store, doomed.id).await.is_empty());
    assert_eq!(store.get_delivery(sample.id).await.unwrap(), None);
    assert!(claim(&store, 100).await.is_empty());
    assert!(!store.delete_webhook(doomed.id).await.unwrap());
    store.finish_cleanups().await.unwrap();
    assert_eq!(
        store.finish_cleanups().await.unwrap(),
        0,
        "all of it is done"
    );
    assert!(store.list_webhooks().await.unwrap().is_empty());
}

/// Disabling fails every pending delivery before the call returns, however
/// many there are; none is claimed after, and enabling again takes new ones.
pub async fn disabling_past_one_batch_fails_every_pending_delivery(store: Arc<dyn Store>) {
    let hook = create(&store, webhook("w", None, &["push"])).await;
    publish_concurrently(&store, "push", PAST_ONE_BATCH).await;
    let disable = WebhookPatch {
        enabled: Some(false),
        ..Default::default()
    };
    assert!(!update(&store, hook.id, disable).await.enabled);

    let deliveries = every_delivery_of(&store, hook.id).await;
    assert_eq!(deliveries.len(), PAST_ONE_BATCH);
    assert!(deliveries.iter().all(|d| d.status == Status::Failed
        && d.last_error.as_deref() == Some("webhook disabled")
        && d.next_attempt_at.is_none()));
    assert!(claim(&store, 10).await.is_empty());
    assert_eq!(store.next_due_at().await.unwrap(), None);
    assert_eq!(store.finish_cleanups().await.unwrap(), 0);

    let enable = WebhookPatch {
        enabled: Some(true),
        ..Default::default()
    };
    update(&store, hook.id, enable).await;
    publish(&store, event("push", None)).await;
    assert_eq!(webhook_ids(&claim(&store, 10).await), vec![hook.id]);
}

/// A 410 Gone disables the webhook and fails its whole backlog before
/// `record_attempt` returns; so does `disable_webhook`.
pub async fn a_gone_past_one_batch_fails_the_whole_backlog(store: Arc<dyn Store>) {
    let gone = create(&store, webhook("gone", None, &["push"])).await;
    let other = create(&store, webhook("other", None, &["other"])).await;
    publish_concurrently(&store, "push", PAST_ONE_BATCH).await;
    publish(&store, event("other", None)).await;
    let first = claim_with(&store, 1, LONG_LEASE, vec![other.id])
        .await
        .remove(0);
    let next = NextStep::FailedAndDisableWebhook {
        reason: "410 Gone".to_owned(),
    };
    assert!(record(&store, &first, next, Some(410)).await);

    let hook = get_webhook(&store, gone.id).await;
    assert_eq!(
        (hook.enabled, hook.disabled_reason.as_deref()),
        (false, Some("410 Gone"))
    );
    let deliveries = every_delivery_of(&store, gone.id).await;
    assert!(deliveries.iter().all(|d| d.status == Status::Failed));
    assert_eq!(webhook_ids(&claim(&store, 10).await), vec![other.id]);

    publish_concurrently(&store, "other", PAST_ONE_BATCH).await;
    store.disable_webhook(other.id, "a policy").await.unwrap();
    let deliveries = every_delivery_of(&store, other.id).await;
    assert_eq!(deliveries.len(), PAST_ONE_BATCH + 1);
    // The one claimed above is leased, and its lease is void now.
    assert!(deliveries.iter().all(|d| d.status == Status::Failed));
    assert!(claim(&store, 10).await.is_empty());
    assert_eq!(store.finish_cleanups().await.unwrap(), 0);
}

/// `next_due_at` is when the earliest pending delivery falls due, leases included.
pub async fn next_due_at_is_the_earliest_pending_delivery(store: Arc<dyn Store>) {
    assert_eq!(store.next_due_at().await.unwrap(), None);
    let hook = create(&store, webhook("w", None, &["*"])).await;
    publish(&store, event("first", None)).await;
    tokio::time::sleep(TICK).await;
    publish(&store, event("second", None)).await;
    let due_of = |id: DeliveryId| {
        let store = Arc::clone(&store);
        async move { detail(&store, id).await.delivery.next_attempt_at }
    };
    let queued = deliveries_of(&store, hook.id).await;
    let (second_id, first_id) = (queued[0].id, queued[1].id);
    let first_due = due_of(first_id).await;
    assert_eq!(store.next_due_at().await.unwrap(), first_due);

    let first = claim_with(&store, 1, LONG_LEASE, Vec::new())
        .await
        .remove(0);
    assert_eq!(first.delivery_id, first_id);
    assert_eq!(
        Some(first.due_at),
        first_due,
        "a claim tells when it fell due"
    );
    assert_eq!(store.next_due_at().await.unwrap(), due_of(second_id).await);

    claim_with(&store, 1, LONG_LEASE * 2, Vec::new())
        .await
        .remove(0);
    assert_eq!(
        store.next_due_at().await.unwrap(),
        due_of(first_id).await,
        "the shorter lease ends first"
    );
    assert!(record(&store, &first, NextStep::Succeeded, Some(200)).await);
    assert_eq!(store.next_due_at().await.unwrap(), due_of(second_id).await);
    store
        .disable_webhook(hook.id, "no longer wanted")
        .await
        .unwrap();
    assert_eq!(store.next_due_at().await.unwrap(), None);
}

pub async fn the_backlog_counts_pending_deliveries_by_state(store: Arc<dyn Store>) {
    let horizon = LONG_LEASE * 2;
    assert_eq!(store.backlog(horizon).await.unwrap(), Backlog::default());
    create(&store, webhook("w", None, &["*"])).await;
    for name in ["a", "b", "c", "d"] {
        publish(&store, event(name, None)).await;
    }
    tokio::time::sleep(TICK).await;
    let backlog = store.backlog(horizon).await.unwrap();
    assert_eq!((backlog.due, backlog.scheduled, backlog.leased), (4, 0, 0));
    let oldest = backlog
        .oldest_due_at
        .expect("a due delivery has a due time");
    assert_eq!(store.next_due_at().await.unwrap(), Some(oldest));

    let leased = claim(&store, 2).await;
    let retried = &leased[0];
    assert!(
        record(
            &store,
            retried,
            NextStep::RetryIn(Duration::from_secs(3600)),
            Some(503)
        )
        .await
    );
    let backlog = store.backlog(horizon).await.unwrap();
    assert_eq!(
        (backlog.due, backlog.scheduled, backlog.leased),
        (2, 1, 1),
        "two due, one retry in an hour, one being attempted"
    );
    assert!(backlog.oldest_due_at.unwrap() >= oldest);

    assert!(record(&store, &leased[1], NextStep::Succeeded, Some(200)).await);
    for claimed in claim(&store, 10).await {
        assert!(record(&store, &claimed, NextStep::Succeeded, Some(200)).await);
    }
    let backlog = store.backlog(horizon).await.unwrap();
    assert_eq!((backlog.due, backlog.scheduled, backlog.leased), (0, 1, 0));
    assert_eq!(backlog.oldest_due_at, None, "nothing is due");
}

pub async fn finished_deliveries_are_counted_by_outcome_within_a_window(store: Arc<dyn Store>) {
    let day = Duration::from_secs(24 * 3600);
    assert_eq!(
        store.finished_within(day).await.unwrap(),
        FinishedCounts::default()
    );
    create(&store, webhook("w", None, &["*"])).await;
    for name in ["a", "b", "c", "d"] {
        publish(&store, event(name, None)).await;
    }
    let claimed = claim(&store, 4).await;
    assert_eq!(claimed.len(), 4);
    assert!(record(&store, &claimed[0], NextStep::Succeeded, Some(200)).await);
    assert!(record(&store, &claimed[1], NextStep::Succeeded, Some(204)).await);
    assert!(record(&store, &claimed[2], NextStep::Failed, Some(500)).await);
    let retry = NextStep::RetryIn(Duration::from_secs(3600));
    assert!(record(&store, &claimed[3], retry, Some(503)).await);
    assert_eq!(
        store.finished_within(day).await.unwrap(),
        FinishedCounts {
            succeeded: 2,
            failed: 1
        },
        "the pending retry is not finished"
    );
    tokio::time::sleep(TICK).await;
    assert_eq!(
        store
            .finished_within(Duration::from_millis(1))
            .await
            .unwrap(),
        FinishedCounts::default(),
        "deliveries created before the window are left out"
    );
}

pub async fn readiness_reports_the_schema_and_the_adopted_key_check(store: Arc<dyn Store>) {
    let before = store.readiness().await.unwrap();
    assert_eq!(before.schema_version, before.expected_schema_version);
    assert!(before.schema_version > 0);
    assert_eq!(before.key_check, None, "no key adopted yet");
    let check = [7u8; 32];
    store.adopt_key(check, tagging_rebind()).await.unwrap();
    let after = store.readiness().await.unwrap();
    assert_eq!(after.key_check, Some(check.to_vec()));
}
