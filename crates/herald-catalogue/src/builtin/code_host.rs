//! Events normalized from incoming code host webhooks (issue 5), built by
//! herald-ingest's `RepoPush`; a test of this crate checks that they match.

use serde_json::{Value, json};

use super::{DRAFT_2020_12, nullable, typed};
use crate::catalogue::EventTypeDef;
use crate::family::Family;
use crate::keys::REPO_PUSH;

/// herald-ingest's `CodeHostKind` wire names.
const CODE_HOST_KINDS: [&str; 5] = [
    "github",
    "gitlab",
    "bitbucket_server",
    "bitbucket_cloud",
    "azure_devops",
];

const EXAMPLE: &str = r#"{
  "repository": "github.com/octo-org/hello-world",
  "code_host": {
    "kind": "github",
    "urn": "https://github.com"
  },
  "ref": "refs/heads/main",
  "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
  "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
  "commits": [
    {
      "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
      "message": "Update README.md",
      "author_name": "Mona Lisa",
      "author_email": "mona@example.com",
      "timestamp": "2026-01-15T10:00:00Z",
      "url": "https://github.com/octo-org/hello-world/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
    }
  ],
  "pusher": {
    "name": "monalisa",
    "email": "mona@example.com"
  }
}"#;

pub fn definitions() -> Vec<EventTypeDef> {
    vec![super::builtin(
        REPO_PUSH,
        "Commits were pushed to a repository on a code host (normalized from the host's webhook).",
        Family::CodeHost,
        schema(),
        EXAMPLE,
    )]
}

fn schema() -> Value {
    json!({
        "$schema": DRAFT_2020_12,
        "title": REPO_PUSH,
        "description": "A push, normalized across code hosts.",
        "type": "object",
        "properties": {
            "repository": typed("string", "Host and path, e.g. github.com/owner/name."),
            "code_host": {
                "type": "object",
                "properties": {
                    "kind": {"enum": CODE_HOST_KINDS, "description": "The kind of code host."},
                    "urn": typed("string", "The code host's base URL, e.g. https://github.com."),
                },
                "required": ["kind", "urn"],
                "additionalProperties": false,
            },
            "ref": typed("string", "The full ref pushed, e.g. refs/heads/main."),
            "before": typed("string", "The ref's previous commit; forty zeros when the ref was created."),
            "after": typed("string", "The ref's new commit; forty zeros when the ref was deleted."),
            "commits": {
                "type": "array",
                "description": "The pushed commits; empty when the host does not list them.",
                "items": commit_schema(),
            },
            "pusher": {
                "type": ["object", "null"],
                "description": "Who pushed, when the host says.",
                "properties": {
                    "name": typed("string", "The pusher's login or name."),
                    "email": nullable("string", "The pusher's email, when the host sends it."),
                },
                "required": ["name", "email"],
                "additionalProperties": false,
            },
        },
        "required": ["repository", "code_host", "ref", "before", "after", "commits", "pusher"],
        "additionalProperties": false,
    })
}

fn commit_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": typed("string", "The commit hash."),
            "message": nullable("string", "The commit message."),
            "author_name": nullable("string", "The author's name."),
            "author_email": nullable("string", "The author's email."),
            "timestamp": {"type": ["string", "null"], "format": "date-time", "description": "When the commit was made (RFC 3339, UTC)."},
            "url": nullable("string", "The commit's page on the code host."),
        },
        "required": ["id", "message", "author_name", "author_email", "timestamp", "url"],
        "additionalProperties": false,
    })
}
