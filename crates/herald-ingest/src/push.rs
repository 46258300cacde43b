//! The `repo:push` payload.

use herald_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::kind::CodeHostKind;

/// The normalized event type of a push.
pub const REPO_PUSH: &str = "repo:push";

/// One ref update. Fields serialize in this order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoPush {
    /// Host and path, e.g. `github.com/owner/name`.
    pub repository: String,
    pub code_host: CodeHost,
    /// The full ref, e.g. `refs/heads/main` or `refs/tags/v1.0.0`.
    #[serde(rename = "ref")]
    pub ref_name: String,
    /// The old commit; 40 zeros when the ref was created.
    pub before: String,
    /// The new commit; 40 zeros when the ref was deleted.
    pub after: String,
    /// The pushed commits, as the host lists them; empty where the host sends
    /// none (Bitbucket Server, deletions).
    pub commits: Vec<PushCommit>,
    pub pusher: Option<Pusher>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeHost {
    pub kind: CodeHostKind,
    /// The receiver's code host URN, as configured.
    pub urn: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushCommit {
    pub id: String,
    pub message: Option<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub timestamp: Option<Timestamp>,
    pub url: Option<String>,
}

/// Who pushed: the host's login where it sends one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pusher {
    pub name: String,
    pub email: Option<String>,
}

/// The ref value hosts use for "no commit".
pub(crate) const NULL_SHA: &str = "0000000000000000000000000000000000000000";
