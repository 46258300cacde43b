//! Every code host end to end through the ingest endpoint, with the vendored
//! fixtures: push, pull/merge request opened, approved, checks failed, merged,
//! declined, and pings; every `@octokit/webhooks-examples` payload; and
//! out-of-order deliveries, which must not roll a changeset back.
//!
//! Where two fixtures of a host describe unrelated repositories, a step
//! derives a payload from one (a JSON field set to another's value, noted at
//! the step) so that, say, a failed check concerns the request opened before.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::harness::{assert_error, send};
use crate::receivers::{SECRET, Setup, fixture, post_incoming, request_detail, signed};

/// One request of a scenario and what it must produce.
struct Step {
    /// The host's event name (header or, for Azure DevOps, the body's).
    event: &'static str,
    body: Vec<u8>,
    status: u16,
    outcome: &'static str,
    /// The types of the events it publishes, in order.
    publishes: &'static [&'static str],
    /// Fields the last published payload must have.
    fields: &'static [(&'static str, &'static str)],
}

fn step(
    event: &'static str,
    rel: &str,
    outcome: &'static str,
    publishes: &'static [&'static str],
    fields: &'static [(&'static str, &'static str)],
) -> Step {
    Step {
        event,
        body: fixture(rel),
        status: 200,
        outcome,
        publishes,
        fields,
    }
}

/// A fixture with fields (JSON Pointers) set to new values.
fn derived(rel: &str, edits: &[(&str, Value)]) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&fixture(rel)).unwrap();
    for (pointer, value) in edits {
        *v.pointer_mut(pointer)
            .unwrap_or_else(|| panic!("{rel} has no {pointer}")) = value.clone();
    }
    serde_json::to_vec_pretty(&v).unwrap()
}

const UPDATE: &[&str] = &["changeset:update"];
const CLOSE: &[&str] = &["changeset:close"];
const PUSH: &[&str] = &["repo:push"];
const NOTHING: &[&str] = &[];

/// Runs the steps in order against one receiver, checking each answer, the
/// log row and the events it published.
async fn run(setup: &Setup, steps: Vec<Step>) {
    for (i, step) in steps.into_iter().enumerate() {
        let before = setup.events().await.len();
        let (status, answer) = setup.deliver(step.event, &step.body).await;
        let what = format!("step {i} ({} {})", setup.kind(), step.event);
        assert_eq!(status, step.status, "{what}: {answer}");
        // A 204 has no body: the log's newest row is this request's.
        let answer = if status == 204 {
            assert_eq!(answer, Value::Null, "{what}");
            let newest = setup.requests().await.remove(0);
            json!({"request_id": newest["id"], "outcome": newest["outcome"], "event_ids": newest["event_ids"]})
        } else {
            answer
        };
        assert_eq!(answer["outcome"], step.outcome, "{what}: {answer}");
        let events = setup.events().await;
        let new: Vec<&(String, Value)> = events[before..].iter().collect();
        let types: Vec<&str> = new.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types, step.publishes, "{what}");
        assert_eq!(
            answer["event_ids"].as_array().unwrap().len(),
            new.len(),
            "{what}: the answer lists what was published"
        );
        if let Some((_, payload)) = new.last() {
            for (field, value) in step.fields {
                assert_eq!(payload[*field], *value, "{what}: {field} in {payload}");
            }
        }
        let logged = request_detail(
            &setup.herald,
            setup.id(),
            answer["request_id"].as_str().unwrap(),
        )
        .await;
        assert_eq!(logged["outcome"], step.outcome, "{what}");
        assert_eq!(logged["verified"], true, "{what}");
        assert_eq!(logged["status_code"], step.status, "{what}");
        assert_eq!(logged["event_ids"], answer["event_ids"], "{what}");
        assert_eq!(
            logged["body"].as_str().unwrap().as_bytes(),
            step.body,
            "{what}"
        );
    }
}

