//! The behaviours every [`ReceiverStore`] must show, run by each store crate's
//! tests with [`receiver_store_contract_tests!`](crate::receiver_store_contract_tests):
//!
//! ```ignore
//! herald_store::receiver_store_contract_tests!(async { fresh_store().await });
//! ```
//!
//! The factory yields an `Arc` of a type that is both a [`Store`] and a
//! [`ReceiverStore`] (ingest publishes into the same database), alone or with a
//! guard that lives until the case has finished (see [`ReceiverFixture`]). As
//! in the main contract, times are only compared with times the store reported.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use herald_core::event_type::EventTypePattern;
use herald_core::id::{EventId, WebhookId};

use crate::{
    CLEANUP_BATCH, ChangesetLookup, ChangesetPlan, ChangesetWork, ClaimRequest, Ingest,
    IngestOutcome, NewEvent, NewReceiver, NewReceiverRequest, NewWebhook, ReceiverId,
    ReceiverPatch, ReceiverPurgePolicy, ReceiverPurgeReport, ReceiverRecord, ReceiverRequestId,
    ReceiverRequestQuery, ReceiverRequestSummary, ReceiverStore, RequestOutcome, Store,
    StoredChangeset,
};

/// What a test factory yields: the store under test in both of its roles, and
/// whatever must stay alive while it is used.
pub trait ReceiverFixture: Send {
    fn stores(&self) -> (Arc<dyn Store>, Arc<dyn ReceiverStore>);
}

impl<S: Store + ReceiverStore> ReceiverFixture for Arc<S> {
    fn stores(&self) -> (Arc<dyn Store>, Arc<dyn ReceiverStore>) {
        (self.clone(), self.clone())
    }
}

impl<S: Store + ReceiverStore, G: Send> ReceiverFixture for (Arc<S>, G) {
    fn stores(&self) -> (Arc<dyn Store>, Arc<dyn ReceiverStore>) {
        (self.0.clone(), self.0.clone())
    }
}

/// Expands to one `#[tokio::test]` per case. `$factory` is an async expression
/// yielding a fresh [`ReceiverFixture`](crate::contract_receivers::ReceiverFixture).
#[macro_export]
macro_rules! receiver_store_contract_tests {
    ($factory:expr $(,)?) => {
        $crate::receiver_store_contract_tests!(@cases $factory;
            receiver_round_trip,
            rotation_keeps_the_previous_credentials_for_the_grace_period,
            ingest_publishes_with_fan_out_and_logs_the_request,
            a_repeated_delivery_id_is_logged_and_not_processed_again,
            changeset_records_are_read_and_written_by_the_plan,
            commit_lookups_find_records_by_head_prefix_or_external_id,
            a_failing_plan_rolls_the_whole_ingest_back,
            concurrent_ingests_of_one_changeset_never_lose_an_update,
            recorded_requests_are_paged_newest_first,
            unverified_requests_are_capped_per_receiver_and_the_dropped_counted,
            purge_removes_old_requests_and_delivery_ids,
            deleting_a_receiver_deletes_its_log_and_delivery_ids,
            deleting_a_receiver_past_one_batch_hides_and_deletes_its_whole_log,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $factory.await;
                let (store, receivers) = $crate::contract_receivers::ReceiverFixture::stores(&fixture);
                $crate::contract_receivers::$case(store, receivers).await;
                drop(fixture);
            }
        )*
    };
}

const LONG: Duration = Duration::from_secs(3600);
/// Long enough for the store's clock to tick past a millisecond boundary.
const TICK: Duration = Duration::from_millis(20);
const URN: &str = "https://github.com";
const REPO: &str = "github.com/octo/hello";

// ---- helpers ----

/// Sealed bytes are opaque: include a NUL and non-UTF-8 bytes.
fn sealed(tag: u8) -> Vec<u8> {
    vec![0x00, 0xff, tag, b'k']
}

fn new_receiver(name: Option<&str>) -> NewReceiver {
    NewReceiver {
        id: ReceiverId::new(),
        name: name.map(str::to_owned),
        kind: "github".to_owned(),
        urn: URN.to_owned(),
        credentials_sealed: sealed(1),
        github_legacy_sha1: false,
        gitlab_standard_webhooks: false,
    }
}

