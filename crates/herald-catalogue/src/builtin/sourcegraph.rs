//! Sourcegraph outgoing webhooks (seed 001): batch changes and changesets. The
//! payloads mirror Sourcegraph's GraphQL `BatchChange` and `ExternalChangeset`.
//!
//! Sourcegraph always sends every field, so every field is required; fields the seed
//! says are "only available after" publication, or shows as `null`, are nullable.
//! So are `title`, `body` and `state`: changesets herald-ingest normalizes from code
//! host events may not know them yet (a check event before the pull request's).

use serde_json::{Value, json};

use super::{all_required, builtin, nullable, nullable_timestamp, string_array, timestamp, typed};
use crate::catalogue::EventTypeDef;
use crate::family::Family;
use crate::keys::{
    BATCH_CHANGE_APPLY, BATCH_CHANGE_CLOSE, BATCH_CHANGE_DELETE, CHANGESET_CLOSE,
    CHANGESET_PUBLISH, CHANGESET_PUBLISH_ERROR, CHANGESET_UPDATE, CHANGESET_UPDATE_ERROR,
};

const BATCH_CHANGE_EVENTS: [(&str, &str); 3] = [
    (
        BATCH_CHANGE_APPLY,
        "A batch spec was applied to a batch change.",
    ),
    (BATCH_CHANGE_CLOSE, "A batch change was closed."),
    (BATCH_CHANGE_DELETE, "A batch change was deleted."),
];

const CHANGESET_EVENTS: [(&str, &str); 5] = [
    (CHANGESET_CLOSE, "A changeset was closed or merged."),
    (
        CHANGESET_PUBLISH,
        "A changeset was published to the code host.",
    ),
    (
        CHANGESET_PUBLISH_ERROR,
        "Publishing a changeset to the code host failed.",
    ),
    (
        CHANGESET_UPDATE,
        "A changeset was updated on the code host.",
    ),
    (
        CHANGESET_UPDATE_ERROR,
        "Updating a changeset on the code host failed.",
    ),
];

const BATCH_CHANGE_EXAMPLE: &str = r#"{
  "id": "QmF0Y2hDaGFuZ2U6MTcz",
  "namespace_id": "VXNlcjox",
  "name": "hello-world",
  "description": "Add Hello World to READMEs",
  "state": "OPEN",
  "creator_user_id": "VXNlcjox",
  "last_applier_user_id": "VXNlcjox",
  "url": "/users/my-username/batch-changes/hello-world",
  "created_at": "2023-03-19T05:41:24Z",
  "updated_at": "2023-03-19T05:43:04Z",
  "last_applied_at": "2023-03-19T05:43:04Z",
  "closed_at": null
}"#;

// The seed's example lacks `updated_at` (its comment is there, the line is not); it
// is restored where the comment stands, with the batch change's update time.
const CHANGESET_EXAMPLE: &str = r#"{
  "id": "Q2hhbmdlc2V0OjI4MA==",
  "external_id": "204",
  "batch_change_ids": [
    "QmF0Y2hDaGFuZ2U6MTcz"
  ],
  "repository_id": "UmVwb3NpdG9yeToxNQ==",
  "created_at": "2023-03-19T05:41:24Z",
  "updated_at": "2023-03-19T05:43:04Z",
  "title": "Hello World",
  "body": "My first batch change!",
  "author_name": "my-username",
  "author_email": "me@myorganization.com",
  "state": "OPEN",
  "labels": ["bug"],
  "external_url": "https://github.com/my-org/my-repo/pull/204",
  "fork_namespace": "fork-username",
  "fork_name": "my-repo-fork",
  "review_state": "CHANGES_REQUESTED",
  "check_state": "PASSED",
  "error": null,
  "syncer_error": null,
  "owning_batch_change_id": "QmF0Y2hDaGFuZ2U6MTcz"
}"#;

