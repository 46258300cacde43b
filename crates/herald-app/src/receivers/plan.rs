//! What one normalized request asks of the store: events to publish, and for
//! pull/merge request activity, the changeset work the store runs inside its
//! transaction ([`ChangesetWork`]): find the records, fold the observation into
//! each with `herald_ingest::apply`, store what changed, and publish
//! `changeset:update` or `changeset:close` with the record as payload. Every
//! payload is checked against its type's schema in the catalogue first: one
//! that does not match is a bug here or in herald-ingest, and is never sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use herald_catalogue::Catalogue;
use herald_core::id::EventId;
use herald_ingest::{
    ChangesetObservation, ChangesetRecordState, RepoPush, apply, changeset_payload,
};
use herald_store::{
    ChangesetLookup, ChangesetPlan, ChangesetWork, NewEvent, ReceiverId, StoredChangeset,
};
use serde::Serialize;

/// Properties every event from a receiver carries, so subscribers and the log
/// can tell where it came from.
fn properties(receiver: ReceiverId, repository: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("receiver_id".to_owned(), receiver.to_string()),
        ("repository".to_owned(), repository.to_owned()),
    ])
}

fn event(
    catalogue: &Catalogue,
    event_type: &str,
    payload: &impl Serialize,
    properties: BTreeMap<String, String>,
) -> Result<NewEvent, String> {
    let value = serde_json::to_value(payload).map_err(|e| e.to_string())?;
    catalogue.validate(event_type, &value).map_err(|e| {
        format!("the normalized {event_type} payload does not match the catalogue: {e}")
    })?;
    Ok(NewEvent {
        id: EventId::new(),
        event_type: event_type.to_owned(),
        // Code host events are global: receivers belong to no project.
        project: None,
        payload: serde_json::to_vec(&value).map_err(|e| e.to_string())?,
        properties,
        ordering_key: None,
    })
}

/// One `repo:push` event per updated ref.
pub fn push_events(
    catalogue: &Catalogue,
    receiver: ReceiverId,
    pushes: &[RepoPush],
) -> Result<Vec<NewEvent>, String> {
    pushes
        .iter()
        .map(|push| {
            event(
                catalogue,
                herald_ingest::REPO_PUSH,
                push,
                properties(receiver, &push.repository),
            )
        })
        .collect()
}

/// The store work of a pull/merge request observation or a commit check.
pub fn changeset_work(
    catalogue: Arc<Catalogue>,
    receiver: ReceiverId,
    observation: ChangesetObservation,
) -> ChangesetWork {
    let lookup = match &observation {
        ChangesetObservation::PullRequest(pr) => ChangesetLookup::Key {
            urn: pr.key.urn.clone(),
            repository: pr.key.repository.clone(),
            external_id: pr.key.external_id.clone(),
        },
        ChangesetObservation::CommitCheck(check) => ChangesetLookup::Commit {
            urn: check.urn.clone(),
            repository: check.repository.clone(),
            sha: check.sha.clone(),
            external_ids: check.external_ids.clone(),
        },
    };
    ChangesetWork {
        lookup,
        apply: Box::new(move |found| plan(&catalogue, receiver, &observation, found)),
    }
}

/// Runs inside the store's transaction: pure computation on what it found.
fn plan(
    catalogue: &Catalogue,
    receiver: ReceiverId,
    observation: &ChangesetObservation,
    mut found: Vec<StoredChangeset>,
) -> Result<ChangesetPlan, String> {
    let mut plan = ChangesetPlan::default();
    match observation {
        ChangesetObservation::PullRequest(_) => {
            let previous = found.first().map(read_state).transpose()?;
            fold(
                catalogue,
                receiver,
                previous.as_ref(),
                observation,
                &mut plan,
            )?;
        }
        // A check updates every record it concerns; a check alone never starts
        // a record. The store found candidates by head prefix and listed ids;
        // `apply` matches the head commit exactly.
        ChangesetObservation::CommitCheck(_) => {
            found.sort_by(|a, b| a.external_id.cmp(&b.external_id));
            for record in &found {
                let previous = read_state(record)?;
                fold(catalogue, receiver, Some(&previous), observation, &mut plan)?;
            }
        }
    }
    Ok(plan)
}

fn fold(
    catalogue: &Catalogue,
    receiver: ReceiverId,
    previous: Option<&ChangesetRecordState>,
    observation: &ChangesetObservation,
    plan: &mut ChangesetPlan,
) -> Result<(), String> {
    let applied = apply(previous, observation);
    let event_type = applied.event_type();
    let Some(new) = applied.new_state else {
        return Ok(());
    };
    if previous != Some(&new) {
        plan.writes.push(write_state(&new)?);
    }
    if let Some(event_type) = event_type {
        plan.events.push(event(
            catalogue,
            event_type,
            &changeset_payload(&new),
            properties(receiver, &new.key.repository),
        )?);
    }
    Ok(())
}

fn read_state(stored: &StoredChangeset) -> Result<ChangesetRecordState, String> {
    serde_json::from_str(&stored.state).map_err(|e| {
        format!(
            "the changeset record {}#{} is unreadable: {e}",
            stored.repository, stored.external_id
        )
    })
}

fn write_state(state: &ChangesetRecordState) -> Result<StoredChangeset, String> {
    Ok(StoredChangeset {
        urn: state.key.urn.clone(),
        repository: state.key.repository.clone(),
        external_id: state.key.external_id.clone(),
        head_sha: state.head_sha.clone(),
        state: serde_json::to_string(state).map_err(|e| e.to_string())?,
    })
}