async fn create(receivers: &Arc<dyn ReceiverStore>, name: &str) -> ReceiverRecord {
    receivers
        .create_receiver(new_receiver(Some(name)))
        .await
        .expect("create_receiver")
}

async fn subscribe(store: &Arc<dyn Store>, types: &[&str]) -> WebhookId {
    let id = WebhookId::new();
    let new = NewWebhook {
        health_overrides: Default::default(),
        flow_limits: Default::default(),
        ordering: Default::default(),
        id,
        name: "subscriber".to_owned(),
        url_display: "https://hooks.example.com/in".to_owned(),
        url_sealed: vec![1],
        secret_sealed: vec![2],
        event_types: types
            .iter()
            .map(|t| EventTypePattern::parse("event_types", t).expect("valid pattern"))
            .collect(),
        project: None,
        enabled: true,
    };
    store.create_webhook(new, 10).await.expect("create_webhook");
    id
}

fn request(receiver: ReceiverId, delivery_id: Option<&str>) -> NewReceiverRequest {
    NewReceiverRequest {
        id: ReceiverRequestId::new(),
        receiver_id: receiver,
        headers: vec![
            ("x-github-event".to_owned(), "push".to_owned()),
            ("x-hub-signature-256".to_owned(), "<redacted>".to_owned()),
        ],
        // Bodies are bytes: keep a NUL and invalid UTF-8 to prove they survive.
        body: b"{\"a\":1}\x00\xff".to_vec(),
        body_truncated: false,
        verified: true,
        verification: "hmac_sha256 (current)".to_owned(),
        status_code: 200,
        event_name: Some("push".to_owned()),
        delivery_id: delivery_id.map(str::to_owned),
        outcome: RequestOutcome::Processed,
        message: None,
    }
}

fn event(event_type: &str, body: &str) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        event_type: event_type.to_owned(),
        project: None,
        payload: body.as_bytes().to_vec(),
        properties: BTreeMap::from([("source".to_owned(), "receiver".to_owned())]),
        ordering_key: None,
    }
}

