//! Contract cases for ordered delivery (run through
//! [`store_contract_tests!`](crate::store_contract_tests) with the others):
//! for a webhook ordered by key, a claim never leases a delivery of a
//! (webhook, key) while an earlier pending delivery of it exists, leased or
//! waiting for a retry; a failing head holds back only its own key; events
//! without a key, and unordered webhooks, are never held back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald_core::id::{DeliveryId, EventId, WebhookId};
use herald_core::ordering::DeliveryOrdering;
use herald_core::time::Timestamp;

use crate::contract::{
    claim, claim_with, create, detail, event, publish, record, record_as, webhook,
};
use crate::{ClaimedDelivery, DeliveryStatus, NewEvent, NextStep, Store, WebhookRecord};

/// How long a wait for the store's clock to pass a lease may take at most.
const DEADLINE: Duration = Duration::from_secs(20);

async fn ordered_webhook(store: &Arc<dyn Store>, name: &str) -> WebhookRecord {
    create(
        store,
        crate::NewWebhook {
            ordering: DeliveryOrdering::Key,
            ..webhook(name, None, &["*"])
        },
    )
    .await
}

fn keyed(key: Option<&str>) -> NewEvent {
    NewEvent {
        ordering_key: key.map(str::to_owned),
        ..event("changeset:update", None)
    }
}

/// Publishes an event with `key`; returns its id.
async fn publish_keyed(store: &Arc<dyn Store>, key: Option<&str>) -> EventId {
    publish(store, keyed(key)).await.event_id
}

/// What a claim of up to 100 returns for `webhook`, by event id.
async fn claim_of(store: &Arc<dyn Store>, webhook: WebhookId) -> Vec<ClaimedDelivery> {
    let mut claimed: Vec<ClaimedDelivery> = claim(store, 100)
        .await
        .into_iter()
        .filter(|c| c.webhook.id == webhook)
        .collect();
    claimed.sort_by_key(|c| c.event.id);
    claimed
}

fn events(claimed: &[ClaimedDelivery]) -> Vec<EventId> {
    claimed.iter().map(|c| c.event.id).collect()
}

fn sorted(mut ids: Vec<EventId>) -> Vec<EventId> {
    ids.sort();
    ids
}

async fn succeed(store: &Arc<dyn Store>, claimed: &ClaimedDelivery) {
    assert!(record(store, claimed, NextStep::Succeeded, Some(200)).await);
}

pub async fn an_ordered_key_is_claimed_head_first_one_at_a_time(store: Arc<dyn Store>) {
    let ordered = ordered_webhook(&store, "ordered").await;
    assert_eq!(ordered.ordering, DeliveryOrdering::Key);
    let unordered = create(&store, webhook("unordered", None, &["*"])).await;
    let a1 = publish_keyed(&store, Some("repo-a")).await;
    let a2 = publish_keyed(&store, Some("repo-a")).await;
    let a3 = publish_keyed(&store, Some("repo-a")).await;
    let b1 = publish_keyed(&store, Some("repo-b")).await;
    let loose = publish_keyed(&store, None).await;

    let backlog = store.backlog(Duration::from_secs(7200)).await.unwrap();
    assert_eq!(
        (backlog.due, backlog.waiting),
        (8, 2),
        "a2 and a3 wait for the ordered webhook; everything else is due"
    );
    let first = claim(&store, 100).await;
    let of = |hook: WebhookId| {
        sorted(
            first
                .iter()
                .filter(|c| c.webhook.id == hook)
                .map(|c| c.event.id)
                .collect(),
        )
    };
    assert_eq!(
        of(ordered.id),
        sorted(vec![a1, b1, loose]),
        "only each key's head, and the event without a key"
    );
    assert_eq!(of(unordered.id), sorted(vec![a1, a2, a3, b1, loose]));
    let head = first
        .iter()
        .find(|c| c.webhook.id == ordered.id && c.event.id == a1)
        .unwrap();
    assert_eq!(head.event.ordering_key.as_deref(), Some("repo-a"));
    let waiting = claim(&store, 100).await;
    assert!(waiting.is_empty(), "nothing more is due: {waiting:?}");

    for claimed in &first {
        succeed(&store, claimed).await;
    }
    assert_eq!(events(&claim_of(&store, ordered.id).await), vec![a2]);
    assert!(claim(&store, 100).await.is_empty(), "a3 waits for a2");
}

