//! `repo:push`: a push to a code host, normalized from GitHub, GitLab, Bitbucket
//! Server/Data Center, Bitbucket Cloud and Azure DevOps webhooks.

use herald_core::time::Timestamp;
use serde::{Deserialize, Serialize};

use super::to_bytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeHostKind {
    Github,
    Gitlab,
    BitbucketServer,
    BitbucketCloud,
    AzureDevops,
}

impl CodeHostKind {
    pub const ALL: [Self; 5] = [
        Self::Github,
        Self::Gitlab,
        Self::BitbucketServer,
        Self::BitbucketCloud,
        Self::AzureDevops,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Gitlab => "gitlab",
            Self::BitbucketServer => "bitbucket_server",
            Self::BitbucketCloud => "bitbucket_cloud",
            Self::AzureDevops => "azure_devops",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeHost {
    pub kind: CodeHostKind,
    /// The code host's base URL, e.g. `https://github.com`.
    pub urn: String,
}

/// One pushed commit; fields the host does not send are `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushCommit {
    pub id: String,
    pub message: Option<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub timestamp: Option<Timestamp>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoPush {
    /// Host and path, e.g. `github.com/owner/name`.
    pub repository: String,
    pub code_host: CodeHost,
    /// The full ref, e.g. `refs/heads/main`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The ref's old commit; forty zeros when the ref was created.
    pub before: String,
    /// The ref's new commit; forty zeros when the ref was deleted.
    pub after: String,
    /// Empty when the host's webhook does not list commits (Bitbucket Server).
    pub commits: Vec<PushCommit>,
    /// Who pushed, when the host says.
    pub pusher: Option<String>,
}

impl RepoPush {
    /// The compact JSON body, fields in declaration order.
    pub fn to_payload(&self) -> Vec<u8> {
        to_bytes(self)
    }
}
