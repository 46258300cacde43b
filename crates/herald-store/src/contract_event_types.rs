//! The behaviours every [`EventTypeStore`] must show, run by each store crate's
//! tests with [`event_type_store_contract_tests!`](crate::event_type_store_contract_tests):
//!
//! ```ignore
//! herald_store::event_type_store_contract_tests!(async { fresh_store().await });
//! ```
//!
//! The factory yields an `Arc<dyn EventTypeStore>`, or a pair of one and a guard
//! that lives until the case has finished (see [`EventTypeFixture`]). As in the
//! main contract, times are only compared with times the store reported.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::{EventTypeRecord, EventTypeStore, NewEventType};

/// What a test factory yields: the store under test, and whatever must stay alive
/// while it is used.
pub trait EventTypeFixture: Send {
    fn event_types(&self) -> Arc<dyn EventTypeStore>;
}

impl EventTypeFixture for Arc<dyn EventTypeStore> {
    fn event_types(&self) -> Arc<dyn EventTypeStore> {
        Arc::clone(self)
    }
}

impl<G: Send> EventTypeFixture for (Arc<dyn EventTypeStore>, G) {
    fn event_types(&self) -> Arc<dyn EventTypeStore> {
        Arc::clone(&self.0)
    }
}

/// Expands to one `#[tokio::test]` per case. `$factory` is an async expression
/// yielding a fresh [`EventTypeFixture`](crate::contract_event_types::EventTypeFixture).
#[macro_export]
macro_rules! event_type_store_contract_tests {
    ($factory:expr $(,)?) => {
        $crate::event_type_store_contract_tests!(@cases $factory;
            a_fresh_store_has_no_custom_types,
            put_creates_then_replaces_keeping_created_at,
            schema_and_example_text_is_kept_byte_for_byte,
            types_are_listed_by_key,
            delete_removes_only_that_type,
            concurrent_puts_of_one_key_create_it_once,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $factory.await;
                let store = $crate::contract_event_types::EventTypeFixture::event_types(&fixture);
                $crate::contract_event_types::$case(store).await;
                drop(fixture);
            }
        )*
    };
}

/// Long enough for the store's clock to tick past a millisecond boundary.
const TICK: Duration = Duration::from_millis(20);

fn new_type(key: &str, description: &str) -> NewEventType {
    NewEventType {
        key: key.to_owned(),
        description: description.to_owned(),
        family: "custom".to_owned(),
        schema_json: r#"{"type":"object","required":["id"]}"#.to_owned(),
        example_json: r#"{"id":"1"}"#.to_owned(),
    }
}

async fn list(store: &Arc<dyn EventTypeStore>) -> Vec<EventTypeRecord> {
    store.list_event_types().await.expect("list_event_types")
}

fn keys(records: &[EventTypeRecord]) -> Vec<&str> {
    records.iter().map(|r| r.key.as_str()).collect()
}

pub async fn a_fresh_store_has_no_custom_types(store: Arc<dyn EventTypeStore>) {
    assert!(list(&store).await.is_empty());
    assert!(!store.delete_event_type("order:paid").await.expect("delete"));
}

/// A put of a new key creates it; a put of the same key replaces every field but
/// `created_at`, and moves `updated_at` on.
pub async fn put_creates_then_replaces_keeping_created_at(store: Arc<dyn EventTypeStore>) {
    let first = store
        .put_event_type(new_type("order:paid", "An order was paid"))
        .await
        .expect("put");
    assert!(first.created);
    assert_eq!(first.record.key, "order:paid");
    assert_eq!(first.record.description, "An order was paid");
    assert_eq!(first.record.family, "custom");
    assert_eq!(first.record.created_at, first.record.updated_at);
    assert_eq!(list(&store).await, vec![first.record.clone()]);

    tokio::time::sleep(TICK).await;
    let replacement = NewEventType {
        family: "sonarqube".to_owned(),
        schema_json: r#"{"type":"object"}"#.to_owned(),
        example_json: r#"{"project":{"key":"p"}}"#.to_owned(),
        ..new_type("order:paid", "An order was paid in full")
    };
    let second = store
        .put_event_type(replacement.clone())
        .await
        .expect("put again");
    assert!(!second.created, "the key existed");
    assert_eq!(second.record.description, replacement.description);
    assert_eq!(second.record.family, "sonarqube");
    assert_eq!(second.record.schema_json, replacement.schema_json);
    assert_eq!(second.record.example_json, replacement.example_json);
    assert_eq!(second.record.created_at, first.record.created_at);
    assert!(second.record.updated_at > first.record.updated_at);
    assert_eq!(list(&store).await, vec![second.record]);
}

/// The catalogue keeps payload field order, so the store must not normalize JSON.
pub async fn schema_and_example_text_is_kept_byte_for_byte(store: Arc<dyn EventTypeStore>) {
    let new = NewEventType {
        schema_json: "{ \"type\" : \"object\",\n  \"properties\": {\"z\": {}, \"a\": {}} }"
            .to_owned(),
        example_json: r#"{"z":"ünïcode ✓","a":[1,2.50,null],"m":{"b":1,"a":2}}"#.to_owned(),
        description: "Ünïcode — and \"quotes\"".to_owned(),
        ..new_type("text:exact", "")
    };
    store.put_event_type(new.clone()).await.expect("put");
    let stored = list(&store).await.remove(0);
    assert_eq!(stored.schema_json, new.schema_json);
    assert_eq!(stored.example_json, new.example_json);
    assert_eq!(stored.description, new.description);
}

pub async fn types_are_listed_by_key(store: Arc<dyn EventTypeStore>) {
    for key in ["zeta:z", "alpha:b", "alpha:a", "m"] {
        store.put_event_type(new_type(key, key)).await.expect("put");
    }
    assert_eq!(
        keys(&list(&store).await),
        vec!["alpha:a", "alpha:b", "m", "zeta:z"]
    );
}

pub async fn delete_removes_only_that_type(store: Arc<dyn EventTypeStore>) {
    for key in ["a:one", "a:two"] {
        store.put_event_type(new_type(key, key)).await.expect("put");
    }
    assert!(store.delete_event_type("a:one").await.expect("delete"));
    assert!(
        !store
            .delete_event_type("a:one")
            .await
            .expect("delete again")
    );
    assert_eq!(keys(&list(&store).await), vec!["a:two"]);
    let again = store
        .put_event_type(new_type("a:one", "back"))
        .await
        .expect("put after delete");
    assert!(again.created, "a deleted key is created afresh");
}

/// Nodes may register the same type at once: exactly one of them creates it.
pub async fn concurrent_puts_of_one_key_create_it_once(store: Arc<dyn EventTypeStore>) {
    let puts: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .put_event_type(new_type("race:key", &format!("writer {i}")))
                    .await
            })
        })
        .collect();
    let mut created = 0;
    let mut descriptions = HashSet::new();
    for put in puts {
        let put = put.await.expect("task").expect("put");
        created += usize::from(put.created);
        descriptions.insert(put.record.description);
    }
    assert_eq!(created, 1);
    assert_eq!(
        descriptions.len(),
        8,
        "every put answered with its own write"
    );
    let stored = list(&store).await;
    assert_eq!(stored.len(), 1);
    assert!(descriptions.contains(&stored[0].description));
}