pub async fn a_retrying_head_holds_only_its_own_key(store: Arc<dyn Store>) {
    let ordered = ordered_webhook(&store, "ordered").await;
    let a1 = publish_keyed(&store, Some("a")).await;
    let a2 = publish_keyed(&store, Some("a")).await;
    let b1 = publish_keyed(&store, Some("b")).await;
    let b2 = publish_keyed(&store, Some("b")).await;

    let claimed = claim_of(&store, ordered.id).await;
    assert_eq!(events(&claimed), sorted(vec![a1, b1]));
    let (head_a, head_b) = if claimed[0].event.id == a1 {
        (&claimed[0], &claimed[1])
    } else {
        (&claimed[1], &claimed[0])
    };
    // a1 fails and is to be retried at once; b1 succeeds.
    assert!(record(&store, head_a, NextStep::RetryIn(Duration::ZERO), Some(500)).await);
    succeed(&store, head_b).await;
    let next = claim_of(&store, ordered.id).await;
    assert_eq!(
        events(&next),
        sorted(vec![a1, b2]),
        "a1 is retried before a2 goes; key b flows on"
    );
    // A head scheduled for later holds its key just the same.
    let retry = next.iter().find(|c| c.event.id == a1).unwrap();
    assert_eq!(retry.attempt_number, 2);
    assert!(
        record(
            &store,
            retry,
            NextStep::RetryIn(Duration::from_secs(3600)),
            Some(503)
        )
        .await
    );
    succeed(&store, next.iter().find(|c| c.event.id == b2).unwrap()).await;
    assert!(
        claim(&store, 100).await.is_empty(),
        "a2 waits for a1's retry in an hour"
    );
    let a2_delivery = store
        .list_deliveries(crate::DeliveryQuery {
            webhook_id: ordered.id,
            status: Some(DeliveryStatus::Pending),
            since: None,
            until: None,
            cursor: None,
            limit: 10,
        })
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|d| d.event_id == a2)
        .unwrap();
    assert_eq!(
        a2_delivery.next_attempt_at, None,
        "a waiting delivery has no due time"
    );

    // Giving a1 up for good lets a2 go.
    let mut redo = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while redo.is_empty() {
        assert!(Instant::now() < deadline, "a1 never fell due");
        // Redelivering the pending head makes it due now, and keeps it the head.
        let requeued = store.redeliver(retry.delivery_id).await.unwrap().unwrap();
        assert_eq!(requeued.status, DeliveryStatus::Pending);
        redo = claim_of(&store, ordered.id).await;
    }
    assert_eq!(events(&redo), vec![a1]);
    assert!(record(&store, &redo[0], NextStep::Failed, Some(500)).await);
    assert_eq!(events(&claim_of(&store, ordered.id).await), vec![a2]);
}

pub async fn an_expired_lease_hands_the_head_to_another_claimer(store: Arc<dyn Store>) {
    let ordered = ordered_webhook(&store, "ordered").await;
    let a1 = publish_keyed(&store, Some("a")).await;
    let a2 = publish_keyed(&store, Some("a")).await;

    let lease = Duration::from_millis(200);
    let first = claim_with(&store, 10, lease, Vec::new()).await;
    assert_eq!(events(&first), vec![a1]);
    // Until the lease ends, nothing of the key is due; then the same head is.
    let deadline = Instant::now() + DEADLINE;
    let second = loop {
        let found = claim(&store, 10).await;
        if !found.is_empty() {
            break found;
        }
        assert!(Instant::now() < deadline, "the lease never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(events(&second), vec![a1], "the head again, never a2");
    assert_ne!(second[0].lease, first[0].lease);

    // The first claimer's late success only joins the log; the key stays held.
    assert!(!record(&store, &first[0], NextStep::Succeeded, Some(200)).await);
    assert!(claim(&store, 10).await.is_empty(), "a2 still waits");
    succeed(&store, &second[0]).await;
    let next = claim_of(&store, ordered.id).await;
    assert_eq!(events(&next), vec![a2]);
    let stale = record_as(
        &store,
        &next[0],
        first[0].lease,
        NextStep::Succeeded,
        Some(200),
    )
    .await;
    assert!(!stale, "a stale token moves nothing");
}

pub async fn a_key_published_while_its_head_finishes_keeps_its_order(store: Arc<dyn Store>) {
    const EVENTS: usize = 30;
    let ordered = ordered_webhook(&store, "ordered").await;
    // One producer publishes the key's events one after another while the
    // claims below finish each head as soon as it is due.
    let producer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut published = Vec::new();
            for _ in 0..EVENTS {
                published.push(publish_keyed(&store, Some("k")).await);
            }
            published
        })
    };
    let mut delivered: Vec<EventId> = Vec::new();
    let deadline = Instant::now() + DEADLINE;
    while delivered.len() < EVENTS {
        assert!(
            Instant::now() < deadline,
            "delivered {} of {EVENTS}: a published event was left waiting with no head",
            delivered.len()
        );
        let claimed = claim_of(&store, ordered.id).await;
        assert!(claimed.len() <= 1, "two deliveries of one key at once");
        for c in &claimed {
            succeed(&store, c).await;
            delivered.push(c.event.id);
        }
        if claimed.is_empty() {
            tokio::task::yield_now().await;
        }
    }
    let published = producer.await.unwrap();
    assert_eq!(delivered, published, "delivered in publish order");
}

