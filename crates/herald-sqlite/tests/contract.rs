//! The store contract, run against a fresh SQLite database per test, plus what
//! only SQLite has to show: durability across reopening, idempotent migrations,
//! and group commit under many concurrent publishes.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use herald_core::event_type::EventTypePattern;
use herald_core::id::{EventId, WebhookId};
use herald_sqlite::{SCHEMA_VERSION, SqliteConfig, SqliteError, SqliteStore};
use herald_store::{
    CLEANUP_BATCH, ClaimRequest, DeliveryQuery, NewEvent, NewWebhook, Store, StoreError,
};
use tempfile::TempDir;

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SqliteConfig::default()).expect("open the store")
}

/// A store in its own temporary directory, which lives as long as the test.
async fn fresh_store() -> (Arc<dyn Store>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(open(&dir.path().join("herald.db")));
    (store, dir)
}

herald_store::store_contract_tests!(fresh_store());

/// The same database, seen as its custom event types.
async fn fresh_event_type_store() -> (Arc<dyn herald_store::EventTypeStore>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn herald_store::EventTypeStore> =
        Arc::new(open(&dir.path().join("herald.db")));
    (store, dir)
}

herald_store::event_type_store_contract_tests!(fresh_event_type_store());

/// The same database, seen both as a `Store` and as a `ReceiverStore`.
async fn fresh_receiver_store() -> (Arc<SqliteStore>, TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(open(&dir.path().join("herald.db")));
    (store, dir)
}

herald_store::receiver_store_contract_tests!(fresh_receiver_store());

/// The API token store contract, in a module of its own like the monitors'.
mod tokens {
    use super::*;

    async fn fresh_token_store() -> (Arc<dyn herald_store::TokenStore>, TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn herald_store::TokenStore> =
            Arc::new(open(&dir.path().join("herald.db")));
        (store, dir)
    }

    herald_store::token_store_contract_tests!(fresh_token_store());
}

/// The code monitor store contract, in a module of its own so its case names
/// cannot clash with the other suites'.
mod monitors {
    use super::*;

    async fn fresh_monitor_store() -> (Arc<SqliteStore>, TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        (Arc::new(open(&dir.path().join("herald.db"))), dir)
    }

    herald_store::monitor_store_contract_tests!(fresh_monitor_store());
}

#[tokio::test]
async fn custom_event_types_survive_reopening() {
    use herald_store::{EventTypeStore, NewEventType};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let new = NewEventType {
        key: "order:paid".to_owned(),
        description: "An order was paid".to_owned(),
        family: "custom".to_owned(),
        schema_json: r#"{"type":"object"}"#.to_owned(),
        example_json: r#"{"b":1,"a":2}"#.to_owned(),
    };
    let put = open(&path).put_event_type(new).await.unwrap();
    let listed = open(&path).list_event_types().await.unwrap();
    assert_eq!(listed, vec![put.record]);
}

fn webhook(project: Option<&str>) -> NewWebhook {
    NewWebhook {
        health_overrides: Default::default(),
        flow_limits: Default::default(),
        ordering: Default::default(),
        id: WebhookId::new(),
        name: "receiver".to_owned(),
        url_display: "https://hooks.example.com/in".to_owned(),
        url_sealed: vec![1, 2, 3],
        secret_sealed: vec![4, 5, 6],
        event_types: vec![EventTypePattern::parse("event_types", "repo:*").unwrap()],
        project: project.map(str::to_owned),
        enabled: true,
    }
}

fn event(n: usize) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        event_type: "repo:push".to_owned(),
        project: Some("acme".to_owned()),
        payload: format!(r#"{{"n":{n}}}"#).into_bytes(),
        properties: BTreeMap::from([("n".to_owned(), n.to_string())]),
        ordering_key: None,
    }
}

async fn count_deliveries(store: &dyn Store, webhook_id: WebhookId) -> usize {
    let mut query = DeliveryQuery {
        webhook_id,
        status: None,
        since: None,
        until: None,
        cursor: None,
        limit: 500,
    };
    let mut total = 0;
    loop {
        let page = store.list_deliveries(query.clone()).await.unwrap();
        total += page.items.len();
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => return total,
        }
    }
}

