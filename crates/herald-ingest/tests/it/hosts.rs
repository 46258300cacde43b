//! The shared code-host fixtures (`tests/fixtures/code-hosts`) and the derived
//! variants, host by host: push, request opened, approved, checks failed,
//! merged, declined, and pings.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_core::secret::Secret;
use herald_core::time::Timestamp;
use herald_ingest::{
    ChangesetState, CheckState, CodeHostKind, Credential, Fork, KeyUsed, Normalized, REDACTED,
    ReceiverCredentials, ReviewState, STANDARD_WEBHOOKS_TOLERANCE_SECS, VerifyError, VerifyMethod,
    identify, ignored_status, normalize, redact_headers, verify, verify_at,
};
use http::HeaderMap;

use crate::{
    SECRET, commit_check, creds, fixture, header_map, ingest, ingest_fixture, pull_request, pushes,
    signed_headers, urn,
};

fn state_of(n: Normalized) -> Option<ChangesetState> {
    pull_request(n).details.unwrap().value.state
}

fn review_of(n: Normalized) -> Option<ReviewState> {
    pull_request(n).review.map(|r| r.value)
}

mod github {
    use super::*;
    const K: CodeHostKind = CodeHostKind::GitHub;

    #[test]
    fn push_opened_approved_changes_requested_checks_merged_and_ping() {
        let push = pushes(ingest_fixture(K, "push", "code-hosts/github/push.json")).remove(0);
        let v = crate::json(&fixture("code-hosts/github/push.json"));
        assert_eq!(
            push.repository,
            format!(
                "github.com/{}",
                v["repository"]["full_name"].as_str().unwrap()
            )
        );
        assert_eq!(push.commits.len(), v["commits"].as_array().unwrap().len());

        let opened = pull_request(ingest_fixture(
            K,
            "pull_request",
            "code-hosts/github/pull_request.json",
        ));
        assert_eq!(
            opened.key.repository,
            "github.com/baxterthehacker/public-repo"
        );
        assert_eq!(opened.key.external_id, "1");
        let details = opened.details.unwrap().value;
        assert_eq!(details.state, Some(ChangesetState::Open));
        assert_eq!(details.author_name.as_deref(), Some("baxterthehacker"));
        assert_eq!(
            details.external_url.as_deref(),
            Some("https://github.com/baxterthehacker/public-repo/pull/1")
        );
        assert_eq!(details.fork, Some(None));

        let approved = ingest_fixture(
            K,
            "pull_request_review",
            "code-hosts/github/pull_request_review.json",
        );
        assert_eq!(review_of(approved), Some(ReviewState::Approved));
        let changes = ingest_fixture(
            K,
            "pull_request_review",
            "derived/github/pull_request_review.changes_requested.json",
        );
        assert_eq!(review_of(changes), Some(ReviewState::ChangesRequested));

        let failed = commit_check(ingest_fixture(
            K,
            "check_run",
            "octokit/check_run.02.completed.json",
        ));
        assert_eq!(failed.check_state, CheckState::Failed);
        assert_eq!(failed.external_ids, vec!["2"]);
        let suite = commit_check(ingest_fixture(
            K,
            "check_suite",
            "code-hosts/github/check_suite.json",
        ));
        assert_eq!(suite.check_state, CheckState::Passed);
        let status = commit_check(ingest_fixture(K, "status", "code-hosts/github/status.json"));
        assert_eq!(
            (status.check_state, status.sha.as_str()),
            (
                CheckState::Passed,
                "9049f1265b7d61be4a8904a9a27120d2064dab3b"
            )
        );

        let merged = ingest_fixture(
            K,
            "pull_request",
            "derived/github/pull_request.closed_merged.json",
        );
        assert_eq!(state_of(merged), Some(ChangesetState::Merged));
        let declined = ingest_fixture(K, "pull_request", "octokit/pull_request.04.closed.json");
        assert_eq!(state_of(declined), Some(ChangesetState::Closed));

        assert_eq!(
            ingest_fixture(K, "ping", "code-hosts/github/ping.json"),
            Normalized::Ping
        );
    }

