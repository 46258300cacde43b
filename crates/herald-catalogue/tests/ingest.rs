//! What herald-ingest publishes from code host webhooks must pass the catalogue's
//! schemas, or normalized events would be refused at publish time.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

mod common;

use herald_catalogue::Catalogue;
use herald_catalogue::keys::{CHANGESET_CLOSE, CHANGESET_UPDATE, REPO_PUSH};
use herald_ingest::{
    ChangesetKey, ChangesetRecordState, ChangesetState, CheckState, CodeHostKind, ReviewState,
    changeset_payload,
};
use serde_json::Value;

fn record_knowing_nothing_yet() -> ChangesetRecordState {
    let key = ChangesetKey {
        urn: "https://github.com".into(),
        repository: "github.com/octo-org/hello-world".into(),
        external_id: "204".into(),
    };
    ChangesetRecordState {
        id: key.record_id(),
        key,
        state: None,
        review_state: None,
        check_state: None,
        title: None,
        body: None,
        labels: vec![],
        author_name: None,
        author_email: None,
        external_url: None,
        fork_namespace: None,
        fork_name: None,
        head_sha: Some("0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c".into()),
        created_at: common::ts("2026-01-15T10:00:00Z"),
        updated_at: common::ts("2026-01-15T10:05:00Z"),
        details_at: None,
        review_at: None,
        check_at: None,
    }
}

#[test]
fn a_changeset_known_only_from_a_check_event_passes() {
    let catalogue = Catalogue::builtin();
    let payload = changeset_payload(&record_knowing_nothing_yet());
    assert_eq!(catalogue.validate(CHANGESET_UPDATE, &payload), Ok(()));
}

#[test]
fn a_fully_known_changeset_passes_in_the_seeds_field_order() {
    let catalogue = Catalogue::builtin();
    let record = ChangesetRecordState {
        state: Some(ChangesetState::Merged),
        review_state: Some(ReviewState::ChangesRequested),
        check_state: Some(CheckState::Passed),
        title: Some("Hello World".into()),
        body: Some("My first batch change!".into()),
        labels: vec!["bug".into()],
        author_name: Some("my-username".into()),
        external_url: Some("https://github.com/my-org/my-repo/pull/204".into()),
        fork_namespace: Some("fork-username".into()),
        fork_name: Some("my-repo-fork".into()),
        ..record_knowing_nothing_yet()
    };
    let payload = changeset_payload(&record);
    assert_eq!(catalogue.validate(CHANGESET_CLOSE, &payload), Ok(()));
    let example = &catalogue.get(CHANGESET_CLOSE).unwrap().example;
    let field_names = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(field_names(&payload), field_names(example));
}

#[test]
fn ingest_builds_the_repo_push_example_byte_for_byte() {
    let catalogue = Catalogue::builtin();
    let example = catalogue.get(REPO_PUSH).unwrap().example_bytes();
    assert_eq!(
        String::from_utf8(common::example_repo_push()).unwrap(),
        String::from_utf8(example).unwrap()
    );
}

#[test]
fn every_code_host_kind_ingest_knows_is_in_the_schema() {
    let catalogue = Catalogue::builtin();
    let mut push: Value = catalogue.get(REPO_PUSH).unwrap().example.clone();
    for kind in CodeHostKind::ALL {
        push["code_host"]["kind"] = serde_json::to_value(kind).unwrap();
        assert_eq!(catalogue.validate(REPO_PUSH, &push), Ok(()), "{kind:?}");
    }
    push["pusher"] = Value::Null;
    push["commits"] = Value::Array(vec![]);
    assert_eq!(catalogue.validate(REPO_PUSH, &push), Ok(()));
}
