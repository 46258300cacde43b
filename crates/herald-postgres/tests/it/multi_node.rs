//! Several nodes on one database: two `PgStore`s with separate pools on the
//! same schema stand for two Herald processes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use herald_core::event_type::{EventTypePattern, any_matches};
use herald_core::id::{AttemptId, DeliveryId, EventId, WebhookId};
use herald_core::time::Timestamp;
use herald_postgres::{PgStore, SCHEMA_VERSION, SchemaStatus};
use herald_store::{
    AttemptOutcome, AttemptRecord, ClaimRequest, ClaimedDelivery, DeliveryStatus, NewEvent,
    NewWebhook, NextStep, Store, StoreError,
};
use sqlx::{Connection, PgConnection};

use crate::support::TestSchema;

const LONG_LEASE: Duration = Duration::from_secs(3600);

fn webhook(name: &str, project: Option<&str>, types: &[&str]) -> NewWebhook {
    NewWebhook {
        health_overrides: Default::default(),
        flow_limits: Default::default(),
        ordering: Default::default(),
        id: WebhookId::new(),
        name: name.to_owned(),
        url_display: format!("https://hooks.example.com/{name}"),
        url_sealed: name.as_bytes().to_vec(),
        secret_sealed: vec![0, 1, 2],
        event_types: types
            .iter()
            .map(|t| EventTypePattern::parse("event_types", t).unwrap())
            .collect(),
        project: project.map(str::to_owned),
        enabled: true,
    }
}

fn event(event_type: &str, project: Option<&str>) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        event_type: event_type.to_owned(),
        project: project.map(str::to_owned),
        payload: br#"{"n":1}"#.to_vec(),
        properties: BTreeMap::new(),
        ordering_key: None,
    }
}

async fn two_nodes(schema: &TestSchema) -> (Arc<PgStore>, Arc<PgStore>) {
    let (a, b) = tokio::join!(schema.store(), schema.store());
    (Arc::new(a), Arc::new(b))
}

async fn claim(store: &PgStore, limit: usize, lease: Duration) -> Vec<ClaimedDelivery> {
    store
        .claim_due(ClaimRequest {
            limit,
            lease,
            skip_webhooks: Vec::new(),
        })
        .await
        .unwrap()
}

fn attempt_of(claimed: &ClaimedDelivery, status: u16) -> AttemptRecord {
    AttemptRecord {
        id: AttemptId::new(),
        delivery_id: claimed.delivery_id,
        number: claimed.attempt_number,
        started_at: Timestamp::from_millis(1_700_000_000_000),
        duration_ms: 5,
        request_url: claimed.webhook.url_display.clone(),
        request_headers: Vec::new(),
        response_status: Some(status),
        response_headers: Vec::new(),
        response_body: None,
        error: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimers_on_two_nodes_never_get_the_same_delivery() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let (a, b) = two_nodes(&schema).await;
    for name in ["x", "y", "z"] {
        a.create_webhook(webhook(name, None, &["*"]), 10)
            .await
            .unwrap();
    }
    let publishes: Vec<_> = (0..200)
        .map(|i| {
            let node = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            tokio::spawn(async move { node.publish(event("push", None), None).await.unwrap() })
        })
        .collect();
    for publish in publishes {
        assert_eq!(publish.await.unwrap().deliveries, 3);
    }

    let claimers: Vec<_> = (0..8)
        .map(|i| {
            let node = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = claim(&node, 7, LONG_LEASE).await;
                    if batch.is_empty() {
                        return got;
                    }
                    got.extend(batch.into_iter().map(|c| c.delivery_id));
                }
            })
        })
        .collect();
    let mut seen: HashSet<DeliveryId> = HashSet::new();
    for claimer in claimers {
        for id in claimer.await.unwrap() {
            assert!(seen.insert(id), "{id:?} was claimed twice");
        }
    }
    // A claimer may stop early while others hold rows it skipped; sweep the rest.
    for node in [&a, &b] {
        for c in claim(node, 1000, LONG_LEASE).await {
            assert!(
                seen.insert(c.delivery_id),
                "{:?} was claimed twice",
                c.delivery_id
            );
        }
    }
    assert_eq!(seen.len(), 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_lease_is_taken_over_by_another_node() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let (a, b) = two_nodes(&schema).await;
    a.create_webhook(webhook("w", None, &["*"]), 10)
        .await
        .unwrap();
    a.publish(event("push", None), None).await.unwrap();

    let on_a = claim(&a, 10, Duration::from_millis(300)).await;
    assert_eq!(on_a.len(), 1);
    assert!(
        claim(&b, 10, LONG_LEASE).await.is_empty(),
        "b took a delivery a holds"
    );

    tokio::time::sleep(Duration::from_millis(700)).await;
    let on_b = claim(&b, 10, LONG_LEASE).await;
    assert_eq!(on_b.len(), 1, "the expired lease was not taken over");
    assert_eq!(on_b[0].delivery_id, on_a[0].delivery_id);
    assert_ne!(on_b[0].lease, on_a[0].lease);

    let late = AttemptOutcome {
        lease: on_a[0].lease,
        attempt: attempt_of(&on_a[0], 200),
        next: NextStep::Succeeded,
    };
    assert!(
        !a.record_attempt(late).await.unwrap(),
        "the first node still moved the delivery on"
    );
    let current = AttemptOutcome {
        lease: on_b[0].lease,
        attempt: attempt_of(&on_b[0], 200),
        next: NextStep::Succeeded,
    };
    assert!(b.record_attempt(current).await.unwrap());

    let detail = a.get_delivery(on_a[0].delivery_id).await.unwrap().unwrap();
    assert_eq!(detail.delivery.status, DeliveryStatus::Succeeded);
    assert_eq!(detail.delivery.attempts, 1);
    assert_eq!(detail.attempts.len(), 2);
}