    #[test]
    fn a_comment_on_a_pull_request_updates_its_details() {
        let pr = pull_request(ingest_fixture(
            K,
            "issue_comment",
            "derived/github/issue_comment.on_pull_request.json",
        ));
        assert_eq!(pr.key.external_id, "1");
        let details = pr.details.unwrap().value;
        assert_eq!(
            details.external_url.as_deref(),
            Some("https://github.com/Codertocat/Hello-World/pull/1")
        );
        assert_eq!(
            details.fork, None,
            "an issue comment says nothing about forks"
        );
    }

    #[test]
    fn unknown_events_are_ignored_with_200() {
        let body = br#"{"action":"created"}"#;
        let (_, n) = ingest(K, &signed_headers(K, "star", body, SECRET), body);
        assert!(matches!(n, Normalized::Ignored { .. }));
        assert_eq!(ignored_status(K), 200);
    }
}

mod gitlab {
    use super::*;
    const K: CodeHostKind = CodeHostKind::GitLab;

    #[test]
    fn push_and_tag_push() {
        let push = pushes(ingest_fixture(
            K,
            "Push Hook",
            "code-hosts/gitlab/push.json",
        ))
        .remove(0);
        let v = crate::json(&fixture("code-hosts/gitlab/push.json"));
        assert_eq!(
            push.repository,
            format!(
                "gitlab.example.com/{}",
                v["project"]["path_with_namespace"].as_str().unwrap()
            )
        );
        assert_eq!(push.ref_name, v["ref"]);
        assert_eq!(push.after, v["after"]);
        assert_eq!(push.commits.len(), v["commits"].as_array().unwrap().len());
        assert_eq!(push.code_host.urn, urn(K));

        let tag = pushes(ingest_fixture(
            K,
            "Tag Push Hook",
            "code-hosts/gitlab/tag_push.json",
        ))
        .remove(0);
        assert!(tag.ref_name.starts_with("refs/tags/"), "{}", tag.ref_name);
    }

    #[test]
    fn merge_requests_opened_approved_merged_closed_and_commented() {
        let opened = pull_request(ingest_fixture(
            K,
            "Merge Request Hook",
            "code-hosts/gitlab/merge_request.open.json",
        ));
        assert_eq!(opened.key.external_id, "1");
        let details = opened.details.unwrap().value;
        assert_eq!(details.state, Some(ChangesetState::Open));
        assert_eq!(details.labels, Some(vec!["API".to_owned()]));
        assert_eq!(details.author_name.as_deref(), Some("root"));
        assert_eq!(
            details.head_sha.as_deref(),
            Some("da1560886d4f094c3e6c9ef40349f7d38b5d27d7")
        );

        let approved = ingest_fixture(
            K,
            "Merge Request Hook",
            "code-hosts/gitlab/merge_request.approved.json",
        );
        assert_eq!(review_of(approved), Some(ReviewState::Approved));
        let merged = ingest_fixture(
            K,
            "Merge Request Hook",
            "code-hosts/gitlab/merge_request.merge.json",
        );
        assert_eq!(state_of(merged), Some(ChangesetState::Merged));
        let closed = ingest_fixture(
            K,
            "Merge Request Hook",
            "code-hosts/gitlab/merge_request.close.json",
        );
        assert_eq!(state_of(closed), Some(ChangesetState::Closed));

        let note = pull_request(ingest_fixture(
            K,
            "Note Hook",
            "code-hosts/gitlab/note.merge_request.json",
        ));
        assert!(note.details.is_some() && note.review.is_none());
    }

    #[test]
    fn pipelines_pass_and_fail() {
        let passed = commit_check(ingest_fixture(
            K,
            "Pipeline Hook",
            "code-hosts/gitlab/pipeline.json",
        ));
        assert_eq!(passed.check_state, CheckState::Passed);
        assert_eq!(passed.sha, "bcbb5ec396a2c0f828686f14fac9b80b780504f2");
        assert_eq!(passed.external_ids, vec!["1"]);
        let failed = commit_check(ingest_fixture(
            K,
            "Pipeline Hook",
            "derived/gitlab/pipeline.failed.json",
        ));
        assert_eq!(failed.check_state, CheckState::Failed);
    }