#[tokio::test]
async fn committed_data_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/herald.db");
    let hook = webhook(Some("acme"));
    let first = event(1);
    {
        let store = open(&path);
        store.create_webhook(hook.clone(), 10).await.unwrap();
        store
            .publish(first.clone(), Some("key".to_owned()))
            .await
            .unwrap();
    }

    let store = open(&path);
    let stored = store
        .get_webhook(hook.id)
        .await
        .unwrap()
        .expect("webhook survived");
    assert_eq!(stored.url_sealed, hook.url_sealed);
    let claimed = store
        .claim_due(ClaimRequest {
            limit: 10,
            lease: Duration::from_secs(60),
            skip_webhooks: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event.payload, first.payload);
    let replay = store
        .publish(event(2), Some("key".to_owned()))
        .await
        .unwrap();
    assert!(replay.replayed, "the idempotency key survived");
    assert_eq!(replay.event_id, first.id);
}

#[tokio::test]
async fn reopening_runs_no_migration_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let hook = webhook(None);
    {
        let store = open(&path);
        store.create_webhook(hook.clone(), 10).await.unwrap();
    }
    for _ in 0..3 {
        let store = open(&path);
        assert_eq!(store.list_webhooks().await.unwrap().len(), 1);
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// The status check as the first schema wrote it, and as the last migration
/// rewrote it.
const OLD_STATUS_CHECK: &str = "CHECK (status IN ('pending', 'succeeded', 'failed'))";
const STATUS_CHECK: &str =
    "CHECK (status = 'pending' OR status = 'succeeded' OR status = 'failed')";

fn deliveries_definition(conn: &rusqlite::Connection) -> String {
    conn.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'deliveries'",
        [],
        |row| row.get(0),
    )
    .unwrap()
}

/// A database one version behind, as the previous release left it: the
/// delivery status check back in its `IN` form.
fn set_back_to_the_old_status_check(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let old = deliveries_definition(&conn).replace(STATUS_CHECK, OLD_STATUS_CHECK);
    conn.execute_batch("PRAGMA writable_schema = ON").unwrap();
    conn.execute(
        "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = 'deliveries'",
        [old],
    )
    .unwrap();
    conn.execute_batch("PRAGMA writable_schema = RESET")
        .unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION - 1)
        .unwrap();
}

#[tokio::test]
async fn the_status_check_is_rewritten_in_place_keeping_every_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let hook = webhook(Some("acme"));
    {
        let store = open(&path);
        store.create_webhook(hook.clone(), 10).await.unwrap();
        store.publish(event(1), None).await.unwrap();
    }
    set_back_to_the_old_status_check(&path);
    assert!(
        deliveries_definition(&rusqlite::Connection::open(&path).unwrap())
            .contains(OLD_STATUS_CHECK)
    );

    let store = open(&path);
    assert_eq!(count_deliveries(&store, hook.id).await, 1);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let definition = deliveries_definition(&conn);
    assert!(definition.contains(STATUS_CHECK), "{definition}");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let refused = conn
        .execute("UPDATE deliveries SET status = 'lost'", [])
        .unwrap_err();
    assert!(
        refused.to_string().contains("CHECK constraint failed"),
        "{refused}"
    );
    conn.execute("UPDATE deliveries SET status = 'failed'", [])
        .unwrap();
}

