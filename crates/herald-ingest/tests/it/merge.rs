//! The merge rule over real payloads: what gets published, in which order of
//! arrival, and the payload it publishes.

use herald_ingest::{
    CHANGESET_CLOSE, CHANGESET_UPDATE, ChangesetObservation, ChangesetRecordState, CheckState,
    CodeHostKind, apply, changeset_payload,
};
use serde_json::Value;

use crate::{ingest_fixture, observation};

/// A changeset record as the server keeps it, and what it published.
#[derive(Default)]
struct Record {
    state: Option<ChangesetRecordState>,
    published: Vec<(&'static str, Value)>,
}

impl Record {
    /// Applies an observation; returns the event type published, if any.
    fn feed(&mut self, obs: &ChangesetObservation) -> Option<&'static str> {
        let applied = apply(self.state.as_ref(), obs);
        if let Some(next) = applied.new_state.clone() {
            self.state = Some(next);
        }
        let event = applied.event_type();
        if let Some(event) = event {
            let record = self
                .state
                .as_ref()
                .expect("a published change has a record");
            self.published.push((event, changeset_payload(record)));
        }
        event
    }

    fn fixture(&mut self, kind: CodeHostKind, event: &str, rel: &str) -> Option<&'static str> {
        self.feed(&observation(ingest_fixture(kind, event, rel)))
    }

    fn last_payload(&self) -> &Value {
        &self.published.last().unwrap().1
    }
}

const GH: CodeHostKind = CodeHostKind::GitHub;

#[test]
fn a_github_pull_request_lifecycle_publishes_only_changes_and_closes_once() {
    let mut r = Record::default();
    // 15:20:33, new record.
    assert_eq!(
        r.fixture(GH, "pull_request", "octokit/pull_request.01.opened.json"),
        Some(CHANGESET_UPDATE)
    );
    assert_eq!(r.last_payload()["state"], "OPEN");
    // 15:20:35, the `bug` label appears.
    assert_eq!(
        r.fixture(GH, "pull_request", "octokit/pull_request.09.labeled.json"),
        Some(CHANGESET_UPDATE)
    );
    assert_eq!(r.last_payload()["labels"], serde_json::json!(["bug"]));
    // The same labeled event redelivered changes nothing.
    assert_eq!(
        r.fixture(GH, "pull_request", "octokit/pull_request.10.labeled.json"),
        None
    );
    // 15:20:33 again, arriving late: not applied.
    assert_eq!(
        r.fixture(GH, "pull_request", "octokit/pull_request.02.assigned.json"),
        None
    );
    // Checks of the head commit ec26c3e…: queued, failed, then the suite passed.
    assert_eq!(
        r.fixture(GH, "check_run", "octokit/check_run.01.created.json"),
        Some(CHANGESET_UPDATE)
    );
    assert_eq!(r.last_payload()["check_state"], "PENDING");
    assert_eq!(
        r.fixture(GH, "check_run", "octokit/check_run.02.completed.json"),
        Some(CHANGESET_UPDATE)
    );
    assert_eq!(r.last_payload()["check_state"], "FAILED");
    assert_eq!(
        r.fixture(GH, "check_suite", "octokit/check_suite.01.completed.json"),
        Some(CHANGESET_UPDATE)
    );
    assert_eq!(r.last_payload()["check_state"], "PASSED");
    // 15:21:18, merged.
    assert_eq!(
        r.fixture(
            GH,
            "pull_request",
            "derived/github/pull_request.closed_merged.json"
        ),
        Some(CHANGESET_CLOSE)
    );
    assert_eq!(r.last_payload()["state"], "MERGED");
    // A reopen dated 15:20:33 arriving now does not roll the merge back.
    assert_eq!(
        r.fixture(GH, "pull_request", "octokit/pull_request.19.reopened.json"),
        None
    );
    assert_eq!(
        r.state.as_ref().unwrap().state,
        Some(herald_ingest::ChangesetState::Merged)
    );
    let types: Vec<&str> = r.published.iter().map(|(t, _)| *t).collect();
    assert_eq!(types.iter().filter(|t| **t == CHANGESET_CLOSE).count(), 1);
    assert_eq!(types.len(), 6);
}