pub fn definitions() -> Vec<EventTypeDef> {
    let batch_changes = BATCH_CHANGE_EVENTS.iter().map(|(key, description)| {
        builtin(
            key,
            description,
            Family::Sourcegraph,
            batch_change_schema(key),
            BATCH_CHANGE_EXAMPLE,
        )
    });
    let changesets = CHANGESET_EVENTS.iter().map(|(key, description)| {
        builtin(
            key,
            description,
            Family::Sourcegraph,
            changeset_schema(key),
            CHANGESET_EXAMPLE,
        )
    });
    batch_changes.chain(changesets).collect()
}

fn batch_change_schema(key: &str) -> Value {
    let properties = json!({
        "id": typed("string", "The unique ID for the batch change."),
        "namespace_id": typed("string", "The ID of the namespace where this batch change is defined."),
        "name": typed("string", "The name of the batch change."),
        "description": typed("string", "The description of the batch change (as Markdown)."),
        "state": typed("string", "The state of the batch change on Sourcegraph: OPEN, CLOSED or DRAFT."),
        "creator_user_id": typed("string", "The ID of the user who created this batch change."),
        "last_applier_user_id": typed("string", "The ID of the user who last applied a spec to this batch change."),
        "url": typed("string", "The URL path on Sourcegraph for this batch change."),
        "created_at": timestamp("The date and time when the batch change was created."),
        "updated_at": timestamp("The date and time when the batch change was last updated."),
        "last_applied_at": timestamp("The date and time when the batch change was last updated with a new spec."),
        "closed_at": nullable_timestamp("The date and time when the batch change was closed, or null if it's still open."),
    });
    all_required(
        key,
        "A Sourcegraph batch change (GraphQL `BatchChange`).",
        properties,
    )
}

fn changeset_schema(key: &str) -> Value {
    let properties = json!({
        "id": typed("string", "The unique ID for the changeset."),
        "external_id": nullable("string", "The ID of the changeset on the code host (e.g. the pull request number). Only available after the changeset has been published."),
        "batch_change_ids": string_array("The IDs of the batch changes that this changeset is associated with."),
        "owning_batch_change_id": nullable("string", "The ID of the batch change that produced this changeset; null for imported changesets."),
        "repository_id": typed("string", "The ID (on Sourcegraph) of the repository that this changeset is associated with."),
        "created_at": timestamp("The date and time when the changeset was created."),
        "updated_at": timestamp("The date and time when the changeset was last updated."),
        "title": nullable("string", "The title of the changeset; null while Herald has seen only check events of a code host change."),
        "body": nullable("string", "The body of the changeset (as Markdown); null when not known yet, as title."),
        "author_name": nullable("string", "The username of the author of the changeset. Only available after the changeset has been published, and not on some code hosts."),
        "author_email": nullable("string", "The email of the author of the changeset. Only available after the changeset has been published, and not on most code hosts."),
        "state": nullable("string", "The state of the changeset, e.g. OPEN, DRAFT, CLOSED, MERGED; null when not known yet, as title."),
        "labels": string_array("Any labels attached to the changeset on the code host."),
        "external_url": nullable("string", "The URL of the changeset on the code host. Only available after the changeset has been published."),
        "fork_namespace": nullable("string", "If the changeset was opened from a fork, the namespace of the fork on the code host; else null."),
        "fork_name": nullable("string", "If the changeset was opened from a fork, the name of the fork repository. Only available after the changeset has been published."),
        "review_state": nullable("string", "The review state on the code host: PENDING, APPROVED or CHANGES_REQUESTED. Only available after the changeset has been published."),
        "check_state": nullable("string", "The check state on the code host: PENDING, PASSED or FAILED. Only available after the changeset has been published."),
        "error": nullable("string", "Any error that occurred when publishing or updating the changeset."),
        "syncer_error": nullable("string", "Any error that occurred during the last sync of the changeset."),
    });
    all_required(
        key,
        "A Sourcegraph changeset (GraphQL `ExternalChangeset`).",
        properties,
    )
}
