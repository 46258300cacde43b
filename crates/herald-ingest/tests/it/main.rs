//! Integration tests of herald-ingest over real code-host payloads: the
//! vendored fixtures in `tests/fixtures` (see the READMEs there), signed here
//! the way each host signs them, then verified, identified, normalized and
//! merged as the server does.

#![allow(clippy::unwrap_used)] // a test that cannot go on fails here, with the cause

mod hosts;
mod merge;
mod octokit;
mod provenance;

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_core::secret::Secret;
use herald_ingest::{
    ChangesetObservation, CodeHostKind, CommitCheck, Incoming, Normalized, PullRequestObservation,
    ReceiverCredentials, RepoPush, identify, normalize, verify,
};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

pub const SECRET: &str = "herald-test-secret";
pub const AZURE_USER: &str = "herald";

pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap()
}

pub fn creds(kind: CodeHostKind) -> ReceiverCredentials {
    let secret = Secret::parse(SECRET).unwrap();
    match kind {
        CodeHostKind::AzureDevOps => ReceiverCredentials::basic(AZURE_USER, secret),
        _ => ReceiverCredentials::secret(secret),
    }
}

pub fn urn(kind: CodeHostKind) -> &'static str {
    match kind {
        CodeHostKind::GitHub => "https://github.com",
        CodeHostKind::GitLab => "https://gitlab.example.com",
        CodeHostKind::BitbucketServer => "https://bitbucket.example.com",
        CodeHostKind::BitbucketCloud => "https://bitbucket.org",
        CodeHostKind::AzureDevOps => "https://dev.azure.com/fabrikam",
    }
}

/// `sha256=<hex HMAC-SHA256>`, computed here rather than with herald-core so
/// the test does not check the code with itself.
pub fn hub_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn header_map(pairs: &[(&str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// The headers each host sends with `body`, signed with `secret`.
pub fn signed_headers(kind: CodeHostKind, event: &str, body: &[u8], secret: &str) -> HeaderMap {
    let delivery = format!("delivery-{:08x}", body.len());
    match kind {
        CodeHostKind::GitHub => header_map(&[
            ("X-GitHub-Event", event.to_owned()),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", hub_signature(secret, body)),
            ("Content-Type", "application/json".to_owned()),
        ]),
        CodeHostKind::GitLab => header_map(&[
            ("X-Gitlab-Event", event.to_owned()),
            ("X-Gitlab-Event-UUID", delivery),
            ("X-Gitlab-Token", secret.to_owned()),
        ]),
        CodeHostKind::BitbucketServer => header_map(&[
            ("X-Event-Key", event.to_owned()),
            ("X-Request-Id", delivery),
            ("X-Hub-Signature", hub_signature(secret, body)),
        ]),
        CodeHostKind::BitbucketCloud => header_map(&[
            ("X-Event-Key", event.to_owned()),
            ("X-Request-UUID", delivery),
            ("X-Hook-UUID", "hook-1".to_owned()),
            ("X-Hub-Signature", hub_signature(secret, body)),
        ]),
        CodeHostKind::AzureDevOps => header_map(&[
            (
                "Authorization",
                format!(
                    "Basic {}",
                    STANDARD.encode(format!("{AZURE_USER}:{secret}"))
                ),
            ),
            ("Content-Type", "application/json".to_owned()),
        ]),
    }
}

/// What the server does with a request: verify, identify, normalize.
pub fn ingest(kind: CodeHostKind, headers: &HeaderMap, body: &[u8]) -> (Incoming, Normalized) {
    verify(kind, &creds(kind), headers, body).unwrap_or_else(|e| panic!("{kind}: refused: {e}"));
    let incoming = identify(kind, headers, body).unwrap();
    let normalized = normalize(kind, urn(kind), &incoming.event_name, body)
        .unwrap_or_else(|e| panic!("{kind} {}: {e}", incoming.event_name));
    (incoming, normalized)
}

/// Signs and ingests a fixture file.
pub fn ingest_fixture(kind: CodeHostKind, event: &str, rel: &str) -> Normalized {
    let body = fixture(rel);
    ingest(kind, &signed_headers(kind, event, &body, SECRET), &body).1
}

pub fn pull_request(n: Normalized) -> PullRequestObservation {
    match n {
        Normalized::Changeset(ChangesetObservation::PullRequest(pr)) => pr,
        other => panic!("expected a pull request observation, got {other:?}"),
    }
}

pub fn commit_check(n: Normalized) -> CommitCheck {
    match n {
        Normalized::Changeset(ChangesetObservation::CommitCheck(check)) => check,
        other => panic!("expected a commit check, got {other:?}"),
    }
}

pub fn pushes(n: Normalized) -> Vec<RepoPush> {
    match n {
        Normalized::Push(pushes) => pushes,
        other => panic!("expected pushes, got {other:?}"),
    }
}

pub fn observation(n: Normalized) -> ChangesetObservation {
    match n {
        Normalized::Changeset(obs) => obs,
        other => panic!("expected a changeset observation, got {other:?}"),
    }
}
