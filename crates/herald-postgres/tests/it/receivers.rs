//! The receiver store contract against `PgStore`, and what only several nodes
//! on one database show: the same delivery id sent to two nodes at once is
//! processed once, and their changeset updates never overwrite each other.

use std::sync::Arc;

use herald_core::id::EventId;
use herald_store::{
    ChangesetLookup, ChangesetPlan, ChangesetWork, Ingest, NewEvent, NewReceiver,
    NewReceiverRequest, ReceiverId, ReceiverRequestId, ReceiverStore, RequestOutcome,
    StoredChangeset,
};

use crate::support::TestSchema;

herald_store::receiver_store_contract_tests!(std::future::ready(match TestSchema::new().await {
    Some(schema) => (Arc::new(schema.store().await), schema),
    None => return,
}));

fn lookup() -> ChangesetLookup {
    ChangesetLookup::Key {
        urn: "https://gitlab.example.com".to_owned(),
        repository: "gitlab.example.com/g/p".to_owned(),
        external_id: "1".to_owned(),
    }
}

/// An ingest that adds one to a counter kept in the changeset's state.
fn increment(receiver: ReceiverId, delivery_id: &str) -> Ingest {
    Ingest {
        request: NewReceiverRequest {
            id: ReceiverRequestId::new(),
            receiver_id: receiver,
            headers: Vec::new(),
            body: b"{}".to_vec(),
            body_truncated: false,
            verified: true,
            verification: "token (current)".to_owned(),
            status_code: 200,
            event_name: Some("Merge Request Hook".to_owned()),
            delivery_id: Some(delivery_id.to_owned()),
            outcome: RequestOutcome::Processed,
            message: None,
        },
        events: Vec::new(),
        changesets: Some(ChangesetWork {
            lookup: lookup(),
            apply: Box::new(|found| {
                let count: u32 = match found.first() {
                    Some(record) => record.state.parse().map_err(|e| format!("{e}"))?,
                    None => 0,
                };
                Ok(ChangesetPlan {
                    writes: vec![StoredChangeset {
                        urn: "https://gitlab.example.com".to_owned(),
                        repository: "gitlab.example.com/g/p".to_owned(),
                        external_id: "1".to_owned(),
                        head_sha: None,
                        state: (count + 1).to_string(),
                    }],
                    events: vec![NewEvent {
                        id: EventId::new(),
                        event_type: "changeset:update".to_owned(),
                        project: None,
                        payload: b"{}".to_vec(),
                        properties: Default::default(),
                        ordering_key: None,
                    }],
                })
            }),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_process_each_delivery_once_and_lose_no_update() {
    let Some(schema) = TestSchema::new().await else {
        return;
    };
    let (one, two) = (
        Arc::new(schema.store().await),
        Arc::new(schema.store().await),
    );
    let receiver = one
        .create_receiver(NewReceiver {
            id: ReceiverId::new(),
            name: None,
            kind: "gitlab".to_owned(),
            urn: "https://gitlab.example.com".to_owned(),
            credentials_sealed: vec![1],
            github_legacy_sha1: false,
            gitlab_standard_webhooks: false,
        })
        .await
        .unwrap();
    const DELIVERIES: usize = 12;
    let mut tasks = Vec::new();
    for i in 0..DELIVERIES {
        // Every delivery reaches both nodes at once, as a retrying host or a
        // load balancer could make happen.
        for node in [one.clone(), two.clone()] {
            let delivery = format!("delivery-{i}");
            tasks.push(tokio::spawn(async move {
                node.ingest(increment(receiver.id, &delivery)).await
            }));
        }
    }
    let mut processed = 0;
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        if !outcome.duplicate {
            processed += 1;
            assert_eq!(outcome.request.event_ids.len(), 1);
        }
    }
    assert_eq!(
        processed, DELIVERIES,
        "each delivery id is processed exactly once"
    );
    let stored = two.find_changesets(lookup()).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].state,
        DELIVERIES.to_string(),
        "an update was lost between nodes"
    );
    one.close().await;
    two.close().await;
}
