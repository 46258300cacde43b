//! Behaviours specific to the PostgreSQL store: its health check, wake-ups,
//! error handling and what PostgreSQL's types demand.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use herald_core::event_type::EventTypePattern;
use herald_core::id::{AttemptId, EventId, WebhookId};
use herald_core::time::Timestamp;
use herald_postgres::{PgConfig, PgError, PgStore, PoolStatus, SCHEMA_VERSION};
use herald_store::{
    AttemptOutcome, AttemptRecord, ClaimRequest, NewEvent, NewWebhook, NextStep, PurgePolicy,
    Store, StoreError,
};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::support::TestSchema;

fn webhook(name: &str, types: &[&str]) -> NewWebhook {
    NewWebhook {
        health_overrides: Default::default(),
        flow_limits: Default::default(),
        ordering: Default::default(),
        id: WebhookId::new(),
        name: name.to_owned(),
        url_display: format!("https://hooks.example.com/{name}"),
        url_sealed: vec![1],
        secret_sealed: vec![2],
        event_types: types
            .iter()
            .map(|t| EventTypePattern::parse("event_types", t).unwrap())
            .collect(),
        project: None,
        enabled: true,
    }
}

fn event(event_type: &str) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        event_type: event_type.to_owned(),
        project: None,
        payload: b"{}".to_vec(),
        properties: BTreeMap::new(),
        ordering_key: None,
    }
}

/// A store on `schema` with one enabled webhook for every event type.
async fn store_with_a_webhook(schema: &TestSchema) -> PgStore {
    let store = schema.store().await;
    store
        .create_webhook(webhook("w", &["*"]), 10)
        .await
        .unwrap();
    store
}

#[tokio::test]
async fn a_schema_name_that_is_not_a_plain_identifier_is_refused() {
    let config = PgConfig {
        schema: Some("herald\"; DROP TABLE x; --".to_owned()),
        ..PgConfig::default()
    };
    let refused = PgStore::connect("postgres://postgres@127.0.0.1:1/none", config).await;
    assert!(
        matches!(refused, Err(PgError::InvalidSchema(_))),
        "{:?}",
        refused.err()
    );
}

