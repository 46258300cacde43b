//! Every vendored `@octokit/webhooks-examples` payload, signed as GitHub
//! signs it, must verify, identify, show redacted in the log, and normalize
//! to what its content says; tampered or wrongly signed copies must not verify.

use std::collections::BTreeMap;

use herald_ingest::{
    ChangesetState, CheckState, CodeHostKind, Normalized, REDACTED, ReceiverCredentials,
    ReviewState, VerifyError, redact_headers, verify,
};
use serde_json::Value;

use crate::{
    SECRET, commit_check, creds, fixture, fixtures_dir, ingest, json, pull_request, pushes,
    signed_headers,
};

const GITHUB: CodeHostKind = CodeHostKind::GitHub;

/// (event, number of examples) in `@octokit/webhooks-examples` 7.6.1.
const EXPECTED: &[(&str, usize)] = &[
    ("check_run", 9),
    ("check_suite", 9),
    ("issue_comment", 9),
    ("ping", 4),
    ("pull_request", 29),
    ("pull_request_review", 4),
    ("pull_request_review_comment", 5),
    ("push", 7),
    ("status", 4),
];

fn examples() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(fixtures_dir().join("octokit"))
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
    files.sort();
    files
}

#[test]
fn every_octokit_example_is_accepted_logged_and_normalized() {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (event, path) in examples() {
        let body = fixture(&path);
        let headers = signed_headers(GITHUB, &event, &body, SECRET);
        let (incoming, normalized) = ingest(GITHUB, &headers, &body);
        assert_eq!(incoming.event_name, event, "{path}");
        assert!(incoming.delivery_id.is_some(), "{path}");
        let logged = redact_headers(GITHUB, &headers);
        assert!(
            logged.contains(&("x-hub-signature-256".to_owned(), REDACTED.to_owned())),
            "{path}"
        );
        check_normalized(&event, &json(&body), normalized, &path);
        *seen.entry(event).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = EXPECTED
        .iter()
        .map(|(e, n)| ((*e).to_owned(), *n))
        .collect();
    assert_eq!(seen, expected);
    let total: usize = seen.values().sum();
    assert_eq!(total, 80);
    println!("real @octokit/webhooks-examples payloads exercised: {total}");
}

fn check_normalized(event: &str, v: &Value, normalized: Normalized, path: &str) {
    let repository = format!(
        "github.com/{}",
        v["repository"]["full_name"].as_str().unwrap_or_default()
    );
    match event {
        "ping" => assert_eq!(normalized, Normalized::Ping, "{path}"),
        "push" => {
            let pushes = pushes(normalized);
            assert_eq!(pushes.len(), 1, "{path}");
            let push = &pushes[0];
            assert_eq!(push.repository, repository, "{path}");
            assert_eq!(push.ref_name, v["ref"], "{path}");
            assert_eq!(push.before, v["before"], "{path}");
            assert_eq!(push.after, v["after"], "{path}");
            assert_eq!(
                push.commits.len(),
                v["commits"].as_array().unwrap().len(),
                "{path}"
            );
            assert_eq!(
                push.pusher.as_ref().unwrap().name,
                v["pusher"]["name"],
                "{path}"
            );
        }
        "pull_request" | "pull_request_review" | "pull_request_review_comment" => {
            let pr = pull_request(normalized);
            let p = &v["pull_request"];
            assert_eq!(pr.key.repository, repository, "{path}");
            assert_eq!(pr.key.external_id, p["number"].to_string(), "{path}");
            let details = pr.details.expect("pull request events carry the request");
            assert_eq!(details.value.state, Some(expected_state(p)), "{path}");
            assert_eq!(
                details.value.title.as_deref(),
                p["title"].as_str(),
                "{path}"
            );
            assert_eq!(
                details.value.head_sha.as_deref(),
                p["head"]["sha"].as_str(),
                "{path}"
            );
            let labels = p["labels"].as_array().unwrap().len();
            assert_eq!(details.value.labels.unwrap().len(), labels, "{path}");
            if event == "pull_request_review" {
                let expected = match v["review"]["state"].as_str().unwrap() {
                    "approved" => Some(ReviewState::Approved),
                    "changes_requested" => Some(ReviewState::ChangesRequested),
                    "dismissed" => Some(ReviewState::Pending),
                    _ => None,
                };
                assert_eq!(pr.review.map(|r| r.value), expected, "{path}");
            }
        }
        // None of the package's comments is on a pull request.
        "issue_comment" => assert!(
            matches!(normalized, Normalized::Ignored { .. }),
            "{path}: {normalized:?}"
        ),
        "check_suite" | "check_run" => {
            let c = &v[event];
            let check = commit_check(normalized);
            assert_eq!(check.repository, repository, "{path}");
            assert_eq!(check.sha, c["head_sha"], "{path}");
            let expected = match (c["status"].as_str().unwrap(), c["conclusion"].as_str()) {
                ("completed", Some("success" | "neutral")) => CheckState::Passed,
                ("completed", Some("failure")) => CheckState::Failed,
                ("queued" | "in_progress", None) => CheckState::Pending,
                other => panic!("{path}: no expectation for {other:?}"),
            };
            assert_eq!(check.check_state, expected, "{path}");
            let prs: Vec<String> = c["pull_requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["number"].to_string())
                .collect();
            assert_eq!(check.external_ids, prs, "{path}");
        }
        "status" => {
            let check = commit_check(normalized);
            assert_eq!(check.sha, v["sha"], "{path}");
            assert_eq!(
                check.check_state,
                CheckState::Passed,
                "{path}: state {}",
                v["state"]
            );
        }
        other => panic!("unexpected event {other}"),
    }
}

/// From the payload's own flags, independently of the normalizer's code path.
fn expected_state(p: &Value) -> ChangesetState {
    let merged = p["merged"] == true || p["merged_at"].is_string();
    match (p["state"].as_str().unwrap(), merged, p["draft"] == true) {
        ("closed", true, _) => ChangesetState::Merged,
        ("closed", false, _) => ChangesetState::Closed,
        ("open", _, true) => ChangesetState::Draft,
        _ => ChangesetState::Open,
    }
}

#[test]
fn named_examples_have_the_states_a_reader_would_give_them() {
    let state = |rel: &str| {
        let n = crate::ingest_fixture(GITHUB, "pull_request", rel);
        pull_request(n).details.unwrap().value.state.unwrap()
    };
    assert_eq!(
        state("octokit/pull_request.01.opened.json"),
        ChangesetState::Open
    );
    assert_eq!(
        state("octokit/pull_request.04.closed.json"),
        ChangesetState::Closed
    );
    assert_eq!(
        state("octokit/pull_request.06.converted_to_draft.json"),
        ChangesetState::Draft
    );
    assert_eq!(
        state("derived/github/pull_request.closed_merged.json"),
        ChangesetState::Merged
    );
}

#[test]
fn a_tampered_body_or_a_wrong_secret_is_refused_for_every_example() {
    for (event, path) in examples() {
        let body = fixture(&path);
        let headers = signed_headers(GITHUB, &event, &body, SECRET);
        let mut tampered = body.clone();
        let last_digit = tampered.iter().rposition(u8::is_ascii_digit).unwrap_or(0);
        tampered[last_digit] = if tampered[last_digit] == b'9' {
            b'8'
        } else {
            tampered[last_digit] + 1
        };
        assert_eq!(
            verify(GITHUB, &creds(GITHUB), &headers, &tampered),
            Err(VerifyError::BadSignature("X-Hub-Signature-256")),
            "{path}"
        );
        let wrong = signed_headers(GITHUB, &event, &body, "not-the-secret");
        assert_eq!(
            verify(GITHUB, &creds(GITHUB), &wrong, &body),
            Err(VerifyError::BadSignature("X-Hub-Signature-256")),
            "{path}"
        );
    }
}

/// Signatures produced by `@octokit/webhooks-methods` 6.0.0's `sign()` over
/// the vendored files, and over GitHub's documented example.
#[test]
fn signatures_made_by_octokit_webhooks_methods_verify() {
    let vectors = [
        (
            "octokit/pull_request.04.closed.json",
            "sha256=250933ff96cfbb1ea9f93291abd774ec8b003962f5ead4bf2b955d3139908067",
        ),
        (
            "octokit/check_run.02.completed.json",
            "sha256=87bbc7d3142678fb11e3105e954ade4e9b8ac6bae584a9139f3f3a5c264b8c9b",
        ),
        (
            "octokit/push.05.json",
            "sha256=84d45cb29705f5226fdebfc306a5d4c1a64dfe596d4c7d4774afdd34e2d4ab96",
        ),
    ];
    for (path, signature) in vectors {
        let body = fixture(path);
        let headers = crate::header_map(&[("X-Hub-Signature-256", signature.to_owned())]);
        assert!(
            verify(GITHUB, &creds(GITHUB), &headers, &body).is_ok(),
            "{path}"
        );
    }
    let documented = ReceiverCredentials::secret(
        herald_core::secret::Secret::parse("It's a Secret to Everybody").unwrap(),
    );
    let headers = crate::header_map(&[(
        "X-Hub-Signature-256",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".to_owned(),
    )]);
    assert!(verify(GITHUB, &documented, &headers, b"Hello, World!").is_ok());
}

#[test]
fn an_unsigned_github_request_is_refused_before_its_body_is_read() {
    let headers = crate::header_map(&[("X-GitHub-Event", "push".to_owned())]);
    assert_eq!(
        verify(GITHUB, &creds(GITHUB), &headers, b"not even json"),
        Err(VerifyError::MissingHeader("X-Hub-Signature-256"))
    );
}
