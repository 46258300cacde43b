//! The code hosts Herald receives webhooks from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CodeHostKind {
    #[serde(rename = "github")]
    GitHub,
    #[serde(rename = "gitlab")]
    GitLab,
    #[serde(rename = "bitbucket_server")]
    BitbucketServer,
    #[serde(rename = "bitbucket_cloud")]
    BitbucketCloud,
    #[serde(rename = "azure_devops")]
    AzureDevOps,
}

impl CodeHostKind {
    pub const ALL: [CodeHostKind; 5] = [
        CodeHostKind::GitHub,
        CodeHostKind::GitLab,
        CodeHostKind::BitbucketServer,
        CodeHostKind::BitbucketCloud,
        CodeHostKind::AzureDevOps,
    ];

    /// The wire name, as in the API and the `code_host.kind` of payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeHostKind::GitHub => "github",
            CodeHostKind::GitLab => "gitlab",
            CodeHostKind::BitbucketServer => "bitbucket_server",
            CodeHostKind::BitbucketCloud => "bitbucket_cloud",
            CodeHostKind::AzureDevOps => "azure_devops",
        }
    }
}

impl fmt::Display for CodeHostKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown code host kind {0:?}; use one of github, gitlab, bitbucket_server, bitbucket_cloud, azure_devops"
)]
pub struct UnknownKind(pub String);

impl FromStr for CodeHostKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// The status to answer a verified request whose event Herald does not handle.
/// GitLab gets 204 No Content, which it records as delivered and does not
/// retry; the others get a plain 200.
pub fn ignored_status(kind: CodeHostKind) -> u16 {
    match kind {
        CodeHostKind::GitLab => 204,
        _ => 200,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_through_serde_and_from_str() {
        for kind in CodeHostKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<CodeHostKind>(&json).unwrap(), kind);
            assert_eq!(kind.as_str().parse::<CodeHostKind>().unwrap(), kind);
        }
        assert!("git_hub".parse::<CodeHostKind>().is_err());
    }

    #[test]
    fn only_gitlab_gets_204_for_ignored_events() {
        assert_eq!(ignored_status(CodeHostKind::GitLab), 204);
        assert_eq!(ignored_status(CodeHostKind::GitHub), 200);
        assert_eq!(ignored_status(CodeHostKind::AzureDevOps), 200);
    }
}
