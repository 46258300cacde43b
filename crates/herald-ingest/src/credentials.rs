//! What a receiver verifies requests with. Secrets stay [`Secret`]s, so a
//! `ReceiverCredentials` can be logged with `{:?}` without leaking anything.

use herald_core::secret::Secret;
use serde::Serialize;

/// One credential: a shared secret (GitHub, GitLab, Bitbucket) or an HTTP
/// basic-auth pair (Azure DevOps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    Secret(Secret),
    Basic { username: String, password: Secret },
}

/// The credentials of one receiver.
///
/// `previous` is the credential being rotated out. The server sets it only
/// while the rotation's grace period runs; this crate does not look at clocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverCredentials {
    pub current: Credential,
    pub previous: Option<Credential>,
    /// GitHub: also accept the legacy SHA-1 `X-Hub-Signature` when
    /// `X-Hub-Signature-256` is absent.
    pub github_legacy_sha1: bool,
    /// GitLab: also accept Standard Webhooks signing (`webhook-signature`),
    /// keyed with [`Secret::standard_key`] of the same secret.
    pub gitlab_standard_webhooks: bool,
}

/// Which of the receiver's credentials matched, for the request log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyUsed {
    Current,
    Previous,
}

impl ReceiverCredentials {
    pub fn secret(secret: Secret) -> Self {
        Self::new(Credential::Secret(secret))
    }

    pub fn basic(username: impl Into<String>, password: Secret) -> Self {
        Self::new(Credential::Basic {
            username: username.into(),
            password,
        })
    }

    fn new(current: Credential) -> Self {
        Self {
            current,
            previous: None,
            github_legacy_sha1: false,
            gitlab_standard_webhooks: false,
        }
    }

    /// Also accepts `previous` (during a rotation's grace period).
    pub fn with_previous(mut self, previous: Credential) -> Self {
        self.previous = Some(previous);
        self
    }

    pub fn with_github_legacy_sha1(mut self) -> Self {
        self.github_legacy_sha1 = true;
        self
    }

    pub fn with_gitlab_standard_webhooks(mut self) -> Self {
        self.gitlab_standard_webhooks = true;
        self
    }

    /// The current and previous credentials, each tagged with which it is.
    pub(crate) fn candidates(&self) -> impl Iterator<Item = (KeyUsed, &Credential)> {
        std::iter::once((KeyUsed::Current, &self.current))
            .chain(self.previous.iter().map(|p| (KeyUsed::Previous, p)))
    }
}
