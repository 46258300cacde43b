//! The merge rule: how an observation changes a stored changeset record, and
//! whether that is worth publishing. Pure: the server loads the record, calls
//! [`apply`], stores `new_state` and publishes what [`Applied::event_type`] says.

use herald_core::time::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::changeset::{
    ChangesetKey, ChangesetObservation, ChangesetState, CheckState, CommitCheck, Details,
    PullRequestObservation, ReviewState, same_commit,
};

pub const CHANGESET_UPDATE: &str = "changeset:update";
pub const CHANGESET_CLOSE: &str = "changeset:close";

/// One changeset as Herald stores it (as JSON, say). `None` fields are
/// unknown: no event has said yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesetRecordState {
    pub id: Uuid,
    pub key: ChangesetKey,
    pub state: Option<ChangesetState>,
    pub review_state: Option<ReviewState>,
    pub check_state: Option<CheckState>,
    pub title: Option<String>,
    pub body: Option<String>,
    pub labels: Vec<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub external_url: Option<String>,
    pub fork_namespace: Option<String>,
    pub fork_name: Option<String>,
    /// Not published; check events are matched against it.
    pub head_sha: Option<String>,
    /// The host's creation time when an event carried it, else the first
    /// observation's time.
    pub created_at: Timestamp,
    /// The latest host timestamp applied.
    pub updated_at: Timestamp,
    /// Host timestamps of the last applied value of each group; older
    /// observations of a group are ignored.
    pub details_at: Option<Timestamp>,
    pub review_at: Option<Timestamp>,
    pub check_at: Option<Timestamp>,
}

/// The outcome of [`apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The record after the observation. `None` only when a commit check
    /// arrives for a changeset Herald has no record of: a check alone cannot
    /// start one. Store it whenever it differs from the previous record, even
    /// if `changed` is false (timestamps and the head commit move too).
    pub new_state: Option<ChangesetRecordState>,
    /// A published field changed, or the record is new.
    pub changed: bool,
    /// The state became CLOSED or MERGED. Implies `changed`.
    pub closed: bool,
}

impl Applied {
    /// What to publish: `changeset:close` when closed, else `changeset:update`
    /// when changed, else nothing.
    pub fn event_type(&self) -> Option<&'static str> {
        if self.closed {
            Some(CHANGESET_CLOSE)
        } else if self.changed {
            Some(CHANGESET_UPDATE)
        } else {
            None
        }
    }
}

/// Applies an observation to the stored record (`None`: none yet). For a pull
/// request observation, `previous` is the record of its key; for a commit
/// check, each record the server found for it, one call per record.
///
/// Each group (the request's details, its review state, its check state) is
/// taken only if its host timestamp is no older than the one stored for that
/// group, so a late delivery never rolls the record back. A new head commit
/// makes a known check state PENDING again until checks of that commit report.
pub fn apply(previous: Option<&ChangesetRecordState>, obs: &ChangesetObservation) -> Applied {
    let new_state = match obs {
        ChangesetObservation::PullRequest(pr) => {
            let base = previous
                .cloned()
                .unwrap_or_else(|| ChangesetRecordState::new(pr.key.clone(), pr.latest_at()));
            Some(apply_pull_request(base, pr))
        }
        ChangesetObservation::CommitCheck(check) => {
            previous.map(|p| apply_commit_check(p.clone(), check))
        }
    };
    let changed = match (previous, &new_state) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(old), Some(new)) => old.published() != new.published(),
    };
    let closed = changed
        && new_state
            .as_ref()
            .and_then(|n| n.state)
            .is_some_and(|s| s.is_final() && previous.and_then(|p| p.state) != Some(s));
    Applied {
        new_state,
        changed,
        closed,
    }
}

impl ChangesetRecordState {
    fn new(key: ChangesetKey, first_seen: Timestamp) -> Self {
        Self {
            id: key.record_id(),
            key,
            state: None,
            review_state: None,
            check_state: None,
            title: None,
            body: None,
            labels: Vec::new(),
            author_name: None,
            author_email: None,
            external_url: None,
            fork_namespace: None,
            fork_name: None,
            head_sha: None,
            created_at: first_seen,
            updated_at: first_seen,
            details_at: None,
            review_at: None,
            check_at: None,
        }
    }

