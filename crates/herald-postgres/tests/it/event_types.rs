//! The event type store contract against `PgStore`, and what only several
//! nodes on one database show: a type one node registers, another lists.

use std::sync::Arc;

use herald_store::{EventTypeStore, NewEventType};

use crate::support::TestSchema;

herald_store::event_type_store_contract_tests!(std::future::ready(match TestSchema::new().await {
    Some(schema) => {
        let store: Arc<dyn EventTypeStore> = Arc::new(schema.store().await);
        (store, schema)
    }
    None => return,
}));

#[tokio::test]
async fn a_type_registered_on_one_node_is_listed_on_another() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let (one, two) = (schema.store().await, schema.store().await);
    let put = one
        .put_event_type(NewEventType {
            key: "order:paid".to_owned(),
            description: "An order was paid".to_owned(),
            family: "sourcegraph".to_owned(),
            schema_json: r#"{"type":"object"}"#.to_owned(),
            example_json: r#"{"b":1,"a":2}"#.to_owned(),
        })
        .await
        .unwrap();
    assert_eq!(two.list_event_types().await.unwrap(), vec![put.record]);
    assert!(two.delete_event_type("order:paid").await.unwrap());
    assert!(one.list_event_types().await.unwrap().is_empty());
    one.close().await;
    two.close().await;
}
