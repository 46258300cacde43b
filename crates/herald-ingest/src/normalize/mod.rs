//! Turning a verified, identified payload into Herald's events. One module
//! per host reads that host's payloads; this one dispatches and holds what
//! they share.

mod azure_devops;
mod bitbucket_cloud;
mod bitbucket_server;
mod github;
mod gitlab;

use herald_core::time::Timestamp;
use serde::Serialize;

use crate::changeset::{
    ChangesetKey, ChangesetObservation, CheckState, CommitCheck, Details, Observed,
    PullRequestObservation, ReviewState,
};
use crate::error::IngestError;
use crate::kind::CodeHostKind;
use crate::push::{CodeHost, RepoPush};
use crate::repo;

/// What one webhook delivery means for Herald.
// One value per request: the variants' size gap is not worth a `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Normalized {
    /// One `repo:push` per updated ref (Bitbucket and Azure DevOps can update
    /// several refs in one delivery).
    Push(Vec<RepoPush>),
    /// Pull/merge request activity, for [`crate::apply`].
    Changeset(ChangesetObservation),
    /// A connectivity test; answer 200 and publish nothing.
    Ping,
    /// An event Herald does not handle; answer [`crate::ignored_status`].
    Ignored { reason: String },
}

/// Normalizes a payload. `urn` is the receiver's code host URN, `event_name`
/// what [`crate::identify()`] returned.
pub fn normalize(
    kind: CodeHostKind,
    urn: &str,
    event_name: &str,
    body: &[u8],
) -> Result<Normalized, IngestError> {
    let ctx = Ctx {
        kind,
        urn,
        host_path: repo::urn_host_path(urn)?,
    };
    match kind {
        CodeHostKind::GitHub => github::normalize(&ctx, event_name, body),
        CodeHostKind::GitLab => gitlab::normalize(&ctx, event_name, body),
        CodeHostKind::BitbucketServer => bitbucket_server::normalize(&ctx, event_name, body),
        CodeHostKind::BitbucketCloud => bitbucket_cloud::normalize(&ctx, event_name, body),
        CodeHostKind::AzureDevOps => azure_devops::normalize(&ctx, event_name, body),
    }
}

/// The receiver a payload came through.
struct Ctx<'a> {
    kind: CodeHostKind,
    urn: &'a str,
    host_path: String,
}

impl Ctx<'_> {
    fn repository(&self, path: &str) -> String {
        repo::repository_name(&self.host_path, path)
    }

    fn code_host(&self) -> CodeHost {
        CodeHost {
            kind: self.kind,
            urn: self.urn.to_owned(),
        }
    }

    fn key(&self, repository: String, external_id: String) -> ChangesetKey {
        ChangesetKey {
            urn: self.urn.to_owned(),
            repository,
            external_id,
        }
    }

    fn commit_check(
        &self,
        repository: String,
        sha: &str,
        check_state: CheckState,
        observed_at: Timestamp,
        external_ids: Vec<String>,
    ) -> Normalized {
        Normalized::Changeset(ChangesetObservation::CommitCheck(CommitCheck {
            urn: self.urn.to_owned(),
            repository,
            sha: sha.to_owned(),
            check_state,
            observed_at,
            external_ids,
        }))
    }
}

fn pull_request(
    key: ChangesetKey,
    details: Option<Observed<Details>>,
    review: Option<Observed<ReviewState>>,
) -> Normalized {
    Normalized::Changeset(ChangesetObservation::PullRequest(PullRequestObservation {
        key,
        details,
        review,
        check: None,
    }))
}

fn ignored(kind: CodeHostKind, event: &str) -> Normalized {
    Normalized::Ignored {
        reason: format!("{kind} event {event:?} is not one Herald normalizes"),
    }
}

fn observed<T>(value: T, at: Timestamp) -> Observed<T> {
    Observed { value, at }
}

/// `"owner/name"` split at its last slash into a fork's namespace and name.
fn fork_from_path(path: &str) -> Option<crate::changeset::Fork> {
    let (namespace, name) = path.rsplit_once('/')?;
    Some(crate::changeset::Fork {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}
