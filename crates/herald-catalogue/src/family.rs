//! Families of event types, and the native headers each family's receivers expect.
//!
//! Producers moving from Sourcegraph or SonarQube keep their receivers: those check
//! the product's own headers, so deliveries of those families carry them on top of
//! the common ones (Content-Type, User-Agent, Standard Webhooks), which the delivery
//! crate adds for every family.

use std::collections::BTreeMap;
use std::fmt;

use herald_core::secret::Secret;
use herald_core::signing::hex_hmac_sha256;
use serde::{Deserialize, Serialize};

pub const SOURCEGRAPH_EVENT_TYPE_HEADER: &str = "X-Sourcegraph-Webhook-Event-Type";
pub const SOURCEGRAPH_SIGNATURE_HEADER: &str = "X-Sourcegraph-Webhook-Signature";
pub const SONARQUBE_PROJECT_HEADER: &str = "X-SonarQube-Project";
pub const SONARQUBE_SIGNATURE_HEADER: &str = "X-Sonar-Webhook-HMAC-SHA256";
/// Which part of a code monitor run's notifications a delivery is (1-based)…
pub const NOTIFICATION_PART_HEADER: &str = "Herald-Notification-Part";
/// …of how many of its kind the run sent.
pub const NOTIFICATION_PARTS_HEADER: &str = "Herald-Notification-Parts";
/// The event properties a code monitor notification carries its part in; the
/// delivery turns them into [`NOTIFICATION_PART_HEADER`] and
/// [`NOTIFICATION_PARTS_HEADER`], so the seed's payload stays as it is.
pub const NOTIFICATION_PART_PROPERTY: &str = "notification_part";
pub const NOTIFICATION_PARTS_PROPERTY: &str = "notification_parts";

/// Who defines a type's payload, and so which native headers its deliveries carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Sourcegraph outgoing webhooks: batch changes and changesets (seed 001).
    Sourcegraph,
    /// Sourcegraph code monitor webhook notifications (seed 000). No native headers.
    CodeMonitor,
    /// SonarQube analysis webhooks (seed 004).
    #[serde(rename = "sonarqube")]
    SonarQube,
    /// Semgrep scan and findings webhooks (seed 003). No native headers.
    Semgrep,
    /// Events normalized from incoming code host webhooks (`repo:push`). No native headers.
    CodeHost,
    /// Operational events about Herald itself (`herald:*`). No native headers.
    Herald,
    /// Types registered by producers. No native headers.
    Custom,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sourcegraph => "sourcegraph",
            Self::CodeMonitor => "code_monitor",
            Self::SonarQube => "sonarqube",
            Self::Semgrep => "semgrep",
            Self::CodeHost => "code_host",
            Self::Herald => "herald",
            Self::Custom => "custom",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The family-specific headers of one delivery, computed over the exact body sent.
///
/// `project` is SonarQube's project key; when `None`, it is read from the body's
/// `project.key`, and the header is left out if the body has none.
pub fn native_headers(
    family: Family,
    event_type: &str,
    project: Option<&str>,
    body: &[u8],
    secret: &Secret,
) -> Vec<(String, String)> {
    match family {
        Family::Sourcegraph => sourcegraph_headers(event_type, body, secret),
        Family::SonarQube => sonarqube_headers(project, body, secret),
        Family::CodeMonitor
        | Family::Semgrep
        | Family::CodeHost
        | Family::Herald
        | Family::Custom => Vec::new(),
    }
}

fn sourcegraph_headers(event_type: &str, body: &[u8], secret: &Secret) -> Vec<(String, String)> {
    vec![
        (
            SOURCEGRAPH_EVENT_TYPE_HEADER.to_owned(),
            event_type.to_owned(),
        ),
        (
            SOURCEGRAPH_SIGNATURE_HEADER.to_owned(),
            hex_hmac_sha256(secret.raw_key(), body),
        ),
    ]
}

/// Every Herald webhook has a secret, so the signature header SonarQube sends only
/// "when a secret is set" is always present here.
fn sonarqube_headers(project: Option<&str>, body: &[u8], secret: &Secret) -> Vec<(String, String)> {
    let mut headers = Vec::with_capacity(2);
    let project = project.map(str::to_owned).or_else(|| project_key_in(body));
    if let Some(key) = project {
        headers.push((SONARQUBE_PROJECT_HEADER.to_owned(), key));
    }
    headers.push((
        SONARQUBE_SIGNATURE_HEADER.to_owned(),
        hex_hmac_sha256(secret.raw_key(), body),
    ));
    headers
}