#[tokio::test]
async fn github_push_pull_request_review_checks_merge_decline_and_ping() {
    let setup = Setup::new("github", "https://github.com").await;
    run(
        &setup,
        vec![
            step("ping", "code-hosts/github/ping.json", "ping", NOTHING, &[]),
            step(
                "push",
                "code-hosts/github/push.json",
                "processed",
                PUSH,
                &[("repository", "github.com/binkkatal/sample_app")],
            ),
            step(
                "pull_request",
                "octokit/pull_request.01.opened.json",
                "processed",
                UPDATE,
                &[
                    ("state", "OPEN"),
                    ("repository_id", "github.com/Codertocat/Hello-World"),
                    ("external_id", "2"),
                ],
            ),
            step(
                "pull_request_review",
                "code-hosts/github/pull_request_review.json",
                "processed",
                UPDATE,
                &[("review_state", "APPROVED"), ("external_id", "8")],
            ),
            step(
                "check_run",
                "octokit/check_run.02.completed.json",
                "processed",
                UPDATE,
                &[
                    ("check_state", "FAILED"),
                    ("external_id", "2"),
                    ("state", "OPEN"),
                ],
            ),
            step(
                "pull_request",
                "derived/github/pull_request.closed_merged.json",
                "processed",
                CLOSE,
                &[("state", "MERGED"), ("check_state", "FAILED")],
            ),
            // Out of order: the opening, delivered again late, changes nothing.
            step(
                "pull_request",
                "octokit/pull_request.01.opened.json",
                "processed",
                NOTHING,
                &[],
            ),
            // A newer check still applies, and shows the record is still merged.
            step(
                "check_suite",
                "octokit/check_suite.01.completed.json",
                "processed",
                UPDATE,
                &[("check_state", "PASSED"), ("state", "MERGED")],
            ),
            step(
                "star",
                "code-hosts/github/ping.json",
                "ignored",
                NOTHING,
                &[],
            ),
        ],
    )
    .await;

    // Declined, on GitHub Enterprise: another URN, so other records.
    let enterprise = Setup::on(setup.herald, "github", "https://github.example.com").await;
    run(
        &enterprise,
        vec![
            step(
                "pull_request",
                "octokit/pull_request.01.opened.json",
                "processed",
                UPDATE,
                &[("repository_id", "github.example.com/Codertocat/Hello-World")],
            ),
            step(
                "pull_request",
                "octokit/pull_request.04.closed.json",
                "processed",
                CLOSE,
                &[("state", "CLOSED")],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn gitlab_push_merge_request_approval_pipeline_merge_close_and_unknown() {
    let setup = Setup::new("gitlab", "https://gitlab.example.com").await;
    let opened_head = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
    run(
        &setup,
        vec![
            step(
                "Push Hook",
                "code-hosts/gitlab/push.json",
                "processed",
                PUSH,
                &[("repository", "gitlab.example.com/mike/diaspora")],
            ),
            step(
                "Tag Push Hook",
                "code-hosts/gitlab/tag_push.json",
                "processed",
                PUSH,
                &[],
            ),
            step(
                "Merge Request Hook",
                "code-hosts/gitlab/merge_request.open.json",
                "processed",
                UPDATE,
                &[
                    ("state", "OPEN"),
                    ("repository_id", "gitlab.example.com/gitlabhq/gitlab-test"),
                ],
            ),
            step(
                "Merge Request Hook",
                "code-hosts/gitlab/merge_request.approved.json",
                "processed",
                UPDATE,
                &[("review_state", "APPROVED")],
            ),
            // The failed pipeline, moved to the project and head commit of the
            // merge request opened above.
            Step {
                body: derived(
                    "derived/gitlab/pipeline.failed.json",
                    &[
                        (
                            "/project/path_with_namespace",
                            json!("gitlabhq/gitlab-test"),
                        ),
                        ("/object_attributes/sha", json!(opened_head)),
                    ],
                ),
                ..step(
                    "Pipeline Hook",
                    "derived/gitlab/pipeline.failed.json",
                    "processed",
                    UPDATE,
                    &[
                        ("check_state", "FAILED"),
                        ("repository_id", "gitlab.example.com/gitlabhq/gitlab-test"),
                    ],
                )
            },
            step(
                "Merge Request Hook",
                "code-hosts/gitlab/merge_request.merge.json",
                "processed",
                CLOSE,
                &[("state", "MERGED")],
            ),
            // Closed ten minutes before that merge: out of order, nothing changes.
            step(
                "Merge Request Hook",
                "code-hosts/gitlab/merge_request.close.json",
                "processed",
                NOTHING,
                &[],
            ),
            Step {
                status: 204,
                ..step(
                    "Issue Hook",
                    "code-hosts/gitlab/note.merge_request.json",
                    "ignored",
                    NOTHING,
                    &[],
                )
            },
        ],
    )
    .await;
    let declined = Setup::on(setup.herald, "gitlab", "https://gitlab.example.org").await;
    run(
        &declined,
        vec![step(
            "Merge Request Hook",
            "code-hosts/gitlab/merge_request.close.json",
            "processed",
            CLOSE,
            &[("state", "CLOSED")],
        )],
    )
    .await;
}

#[tokio::test]
async fn bitbucket_server_refs_pull_request_approval_build_merge_decline_and_unsigned_ping() {
    let setup = Setup::new("bitbucket_server", "https://bitbucket.example.com").await;
    const REPO: &str = "bitbucket.example.com/~gopher/webhook-test";
    // Bitbucket Server sends its connectivity test unsigned.
    let ping = fixture("derived/bitbucket-server/diagnostics.ping.json");
    let headers = vec![("X-Event-Key".to_owned(), "diagnostics:ping".to_owned())];
    let (status, answer) = post_incoming(&setup.herald, setup.id(), &headers, ping).await;
    assert_eq!(
        (status, &answer["outcome"]),
        (200, &json!("ping")),
        "{answer}"
    );
    let unsigned_push = vec![("X-Event-Key".to_owned(), "repo:refs_changed".to_owned())];
    let body = fixture("code-hosts/bitbucket-server/repo.refs_changed.json");
    let (status, error) = post_incoming(&setup.herald, setup.id(), &unsigned_push, body).await;
    assert_error(status, &error, 401, "unverified", None);

    run(
        &setup,
        vec![
            step(
                "repo:refs_changed",
                "code-hosts/bitbucket-server/repo.refs_changed.json",
                "processed",
                PUSH,
                &[("repository", REPO), ("ref", "refs/heads/feature/wip")],
            ),
            step(
                "pr:opened",
                "code-hosts/bitbucket-server/pr.opened.json",
                "processed",
                UPDATE,
                &[
                    ("state", "OPEN"),
                    ("external_id", "5"),
                    ("repository_id", REPO),
                ],
            ),
            step(
                "pr:reviewer:approved",
                "code-hosts/bitbucket-server/pr.reviewer.approved.json",
                "processed",
                UPDATE,
                &[("review_state", "APPROVED")],
            ),
            step(
                "repo:build_status",
                "derived/bitbucket-server/repo.build_status.failed.json",
                "processed",
                UPDATE,
                &[("check_state", "FAILED"), ("external_id", "5")],
            ),
            step(
                "pr:merged",
                "code-hosts/bitbucket-server/pr.merged.json",
                "processed",
                CLOSE,
                &[("state", "MERGED")],
            ),
            step(
                "pr:declined",
                "code-hosts/bitbucket-server/pr.declined.json",
                "processed",
                CLOSE,
                &[("state", "CLOSED"), ("external_id", "2")],
            ),
            // A comment from before the decline, delivered late: nothing changes.
            step(
                "pr:comment:added",
                "code-hosts/bitbucket-server/pr.comment.added.json",
                "processed",
                NOTHING,
                &[],
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn bitbucket_cloud_push_pull_request_approval_status_merge_and_decline() {
    let setup = Setup::new("bitbucket_cloud", "https://bitbucket.org").await;
    run(&setup, vec![
        step("repo:push", "code-hosts/bitbucket-cloud/repo.push.json", "processed", PUSH,
            &[("repository", "bitbucket.org/brydzewski/foo")]),
        step("pullrequest:created", "code-hosts/bitbucket-cloud/pullrequest.created.json", "processed", UPDATE,
            &[("state", "OPEN"), ("external_id", "1")]),
        step("pullrequest:approved", "code-hosts/bitbucket-cloud/pullrequest.approved.json", "processed", UPDATE,
            &[("review_state", "APPROVED"), ("repository_id", "bitbucket.org/team_name/repo_name")]),
        // The failed status, moved to the repository and (full) head commit of
        // the pull request created above, which carries it abbreviated.
        Step {
            body: derived("derived/bitbucket-cloud/repo.commit_status_updated.failed.json", &[
                ("/repository/full_name", json!("brydzewski/foo")),
                ("/commit_status/links/commit/href", json!(
                    "http://api.bitbucket.org/2.0/repositories/brydzewski/foo/commit/507a576e59b3b1d1d8e5f0a7c2b3d4e5f6a7b8c9"
                )),
            ]),
            ..step("repo:commit_status_updated", "derived/bitbucket-cloud/repo.commit_status_updated.failed.json",
                "processed", UPDATE, &[("check_state", "FAILED"), ("external_id", "1")])
        },
        // A new head commit: the failed check no longer counts.
        step("pullrequest:updated", "code-hosts/bitbucket-cloud/pullrequest.updated.json", "processed", UPDATE,
            &[("check_state", "PENDING")]),
        step("pullrequest:fulfilled", "code-hosts/bitbucket-cloud/pullrequest.fulfilled.json", "processed", CLOSE,
            &[("state", "MERGED")]),
        step("pullrequest:rejected", "code-hosts/bitbucket-cloud/pullrequest.rejected.json", "processed", CLOSE,
            &[("state", "CLOSED"), ("external_id", "2")]),
        // A status of a commit no changeset has: logged, nothing to update.
        step("repo:commit_status_updated", "code-hosts/bitbucket-cloud/repo.commit_status_updated.json", "processed", NOTHING, &[]),
    ]).await;
}

#[tokio::test]
async fn azure_devops_push_pull_request_approval_merge_and_abandon_with_basic_auth() {
    let setup = Setup::new("azure_devops", "https://dev.azure.com/fabrikam").await;
    run(
        &setup,
        vec![
            step(
                "git.push",
                "code-hosts/azure-devops/git.push.json",
                "processed",
                PUSH,
                &[(
                    "repository",
                    "dev.azure.com/fabrikam/Fabrikam-Fiber-Git/Fabrikam-Fiber-Git",
                )],
            ),
            step(
                "git.pullrequest.created",
                "code-hosts/azure-devops/git.pullrequest.created.json",
                "processed",
                UPDATE,
                &[("state", "OPEN"), ("external_id", "1")],
            ),
            step(
                "git.pullrequest.updated",
                "derived/azure-devops/git.pullrequest.updated.approved.json",
                "processed",
                UPDATE,
                &[("review_state", "APPROVED")],
            ),
            step(
                "git.pullrequest.merged",
                "code-hosts/azure-devops/git.pullrequest.merged.json",
                "processed",
                CLOSE,
                &[("state", "MERGED")],
            ),
            // Azure DevOps' delivery id is the body's `id`: this one repeats the
            // approval's, so it is a redelivery.
            step(
                "git.pullrequest.updated",
                "code-hosts/azure-devops/git.pullrequest.updated.json",
                "duplicate",
                NOTHING,
                &[],
            ),
        ],
    )
    .await;
    let abandoned = Setup::on(
        setup.herald,
        "azure_devops",
        "https://dev.azure.com/contoso",
    )
    .await;
    run(
        &abandoned,
        vec![step(
            "git.pullrequest.updated",
            "derived/azure-devops/git.pullrequest.updated.abandoned.json",
            "processed",
            CLOSE,
            &[("state", "CLOSED")],
        )],
    )
    .await;
    let (status, error) =
        post_incoming(&abandoned.herald, abandoned.id(), &[], b"{}".to_vec()).await;
    assert_error(status, &error, 401, "unverified", None);
}

// ---- every @octokit/webhooks-examples payload ----

/// The six event kinds the issue names; the vendored set also has
/// issue_comment, ping and pull_request_review_comment, which go through too.
const REQUIRED: &[&str] = &[
    "push",
    "pull_request",
    "pull_request_review",
    "check_suite",
    "check_run",
    "status",
];

/// The examples, pull requests first so that checks find records to update.
fn octokit_examples() -> Vec<(String, String)> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../herald-ingest/tests/fixtures/octokit");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json"))
        .map(|name| {
            (
                name.split('.').next().unwrap().to_owned(),
                format!("octokit/{name}"),
            )
        })
        .collect();
    files.sort_by_key(|(event, name)| (!event.starts_with("pull_request"), name.clone()));
    files
}

fn expected_outcome(event: &str) -> &'static str {
    match event {
        "ping" => "ping",
        // None of the package's comments is on a pull request.
        "issue_comment" => "ignored",
        _ => "processed",
    }
}

#[tokio::test]
async fn every_octokit_example_is_accepted_normalized_logged_and_refused_when_forged() {
    let setup = Setup::new("github", "https://github.com").await;
    let mut accepted: BTreeMap<String, usize> = BTreeMap::new();
    let mut published = 0;
    for (event, path) in octokit_examples() {
        let body = fixture(&path);
        let (status, answer) = setup.deliver(&event, &body).await;
        assert_eq!(status, 200, "{path}: {answer}");
        assert_eq!(
            answer["outcome"],
            expected_outcome(&event),
            "{path}: {answer}"
        );
        let ids = answer["event_ids"].as_array().unwrap().len();
        match event.as_str() {
            "push" => assert_eq!(ids, 1, "{path}: one repo:push"),
            "ping" | "issue_comment" => assert_eq!(ids, 0, "{path}"),
            _ => {}
        }
        published += ids;
        *accepted.entry(event).or_default() += 1;
    }
    let events = setup.events().await;
    assert_eq!(
        events.len(),
        published,
        "every event listed in an answer was published, and no other"
    );
    let pushes = events.iter().filter(|(t, _)| t == "repo:push").count();
    assert_eq!(pushes, accepted["push"]);
    assert!(
        events.iter().any(|(t, _)| t == "changeset:close"),
        "the closed examples close"
    );
    assert!(
        events
            .iter()
            .any(|(t, p)| t == "changeset:update" && p["check_state"] == "FAILED")
    );

    let logged = setup.requests().await;
    assert_eq!(logged.len(), 80);
    for request in &logged {
        assert_eq!(request["verified"], true, "{request}");
        assert!(request["delivery_id"].is_string(), "{request}");
        assert_eq!(request["verification"], "hmac_sha256 (current secret)");
    }

    // Forged copies of each: a changed body, or another secret.
    for (event, path) in octokit_examples() {
        let body = fixture(&path);
        let mut tampered = body.clone();
        let last_digit = tampered.iter().rposition(u8::is_ascii_digit).unwrap();
        tampered[last_digit] = if tampered[last_digit] == b'9' {
            b'8'
        } else {
            tampered[last_digit] + 1
        };
        let headers = signed("github", &event, &body, SECRET);
        let (status, _) = post_incoming(&setup.herald, setup.id(), &headers, tampered).await;
        assert_eq!(status, 401, "{path}: tampered");
        let wrong = signed("github", &event, &body, "not-the-secret");
        let (status, _) = post_incoming(&setup.herald, setup.id(), &wrong, body).await;
        assert_eq!(status, 401, "{path}: wrong secret");
    }
    assert_eq!(
        setup.events().await.len(),
        published,
        "a forged request published something"
    );
    let logged = setup.requests().await;
    assert_eq!(
        logged
            .iter()
            .filter(|r| r["outcome"] == "unverified")
            .count(),
        100,
        "160 refused, the newest 100 kept (the default cap)"
    );
    let (status, receiver) = send(
        setup
            .herald
            .get(&format!("/api/v1/receivers/{}", setup.id())),
    )
    .await;
    assert_eq!(status, 200, "{receiver}");
    assert_eq!(receiver["unverified_dropped"], 60);

    let required: usize = REQUIRED.iter().map(|e| accepted[*e]).sum();
    let total: usize = accepted.values().sum();
    assert_eq!((required, total), (62, 80), "{accepted:?}");
    println!(
        "real @octokit/webhooks-examples payloads posted signed, accepted, normalized and logged: {total} \
         ({required} of push, pull_request, pull_request_review, check_suite, check_run and status); \
         each also refused when tampered with or signed with another secret"
    );
}

#[tokio::test]
async fn concurrent_deliveries_about_one_pull_request_lose_no_update() {
    let setup = Setup::new("github", "https://github.com").await;
    // The opening first, so the others have a record to update; then a
    // review, a failed check and the merge, all at once.
    let (status, _) = setup
        .deliver(
            "pull_request",
            &fixture("octokit/pull_request.01.opened.json"),
        )
        .await;
    assert_eq!(status, 200);
    let review = fixture("octokit/pull_request_review.01.submitted.json");
    let check = fixture("octokit/check_run.02.completed.json");
    let merge = fixture("derived/github/pull_request.closed_merged.json");
    let answers = tokio::join!(
        setup.deliver("pull_request_review", &review),
        setup.deliver("check_run", &check),
        setup.deliver("pull_request", &merge),
    );
    for (status, answer) in [answers.0, answers.1, answers.2] {
        assert_eq!(status, 200, "{answer}");
    }
    // Whatever the order, the record ends merged with its failed check, and
    // it closed once.
    let (status, answer) = setup
        .deliver(
            "check_suite",
            &fixture("octokit/check_suite.01.completed.json"),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let events = setup.events().await;
    let (last_type, last) = events.last().unwrap();
    assert_eq!(last_type, "changeset:update");
    assert_eq!(
        (&last["state"], &last["check_state"]),
        (&json!("MERGED"), &json!("PASSED"))
    );
    assert_eq!(
        events
            .iter()
            .filter(|(t, _)| t == "changeset:close")
            .count(),
        1
    );
    assert!(
        events.iter().any(|(_, p)| p["check_state"] == "FAILED"),
        "the failed check was published"
    );
}