#[tokio::test]
async fn a_database_from_a_newer_herald_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    drop(open(&path));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match SqliteStore::open(&path, SqliteConfig::default()) {
        Err(SqliteError::SchemaTooNew { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_all_commit() {
    const TASKS: usize = 64;
    const PER_TASK: usize = 32;
    let (store, _dir) = fresh_store().await;
    let project_hook = store
        .create_webhook(webhook(Some("acme")), 10)
        .await
        .unwrap();
    let global_hook = store.create_webhook(webhook(None), 10).await.unwrap();

    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..PER_TASK {
                    let key = (i % 4 == 0).then(|| format!("task-{t}-{i}"));
                    let published = store.publish(event(t * PER_TASK + i), key).await.unwrap();
                    assert_eq!(published.deliveries, 2);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let total = TASKS * PER_TASK;
    assert_eq!(
        count_deliveries(store.as_ref(), project_hook.id).await,
        total
    );
    assert_eq!(
        count_deliveries(store.as_ref(), global_hook.id).await,
        total
    );
}

#[tokio::test]
async fn fan_out_sees_webhook_changes_made_by_another_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let store = open(&path);
    let hook = store
        .create_webhook(webhook(Some("acme")), 10)
        .await
        .unwrap();
    assert_eq!(store.publish(event(1), None).await.unwrap().deliveries, 1);

    // Another process (an operator's sqlite3 shell) turns the webhook off.
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute(
            "UPDATE webhooks SET enabled = 0 WHERE id = ?1",
            [hook.id.as_bytes()],
        )
        .unwrap();
    drop(other);

    assert_eq!(store.publish(event(2), None).await.unwrap().deliveries, 0);
}

/// A store whose directory is removed under it says so on every call,
/// reads and writes alike, instead of writing into a file no restart will
/// see or failing with a bare "disk I/O error" on some reader threads only.
#[tokio::test]
async fn a_store_whose_files_are_removed_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let store = open(&path);
    let hook = store
        .create_webhook(webhook(Some("acme")), 10)
        .await
        .unwrap();
    drop(dir);

    let vanished = |result: Result<_, StoreError>| match result {
        Err(StoreError::Backend(message)) => assert!(
            message.contains("was removed while the store had it open"),
            "{message}"
        ),
        Ok(_) => panic!("a call on a removed database succeeded"),
        Err(other) => panic!("unexpected error {other:?}"),
    };
    vanished(store.publish(event(1), None).await.map(|_| ()));
    // Every reader thread, whether it has read before or not.
    for _ in 0..2 * SqliteConfig::default().readers {
        vanished(store.get_webhook(hook.id).await.map(|_| ()));
    }
}

/// A deletion cut short by a restart (the store closed after its first job,
/// as a crash would leave it) stays hidden after reopening, and
/// `finish_cleanups`, which the janitor runs at start, completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_cut_short_by_a_restart_finishes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let store = Arc::new(open(&path));
    let doomed = store.create_webhook(webhook(None), 10).await.unwrap();
    let kept = store.create_webhook(webhook(None), 10).await.unwrap();
    const TASKS: usize = 16;
    let events = 3 * CLEANUP_BATCH as usize;
    let publishers: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for n in (task..events).step_by(TASKS) {
                    assert_eq!(store.publish(event(n), None).await.unwrap().deliveries, 2);
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }
    // Polled once, the call queues its first job; dropping it then is a
    // caller that gave up. Closing the store runs what is queued and no more.
    let cut_short = tokio::time::timeout(Duration::ZERO, store.delete_webhook(doomed.id)).await;
    assert!(cut_short.is_err(), "the deletion finished in one job");
    drop(store);

    let store = open(&path);
    assert_eq!(store.get_webhook(doomed.id).await.unwrap(), None);
    assert_eq!(count_deliveries(&store, doomed.id).await, 0);
    let claimed = store
        .claim_due(ClaimRequest {
            limit: 10,
            lease: Duration::from_secs(60),
            skip_webhooks: Vec::new(),
        })
        .await
        .unwrap();
    assert!(claimed.iter().all(|c| c.webhook.id == kept.id));
    assert_eq!(claimed.len(), 10);
    let finished = store.finish_cleanups().await.unwrap();
    assert!(
        finished >= u64::from(CLEANUP_BATCH),
        "the restart left {finished} rows to delete"
    );
    assert_eq!(store.finish_cleanups().await.unwrap(), 0);
    assert_eq!(count_deliveries(&store, kept.id).await, events);
}
