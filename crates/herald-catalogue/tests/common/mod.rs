//! The payloads Herald would build for each built-in type's example, shared by the
//! golden and payload tests.

#![allow(dead_code)] // Each test crate uses a different part.

use std::collections::BTreeMap;

use herald_catalogue::keys::*;
use herald_catalogue::payloads::operational::{
    DeliveryExhausted, DeliveryRecovered, DisableReason, Ping, WebhookDisabled, WebhookFailing,
    WebhookPaused, WebhookRecovered,
};
use herald_catalogue::{Catalogue, MonitorResult, code_monitor_notification, prepare_payload};
use herald_core::time::Timestamp;
use herald_ingest::CodeHostKind;
use herald_ingest::push::{CodeHost, PushCommit, Pusher, RepoPush};

pub const WEBHOOK: &str = "0194b6a2-5c3e-7d10-8a1b-2c3d4e5f6a7b";
pub const DELIVERY: &str = "0194b6a3-1111-7222-8333-444455556666";
pub const EVENT: &str = "0194b6a3-0000-7000-8000-000000000001";

pub fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

/// The seed 000 example, as a code monitor would report it.
pub fn seed_monitor_results() -> Vec<MonitorResult> {
    let summary_match = 15..19;
    vec![
        MonitorResult::Diff {
            repository: "github.com/test/test".into(),
            commit: "7815187511872asbasdfgasd".into(),
            diff: "file1.go file2.go\n@ -97,5 +97,5 @ func Test() {\n leading context\n+matched added\n-matched removed\n trailing context\n".into(),
            matched_ranges: vec![66..73, 91..98],
        },
        MonitorResult::Commit {
            repository: "github.com/test/test".into(),
            commit: "7815187511872asbasdfgasd".into(),
            message: "summary line\n\nsample\ncommit\nmessage\n".into(),
            matched_ranges: vec![summary_match],
        },
    ]
}

pub fn seed_monitor_notification() -> Vec<u8> {
    code_monitor_notification(
        "My test monitor",
        "https://sourcegraph.com/code-monitoring/Q29kZU1vbml0b3I6NDI=?utm_source=",
        "repo:camdentest -file:id_rsa.pub BEGIN",
        &seed_monitor_results(),
    )
}

pub fn example_webhook_disabled() -> Vec<u8> {
    WebhookDisabled {
        webhook_id: WEBHOOK.parse().unwrap(),
        reason: DisableReason::Gone,
        status: Some(410),
        detail: "the target answered 410 Gone".into(),
        disabled_at: ts("2026-01-15T10:00:00Z"),
    }
    .to_payload()
}

pub fn example_webhook_failing() -> Vec<u8> {
    WebhookFailing {
        webhook_id: WEBHOOK.parse().unwrap(),
        consecutive_failures: 4,
        failing_since: ts("2026-01-15T09:58:00Z"),
        last_error: Some("HTTP 502".into()),
        failing_at: ts("2026-01-15T10:00:00Z"),
    }
    .to_payload()
}

pub fn example_webhook_paused() -> Vec<u8> {
    WebhookPaused {
        webhook_id: WEBHOOK.parse().unwrap(),
        consecutive_failures: 4,
        paused_until: ts("2026-01-15T10:01:00Z"),
        paused_at: ts("2026-01-15T10:00:00Z"),
    }
    .to_payload()
}

pub fn example_webhook_recovered() -> Vec<u8> {
    WebhookRecovered {
        webhook_id: WEBHOOK.parse().unwrap(),
        failed_attempts: 5,
        failing_since: Some(ts("2026-01-15T09:58:00Z")),
        recovered_at: ts("2026-01-15T10:01:00Z"),
    }
    .to_payload()
}

pub fn example_delivery_exhausted() -> Vec<u8> {
    DeliveryExhausted {
        webhook_id: WEBHOOK.parse().unwrap(),
        delivery_id: DELIVERY.parse().unwrap(),
        event_id: EVENT.parse().unwrap(),
        event_type: CHANGESET_UPDATE.into(),
        attempts: 8,
        last_status: Some(503),
        last_error: None,
        exhausted_at: ts("2026-01-16T10:00:00Z"),
    }
    .to_payload()
}

pub fn example_delivery_recovered() -> Vec<u8> {
    DeliveryRecovered {
        webhook_id: WEBHOOK.parse().unwrap(),
        delivery_id: DELIVERY.parse().unwrap(),
        event_id: EVENT.parse().unwrap(),
        event_type: CHANGESET_UPDATE.into(),
        status: 200,
        failed_attempts: 3,
        failing_since: ts("2026-01-15T09:30:00Z"),
        recovered_at: ts("2026-01-15T10:00:00Z"),
    }
    .to_payload()
}

pub fn example_ping() -> Vec<u8> {
    Ping::new(WEBHOOK.parse().unwrap(), ts("2026-01-15T10:00:00Z")).to_payload()
}

/// The `repo:push` example, as herald-ingest builds it.
pub fn example_repo_push() -> Vec<u8> {
    let sha = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";
    let push = RepoPush {
        repository: "github.com/octo-org/hello-world".into(),
        code_host: CodeHost {
            kind: CodeHostKind::GitHub,
            urn: "https://github.com".into(),
        },
        ref_name: "refs/heads/main".into(),
        before: "6113728f27ae82c7b1a177c8d03f9e96e0adf246".into(),
        after: sha.into(),
        commits: vec![PushCommit {
            id: sha.into(),
            message: Some("Update README.md".into()),
            author_name: Some("Mona Lisa".into()),
            author_email: Some("mona@example.com".into()),
            timestamp: Some(ts("2026-01-15T10:00:00Z")),
            url: Some(format!(
                "https://github.com/octo-org/hello-world/commit/{sha}"
            )),
        }],
        pusher: Some(Pusher {
            name: "monalisa".into(),
            email: Some("mona@example.com".into()),
        }),
    };
    serde_json::to_vec(&push).unwrap()
}

/// Event properties as a SonarQube producer would publish them: one to merge, one not.
pub fn sonar_properties() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("sonar.analysis.buildNumber".to_owned(), "12345".to_owned()),
        ("sonar.projectKey".to_owned(), "not-merged".to_owned()),
    ])
}

/// The body Herald delivers for each built-in type's example: built by Herald's own
/// builders where Herald writes the payload, else the example as published.
pub fn delivered_example(catalogue: &Catalogue, key: &str) -> Vec<u8> {
    let example = catalogue.get(key).unwrap().example_bytes();
    match key {
        CODE_MONITOR_NOTIFICATION => seed_monitor_notification(),
        SONARQUBE_ANALYSIS => prepare_payload(key, &example, &sonar_properties()),
        REPO_PUSH => example_repo_push(),
        HERALD_WEBHOOK_DISABLED => example_webhook_disabled(),
        HERALD_WEBHOOK_FAILING => example_webhook_failing(),
        HERALD_WEBHOOK_PAUSED => example_webhook_paused(),
        HERALD_WEBHOOK_RECOVERED => example_webhook_recovered(),
        HERALD_DELIVERY_EXHAUSTED => example_delivery_exhausted(),
        HERALD_DELIVERY_RECOVERED => example_delivery_recovered(),
        HERALD_PING => example_ping(),
        _ => example,
    }
}