pub async fn concurrent_publishes_of_one_key_make_one_head(store: Arc<dyn Store>) {
    const EVENTS: usize = 40;
    let ordered = ordered_webhook(&store, "ordered").await;
    let tasks: Vec<_> = (0..EVENTS)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { publish_keyed(&store, Some("k")).await })
        })
        .collect();
    let mut published = Vec::new();
    for task in tasks {
        published.push(task.await.unwrap());
    }
    let mut delivered = Vec::new();
    for _ in 0..EVENTS {
        let claimed = claim_of(&store, ordered.id).await;
        assert_eq!(claimed.len(), 1, "exactly one head at a time");
        succeed(&store, &claimed[0]).await;
        delivered.push(claimed[0].event.id);
    }
    assert!(claim(&store, 10).await.is_empty());
    assert_eq!(sorted(delivered), sorted(published), "each exactly once");
}

pub async fn redeliveries_and_recoveries_go_outside_the_key_order(store: Arc<dyn Store>) {
    let ordered = ordered_webhook(&store, "ordered").await;
    let a1 = publish_keyed(&store, Some("a")).await;
    let a2 = publish_keyed(&store, Some("a")).await;
    let a3 = publish_keyed(&store, Some("a")).await;
    let head = claim_of(&store, ordered.id).await;
    assert_eq!(events(&head), vec![a1]);
    assert!(record(&store, &head[0], NextStep::Failed, Some(500)).await);
    let second = claim_of(&store, ordered.id).await;
    assert_eq!(events(&second), vec![a2]);

    // a3 waits: redelivering it leaves it waiting for its turn.
    let waiting = delivery_of(&store, ordered.id, a3).await;
    let again = store.redeliver(waiting).await.unwrap().unwrap();
    assert_eq!(again.next_attempt_at, None, "still waiting behind a2");
    // The finished a1, redelivered, goes at once beside the leased a2 and
    // holds nothing back once done.
    let redelivered = store.redeliver(head[0].delivery_id).await.unwrap().unwrap();
    assert_eq!(redelivered.status, DeliveryStatus::Pending);
    assert_eq!(events(&claim_of(&store, ordered.id).await), vec![a1]);
    succeed(&store, &second[0]).await;
    let third = claim_of(&store, ordered.id).await;
    assert_eq!(
        events(&third),
        vec![a3],
        "a3 follows a2, not the redelivery"
    );
    assert!(record(&store, &third[0], NextStep::Failed, Some(500)).await);

    // A recovery requeues a3 outside the order too: it is due at once.
    let recovered = store
        .recover(ordered.id, Timestamp::from_millis(0))
        .await
        .unwrap();
    assert!(recovered >= 1);
    assert!(
        claim_of(&store, ordered.id)
            .await
            .iter()
            .any(|c| c.event.id == a3)
    );
    assert_eq!(
        detail(&store, third[0].delivery_id)
            .await
            .event
            .ordering_key
            .as_deref(),
        Some("a"),
        "the event keeps its key"
    );
}

async fn delivery_of(store: &Arc<dyn Store>, webhook: WebhookId, event: EventId) -> DeliveryId {
    let page = store
        .list_deliveries(crate::DeliveryQuery {
            webhook_id: webhook,
            status: None,
            since: None,
            until: None,
            cursor: None,
            limit: 100,
        })
        .await
        .unwrap();
    let by_event: HashMap<EventId, DeliveryId> =
        page.items.iter().map(|d| (d.event_id, d.id)).collect();
    by_event[&event]
}