#[test]
fn a_closed_pull_request_closes_and_a_merge_arriving_before_older_events_holds() {
    let mut r = Record::default();
    assert_eq!(
        r.fixture(GH, "pull_request", "octokit/pull_request.04.closed.json"),
        Some(CHANGESET_CLOSE)
    );
    assert_eq!(r.last_payload()["state"], "CLOSED");
    assert_eq!(
        r.fixture(GH, "pull_request", "octokit/pull_request.05.closed.json"),
        None,
        "already closed"
    );

    let mut late = Record::default();
    assert_eq!(
        late.fixture(
            GH,
            "pull_request",
            "derived/github/pull_request.closed_merged.json"
        ),
        Some(CHANGESET_CLOSE)
    );
    for older in [
        "octokit/pull_request.01.opened.json",
        "octokit/pull_request.26.unlabeled.json",
    ] {
        assert_eq!(late.fixture(GH, "pull_request", older), None, "{older}");
    }
    assert_eq!(late.last_payload()["state"], "MERGED");
}

#[test]
fn a_check_needs_a_record_and_must_be_of_its_head_commit() {
    let check = observation(ingest_fixture(
        GH,
        "check_run",
        "octokit/check_run.02.completed.json",
    ));
    let applied = apply(None, &check);
    assert_eq!(
        (applied.new_state, applied.changed, applied.closed),
        (None, false, false)
    );

    // The status example is of commit 6113728…, not the request's head ec26c3e….
    let mut r = Record::default();
    r.fixture(GH, "pull_request", "octokit/pull_request.01.opened.json");
    let before = r.state.clone();
    assert_eq!(r.fixture(GH, "status", "octokit/status.01.json"), None);
    assert_eq!(r.state, before);
}

#[test]
fn a_new_head_commit_makes_the_check_state_pending_again() {
    let mut r = Record::default();
    r.fixture(GH, "pull_request", "octokit/pull_request.01.opened.json");
    r.fixture(GH, "check_run", "octokit/check_run.02.completed.json");
    assert_eq!(
        r.state.as_ref().unwrap().check_state,
        Some(CheckState::Failed)
    );
    let mut pushed = observation(ingest_fixture(
        GH,
        "pull_request",
        "octokit/pull_request.23.synchronize.json",
    ));
    if let ChangesetObservation::PullRequest(pr) = &mut pushed {
        let details = pr.details.as_mut().unwrap();
        details.value.head_sha = Some("1111111111111111111111111111111111111111".into());
        details.at = herald_core::time::Timestamp::parse_rfc3339("2019-05-15T15:30:00Z").unwrap();
    }
    assert_eq!(r.feed(&pushed), Some(CHANGESET_UPDATE));
    assert_eq!(r.last_payload()["check_state"], "PENDING");
}

type Step = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

/// Feeds one pull request's events in order; each step names the event type
/// it must publish and a payload field that must then hold a value.
fn lifecycle(kind: CodeHostKind, steps: &[Step]) {
    let mut r = Record::default();
    for (event, rel, publishes, field, value) in steps {
        let obs = observation(ingest_fixture(kind, event, rel));
        if let (Some(record), ChangesetObservation::PullRequest(pr)) = (&r.state, &obs) {
            assert_eq!(
                record.key, pr.key,
                "{kind} {rel}: the steps must be about one pull request"
            );
        }
        assert_eq!(r.feed(&obs), Some(*publishes), "{kind} {rel}");
        assert_eq!(
            r.last_payload()[*field],
            *value,
            "{kind} {rel}: {}",
            r.last_payload()
        );
    }
}

const U: &str = CHANGESET_UPDATE;
const C: &str = CHANGESET_CLOSE;

#[test]
fn gitlab_merge_requests_open_approve_merge_and_close() {
    // The GitLab fixtures are four different merge requests, one step each.
    let gl = CodeHostKind::GitLab;
    lifecycle(
        gl,
        &[(
            "Merge Request Hook",
            "code-hosts/gitlab/merge_request.open.json",
            U,
            "state",
            "OPEN",
        )],
    );
    lifecycle(
        gl,
        &[(
            "Merge Request Hook",
            "code-hosts/gitlab/merge_request.approved.json",
            U,
            "review_state",
            "APPROVED",
        )],
    );
    lifecycle(
        gl,
        &[(
            "Merge Request Hook",
            "code-hosts/gitlab/merge_request.merge.json",
            C,
            "state",
            "MERGED",
        )],
    );
    lifecycle(
        gl,
        &[(
            "Merge Request Hook",
            "code-hosts/gitlab/merge_request.close.json",
            C,
            "state",
            "CLOSED",
        )],
    );
}