    fn published(&self) -> Published<'_> {
        Published {
            state: &self.state,
            review_state: &self.review_state,
            check_state: &self.check_state,
            title: &self.title,
            body: &self.body,
            labels: &self.labels,
            author_name: &self.author_name,
            author_email: &self.author_email,
            external_url: &self.external_url,
            fork_namespace: &self.fork_namespace,
            fork_name: &self.fork_name,
        }
    }

    fn saw(&mut self, at: Timestamp) {
        self.updated_at = self.updated_at.max(at);
    }
}

/// The fields whose change publishes `changeset:update`.
#[derive(PartialEq)]
struct Published<'a> {
    state: &'a Option<ChangesetState>,
    review_state: &'a Option<ReviewState>,
    check_state: &'a Option<CheckState>,
    title: &'a Option<String>,
    body: &'a Option<String>,
    labels: &'a [String],
    author_name: &'a Option<String>,
    author_email: &'a Option<String>,
    external_url: &'a Option<String>,
    fork_namespace: &'a Option<String>,
    fork_name: &'a Option<String>,
}

fn apply_pull_request(
    mut record: ChangesetRecordState,
    pr: &PullRequestObservation,
) -> ChangesetRecordState {
    if let Some(details) = &pr.details
        && not_older(record.details_at, details.at)
    {
        apply_details(&mut record, &details.value);
        record.details_at = Some(details.at);
        record.saw(details.at);
    }
    if let Some(review) = &pr.review
        && not_older(record.review_at, review.at)
    {
        record.review_state = Some(review.value);
        record.review_at = Some(review.at);
        record.saw(review.at);
    }
    if let Some(check) = &pr.check
        && not_older(record.check_at, check.at)
    {
        record.check_state = Some(check.value);
        record.check_at = Some(check.at);
        record.saw(check.at);
    }
    record
}

fn apply_details(record: &mut ChangesetRecordState, d: &Details) {
    set_if_some(&mut record.state, d.state);
    set_if_some(&mut record.title, d.title.clone());
    set_if_some(&mut record.body, d.body.clone());
    if let Some(labels) = &d.labels {
        record.labels = labels.clone();
    }
    set_if_some(&mut record.author_name, d.author_name.clone());
    set_if_some(&mut record.author_email, d.author_email.clone());
    set_if_some(&mut record.external_url, d.external_url.clone());
    if let Some(fork) = &d.fork {
        record.fork_namespace = fork.as_ref().map(|f| f.namespace.clone());
        record.fork_name = fork.as_ref().map(|f| f.name.clone());
    }
    if let Some(head) = &d.head_sha {
        let moved = record
            .head_sha
            .as_deref()
            .is_some_and(|old| !same_commit(old, head));
        if moved {
            // Checks of the old head say nothing about the new one.
            record.check_state = record.check_state.map(|_| CheckState::Pending);
            record.check_at = None;
        }
        record.head_sha = Some(head.clone());
    }
    if let Some(created) = d.created_at {
        record.created_at = created;
    }
}

fn apply_commit_check(
    mut record: ChangesetRecordState,
    check: &CommitCheck,
) -> ChangesetRecordState {
    let other_commit = record
        .head_sha
        .as_deref()
        .is_some_and(|head| !same_commit(head, &check.sha));
    if !other_commit && not_older(record.check_at, check.observed_at) {
        record.check_state = Some(check.check_state);
        record.check_at = Some(check.observed_at);
        record.saw(check.observed_at);
    }
    record
}

/// Equal timestamps apply: hosts date to the second, and two events of the
/// same second are more likely in order than not.
fn not_older(stored: Option<Timestamp>, at: Timestamp) -> bool {
    stored.is_none_or(|stored| at >= stored)
}

fn set_if_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}