fn push_ingest(receiver: ReceiverId, delivery_id: Option<&str>) -> Ingest {
    Ingest {
        request: request(receiver, delivery_id),
        events: vec![event("repo:push", r#"{"ref":"refs/heads/main"}"#)],
        changesets: None,
    }
}

async fn ingest(receivers: &Arc<dyn ReceiverStore>, ingest: Ingest) -> IngestOutcome {
    receivers.ingest(ingest).await.expect("ingest")
}

fn key_lookup(external_id: &str) -> ChangesetLookup {
    ChangesetLookup::Key {
        urn: URN.to_owned(),
        repository: REPO.to_owned(),
        external_id: external_id.to_owned(),
    }
}

fn changeset(external_id: &str, head: Option<&str>, state: &str) -> StoredChangeset {
    StoredChangeset {
        urn: URN.to_owned(),
        repository: REPO.to_owned(),
        external_id: external_id.to_owned(),
        head_sha: head.map(str::to_owned),
        state: state.to_owned(),
    }
}

/// A plan that stores `record` and publishes one `changeset:update`, after
/// checking what the store found.
fn write_plan(
    receiver: ReceiverId,
    lookup: ChangesetLookup,
    record: StoredChangeset,
    expect_found: Vec<StoredChangeset>,
) -> Ingest {
    Ingest {
        request: request(receiver, None),
        events: Vec::new(),
        changesets: Some(ChangesetWork {
            lookup,
            apply: Box::new(move |found| {
                if found != expect_found {
                    return Err(format!("found {found:?}, expected {expect_found:?}"));
                }
                let payload = format!(r#"{{"external_id":"{}"}}"#, record.external_id);
                Ok(ChangesetPlan {
                    writes: vec![record.clone()],
                    events: vec![event("changeset:update", &payload)],
                })
            }),
        }),
    }
}

async fn pending_deliveries(store: &Arc<dyn Store>) -> Vec<(EventId, String, Vec<u8>)> {
    store
        .claim_due(ClaimRequest {
            limit: 1000,
            lease: LONG,
            skip_webhooks: Vec::new(),
        })
        .await
        .expect("claim_due")
        .into_iter()
        .map(|c| (c.event.id, c.event.event_type, c.event.payload))
        .collect()
}

async fn listed_ids(receivers: &Arc<dyn ReceiverStore>) -> Vec<ReceiverId> {
    let listed = receivers.list_receivers().await.expect("list_receivers");
    listed.iter().map(|r| r.id).collect()
}

async fn all_requests(
    receivers: &Arc<dyn ReceiverStore>,
    receiver: ReceiverId,
    limit: u32,
) -> (Vec<ReceiverRequestSummary>, usize) {
    let mut query = ReceiverRequestQuery {
        receiver_id: receiver,
        cursor: None,
        limit,
    };
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let page = receivers
            .list_requests(query.clone())
            .await
            .expect("list_requests");
        pages += 1;
        assert!(
            page.items.len() <= limit as usize,
            "a page is over its limit"
        );
        items.extend(page.items);
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
        assert!(pages < 100, "paging does not end");
    }
    let distinct: HashSet<ReceiverRequestId> = items.iter().map(|r| r.id).collect();
    assert_eq!(distinct.len(), items.len(), "pages repeat a request");
    (items, pages)
}

// ---- receivers ----

/// Every field survives create, get, list and update; delete removes it.
pub async fn receiver_round_trip(_store: Arc<dyn Store>, receivers: Arc<dyn ReceiverStore>) {
    let mut new = new_receiver(None);
    new.kind = "gitlab".to_owned();
    new.urn = "https://gitlab.example.com".to_owned();
    new.gitlab_standard_webhooks = true;
    let created = receivers.create_receiver(new.clone()).await.unwrap();
    assert_eq!(created.id, new.id);
    assert_eq!(created.name, None);
    assert_eq!(created.kind, "gitlab");
    assert_eq!(created.urn, "https://gitlab.example.com");
    assert_eq!(created.credentials_sealed, sealed(1));
    assert_eq!(created.previous_credentials_sealed, None);
    assert_eq!(created.previous_valid_until, None);
    assert!(created.gitlab_standard_webhooks && !created.github_legacy_sha1);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(
        receivers.get_receiver(new.id).await.unwrap(),
        Some(created.clone())
    );

    let second = create(&receivers, "second").await;
    assert_eq!(
        listed_ids(&receivers).await,
        vec![created.id, second.id],
        "oldest first"
    );

    tokio::time::sleep(TICK).await;
    let patch = ReceiverPatch {
        name: Some(Some("renamed".to_owned())),
        urn: Some("https://gitlab.example.org".to_owned()),
        credentials_sealed: Some(sealed(2)),
        github_legacy_sha1: None,
        gitlab_standard_webhooks: Some(false),
    };
    let updated = receivers
        .update_receiver(new.id, patch)
        .await
        .unwrap()
        .expect("the receiver exists");
    assert_eq!(updated.name.as_deref(), Some("renamed"));
    assert_eq!(updated.urn, "https://gitlab.example.org");
    assert_eq!(updated.credentials_sealed, sealed(2));
    assert_eq!(updated.kind, "gitlab");
    assert!(!updated.gitlab_standard_webhooks);
    assert_eq!(updated.created_at, created.created_at);
    assert!(updated.updated_at > created.updated_at);
    assert_eq!(
        receivers.get_receiver(new.id).await.unwrap(),
        Some(updated.clone())
    );

    let cleared = receivers
        .update_receiver(
            new.id,
            ReceiverPatch {
                name: Some(None),
                ..ReceiverPatch::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cleared.name, None);
    assert_eq!(cleared.urn, updated.urn, "absent fields stay");

    let unknown = ReceiverId::new();
    assert_eq!(receivers.get_receiver(unknown).await.unwrap(), None);
    assert!(
        receivers
            .update_receiver(unknown, ReceiverPatch::default())
            .await
            .unwrap()
            .is_none()
    );
    assert!(receivers.delete_receiver(new.id).await.unwrap());
    assert!(!receivers.delete_receiver(new.id).await.unwrap());
    assert_eq!(receivers.get_receiver(new.id).await.unwrap(), None);
    assert_eq!(receivers.list_receivers().await.unwrap().len(), 1);
}

/// A rotation keeps the replaced credentials with an end time in the future;
/// rotating again replaces them; zero grace or a patched secret drops them.
pub async fn rotation_keeps_the_previous_credentials_for_the_grace_period(
    _store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
) {
    let created = create(&receivers, "r").await;
    let rotated = receivers
        .rotate_receiver_credentials(created.id, sealed(2), LONG)
        .await
        .unwrap()
        .expect("the receiver exists");
    assert_eq!(rotated.credentials_sealed, sealed(2));
    assert_eq!(rotated.previous_credentials_sealed, Some(sealed(1)));
    let until = rotated.previous_valid_until.expect("a grace period end");
    // The store's own clock: the end is the grace period after the update.
    assert_eq!(
        until.millis() - rotated.updated_at.millis(),
        LONG.as_millis() as i64
    );
    assert_eq!(
        receivers.get_receiver(created.id).await.unwrap(),
        Some(rotated.clone())
    );

    let again = receivers
        .rotate_receiver_credentials(created.id, sealed(3), LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.previous_credentials_sealed, Some(sealed(2)));

    let at_once = receivers
        .rotate_receiver_credentials(created.id, sealed(4), Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(at_once.credentials_sealed, sealed(4));
    assert_eq!(at_once.previous_credentials_sealed, None);
    assert_eq!(at_once.previous_valid_until, None);

    receivers
        .rotate_receiver_credentials(created.id, sealed(5), LONG)
        .await
        .unwrap();
    let patched = receivers
        .update_receiver(
            created.id,
            ReceiverPatch {
                credentials_sealed: Some(sealed(6)),
                ..ReceiverPatch::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(patched.previous_credentials_sealed, None);
    assert_eq!(patched.previous_valid_until, None);
    assert!(
        receivers
            .rotate_receiver_credentials(ReceiverId::new(), sealed(7), LONG)
            .await
            .unwrap()
            .is_none()
    );
}

// ---- ingest ----

/// An ingest publishes its events to the subscribed webhooks, exactly as
/// given, and logs the request with the ids of those events.
pub async fn ingest_publishes_with_fan_out_and_logs_the_request(
    store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
) {
    let receiver = create(&receivers, "r").await;
    subscribe(&store, &["repo:*"]).await;
    subscribe(&store, &["repo:push", "changeset:*"]).await;
    subscribe(&store, &["changeset:*"]).await;

    let work = push_ingest(receiver.id, Some("d-1"));
    let sent = work.request.clone();
    let pushed = work.events[0].clone();
    let outcome = ingest(&receivers, work).await;
    assert!(!outcome.duplicate);
    assert_eq!(outcome.deliveries, 2);
    assert_eq!(outcome.request.id, sent.id);
    assert_eq!(outcome.request.outcome, RequestOutcome::Processed);
    assert_eq!(outcome.request.event_ids, vec![pushed.id]);

    let pending = pending_deliveries(&store).await;
    assert_eq!(pending.len(), 2);
    for (id, event_type, payload) in pending {
        assert_eq!(
            (id, event_type.as_str(), payload),
            (pushed.id, "repo:push", pushed.payload.clone())
        );
    }

    let detail = receivers
        .get_request(receiver.id, sent.id)
        .await
        .unwrap()
        .expect("the request is logged");
    assert_eq!(detail.summary, outcome.request);
    assert_eq!(detail.headers, sent.headers);
    assert_eq!(detail.body, sent.body);
    assert!(!detail.body_truncated);
    let s = &detail.summary;
    assert_eq!(s.receiver_id, receiver.id);
    assert!(s.verified);
    assert_eq!(s.verification, sent.verification);
    assert_eq!(s.status_code, 200);
    assert_eq!(s.event_name.as_deref(), Some("push"));
    assert_eq!(s.delivery_id.as_deref(), Some("d-1"));
    assert_eq!(s.message, None);
    assert!(s.received_at >= receiver.created_at);
    let other = create(&receivers, "other").await;
    assert_eq!(
        receivers.get_request(other.id, sent.id).await.unwrap(),
        None,
        "a request is read through its own receiver only"
    );
}

/// A delivery id seen before is logged as a duplicate with no events, and its
/// changeset function is never called; ids are per receiver, and requests
/// without one are always processed.
pub async fn a_repeated_delivery_id_is_logged_and_not_processed_again(
    store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
) {
    let receiver = create(&receivers, "r").await;
    let other = create(&receivers, "other").await;
    subscribe(&store, &["*"]).await;
    let first = ingest(&receivers, push_ingest(receiver.id, Some("same"))).await;
    assert!(!first.duplicate);

    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let mut repeat = push_ingest(receiver.id, Some("same"));
    repeat.changesets = Some(ChangesetWork {
        lookup: key_lookup("1"),
        apply: Box::new(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(ChangesetPlan::default())
        }),
    });
    let repeat_id = repeat.request.id;
    let second = ingest(&receivers, repeat).await;
    assert!(second.duplicate);
    assert_eq!(second.deliveries, 0);
    assert_eq!(second.request.id, repeat_id);
    assert_eq!(second.request.outcome, RequestOutcome::Duplicate);
    assert!(second.request.event_ids.is_empty());
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "a duplicate ran its changeset work"
    );
    assert_eq!(
        pending_deliveries(&store).await.len(),
        1,
        "only the first was published"
    );

    let elsewhere = ingest(&receivers, push_ingest(other.id, Some("same"))).await;
    assert!(!elsewhere.duplicate, "delivery ids are per receiver");
    for _ in 0..2 {
        assert!(
            !ingest(&receivers, push_ingest(receiver.id, None))
                .await
                .duplicate
        );
    }
    // A logged request that was not processed (here: unverified) does not
    // remember its delivery id, so the genuine one is still processed.
    let mut refused = request(receiver.id, Some("later"));
    refused.verified = false;
    refused.outcome = RequestOutcome::Unverified;
    refused.status_code = 401;
    let logged = receivers.record_request(refused.clone()).await.unwrap();
    assert_eq!(logged.outcome, RequestOutcome::Unverified);
    assert_eq!(logged.status_code, 401);
    assert!(!logged.verified);
    assert!(
        !ingest(&receivers, push_ingest(receiver.id, Some("later")))
            .await
            .duplicate
    );

    let (logged, _) = all_requests(&receivers, receiver.id, 50).await;
    let outcomes: Vec<RequestOutcome> = logged.iter().map(|r| r.outcome).collect();
    use RequestOutcome::{Duplicate, Processed, Unverified};
    assert_eq!(
        outcomes,
        vec![
            Processed, Unverified, Processed, Processed, Duplicate, Processed
        ],
        "newest first"
    );
}

/// The plan sees what the lookup finds and its writes insert or replace by key;
/// its events are published and logged after the plain events.
pub async fn changeset_records_are_read_and_written_by_the_plan(
    store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
) {
    let receiver = create(&receivers, "r").await;
    subscribe(&store, &["changeset:*"]).await;
    let v1 = changeset("7", Some("abc1234def"), r#"{"v":1}"#);
    let first = ingest(
        &receivers,
        write_plan(receiver.id, key_lookup("7"), v1.clone(), Vec::new()),
    )
    .await;
    assert_eq!(first.deliveries, 1);
    assert_eq!(first.request.event_ids.len(), 1);
    assert_eq!(
        receivers.find_changesets(key_lookup("7")).await.unwrap(),
        vec![v1.clone()]
    );

    let v2 = changeset("7", None, r#"{"v":2,"text":"é \u0000"}"#);
    let mut second = write_plan(receiver.id, key_lookup("7"), v2.clone(), vec![v1]);
    let plain = event("repo:push", "{}");
    second.events.push(plain.clone());
    let outcome = ingest(&receivers, second).await;
    assert_eq!(outcome.request.event_ids.len(), 2);
    assert_eq!(
        outcome.request.event_ids[0], plain.id,
        "plain events come first"
    );
    assert_eq!(outcome.deliveries, 1, "nobody subscribed to repo:push");
    assert_eq!(
        receivers.find_changesets(key_lookup("7")).await.unwrap(),
        vec![v2]
    );
    assert!(
        receivers
            .find_changesets(key_lookup("8"))
            .await
            .unwrap()
            .is_empty()
    );
    let elsewhere = ChangesetLookup::Key {
        urn: URN.to_owned(),
        repository: "github.com/octo/other".to_owned(),
        external_id: "7".to_owned(),
    };
    assert!(
        receivers
            .find_changesets(elsewhere)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Commit lookups find the records of the repository whose head starts like
/// the commit (any case, any length past seven) or whose id is listed.
pub async fn commit_lookups_find_records_by_head_prefix_or_external_id(
    _store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
) {
    let receiver = create(&receivers, "r").await;
    let records = [
        changeset("1", Some("ABCDEF1234567"), "{}"),
        changeset("2", Some("abcdef1"), "{}"),
        changeset("3", Some("0123456789"), "{}"),
        changeset("4", None, "{}"),
    ];
    for record in &records {
        let external_id = record.external_id.clone();
        ingest(
            &receivers,
            write_plan(
                receiver.id,
                key_lookup(&external_id),
                record.clone(),
                Vec::new(),
            ),
        )
        .await;
    }
    let mut other_repo = changeset("5", Some("abcdef1234567"), "{}");
    other_repo.repository = "github.com/octo/other".to_owned();
    ingest(
        &receivers,
        write_plan(
            receiver.id,
            ChangesetLookup::Key {
                urn: URN.to_owned(),
                repository: other_repo.repository.clone(),
                external_id: "5".to_owned(),
            },
            other_repo,
            Vec::new(),
        ),
    )
    .await;

    let found = |sha: &str, ids: &[&str]| {
        let lookup = ChangesetLookup::Commit {
            urn: URN.to_owned(),
            repository: REPO.to_owned(),
            sha: sha.to_owned(),
            external_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        };
        let receivers = Arc::clone(&receivers);
        async move {
            let mut ids: Vec<String> = receivers
                .find_changesets(lookup)
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.external_id)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(
        found("abcdef1234567890abcdef1234567890abcdef12", &[]).await,
        ["1", "2"]
    );
    assert_eq!(found("ABCDEF1", &["4"]).await, ["1", "2", "4"]);
    assert_eq!(found("0123456", &["3", "9"]).await, ["3"]);
    assert!(found("fedcba9876543", &[]).await.is_empty());
    assert!(found("abcdef2", &[]).await.is_empty());
}

/// A plan that fails leaves no trace: no record, no event, no log row, and
/// its delivery id is not remembered.
pub async fn a_failing_plan_rolls_the_whole_ingest_back(
    store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
) {
    let receiver = create(&receivers, "r").await;
    subscribe(&store, &["*"]).await;
    let failing = Ingest {
        request: request(receiver.id, Some("d-9")),
        events: vec![event("repo:push", "{}")],
        changesets: Some(ChangesetWork {
            lookup: key_lookup("1"),
            apply: Box::new(|_| Err("the state could not be read".to_owned())),
        }),
    };
    assert!(receivers.ingest(failing).await.is_err());
    assert!(pending_deliveries(&store).await.is_empty());
    assert!(all_requests(&receivers, receiver.id, 10).await.0.is_empty());
    assert!(
        receivers
            .find_changesets(key_lookup("1"))
            .await
            .unwrap()
            .is_empty()
    );
    let retried = ingest(&receivers, push_ingest(receiver.id, Some("d-9"))).await;
    assert!(
        !retried.duplicate,
        "the failed ingest remembered its delivery id"
    );
}

/// Concurrent ingests about one changeset each read the record the previous
/// one wrote: a counter kept in the state counts every one of them.
pub async fn concurrent_ingests_of_one_changeset_never_lose_an_update(
    _store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
) {
    const N: usize = 24;
    let receiver = create(&receivers, "r").await;
    let mut tasks = Vec::new();
    for i in 0..N {
        let receivers = Arc::clone(&receivers);
        let delivery = format!("d-{i}");
        tasks.push(tokio::spawn(async move {
            let work = Ingest {
                request: request(receiver.id, Some(&delivery)),
                events: Vec::new(),
                changesets: Some(ChangesetWork {
                    lookup: key_lookup("42"),
                    apply: Box::new(|found| {
                        let count = match found.as_slice() {
                            [] => 0,
                            [one] => one.state.parse::<usize>().map_err(|e| e.to_string())?,
                            more => return Err(format!("{} records for one key", more.len())),
                        };
                        Ok(ChangesetPlan {
                            writes: vec![changeset("42", None, &(count + 1).to_string())],
                            events: Vec::new(),
                        })
                    }),
                }),
            };
            receivers.ingest(work).await
        }));
    }
    for task in tasks {
        task.await.expect("the task ran").expect("ingest");
    }
    let stored = receivers.find_changesets(key_lookup("42")).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].state, N.to_string(), "an update was lost");
}

/// Lists page newest first without gaps or repeats, per receiver.
pub async fn recorded_requests_are_paged_newest_first(
    _store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
) {
    let receiver = create(&receivers, "r").await;
    let other = create(&receivers, "other").await;
    let mut sent = Vec::new();
    for i in 0..7 {
        let mut r = request(receiver.id, Some(&format!("d-{i}")));
        r.outcome = RequestOutcome::Ping;
        r.message = Some(format!("n{i}"));
        r.body_truncated = i % 2 == 0;
        sent.push(receivers.record_request(r).await.unwrap().id);
    }
    receivers
        .record_request(request(other.id, None))
        .await
        .unwrap();
    let (items, pages) = all_requests(&receivers, receiver.id, 3).await;
    assert_eq!(pages, 3);
    let ids: Vec<ReceiverRequestId> = items.iter().map(|r| r.id).collect();
    sent.reverse();
    assert_eq!(ids, sent);
    assert_eq!(items[0].message.as_deref(), Some("n6"));
    let detail = receivers
        .get_request(receiver.id, sent[0])
        .await
        .unwrap()
        .unwrap();
    assert!(detail.body_truncated);
    let (exact, pages) = all_requests(&receivers, other.id, 1).await;
    assert_eq!(
        (exact.len(), pages),
        (1, 1),
        "a full last page has no next cursor"
    );
}

/// Unverified rows beyond the cap go, oldest first, and are counted on their
/// receiver; verified rows and other receivers' rows stay.
pub async fn unverified_requests_are_capped_per_receiver_and_the_dropped_counted(
    _store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
) {
    let receiver = create(&receivers, "r").await;
    let other = create(&receivers, "other").await;
    let unverified = |receiver: ReceiverId, i: usize| {
        let mut r = request(receiver, None);
        r.verified = false;
        r.outcome = RequestOutcome::Unverified;
        r.status_code = 401;
        r.message = Some(format!("u{i}"));
        r
    };
    let verified = receivers
        .record_request(request(receiver.id, None))
        .await
        .unwrap()
        .id;
    receivers
        .record_unverified(unverified(other.id, 0), 3)
        .await
        .unwrap();
    let mut sent = Vec::new();
    for i in 0..5 {
        let logged = receivers
            .record_unverified(unverified(receiver.id, i), 3)
            .await
            .unwrap();
        assert_eq!(logged.outcome, RequestOutcome::Unverified);
        sent.push(logged.id);
    }
    let (items, _) = all_requests(&receivers, receiver.id, 50).await;
    let ids: Vec<ReceiverRequestId> = items.iter().map(|r| r.id).collect();
    let mut expected: Vec<ReceiverRequestId> = sent[2..].iter().rev().copied().collect();
    expected.push(verified);
    assert_eq!(
        ids, expected,
        "the newest 3 unverified and the verified one"
    );
    let record = receivers.get_receiver(receiver.id).await.unwrap().unwrap();
    assert_eq!(record.unverified_dropped, 2);
    let listed = receivers.list_receivers().await.unwrap();
    let untouched = listed.iter().find(|r| r.id == other.id).unwrap();
    assert_eq!(untouched.unverified_dropped, 0);
    assert_eq!(all_requests(&receivers, other.id, 50).await.0.len(), 1);
}

/// Purging removes log rows and delivery ids past their ages, in batches;
/// younger ones stay, and a purged delivery id is processed again.
pub async fn purge_removes_old_requests_and_delivery_ids(
    _store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
) {
    let receiver = create(&receivers, "r").await;
    for i in 0..5 {
        ingest(
            &receivers,
            push_ingest(receiver.id, Some(&format!("d-{i}"))),
        )
        .await;
    }
    let keep_all = ReceiverPurgePolicy {
        retention: LONG,
        dedupe_ttl: LONG,
        batch: 2,
    };
    assert_eq!(
        receivers.purge_receivers(keep_all).await.unwrap(),
        ReceiverPurgeReport::default()
    );
    tokio::time::sleep(TICK).await;
    let only_ids = ReceiverPurgePolicy {
        retention: LONG,
        dedupe_ttl: Duration::ZERO,
        batch: 2,
    };
    assert_eq!(
        receivers.purge_receivers(only_ids).await.unwrap(),
        ReceiverPurgeReport {
            requests: 0,
            dedupe_keys: 5
        }
    );
    assert!(
        !ingest(&receivers, push_ingest(receiver.id, Some("d-0")))
            .await
            .duplicate
    );
    tokio::time::sleep(TICK).await;
    let everything = ReceiverPurgePolicy {
        retention: Duration::ZERO,
        dedupe_ttl: Duration::ZERO,
        batch: 2,
    };
    assert_eq!(
        receivers.purge_receivers(everything).await.unwrap(),
        ReceiverPurgeReport {
            requests: 6,
            dedupe_keys: 1
        }
    );
    assert!(all_requests(&receivers, receiver.id, 10).await.0.is_empty());
}

/// Deleting a receiver deletes its log and delivery ids, and no one else's.
pub async fn deleting_a_receiver_deletes_its_log_and_delivery_ids(
    _store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
) {
    let doomed = create(&receivers, "doomed").await;
    let kept = create(&receivers, "kept").await;
    let doomed_request = ingest(&receivers, push_ingest(doomed.id, Some("d")))
        .await
        .request
        .id;
    ingest(&receivers, push_ingest(kept.id, Some("d"))).await;
    assert!(receivers.delete_receiver(doomed.id).await.unwrap());
    assert_eq!(
        receivers
            .get_request(doomed.id, doomed_request)
            .await
            .unwrap(),
        None
    );
    assert!(all_requests(&receivers, doomed.id, 10).await.0.is_empty());
    assert_eq!(all_requests(&receivers, kept.id, 10).await.0.len(), 1);
    assert!(
        ingest(&receivers, push_ingest(kept.id, Some("d")))
            .await
            .duplicate
    );
    let everything = ReceiverPurgePolicy {
        retention: LONG,
        dedupe_ttl: Duration::ZERO,
        batch: 100,
    };
    tokio::time::sleep(TICK).await;
    assert_eq!(
        receivers
            .purge_receivers(everything)
            .await
            .unwrap()
            .dedupe_keys,
        1,
        "the deleted receiver's delivery id is gone already"
    );
}

/// A receiver with a request log longer than one cleanup batch is gone from
/// every read when the call returns, with nothing left over.
pub async fn deleting_a_receiver_past_one_batch_hides_and_deletes_its_whole_log(
    store: Arc<dyn Store>,
    receivers: Arc<dyn ReceiverStore>,
) {
    const TASKS: usize = 16;
    let doomed = create(&receivers, "doomed").await;
    let kept = create(&receivers, "kept").await;
    let count = CLEANUP_BATCH as usize + 3;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let receivers = Arc::clone(&receivers);
            tokio::spawn(async move {
                for i in (task..count).step_by(TASKS) {
                    let delivery_id = format!("d{i}");
                    receivers
                        .record_request(request(doomed.id, Some(&delivery_id)))
                        .await
                        .expect("record_request");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a recording task");
    }
    ingest(&receivers, push_ingest(doomed.id, Some("dedupe"))).await;
    ingest(&receivers, push_ingest(kept.id, Some("dedupe"))).await;
    let (log, _) = all_requests(&receivers, doomed.id, 1000).await;
    assert_eq!(log.len(), count + 1);

    assert!(receivers.delete_receiver(doomed.id).await.unwrap());
    assert!(!receivers.delete_receiver(doomed.id).await.unwrap());
    assert_eq!(receivers.get_receiver(doomed.id).await.unwrap(), None);
    assert_eq!(listed_ids(&receivers).await, vec![kept.id]);
    assert!(all_requests(&receivers, doomed.id, 1000).await.0.is_empty());
    assert_eq!(
        receivers.get_request(doomed.id, log[0].id).await.unwrap(),
        None
    );
    assert_eq!(
        store.finish_cleanups().await.unwrap(),
        0,
        "nothing was left over"
    );
    assert_eq!(all_requests(&receivers, kept.id, 10).await.0.len(), 1);
}