/// Publishes from both nodes at once, in batches the writers form as they
/// please, reach exactly the webhooks each event matches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_from_two_nodes_fan_out_exactly() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let (a, b) = two_nodes(&schema).await;
    let hooks = [
        a.create_webhook(webhook("all pushes", None, &["push:*"]), 10)
            .await
            .unwrap(),
        b.create_webhook(webhook("created", None, &["push:created"]), 10)
            .await
            .unwrap(),
        a.create_webhook(webhook("p", Some("p"), &["*"]), 10)
            .await
            .unwrap(),
        b.create_webhook(webhook("q pushes", Some("q"), &["push:*"]), 10)
            .await
            .unwrap(),
        a.create_webhook(webhook("q issues", Some("q"), &["issue:*"]), 10)
            .await
            .unwrap(),
    ];
    let kinds = [
        ("push:created", Some("p")),
        ("push:deleted", None),
        ("push:created", Some("q")),
        ("issue:opened", Some("q")),
    ];
    let expected = |event_type: &str, project: Option<&str>| {
        hooks
            .iter()
            .filter(|h| h.project.is_none() || h.project.as_deref() == project)
            .filter(|h| any_matches(&h.event_types, event_type))
            .count() as u32
    };

    let publishes: Vec<_> = (0..400)
        .map(|i| {
            let node = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            let (event_type, project) = kinds[i % kinds.len()];
            tokio::spawn(async move {
                (
                    node.publish(event(event_type, project), None)
                        .await
                        .unwrap(),
                    event_type,
                    project,
                )
            })
        })
        .collect();
    let mut total = 0;
    for publish in publishes {
        let (published, event_type, project) = publish.await.unwrap();
        assert_eq!(
            published.deliveries,
            expected(event_type, project),
            "{event_type} in {project:?}"
        );
        assert!(!published.replayed);
        total += published.deliveries as usize;
    }
    let claimed = claim(&a, 10_000, LONG_LEASE).await;
    assert_eq!(claimed.len(), total);
    for c in &claimed {
        let hook = hooks.iter().find(|h| h.id == c.webhook.id).unwrap();
        assert!(hook.project.is_none() || hook.project == c.event.project);
        assert!(any_matches(&hook.event_types, &c.event.event_type));
    }
}

/// The same idempotency key sent to both nodes at once stores one event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_on_two_nodes_stores_one_event() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let (a, b) = two_nodes(&schema).await;
    a.create_webhook(webhook("w", None, &["*"]), 10)
        .await
        .unwrap();
    let publishes: Vec<_> = (0..20)
        .map(|i| {
            let node = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            let key = format!("key-{}", i % 4);
            tokio::spawn(async move {
                (
                    key.clone(),
                    node.publish(event("push", None), Some(key)).await.unwrap(),
                )
            })
        })
        .collect();
    let mut answers: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for publish in publishes {
        let (key, published) = publish.await.unwrap();
        answers.entry(key).or_default().push(published);
    }
    for (key, published) in &answers {
        assert_eq!(
            published.iter().filter(|p| !p.replayed).count(),
            1,
            "{key}: {published:?}"
        );
        let ids: HashSet<EventId> = published.iter().map(|p| p.event_id).collect();
        assert_eq!(ids.len(), 1, "{key} answered with different events");
    }
    assert_eq!(claim(&b, 100, LONG_LEASE).await.len(), 4);
}

/// Two nodes creating webhooks in one project at once never exceed the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scope_limit_holds_across_nodes() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let (a, b) = two_nodes(&schema).await;
    let creates: Vec<_> = (0..12)
        .map(|i| {
            let node = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            tokio::spawn(async move {
                node.create_webhook(webhook(&format!("w{i}"), Some("x"), &["*"]), 3)
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for create in creates {
        match create.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::ScopeFull { limit: 3, .. }) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(created, 3);
    assert_eq!(b.list_webhooks().await.unwrap().len(), 3);
}

/// Nodes starting together all migrate; the schema ends up applied once, and
/// migrating again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_from_several_nodes_at_once_is_idempotent() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let connect = || PgStore::connect(schema.url(), schema.config());
    let (a, b, c) = tokio::join!(connect(), connect(), connect());
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(
        a.schema_version().await.unwrap(),
        SchemaStatus {
            applied: 0,
            latest: SCHEMA_VERSION
        }
    );

    let (ra, rb, rc) = tokio::join!(a.migrate(), b.migrate(), c.migrate());
    ra.unwrap();
    rb.unwrap();
    rc.unwrap();
    a.create_webhook(webhook("kept", None, &["*"]), 10)
        .await
        .unwrap();
    a.migrate().await.unwrap();
    c.migrate().await.unwrap();

    let status = b.schema_version().await.unwrap();
    assert_eq!(
        status,
        SchemaStatus {
            applied: SCHEMA_VERSION,
            latest: SCHEMA_VERSION
        }
    );
    assert!(status.is_current());
    let mut conn = PgConnection::connect(schema.url()).await.unwrap();
    // Each migration recorded once, the last one the newest this build knows
    // (versions need not be contiguous: each branch is given its number).
    let (rows, versions, newest): (i64, i64, i32) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), count(DISTINCT version), max(version) FROM \"{}\".herald_schema_migrations",
        schema.name()
    )))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows, versions, "a migration was recorded twice");
    assert_eq!(newest, SCHEMA_VERSION);
    conn.close().await.unwrap();
    assert_eq!(
        c.list_webhooks().await.unwrap().len(),
        1,
        "migrating again lost data"
    );
}
