//! The `changeset:update` / `changeset:close` payload, in the field order of
//! seed 001's changeset schema.
//!
//! Sourcegraph-only fields get fixed values: Herald has no batch changes
//! (`batch_change_ids: []`, `owning_batch_change_id: null`) and never
//! publishes or syncs changesets itself (`error: null`, `syncer_error: null`).
//! `repository_id` is the repository's name (`github.com/owner/name`), the only
//! repository identity Herald has. `id` is the record's stable id.

use serde_json::{Value, json};

use crate::merge::ChangesetRecordState;

pub fn changeset_payload(state: &ChangesetRecordState) -> Value {
    // `serde_json` is built with `preserve_order`, so the object keeps this order.
    json!({
        "id": state.id.to_string(),
        "external_id": state.key.external_id,
        "batch_change_ids": [],
        "repository_id": state.key.repository,
        "created_at": state.created_at,
        "updated_at": state.updated_at,
        "title": state.title,
        "body": state.body,
        "author_name": state.author_name,
        "author_email": state.author_email,
        "state": state.state,
        "labels": state.labels,
        "external_url": state.external_url,
        "fork_namespace": state.fork_namespace,
        "fork_name": state.fork_name,
        "review_state": state.review_state,
        "check_state": state.check_state,
        "error": null,
        "syncer_error": null,
        "owning_batch_change_id": null,
    })
}