#[test]
fn bitbucket_server_pull_requests_are_approved_fail_checks_merge_and_decline() {
    let bbs = CodeHostKind::BitbucketServer;
    lifecycle(
        bbs,
        &[
            (
                "pr:opened",
                "code-hosts/bitbucket-server/pr.opened.json",
                U,
                "state",
                "OPEN",
            ),
            (
                "pr:reviewer:approved",
                "code-hosts/bitbucket-server/pr.reviewer.approved.json",
                U,
                "review_state",
                "APPROVED",
            ),
            (
                "repo:build_status",
                "derived/bitbucket-server/repo.build_status.failed.json",
                U,
                "check_state",
                "FAILED",
            ),
            (
                "pr:merged",
                "code-hosts/bitbucket-server/pr.merged.json",
                C,
                "state",
                "MERGED",
            ),
        ],
    );
    lifecycle(
        bbs,
        &[
            (
                "pr:comment:added",
                "code-hosts/bitbucket-server/pr.comment.added.json",
                U,
                "state",
                "OPEN",
            ),
            (
                "pr:declined",
                "code-hosts/bitbucket-server/pr.declined.json",
                C,
                "state",
                "CLOSED",
            ),
        ],
    );
}

#[test]
fn bitbucket_cloud_pull_requests_merge_and_decline() {
    let bbc = CodeHostKind::BitbucketCloud;
    lifecycle(
        bbc,
        &[
            (
                "pullrequest:created",
                "code-hosts/bitbucket-cloud/pullrequest.created.json",
                U,
                "state",
                "OPEN",
            ),
            (
                "pullrequest:fulfilled",
                "code-hosts/bitbucket-cloud/pullrequest.fulfilled.json",
                C,
                "state",
                "MERGED",
            ),
        ],
    );
    lifecycle(
        bbc,
        &[(
            "pullrequest:rejected",
            "code-hosts/bitbucket-cloud/pullrequest.rejected.json",
            C,
            "state",
            "CLOSED",
        )],
    );
}

#[test]
fn azure_devops_pull_requests_are_approved_merge_and_abandon() {
    let az = CodeHostKind::AzureDevOps;
    lifecycle(
        az,
        &[
            (
                "",
                "code-hosts/azure-devops/git.pullrequest.created.json",
                U,
                "state",
                "OPEN",
            ),
            (
                "",
                "derived/azure-devops/git.pullrequest.updated.approved.json",
                U,
                "review_state",
                "APPROVED",
            ),
            (
                "",
                "code-hosts/azure-devops/git.pullrequest.merged.json",
                C,
                "state",
                "MERGED",
            ),
        ],
    );
    lifecycle(
        az,
        &[(
            "",
            "derived/azure-devops/git.pullrequest.updated.abandoned.json",
            C,
            "state",
            "CLOSED",
        )],
    );
}

#[test]
fn bitbucket_cloud_statuses_match_abbreviated_head_hashes() {
    let bbc = CodeHostKind::BitbucketCloud;
    let mut r = Record::default();
    r.fixture(
        bbc,
        "pullrequest:approved",
        "code-hosts/bitbucket-cloud/pullrequest.approved.json",
    );
    // The sample's head is `d3022fc0ca3d`; the status sample is of 9fec847…, so
    // re-point the record's head at it, as a real pair of events would be.
    r.state.as_mut().unwrap().head_sha = Some("9fec847784ab".into());
    let published = r.fixture(
        bbc,
        "repo:commit_status_updated",
        "derived/bitbucket-cloud/repo.commit_status_updated.failed.json",
    );
    assert_eq!(published, Some(CHANGESET_UPDATE));
    assert_eq!(r.last_payload()["check_state"], "FAILED");
}

#[test]
fn the_payload_follows_the_seed_schema_field_order() {
    let mut r = Record::default();
    r.fixture(GH, "pull_request", "octokit/pull_request.09.labeled.json");
    let payload = r.last_payload();
    let keys: Vec<&str> = payload
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "external_id",
            "batch_change_ids",
            "repository_id",
            "created_at",
            "updated_at",
            "title",
            "body",
            "author_name",
            "author_email",
            "state",
            "labels",
            "external_url",
            "fork_namespace",
            "fork_name",
            "review_state",
            "check_state",
            "error",
            "syncer_error",
            "owning_batch_change_id",
        ]
    );
    assert_eq!(payload["external_id"], "2");
    assert_eq!(
        payload["repository_id"],
        "github.com/Codertocat/Hello-World"
    );
    assert_eq!(payload["author_name"], "Codertocat");
    assert_eq!(
        payload["external_url"],
        "https://github.com/Codertocat/Hello-World/pull/2"
    );
    assert_eq!(payload["created_at"], "2019-05-15T15:20:33Z");
    assert_eq!(payload["batch_change_ids"], serde_json::json!([]));
    assert!(payload["review_state"].is_null(), "no review seen yet");
    assert_eq!(
        payload["id"],
        r.state.as_ref().unwrap().key.record_id().to_string()
    );
}