#[tokio::test]
async fn a_failed_connection_does_not_reveal_the_password() {
    let config = PgConfig {
        acquire_timeout: Duration::from_secs(2),
        ..PgConfig::default()
    };
    // Port 1 on loopback: nothing listens there.
    let failed = PgStore::connect(
        "postgres://herald:hunter2-secret@127.0.0.1:1/herald",
        config,
    )
    .await;
    let err = failed.err().expect("nothing listens on port 1");
    assert!(matches!(err, PgError::Connect(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    assert!(!StoreError::from(err).to_string().contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_the_schema_and_the_database_clock() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let store = PgStore::connect(schema.url(), schema.config())
        .await
        .unwrap();
    let before = store.doctor().await.unwrap();
    assert_eq!(before.schema.applied, 0);
    assert!(!before.schema.is_current());
    store.migrate().await.unwrap();

    let report = store.doctor().await.unwrap();
    assert_eq!(report.schema.applied, SCHEMA_VERSION);
    assert!(report.schema.is_current());
    assert!(
        report.server_version.starts_with("PostgreSQL"),
        "{}",
        report.server_version
    );
    // Database and test share this machine's clock: a skew of a minute or more
    // would mean the units are wrong, not the clocks.
    assert!(
        report.clock_skew_ms.abs() < 60_000,
        "skew {} ms",
        report.clock_skew_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_on_one_node_wakes_a_listener_on_another() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let (a, b) = tokio::join!(schema.store(), schema.store());
    a.create_webhook(webhook("w", &["*"]), 10).await.unwrap();
    let mut listener = a.listen_for_work().await.unwrap();

    b.publish(event("push"), None).await.unwrap();
    let woken = tokio::time::timeout(Duration::from_secs(30), listener.wait()).await;
    assert!(matches!(woken, Ok(Ok(()))), "no wake-up: {woken:?}");
}

/// PostgreSQL `text` refuses NUL, which a receiver's body may well contain:
/// the body comes back byte for byte, and a NUL in an error cannot make the
/// attempt unrecordable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_from_a_receiver_do_not_stop_an_attempt_being_logged() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let store = store_with_a_webhook(&schema).await;
    let mut new = event("push");
    new.properties.insert("odd".to_owned(), "a\0b".to_owned());
    store.publish(new.clone(), None).await.unwrap();
    let claimed = store
        .claim_due(ClaimRequest {
            limit: 1,
            lease: Duration::from_secs(60),
            skip_webhooks: Vec::new(),
        })
        .await
        .unwrap()
        .remove(0);
    assert_eq!(claimed.event.properties, new.properties);

    let attempt = AttemptRecord {
        id: AttemptId::new(),
        delivery_id: claimed.delivery_id,
        number: 1,
        started_at: Timestamp::from_millis(1_700_000_000_000),
        duration_ms: 3,
        request_url: claimed.webhook.url_display.clone(),
        request_headers: vec![("x-nul".to_owned(), "1\u{0}2".to_owned())],
        response_status: Some(500),
        response_headers: vec![(
            "content-type".to_owned(),
            "application/octet-stream".to_owned(),
        )],
        response_body: Some("bin\0ary\0".to_owned()),
        error: Some("odd\0error".to_owned()),
    };
    let outcome = AttemptOutcome {
        lease: claimed.lease,
        attempt: attempt.clone(),
        next: NextStep::Failed,
    };
    assert!(store.record_attempt(outcome).await.unwrap());

    let logged = store
        .get_delivery(claimed.delivery_id)
        .await
        .unwrap()
        .unwrap();
    let got = &logged.attempts[0];
    assert_eq!(got.response_body, attempt.response_body);
    assert_eq!(got.request_headers, attempt.request_headers);
    assert_eq!(got.error.as_deref(), Some("odd\u{fffd}error"));
    assert_eq!(
        logged.delivery.last_error.as_deref(),
        Some("odd\u{fffd}error")
    );
}

/// A refused event in a batch (here: an id already stored) fails alone; the
/// events batched with it are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_event_does_not_fail_the_events_batched_with_it() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let store = Arc::new(store_with_a_webhook(&schema).await);
    let stored = event("push");
    store.publish(stored.clone(), None).await.unwrap();

    let publishes: Vec<_> = (0..40)
        .map(|i| {
            let store = Arc::clone(&store);
            let new = if i == 20 {
                NewEvent {
                    event_type: "dup".to_owned(),
                    ..stored.clone()
                }
            } else {
                event("push")
            };
            tokio::spawn(async move { (i, store.publish(new, None).await) })
        })
        .collect();
    for publish in publishes {
        match publish.await.unwrap() {
            (20, result) => assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}"),
            (i, result) => assert_eq!(result.unwrap().deliveries, 1, "event {i}"),
        }
    }
    let claimed = store
        .claim_due(ClaimRequest {
            limit: 100,
            lease: Duration::from_secs(60),
            skip_webhooks: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 40);
}

/// Events still needed by a pending delivery are passed over, and the purge
/// goes on past them however small its batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_batches_go_on_past_events_still_needed() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let store = schema.store().await;
    store
        .create_webhook(webhook("w", &["wanted"]), 10)
        .await
        .unwrap();
    for i in 0..9 {
        let kind = if i % 3 == 0 { "wanted" } else { "unwanted" };
        store.publish(event(kind), None).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let policy = PurgePolicy {
        retention: Duration::ZERO,
        idempotency_ttl: Duration::ZERO,
        batch: 1,
    };
    let report = store.purge(policy).await.unwrap();
    assert_eq!(report.events, 6);
    assert_eq!(report.deliveries, 0);
    let pending = store
        .claim_due(ClaimRequest {
            limit: 100,
            lease: Duration::from_secs(60),
            skip_webhooks: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(pending.len(), 3);
    assert!(pending.iter().all(|c| c.event.event_type == "wanted"));
}

/// An attempt that finishes after its webhook (and so its delivery) was
/// deleted has nothing left to move on or log to: it is stale, not an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_on_a_deleted_delivery_is_stale() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let store = schema.store().await;
    let hook = store
        .create_webhook(webhook("w", &["*"]), 10)
        .await
        .unwrap();
    store.publish(event("push"), None).await.unwrap();
    let claimed = store
        .claim_due(ClaimRequest {
            limit: 1,
            lease: Duration::from_secs(60),
            skip_webhooks: Vec::new(),
        })
        .await
        .unwrap()
        .remove(0);
    assert!(store.delete_webhook(hook.id).await.unwrap());

    let attempt = AttemptRecord {
        id: AttemptId::new(),
        delivery_id: claimed.delivery_id,
        number: 1,
        started_at: Timestamp::from_millis(1_700_000_000_000),
        duration_ms: 3,
        request_url: claimed.webhook.url_display.clone(),
        request_headers: Vec::new(),
        response_status: Some(200),
        response_headers: Vec::new(),
        response_body: None,
        error: None,
    };
    let outcome = AttemptOutcome {
        lease: claimed.lease,
        attempt,
        next: NextStep::Succeeded,
    };
    assert!(!store.record_attempt(outcome).await.unwrap());
    assert_eq!(store.get_delivery(claimed.delivery_id).await.unwrap(), None);
}

/// Attempts recorded at the same moment are committed in shared batches; each
/// caller still gets its own answer: current leases move their delivery on,
/// stale ones only append to the log, and deleted deliveries take nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_recorded_together_each_get_their_own_answer() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let store = Arc::new(schema.store().await);
    let kept = store
        .create_webhook(webhook("kept", &["push"]), 10)
        .await
        .unwrap();
    let doomed = store
        .create_webhook(webhook("doomed", &["push"]), 10)
        .await
        .unwrap();
    for _ in 0..150 {
        store.publish(event("push"), None).await.unwrap();
    }
    let claimed = store
        .claim_due(ClaimRequest {
            limit: 1000,
            lease: Duration::from_secs(60),
            skip_webhooks: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 300);
    assert!(store.delete_webhook(doomed.id).await.unwrap());

    // Per delivery of the kept webhook, by position: succeeded, retry, or a
    // stale lease; every delivery of the deleted one is gone.
    let recordings: Vec<_> = claimed
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (lease, next) = match i % 3 {
                0 => (c.lease, NextStep::Succeeded),
                1 => (c.lease, NextStep::RetryIn(Duration::from_secs(3600))),
                _ => (
                    herald_store::LeaseToken(c.lease.0 + 1_000_000),
                    NextStep::Succeeded,
                ),
            };
            let attempt = AttemptRecord {
                id: AttemptId::new(),
                delivery_id: c.delivery_id,
                number: 1,
                started_at: Timestamp::from_millis(1_700_000_000_000),
                duration_ms: 3,
                request_url: c.webhook.url_display.clone(),
                request_headers: vec![("a".to_owned(), "b".to_owned())],
                response_status: Some(if i % 3 == 1 { 503 } else { 200 }),
                response_headers: Vec::new(),
                response_body: Some(format!("body {i}")),
                error: (i % 3 == 1).then(|| "server said 503".to_owned()),
            };
            let store = Arc::clone(&store);
            let outcome = AttemptOutcome {
                lease,
                attempt,
                next: next.clone(),
            };
            let current = lease == c.lease && c.webhook.id == kept.id;
            let (delivery, gone) = (c.delivery_id, c.webhook.id != kept.id);
            tokio::spawn(async move {
                (
                    delivery,
                    next,
                    current,
                    gone,
                    store.record_attempt(outcome).await.unwrap(),
                )
            })
        })
        .collect();
    for recording in recordings {
        let (delivery, next, current, gone, moved) = recording.await.unwrap();
        assert_eq!(
            moved, current,
            "{delivery:?} ({next:?}): moved on = {moved}"
        );
        let detail = store.get_delivery(delivery).await.unwrap();
        if gone {
            assert_eq!(detail, None);
            continue;
        }
        let detail = detail.expect("a kept delivery");
        assert_eq!(
            detail.attempts.len(),
            1,
            "every attempt is logged, stale ones too"
        );
        let expected = match (current, next) {
            (false, _) => (herald_store::DeliveryStatus::Pending, 0),
            (true, NextStep::Succeeded) => (herald_store::DeliveryStatus::Succeeded, 1),
            (true, _) => (herald_store::DeliveryStatus::Pending, 1),
        };
        assert_eq!(
            (detail.delivery.status, detail.delivery.attempts),
            expected,
            "{delivery:?}"
        );
    }
}

/// A caller waiting for a pool connection is counted while it waits, and
/// only then: the gauge that says the pool is too small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_waiting_for_a_pool_connection_are_counted() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    schema.store().await.close().await;
    let config = PgConfig {
        max_connections: 1,
        ..schema.config()
    };
    let store = Arc::new(PgStore::connect(schema.url(), config).await.unwrap());
    // A lock of the test's own, which the store's one connection will wait on.
    let mut blocker = PgConnection::connect(schema.url()).await.unwrap();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "BEGIN; LOCK TABLE \"{}\".webhooks IN ACCESS EXCLUSIVE MODE",
        schema.name()
    )))
    .execute(&mut blocker)
    .await
    .unwrap();
    let list = |store: &Arc<PgStore>| {
        let store = Arc::clone(store);
        tokio::spawn(async move { store.list_webhooks().await })
    };
    let holding = list(&store);
    let waiting = list(&store);
    // One holds the only connection, blocked on the lock; the other waits.
    // (While the pool opens its connection both count as waiting.)
    let expected = PoolStatus {
        in_use: 1,
        idle: 0,
        waiting: 1,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.pool_status() != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            store.pool_status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    assert!(holding.await.unwrap().unwrap().is_empty());
    assert!(waiting.await.unwrap().unwrap().is_empty());
    assert_eq!(store.pool_status().waiting, 0);
}

/// Claims start their walk at the due floor, worked out again each second. A
/// delivery due before it all the same (the database's clock stepped back,
/// simulated here by moving one delivery's due time ten minutes back after
/// the floor was worked out) is still claimed once the floor is worked out
/// again, from scratch.
#[tokio::test]
async fn a_delivery_due_before_the_due_floor_is_still_claimed() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let store = store_with_a_webhook(&schema).await;
    let claim = || {
        store.claim_due(ClaimRequest {
            limit: 10,
            lease: Duration::from_secs(60),
            skip_webhooks: Vec::new(),
        })
    };
    store.publish(event("push"), None).await.unwrap();
    assert_eq!(claim().await.unwrap().len(), 1, "the floor is worked out");
    let late = event("push");
    let late_id = late.id;
    store.publish(late, None).await.unwrap();
    let mut conn = PgConnection::connect(schema.url()).await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "UPDATE \"{}\".deliveries SET next_attempt_at = next_attempt_at - 600000 WHERE event_id = $1",
        schema.name()
    )))
    .bind(late_id.0)
    .execute(&mut conn)
    .await
    .unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let claimed = claim().await.unwrap();
        if claimed.iter().any(|c| c.event.id == late_id) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the delivery due before the floor was never claimed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