/// The headers a delivery carries from its event's envelope (its properties,
/// not its body): a code monitor notification's part, `2` of `3`. Left out
/// unless both properties are numbers with `1 <= part <= parts`, as Herald
/// writes them, so a producer's stray property never makes a bogus header.
pub fn envelope_headers(
    family: Family,
    properties: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    if family != Family::CodeMonitor {
        return Vec::new();
    }
    let number = |key: &str| properties.get(key).and_then(|v| v.parse::<u32>().ok());
    match (
        number(NOTIFICATION_PART_PROPERTY),
        number(NOTIFICATION_PARTS_PROPERTY),
    ) {
        (Some(part), Some(parts)) if 1 <= part && part <= parts => vec![
            (NOTIFICATION_PART_HEADER.to_owned(), part.to_string()),
            (NOTIFICATION_PARTS_HEADER.to_owned(), parts.to_string()),
        ],
        _ => Vec::new(),
    }
}

/// `project.key` of a SonarQube payload, if the body has one.
pub fn project_key_in(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Payload {
        project: Project,
    }
    #[derive(Deserialize)]
    struct Project {
        key: String,
    }
    serde_json::from_slice::<Payload>(body)
        .ok()
        .map(|p| p.project.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::parse("secret").unwrap()
    }

    #[test]
    fn families_without_native_headers_add_none() {
        for family in [
            Family::CodeMonitor,
            Family::Semgrep,
            Family::CodeHost,
            Family::Herald,
            Family::Custom,
        ] {
            assert!(
                native_headers(family, "x:y", None, b"{}", &secret()).is_empty(),
                "{family}"
            );
        }
    }

    #[test]
    fn sonarqube_project_comes_from_the_argument_before_the_body() {
        let body = br#"{"project":{"key":"from-body","name":"n"}}"#;
        let given = native_headers(
            Family::SonarQube,
            "sonarqube:analysis",
            Some("given"),
            body,
            &secret(),
        );
        assert_eq!(
            given[0],
            (SONARQUBE_PROJECT_HEADER.to_owned(), "given".to_owned())
        );
        let read = native_headers(
            Family::SonarQube,
            "sonarqube:analysis",
            None,
            body,
            &secret(),
        );
        assert_eq!(
            read[0],
            (SONARQUBE_PROJECT_HEADER.to_owned(), "from-body".to_owned())
        );
    }

    #[test]
    fn sonarqube_without_a_project_key_still_signs() {
        let headers = native_headers(
            Family::SonarQube,
            "sonarqube:analysis",
            None,
            b"[]",
            &secret(),
        );
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].0, SONARQUBE_SIGNATURE_HEADER);
    }

    fn properties(part: &str, parts: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (NOTIFICATION_PART_PROPERTY.to_owned(), part.to_owned()),
            (NOTIFICATION_PARTS_PROPERTY.to_owned(), parts.to_owned()),
        ])
    }

    #[test]
    fn a_code_monitor_part_becomes_two_headers() {
        assert_eq!(
            envelope_headers(Family::CodeMonitor, &properties("2", "3")),
            vec![
                (NOTIFICATION_PART_HEADER.to_owned(), "2".to_owned()),
                (NOTIFICATION_PARTS_HEADER.to_owned(), "3".to_owned()),
            ]
        );
    }

    #[test]
    fn envelope_headers_need_a_code_monitor_and_a_sane_part() {
        assert!(envelope_headers(Family::Custom, &properties("1", "1")).is_empty());
        for (part, parts) in [("0", "1"), ("4", "3"), ("x", "3"), ("1", "")] {
            assert!(
                envelope_headers(Family::CodeMonitor, &properties(part, parts)).is_empty(),
                "{part}/{parts}"
            );
        }
        assert!(envelope_headers(Family::CodeMonitor, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn family_names_round_trip_through_serde() {
        let json = serde_json::to_string(&Family::SonarQube).unwrap();
        assert_eq!(json, "\"sonarqube\"");
        assert_eq!(
            serde_json::from_str::<Family>("\"code_monitor\"").unwrap(),
            Family::CodeMonitor
        );
    }
}