    #[test]
    fn the_event_falls_back_to_object_kind_and_the_delivery_id_prefers_idempotency_key() {
        let body = fixture("code-hosts/gitlab/merge_request.open.json");
        let headers = header_map(&[
            ("X-Gitlab-Token", SECRET.to_owned()),
            ("X-Gitlab-Event-UUID", "uuid-1".to_owned()),
            ("Idempotency-Key", "idem-1".to_owned()),
        ]);
        let (incoming, n) = ingest(K, &headers, &body);
        assert_eq!(incoming.event_name, "Merge Request Hook");
        assert_eq!(incoming.delivery_id.as_deref(), Some("idem-1"));
        assert!(matches!(n, Normalized::Changeset(_)));
    }

    #[test]
    fn a_wrong_token_is_refused_and_unknown_events_get_204() {
        let body = fixture("code-hosts/gitlab/push.json");
        let headers = signed_headers(K, "Push Hook", &body, "wrong");
        assert_eq!(
            verify(K, &creds(K), &headers, &body),
            Err(VerifyError::BadSignature("X-Gitlab-Token"))
        );
        let n = normalize(K, urn(K), "Issue Hook", br#"{"object_kind":"issue"}"#).unwrap();
        assert!(matches!(n, Normalized::Ignored { .. }));
        assert_eq!(ignored_status(K), 204);
    }

    const STANDARD_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn standard_secret() -> Secret {
        Secret::parse(&format!("whsec_{}", STANDARD.encode(STANDARD_KEY))).unwrap()
    }

    /// The headers GitLab sends in Standard Webhooks mode, signed here from the
    /// specification's definition (not with herald-core).
    fn standard_headers(
        id: &str,
        timestamp: i64,
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> HeaderMap {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(STANDARD_KEY).unwrap();
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        let mut pairs = vec![
            ("X-Gitlab-Event", "Push Hook".to_owned()),
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        pairs.extend(extra.iter().map(|(n, v)| (*n, (*v).to_owned())));
        header_map(&pairs)
    }

    fn now_secs() -> i64 {
        Timestamp::now().seconds()
    }

    #[test]
    fn standard_webhooks_signing_verifies_when_configured() {
        let body = fixture("code-hosts/gitlab/push.json");
        let signed_at = now_secs();
        let headers = standard_headers("msg_1", signed_at, &body, &[]);
        let off = ReceiverCredentials::secret(standard_secret());
        assert_eq!(
            verify(K, &off, &headers, &body),
            Err(VerifyError::MissingHeader("X-Gitlab-Token"))
        );
        let on = off.with_gitlab_standard_webhooks();
        let verified = verify(K, &on, &headers, &body).unwrap();
        assert_eq!(verified.method, VerifyMethod::StandardWebhooks);
        assert_eq!(verified.signed_at.unwrap().seconds(), signed_at);
        let mut tampered = body.clone();
        tampered.push(b' ');
        assert_eq!(
            verify(K, &on, &headers, &tampered),
            Err(VerifyError::BadSignature("webhook-signature"))
        );
        assert!(
            redact_headers(K, &headers)
                .iter()
                .any(|(n, v)| n == "webhook-signature" && v == REDACTED)
        );
    }

    #[test]
    fn a_standard_webhooks_timestamp_from_2001_is_refused_as_a_replay() {
        let body = fixture("code-hosts/gitlab/push.json");
        let creds = ReceiverCredentials::secret(standard_secret()).with_gitlab_standard_webhooks();
        // 2001-09-09T01:46:40Z, correctly signed.
        let old = standard_headers("msg_2001", 1_000_000_000, &body, &[]);
        let refused = verify(K, &creds, &old, &body).unwrap_err();
        assert_eq!(refused, VerifyError::OutsideTolerance("webhook-timestamp"));
        let reason = refused.to_string();
        assert!(
            reason.contains("webhook-timestamp") && reason.contains("5 minutes"),
            "{reason}"
        );
        let future = standard_headers("msg_future", now_secs() + 3600, &body, &[]);
        assert_eq!(
            verify(K, &creds, &future, &body),
            Err(VerifyError::OutsideTolerance("webhook-timestamp"))
        );
        // A forged request is told it is forged, not that it is late.
        let mut forged = old.clone();
        forged.insert("webhook-signature", "v1,Zm9yZ2Vk".parse().unwrap());
        assert_eq!(
            verify(K, &creds, &forged, &body),
            Err(VerifyError::BadSignature("webhook-signature"))
        );
    }

    #[test]
    fn the_tolerance_is_five_minutes_either_way() {
        let body = fixture("code-hosts/gitlab/push.json");
        let creds = ReceiverCredentials::secret(standard_secret()).with_gitlab_standard_webhooks();
        let signed_at = 1_800_000_000;
        let headers = standard_headers("msg_edge", signed_at, &body, &[]);
        let at = |secs: i64| {
            verify_at(
                K,
                &creds,
                &headers,
                &body,
                Timestamp::from_millis(secs * 1000),
            )
        };
        assert!(at(signed_at + STANDARD_WEBHOOKS_TOLERANCE_SECS).is_ok());
        assert!(at(signed_at - STANDARD_WEBHOOKS_TOLERANCE_SECS).is_ok());
        assert_eq!(
            at(signed_at + STANDARD_WEBHOOKS_TOLERANCE_SECS + 1),
            Err(VerifyError::OutsideTolerance("webhook-timestamp"))
        );
        assert_eq!(
            at(signed_at - STANDARD_WEBHOOKS_TOLERANCE_SECS - 1),
            Err(VerifyError::OutsideTolerance("webhook-timestamp"))
        );
        let extreme = standard_headers("msg_min", i64::MIN, &body, &[]);
        assert!(verify(K, &creds, &extreme, &body).is_err());
    }

    #[test]
    fn a_standard_webhooks_request_dedupes_on_its_signed_id() {
        let body = fixture("code-hosts/gitlab/push.json");
        let creds = ReceiverCredentials::secret(standard_secret()).with_gitlab_standard_webhooks();
        let signed_at = now_secs();
        let first = standard_headers(
            "msg_signed",
            signed_at,
            &body,
            &[
                ("Idempotency-Key", "key-1"),
                ("X-Gitlab-Event-UUID", "uuid-1"),
            ],
        );
        // The same signed request replayed with fresh unsigned ids.
        let replay = standard_headers(
            "msg_signed",
            signed_at,
            &body,
            &[
                ("Idempotency-Key", "key-2"),
                ("X-Gitlab-Event-UUID", "uuid-2"),
            ],
        );
        for headers in [&first, &replay] {
            verify(K, &creds, headers, &body).unwrap();
            let incoming = identify(K, headers, &body).unwrap();
            assert_eq!(incoming.delivery_id.as_deref(), Some("msg_signed"));
        }
        // Token mode has no webhook-id: GitLab's own ids still dedupe.
        let token = signed_headers(K, "Push Hook", &body, SECRET);
        assert!(identify(K, &token, &body).unwrap().delivery_id.is_some());
    }
}

mod bitbucket_server {
    use super::*;
    const K: CodeHostKind = CodeHostKind::BitbucketServer;

    #[test]
    fn refs_changed_is_one_push_per_change() {
        let pushes = pushes(ingest_fixture(
            K,
            "repo:refs_changed",
            "code-hosts/bitbucket-server/repo.refs_changed.json",
        ));
        assert_eq!(pushes.len(), 1);
        let push = &pushes[0];
        assert_eq!(
            push.repository,
            "bitbucket.example.com/~gopher/webhook-test"
        );
        assert_eq!(push.ref_name, "refs/heads/feature/wip");
        assert_eq!(push.after, "0000000000000000000000000000000000000000");
        assert_eq!(push.pusher.as_ref().unwrap().name, "gopher");
    }

    #[test]
    fn pull_requests_opened_approved_merged_declined_and_commented() {
        let opened = pull_request(ingest_fixture(
            K,
            "pr:opened",
            "code-hosts/bitbucket-server/pr.opened.json",
        ));
        assert_eq!(
            opened.key.repository,
            "bitbucket.example.com/~gopher/webhook-test"
        );
        assert_eq!(opened.key.external_id, "5");
        assert_eq!(opened.review.as_ref().unwrap().value, ReviewState::Pending);
        let details = opened.details.unwrap().value;
        assert_eq!(details.state, Some(ChangesetState::Open));
        assert_eq!(details.author_email.as_deref(), Some("gopher@foo.bar"));
        assert_eq!(
            details.external_url.as_deref(),
            Some("https://server.bitbucket.local/users/gopher/repos/webhook-test/pull-requests/5")
        );

        let approved = ingest_fixture(
            K,
            "pr:reviewer:approved",
            "code-hosts/bitbucket-server/pr.reviewer.approved.json",
        );
        assert_eq!(review_of(approved), Some(ReviewState::Approved));
        let merged = ingest_fixture(K, "pr:merged", "code-hosts/bitbucket-server/pr.merged.json");
        assert_eq!(state_of(merged), Some(ChangesetState::Merged));
        let declined = ingest_fixture(
            K,
            "pr:declined",
            "code-hosts/bitbucket-server/pr.declined.json",
        );
        assert_eq!(state_of(declined), Some(ChangesetState::Closed));
        let comment = ingest_fixture(
            K,
            "pr:comment:added",
            "code-hosts/bitbucket-server/pr.comment.added.json",
        );
        assert_eq!(state_of(comment), Some(ChangesetState::Open));
    }

    #[test]
    fn a_failed_build_status_names_the_commit_and_its_pull_requests() {
        let check = commit_check(ingest_fixture(
            K,
            "repo:build_status",
            "derived/bitbucket-server/repo.build_status.failed.json",
        ));
        assert_eq!(check.check_state, CheckState::Failed);
        assert_eq!(check.sha, "32a0b8a740c2963c6f56bd8baf3dc05683d299e0");
        assert_eq!(check.external_ids, vec!["5"]);
        assert_eq!(
            check.repository,
            "bitbucket.example.com/~gopher/webhook-test"
        );
    }

    #[test]
    fn an_unsigned_ping_is_accepted_but_nothing_else_unsigned() {
        let body = fixture("derived/bitbucket-server/diagnostics.ping.json");
        let ping = header_map(&[
            ("X-Event-Key", "diagnostics:ping".to_owned()),
            ("X-Request-Id", "r1".to_owned()),
        ]);
        let verified = verify(K, &creds(K), &ping, &body).unwrap();
        assert_eq!(
            (verified.method, verified.key),
            (VerifyMethod::UnsignedPing, None)
        );
        let (_, n) = ingest(K, &ping, &body);
        assert_eq!(n, Normalized::Ping);

        let push = fixture("code-hosts/bitbucket-server/repo.refs_changed.json");
        let unsigned = header_map(&[("X-Event-Key", "repo:refs_changed".to_owned())]);
        assert_eq!(
            verify(K, &creds(K), &unsigned, &push),
            Err(VerifyError::MissingHeader("X-Hub-Signature"))
        );
        let wrong = signed_headers(K, "repo:refs_changed", &push, "wrong");
        assert_eq!(
            verify(K, &creds(K), &wrong, &push),
            Err(VerifyError::BadSignature("X-Hub-Signature"))
        );
    }
}

mod bitbucket_cloud {
    use super::*;
    const K: CodeHostKind = CodeHostKind::BitbucketCloud;

    #[test]
    fn push_lists_its_commits() {
        let pushes = pushes(ingest_fixture(
            K,
            "repo:push",
            "code-hosts/bitbucket-cloud/repo.push.json",
        ));
        let v = crate::json(&fixture("code-hosts/bitbucket-cloud/repo.push.json"));
        let changes = v["push"]["changes"].as_array().unwrap();
        assert_eq!(pushes.len(), changes.len());
        let push = &pushes[0];
        assert_eq!(push.repository, "bitbucket.org/brydzewski/foo");
        assert_eq!(
            push.ref_name,
            format!("refs/heads/{}", changes[0]["new"]["name"].as_str().unwrap())
        );
        assert_eq!(push.after, changes[0]["new"]["target"]["hash"]);
        assert_eq!(
            push.commits.len(),
            changes[0]["commits"].as_array().unwrap().len()
        );
        assert_eq!(
            push.commits[0].author_email.as_deref(),
            Some("brad.rydzewski@gmail.com")
        );
    }

    #[test]
    fn pull_requests_created_approved_fulfilled_and_rejected() {
        let created = pull_request(ingest_fixture(
            K,
            "pullrequest:created",
            "code-hosts/bitbucket-cloud/pullrequest.created.json",
        ));
        assert_eq!(created.key.repository, "bitbucket.org/brydzewski/foo");
        let details = created.details.unwrap().value;
        assert_eq!(details.state, Some(ChangesetState::Open));
        assert_eq!(
            details.external_url.as_deref(),
            Some("https://bitbucket.org/brydzewski/foo/pull-requests/1")
        );
        assert_eq!(details.head_sha.as_deref(), Some("507a576e59b3"));

        let approved = pull_request(ingest_fixture(
            K,
            "pullrequest:approved",
            "code-hosts/bitbucket-cloud/pullrequest.approved.json",
        ));
        assert_eq!(approved.review.unwrap().value, ReviewState::Approved);
        // Atlassian's sample has the placeholder state "OPEN|MERGED|DECLINED".
        assert_eq!(approved.details.unwrap().value.state, None);

        let updated = ingest_fixture(
            K,
            "pullrequest:updated",
            "code-hosts/bitbucket-cloud/pullrequest.updated.json",
        );
        assert_eq!(state_of(updated), Some(ChangesetState::Open));
        let fulfilled = ingest_fixture(
            K,
            "pullrequest:fulfilled",
            "code-hosts/bitbucket-cloud/pullrequest.fulfilled.json",
        );
        assert_eq!(state_of(fulfilled), Some(ChangesetState::Merged));
        let rejected = ingest_fixture(
            K,
            "pullrequest:rejected",
            "code-hosts/bitbucket-cloud/pullrequest.rejected.json",
        );
        assert_eq!(state_of(rejected), Some(ChangesetState::Closed));
    }

    #[test]
    fn commit_statuses_are_pending_passed_or_failed() {
        for (event, rel, expected) in [
            (
                "repo:commit_status_created",
                "code-hosts/bitbucket-cloud/repo.commit_status_created.json",
                CheckState::Pending,
            ),
            (
                "repo:commit_status_updated",
                "code-hosts/bitbucket-cloud/repo.commit_status_updated.json",
                CheckState::Passed,
            ),
            (
                "repo:commit_status_updated",
                "derived/bitbucket-cloud/repo.commit_status_updated.failed.json",
                CheckState::Failed,
            ),
        ] {
            let check = commit_check(ingest_fixture(K, event, rel));
            assert_eq!(check.check_state, expected, "{rel}");
            assert_eq!(
                check.sha, "9fec847784abb10b2fa567ee63b85bd238955d0e",
                "{rel}"
            );
            assert_eq!(
                check.repository, "bitbucket.org/team_name/repo_name",
                "{rel}"
            );
        }
    }

    #[test]
    fn an_unsigned_request_is_refused_even_a_ping() {
        let headers = header_map(&[("X-Event-Key", "diagnostics:ping".to_owned())]);
        assert_eq!(
            verify(K, &creds(K), &headers, b"{}"),
            Err(VerifyError::MissingHeader("X-Hub-Signature"))
        );
    }
}

mod azure_devops {
    use super::*;
    const K: CodeHostKind = CodeHostKind::AzureDevOps;

    #[test]
    fn push_and_identification_from_the_body() {
        let body = fixture("code-hosts/azure-devops/git.push.json");
        let (incoming, n) = ingest(K, &signed_headers(K, "", &body, SECRET), &body);
        let v = crate::json(&body);
        assert_eq!(incoming.event_name, "git.push");
        assert_eq!(incoming.delivery_id.as_deref(), v["id"].as_str());
        let push = pushes(n).remove(0);
        assert_eq!(
            push.repository,
            "dev.azure.com/fabrikam/Fabrikam-Fiber-Git/Fabrikam-Fiber-Git"
        );
        assert_eq!(push.ref_name, "refs/heads/main");
        assert_eq!(push.after, "33b55f7cb7e7e245323987634f960cf4a6e6bc74");
        assert_eq!(push.commits.len(), 1);
        assert_eq!(
            push.commits[0].message.as_deref(),
            Some("Fixed bug in web.config file")
        );
    }

    #[test]
    fn pull_requests_created_approved_merged_and_abandoned() {
        let created = pull_request(ingest_fixture(
            K,
            "",
            "code-hosts/azure-devops/git.pullrequest.created.json",
        ));
        assert_eq!(
            created.key.repository,
            "dev.azure.com/fabrikam/Fabrikam/Fabrikam"
        );
        assert_eq!(created.key.external_id, "1");
        let details = created.details.unwrap().value;
        assert_eq!(details.state, Some(ChangesetState::Open));
        assert_eq!(
            details.external_url.as_deref(),
            Some("https://dev.azure.com/fabrikam/DefaultCollection/_git/Fabrikam/pullrequest/1")
        );
        assert_eq!(details.fork, Some(None::<Fork>));

        let approved = pull_request(ingest_fixture(
            K,
            "",
            "derived/azure-devops/git.pullrequest.updated.approved.json",
        ));
        assert_eq!(approved.review.unwrap().value, ReviewState::Approved);
        assert_eq!(
            approved.details.unwrap().value.state,
            Some(ChangesetState::Open)
        );
        for rel in [
            "code-hosts/azure-devops/git.pullrequest.merged.json",
            "code-hosts/azure-devops/git.pullrequest.updated.json",
        ] {
            assert_eq!(
                state_of(ingest_fixture(K, "", rel)),
                Some(ChangesetState::Merged),
                "{rel}"
            );
        }
        let abandoned = ingest_fixture(
            K,
            "",
            "derived/azure-devops/git.pullrequest.updated.abandoned.json",
        );
        assert_eq!(state_of(abandoned), Some(ChangesetState::Closed));
    }

    #[test]
    fn basic_auth_is_checked_and_rotation_accepts_the_previous_password() {
        let body = fixture("code-hosts/azure-devops/git.push.json");
        let old = signed_headers(K, "", &body, "old-password");
        assert_eq!(
            verify(K, &creds(K), &old, &body),
            Err(VerifyError::BadCredentials)
        );
        let rotating = creds(K).with_previous(Credential::Basic {
            username: crate::AZURE_USER.to_owned(),
            password: Secret::parse("old-password").unwrap(),
        });
        assert_eq!(
            verify(K, &rotating, &old, &body).unwrap().key,
            Some(KeyUsed::Previous)
        );
        assert_eq!(
            verify(K, &creds(K), &header_map(&[]), &body),
            Err(VerifyError::MissingHeader("Authorization"))
        );
        let logged = redact_headers(K, &old);
        assert!(logged.contains(&("authorization".to_owned(), REDACTED.to_owned())));
    }

    #[test]
    fn other_service_hook_events_are_ignored() {
        let body = br#"{"id":"x","eventType":"build.complete"}"#;
        let incoming = identify(K, &header_map(&[]), body).unwrap();
        let n = normalize(K, urn(K), &incoming.event_name, body).unwrap();
        assert!(matches!(n, Normalized::Ignored { .. }));
    }
}

#[test]
fn malformed_payloads_of_known_events_are_clear_errors() {
    use herald_ingest::IngestError;
    let known = [
        (CodeHostKind::GitHub, "push"),
        (CodeHostKind::GitHub, "pull_request"),
        (CodeHostKind::GitHub, "check_run"),
        (CodeHostKind::GitLab, "Push Hook"),
        (CodeHostKind::GitLab, "Merge Request Hook"),
        (CodeHostKind::BitbucketServer, "repo:refs_changed"),
        (CodeHostKind::BitbucketServer, "pr:opened"),
        (CodeHostKind::BitbucketCloud, "repo:push"),
        (CodeHostKind::BitbucketCloud, "pullrequest:created"),
        (CodeHostKind::AzureDevOps, "git.push"),
        (CodeHostKind::AzureDevOps, "git.pullrequest.created"),
    ];
    for (kind, event) in known {
        let not_json = normalize(kind, urn(kind), event, b"not json");
        assert!(
            matches!(not_json, Err(IngestError::Json(_))),
            "{kind} {event}: {not_json:?}"
        );
        for body in [
            &b"{}"[..],
            b"[]",
            br#"{"pull_request": 5, "resource": null, "repository": {}}"#,
        ] {
            let result = normalize(kind, urn(kind), event, body);
            assert!(
                matches!(result, Err(IngestError::MissingField(_))),
                "{kind} {event}: {result:?}"
            );
        }
    }
    for kind in CodeHostKind::ALL {
        let result = identify(kind, &header_map(&[]), b"{}");
        assert!(
            matches!(result, Err(IngestError::MissingEventName(_))),
            "{kind}: {result:?}"
        );
    }
    assert!(matches!(
        normalize(CodeHostKind::GitHub, "not a url", "push", b"{}"),
        Err(IngestError::BadUrn(_))
    ));
}
