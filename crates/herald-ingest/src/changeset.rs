//! What pull/merge request activity says about a changeset: the normalized
//! fields of seed 001's changeset payload, each with the host's timestamp.

use herald_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangesetState {
    Open,
    Draft,
    Closed,
    Merged,
}

impl ChangesetState {
    /// Closed and merged changesets are done: reaching either publishes `changeset:close`.
    pub fn is_final(self) -> bool {
        matches!(self, ChangesetState::Closed | ChangesetState::Merged)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReviewState {
    Pending,
    Approved,
    ChangesRequested,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckState {
    Pending,
    Passed,
    Failed,
}

/// Herald keeps one changeset record per key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangesetKey {
    /// The receiver's code host URN.
    pub urn: String,
    /// Host and path of the repository the change targets.
    pub repository: String,
    /// The pull/merge request's number on the host (GitLab: the `iid`).
    pub external_id: String,
}

/// A fixed namespace for [`ChangesetKey::record_id`], so ids stay the same
/// across restarts and stores.
const CHANGESET_NAMESPACE: Uuid = Uuid::from_u128(0x5d1e_63c4_7a0b_4f0e_9c55_2b8f_a1d3_e7c2);

impl ChangesetKey {
    /// The record's id: a name-based UUID (version 5) of the key, so the same
    /// changeset always gets the same id without a lookup.
    pub fn record_id(&self) -> Uuid {
        let mut hasher = Sha1::new();
        hasher.update(CHANGESET_NAMESPACE.as_bytes());
        // Newlines cannot occur in URNs, repository names or ids, so the
        // concatenation is unambiguous.
        for part in [&self.urn, &self.repository, &self.external_id] {
            hasher.update(part.as_bytes());
            hasher.update(b"\n");
        }
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Builder::from_sha1_bytes(bytes).into_uuid()
    }
}

/// A value and the host's timestamp for it, which orders observations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed<T> {
    pub value: T,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    pub namespace: String,
    pub name: String,
}

/// The pull request's own fields. `None` means "this event does not say",
/// never "empty": an absent description is `Some("")`, no labels `Some(vec![])`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    pub state: Option<ChangesetState>,
    pub title: Option<String>,
    pub body: Option<String>,
    /// Sorted and deduplicated, so reordering alone is not a change.
    pub labels: Option<Vec<String>>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub external_url: Option<String>,
    /// `Some(None)`: the event says the change is not from a fork.
    pub fork: Option<Option<Fork>>,
    /// The head commit, which check events are matched against.
    pub head_sha: Option<String>,
    pub created_at: Option<Timestamp>,
}

/// An event about one identified pull/merge request. The three groups carry
/// their own timestamps because hosts date them separately (a review's
/// submission time, the request's last update, a check's completion).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestObservation {
    pub key: ChangesetKey,
    pub details: Option<Observed<Details>>,
    pub review: Option<Observed<ReviewState>>,
    pub check: Option<Observed<CheckState>>,
}

/// A check or status of a commit. It names no pull request, or only hints at
/// some (`external_ids`), so the server finds the records to update: those of
/// this repository whose head commit is `sha` (see [`same_commit`]), or whose
/// external id is listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCheck {
    pub urn: String,
    pub repository: String,
    pub sha: String,
    pub check_state: CheckState,
    pub observed_at: Timestamp,
    pub external_ids: Vec<String>,
}

// One value per request, never held in bulk, so the size gap between the
// variants costs nothing worth a `Box` in every match.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangesetObservation {
    PullRequest(PullRequestObservation),
    CommitCheck(CommitCheck),
}

impl ChangesetObservation {
    /// The latest host timestamp in the observation, for logs.
    pub fn observed_at(&self) -> Timestamp {
        match self {
            ChangesetObservation::PullRequest(pr) => pr.latest_at(),
            ChangesetObservation::CommitCheck(check) => check.observed_at,
        }
    }

    pub fn urn(&self) -> &str {
        match self {
            ChangesetObservation::PullRequest(pr) => &pr.key.urn,
            ChangesetObservation::CommitCheck(check) => &check.urn,
        }
    }

    pub fn repository(&self) -> &str {
        match self {
            ChangesetObservation::PullRequest(pr) => &pr.key.repository,
            ChangesetObservation::CommitCheck(check) => &check.repository,
        }
    }
}

impl PullRequestObservation {
    pub(crate) fn latest_at(&self) -> Timestamp {
        [
            self.details.as_ref().map(|d| d.at),
            self.review.as_ref().map(|r| r.at),
            self.check.as_ref().map(|c| c.at),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(Timestamp::from_millis(0))
    }
}

/// Whether two commit ids name the same commit. Hosts abbreviate: Bitbucket
/// Cloud's pull requests carry 12-character hashes, its statuses full ones.
pub fn same_commit(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    short.len() >= 7
        && long
            .to_ascii_lowercase()
            .starts_with(&short.to_ascii_lowercase())
}

/// Sorts and deduplicates labels.
pub(crate) fn label_set(labels: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut labels: Vec<String> = labels.into_iter().collect();
    labels.sort();
    labels.dedup();
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> ChangesetKey {
        ChangesetKey {
            urn: "https://github.com".into(),
            repository: "github.com/o/r".into(),
            external_id: id.into(),
        }
    }

    #[test]
    fn record_ids_are_stable_version_5_and_differ_per_key() {
        let a = key("1").record_id();
        assert_eq!(a, key("1").record_id());
        assert_ne!(a, key("2").record_id());
        assert_eq!(a.get_version_num(), 5);
    }

    #[test]
    fn abbreviated_hashes_match_their_full_form() {
        let full = "507a576e59b3f1e3b2a1c0d9e8f7a6b5c4d3e2f1";
        assert!(same_commit("507a576e59b3", full));
        assert!(same_commit(full, "507A576E59B3"));
        assert!(!same_commit("507a57", full), "too short to trust");
        assert!(!same_commit("407a576e59b3", full));
    }

    #[test]
    fn states_use_the_seed_spelling() {
        assert_eq!(
            serde_json::to_string(&ReviewState::ChangesRequested).unwrap(),
            "\"CHANGES_REQUESTED\""
        );
        assert_eq!(
            serde_json::to_string(&ChangesetState::Merged).unwrap(),
            "\"MERGED\""
        );
    }
}
