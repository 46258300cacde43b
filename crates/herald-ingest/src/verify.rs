//! Request verification, over the raw body bytes and before anything is parsed.
//! Every comparison goes through `herald_core::signing`, which is constant-time,
//! and every candidate credential is checked even after one matched, so timing
//! does not tell which one did.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_core::secret::Secret;
use herald_core::signing::{self, BodyMac};
use herald_core::time::Timestamp;
use http::HeaderMap;
use serde::Serialize;

use crate::credentials::{Credential, KeyUsed, ReceiverCredentials};
use crate::kind::CodeHostKind;

const GITHUB_SIGNATURE_256: &str = "X-Hub-Signature-256";
/// GitHub's legacy SHA-1 header; Bitbucket reuses the name for SHA-256.
const HUB_SIGNATURE: &str = "X-Hub-Signature";
const GITLAB_TOKEN: &str = "X-Gitlab-Token";
const WEBHOOK_ID: &str = "webhook-id";
const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
const WEBHOOK_SIGNATURE: &str = "webhook-signature";
const AUTHORIZATION: &str = "Authorization";
const EVENT_KEY: &str = "X-Event-Key";
const BITBUCKET_PING: &str = "diagnostics:ping";
/// How far a Standard Webhooks `webhook-timestamp` may be from this server's
/// clock, either way, as the specification recommends: a captured request
/// can be replayed only within it, and the signed `webhook-id` dedupes that.
pub const STANDARD_WEBHOOKS_TOLERANCE_SECS: i64 = 5 * 60;

/// How a request proved where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyMethod {
    /// `sha256=<hex HMAC-SHA256 of the body>` (GitHub, Bitbucket).
    HmacSha256,
    /// GitHub's `X-Hub-Signature: sha1=<hex>`, only when the receiver opted in.
    LegacyHmacSha1,
    /// GitLab's `X-Gitlab-Token`, equal to the secret.
    Token,
    /// GitLab's Standard Webhooks signing.
    StandardWebhooks,
    /// Azure DevOps' HTTP basic auth.
    BasicAuth,
    /// Bitbucket Server's `diagnostics:ping`, which it sends unsigned. It
    /// carries no data and produces no event.
    UnsignedPing,
}

/// A request that passed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Verified {
    pub method: VerifyMethod,
    /// Which credential matched; `None` for an unsigned ping.
    pub key: Option<KeyUsed>,
    /// The signer's `webhook-timestamp` (Standard Webhooks only), already
    /// checked to be within [`STANDARD_WEBHOOKS_TOLERANCE_SECS`] of the clock.
    pub signed_at: Option<Timestamp>,
}

impl Verified {
    fn by(method: VerifyMethod, key: KeyUsed) -> Self {
        Self {
            method,
            key: Some(key),
            signed_at: None,
        }
    }
}

/// Why a request was refused. The messages name headers, never secrets or
/// the values that were sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the request has no {0} header")]
    MissingHeader(&'static str),
    #[error("the {header} header is malformed: {reason}")]
    MalformedHeader {
        header: &'static str,
        reason: &'static str,
    },
    #[error("the {0} header does not match this receiver's secret")]
    BadSignature(&'static str),
    #[error("the basic-auth username or password does not match this receiver's")]
    BadCredentials,
    #[error("this receiver has no {0} configured")]
    NotConfigured(&'static str),
    #[error(
        "the {0} header is more than 5 minutes away from this server's clock: \
         a replayed or delayed request, or a clock to set right (NTP)"
    )]
    OutsideTolerance(&'static str),
}

/// Checks that a request comes from the code host, per the host's scheme:
///
/// | kind | accepted |
/// |---|---|
/// | GitHub | `X-Hub-Signature-256: sha256=<hex>`; `X-Hub-Signature: sha1=<hex>` only if `github_legacy_sha1` |
/// | GitLab | `X-Gitlab-Token` equal to the secret; `webhook-signature` (with `webhook-id`, `webhook-timestamp`) if `gitlab_standard_webhooks` |
/// | Bitbucket Server | `X-Hub-Signature: sha256=<hex>`; an unsigned `diagnostics:ping` |
/// | Bitbucket Cloud | `X-Hub-Signature: sha256=<hex>` |
/// | Azure DevOps | `Authorization: Basic` with the receiver's username and password |
///
/// A Standard Webhooks `webhook-timestamp` must be within
/// [`STANDARD_WEBHOOKS_TOLERANCE_SECS`] of the system clock.
pub fn verify(
    kind: CodeHostKind,
    creds: &ReceiverCredentials,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Verified, VerifyError> {
    verify_at(kind, creds, headers, body, Timestamp::now())
}

/// [`verify()`] with the clock given: `now` is what a signed timestamp is
/// compared with. The same checks as [`precheck`] then [`BodyCheck`], with
/// the body all at once.
pub fn verify_at(
    kind: CodeHostKind,
    creds: &ReceiverCredentials,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<Verified, VerifyError> {
    match precheck(kind, creds, headers)? {
        Precheck::Verified(verified) => Ok(verified),
        Precheck::NeedsBody(mut check) => {
            check.update(body);
            check.finish(now)
        }
    }
}

/// What the headers alone tell about a request, before its body is read.
#[derive(Debug)]
pub enum Precheck {
    /// Verified by a header compare (GitLab's token, Azure DevOps' basic
    /// auth, Bitbucket Server's unsigned ping): the body proves nothing more.
    Verified(Verified),
    /// The headers are in order; the signature covers the body, so only the
    /// body can settle it: feed it to this check as it arrives.
    NeedsBody(BodyCheck),
}

/// Checks what can be checked of a request before its body is read: a token
/// or basic auth is settled here, and a signature header that is missing or
/// malformed refuses the request, so that a stranger's body need not be read
/// at all. For a signature over the body it answers the [`BodyCheck`] that
/// the body is streamed through.
pub fn precheck(
    kind: CodeHostKind,
    creds: &ReceiverCredentials,
    headers: &HeaderMap,
) -> Result<Precheck, VerifyError> {
    match kind {
        CodeHostKind::GitHub => github_check(creds, headers).map(Precheck::NeedsBody),
        CodeHostKind::GitLab => {
            if creds.gitlab_standard_webhooks
                && let Some(sig) = header(headers, WEBHOOK_SIGNATURE)?
            {
                return standard_webhooks_check(creds, headers, sig).map(Precheck::NeedsBody);
            }
            verify_gitlab_token(creds, headers).map(Precheck::Verified)
        }
        CodeHostKind::BitbucketServer | CodeHostKind::BitbucketCloud => {
            match header(headers, HUB_SIGNATURE)? {
                Some(sig) => {
                    require_prefix(HUB_SIGNATURE, sig, "sha256=", "expected sha256=<hex>")?;
                    let macs = for_each_secret(creds, |s| BodyMac::sha256(s.raw_key()))?;
                    Ok(Precheck::NeedsBody(BodyCheck::new(
                        VerifyMethod::HmacSha256,
                        HUB_SIGNATURE,
                        sig,
                        macs,
                    )))
                }
                None => unsigned_bitbucket(headers, kind == CodeHostKind::BitbucketServer)
                    .map(Precheck::Verified),
            }
        }
        CodeHostKind::AzureDevOps => verify_basic_auth(creds, headers).map(Precheck::Verified),
    }
}

/// A signature over the body, computed as the body arrives: every piece goes
/// through [`BodyCheck::update`] while it is read, and [`BodyCheck::finish`]
/// compares once the last one is in, so verifying takes no second pass over
/// the bytes.
#[derive(Debug)]
pub struct BodyCheck {
    method: VerifyMethod,
    header: &'static str,
    signature: String,
    /// One running MAC per candidate secret (the current one, and the
    /// previous one during a rotation): every one is finished and compared,
    /// so timing does not tell which matched.
    macs: Vec<(KeyUsed, BodyMac)>,
    /// The Standard Webhooks `webhook-timestamp`, checked after the signature.
    signed_secs: Option<i64>,
}

impl BodyCheck {
    fn new(
        method: VerifyMethod,
        header: &'static str,
        signature: &str,
        macs: Vec<(KeyUsed, BodyMac)>,
    ) -> Self {
        Self {
            method,
            header,
            signature: signature.to_owned(),
            macs,
            signed_secs: None,
        }
    }

    /// Feeds the next piece of the body.
    pub fn update(&mut self, piece: &[u8]) {
        for (_, mac) in &mut self.macs {
            mac.update(piece);
        }
    }

    /// Compares the signature over everything fed; `now` is what a signed
    /// timestamp is compared with.
    pub fn finish(self, now: Timestamp) -> Result<Verified, VerifyError> {
        let signature = self.signature;
        let results: Vec<(KeyUsed, bool)> = self
            .macs
            .into_iter()
            .map(|(used, mac)| {
                let matched = match self.method {
                    VerifyMethod::StandardWebhooks => mac.matches_standard(&signature),
                    _ => mac.matches_prefixed(&signature),
                };
                (used, matched)
            })
            .collect();
        let used = first_ok(results).ok_or(VerifyError::BadSignature(self.header))?;
        let Some(signed_secs) = self.signed_secs else {
            return Ok(Verified::by(self.method, used));
        };
        // Checked after the signature, so that the refusal of a signed but stale
        // request says so, and a forged one is told only that it is forged.
        if !within_tolerance(signed_secs, now) {
            return Err(VerifyError::OutsideTolerance(WEBHOOK_TIMESTAMP));
        }
        Ok(Verified {
            method: self.method,
            key: Some(used),
            signed_at: Some(Timestamp::from_millis(signed_secs.saturating_mul(1000))),
        })
    }
}

fn github_check(
    creds: &ReceiverCredentials,
    headers: &HeaderMap,
) -> Result<BodyCheck, VerifyError> {
    if let Some(sig) = header(headers, GITHUB_SIGNATURE_256)? {
        require_prefix(
            GITHUB_SIGNATURE_256,
            sig,
            "sha256=",
            "expected sha256=<hex>",
        )?;
        let macs = for_each_secret(creds, |s| BodyMac::sha256(s.raw_key()))?;
        return Ok(BodyCheck::new(
            VerifyMethod::HmacSha256,
            GITHUB_SIGNATURE_256,
            sig,
            macs,
        ));
    }
    if creds.github_legacy_sha1
        && let Some(sig) = header(headers, HUB_SIGNATURE)?
    {
        require_prefix(HUB_SIGNATURE, sig, "sha1=", "expected sha1=<hex>")?;
        let macs = for_each_secret(creds, |s| BodyMac::sha1(s.raw_key()))?;
        return Ok(BodyCheck::new(
            VerifyMethod::LegacyHmacSha1,
            HUB_SIGNATURE,
            sig,
            macs,
        ));
    }
    Err(VerifyError::MissingHeader(GITHUB_SIGNATURE_256))
}

fn standard_webhooks_check(
    creds: &ReceiverCredentials,
    headers: &HeaderMap,
    sig: &str,
) -> Result<BodyCheck, VerifyError> {
    let msg_id = header(headers, WEBHOOK_ID)?.ok_or(VerifyError::MissingHeader(WEBHOOK_ID))?;
    let ts_text =
        header(headers, WEBHOOK_TIMESTAMP)?.ok_or(VerifyError::MissingHeader(WEBHOOK_TIMESTAMP))?;
    let ts: i64 = ts_text
        .trim()
        .parse()
        .map_err(|_| VerifyError::MalformedHeader {
            header: WEBHOOK_TIMESTAMP,
            reason: "expected whole seconds since the Unix epoch",
        })?;
    let macs = for_each_secret(creds, |s| BodyMac::standard(&s.standard_key(), msg_id, ts))?;
    let mut check = BodyCheck::new(VerifyMethod::StandardWebhooks, WEBHOOK_SIGNATURE, sig, macs);
    check.signed_secs = Some(ts);
    Ok(check)
}

fn within_tolerance(signed_secs: i64, now: Timestamp) -> bool {
    signed_secs.abs_diff(now.seconds()) <= STANDARD_WEBHOOKS_TOLERANCE_SECS.unsigned_abs()
}

fn verify_gitlab_token(
    creds: &ReceiverCredentials,
    headers: &HeaderMap,
) -> Result<Verified, VerifyError> {
    let token = header(headers, GITLAB_TOKEN)?.ok_or(VerifyError::MissingHeader(GITLAB_TOKEN))?;
    let used = match_secret(creds, |s| {
        signing::tokens_equal(s.expose().as_bytes(), token.as_bytes())
    })?
    .ok_or(VerifyError::BadSignature(GITLAB_TOKEN))?;
    Ok(Verified::by(VerifyMethod::Token, used))
}

/// A Bitbucket request without a signature: Bitbucket Server's ping, or a refusal.
fn unsigned_bitbucket(
    headers: &HeaderMap,
    unsigned_ping_allowed: bool,
) -> Result<Verified, VerifyError> {
    if unsigned_ping_allowed && header(headers, EVENT_KEY)? == Some(BITBUCKET_PING) {
        return Ok(Verified {
            method: VerifyMethod::UnsignedPing,
            key: None,
            signed_at: None,
        });
    }
    Err(VerifyError::MissingHeader(HUB_SIGNATURE))
}

fn verify_basic_auth(
    creds: &ReceiverCredentials,
    headers: &HeaderMap,
) -> Result<Verified, VerifyError> {
    let value = header(headers, AUTHORIZATION)?.ok_or(VerifyError::MissingHeader(AUTHORIZATION))?;
    let (user, pass) = parse_basic(value)?;
    let results: Vec<(KeyUsed, bool)> = creds
        .candidates()
        .filter_map(|(used, cred)| match cred {
            Credential::Basic { username, password } => {
                // `&`, not `&&`: compare both halves whatever the first gave.
                let ok = signing::tokens_equal(username.as_bytes(), user.as_bytes())
                    & signing::tokens_equal(password.expose().as_bytes(), pass.as_bytes());
                Some((used, ok))
            }
            Credential::Secret(_) => None,
        })
        .collect();
    if results.is_empty() {
        return Err(VerifyError::NotConfigured(
            "basic-auth username and password",
        ));
    }
    first_ok(results)
        .map(|used| Verified::by(VerifyMethod::BasicAuth, used))
        .ok_or(VerifyError::BadCredentials)
}

fn parse_basic(value: &str) -> Result<(String, String), VerifyError> {
    let malformed = |reason| VerifyError::MalformedHeader {
        header: AUTHORIZATION,
        reason,
    };
    let (scheme, encoded) = value
        .trim()
        .split_once(' ')
        .ok_or(malformed("expected Basic <base64>"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed("expected the Basic scheme"));
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed("the credentials are not base64"))?;
    let text =
        String::from_utf8(decoded).map_err(|_| malformed("the credentials are not UTF-8"))?;
    let (user, pass) = text
        .split_once(':')
        .ok_or(malformed("expected username:password"))?;
    Ok((user.to_owned(), pass.to_owned()))
}

/// Runs `check` against every secret credential of the receiver, and returns
/// which one matched, if any.
fn match_secret(
    creds: &ReceiverCredentials,
    check: impl Fn(&Secret) -> bool,
) -> Result<Option<KeyUsed>, VerifyError> {
    // Collected eagerly so that every candidate is checked, match or not.
    for_each_secret(creds, check).map(first_ok)
}

/// `f` of every secret credential of the receiver, tagged with which it is;
/// a receiver with none (basic auth only) is not configured for this.
fn for_each_secret<T>(
    creds: &ReceiverCredentials,
    f: impl Fn(&Secret) -> T,
) -> Result<Vec<(KeyUsed, T)>, VerifyError> {
    let results: Vec<(KeyUsed, T)> = creds
        .candidates()
        .filter_map(|(used, cred)| match cred {
            Credential::Secret(secret) => Some((used, f(secret))),
            Credential::Basic { .. } => None,
        })
        .collect();
    if results.is_empty() {
        return Err(VerifyError::NotConfigured("shared secret"));
    }
    Ok(results)
}

fn first_ok(results: Vec<(KeyUsed, bool)>) -> Option<KeyUsed> {
    results
        .into_iter()
        .find(|(_, ok)| *ok)
        .map(|(used, _)| used)
}

fn require_prefix(
    header: &'static str,
    value: &str,
    prefix: &str,
    reason: &'static str,
) -> Result<(), VerifyError> {
    if value.trim().starts_with(prefix) {
        Ok(())
    } else {
        Err(VerifyError::MalformedHeader { header, reason })
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<Option<&'h str>, VerifyError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| VerifyError::MalformedHeader {
                header: name,
                reason: "not printable ASCII",
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::parse(s).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn previous_secret_verifies_during_rotation_and_is_reported() {
        let body = b"{}";
        let creds = ReceiverCredentials::secret(secret("new"))
            .with_previous(Credential::Secret(secret("old")));
        let sig = format!("sha256={}", signing::hex_hmac_sha256(b"old", body));
        let h = headers(&[(HUB_SIGNATURE, &sig)]);
        let v = verify(CodeHostKind::BitbucketCloud, &creds, &h, body).unwrap();
        assert_eq!(v.key, Some(KeyUsed::Previous));
        let only_new = ReceiverCredentials::secret(secret("new"));
        assert_eq!(
            verify(CodeHostKind::BitbucketCloud, &only_new, &h, body),
            Err(VerifyError::BadSignature(HUB_SIGNATURE))
        );
    }

    #[test]
    fn github_sha1_needs_the_opt_in() {
        let body = b"payload";
        let sig = {
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"s3").unwrap();
            mac.update(body);
            format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
        };
        let h = headers(&[(HUB_SIGNATURE, &sig)]);
        let plain = ReceiverCredentials::secret(secret("s3"));
        assert_eq!(
            verify(CodeHostKind::GitHub, &plain, &h, body),
            Err(VerifyError::MissingHeader(GITHUB_SIGNATURE_256))
        );
        let legacy = plain.with_github_legacy_sha1();
        assert_eq!(
            verify(CodeHostKind::GitHub, &legacy, &h, body)
                .unwrap()
                .method,
            VerifyMethod::LegacyHmacSha1
        );
    }

    #[test]
    fn basic_auth_parses_and_refuses_wrong_halves() {
        let creds = ReceiverCredentials::basic("azure", secret("pa:ss"));
        let ok = format!("Basic {}", STANDARD.encode("azure:pa:ss"));
        let h = headers(&[(AUTHORIZATION, &ok)]);
        assert_eq!(
            verify(CodeHostKind::AzureDevOps, &creds, &h, b"")
                .unwrap()
                .method,
            VerifyMethod::BasicAuth
        );
        for wrong in ["other:pa:ss", "azure:pass", "azure"] {
            let h = headers(&[(AUTHORIZATION, &format!("Basic {}", STANDARD.encode(wrong)))]);
            assert!(
                verify(CodeHostKind::AzureDevOps, &creds, &h, b"").is_err(),
                "{wrong}"
            );
        }
        let bearer = headers(&[(AUTHORIZATION, "Bearer abc")]);
        assert!(matches!(
            verify(CodeHostKind::AzureDevOps, &creds, &bearer, b""),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }

    #[test]
    fn a_credential_of_the_wrong_shape_is_a_configuration_error() {
        let basic = ReceiverCredentials::basic("u", secret("p"));
        let h = headers(&[(GITLAB_TOKEN, "p")]);
        assert_eq!(
            verify(CodeHostKind::GitLab, &basic, &h, b""),
            Err(VerifyError::NotConfigured("shared secret"))
        );
    }

    #[test]
    fn the_precheck_settles_header_schemes_and_refuses_missing_signatures() {
        let creds = ReceiverCredentials::secret(secret("s3"));
        let token = headers(&[(GITLAB_TOKEN, "s3")]);
        assert!(matches!(
            precheck(CodeHostKind::GitLab, &creds, &token),
            Ok(Precheck::Verified(v)) if v.method == VerifyMethod::Token
        ));
        let wrong = headers(&[(GITLAB_TOKEN, "guess")]);
        assert!(matches!(
            precheck(CodeHostKind::GitLab, &creds, &wrong),
            Err(VerifyError::BadSignature(GITLAB_TOKEN))
        ));
        let none = HeaderMap::new();
        assert!(matches!(
            precheck(CodeHostKind::GitHub, &creds, &none),
            Err(VerifyError::MissingHeader(GITHUB_SIGNATURE_256))
        ));
        assert!(matches!(
            precheck(CodeHostKind::BitbucketCloud, &creds, &none),
            Err(VerifyError::MissingHeader(HUB_SIGNATURE))
        ));
        let signed = headers(&[(GITHUB_SIGNATURE_256, "sha256=00")]);
        assert!(matches!(
            precheck(CodeHostKind::GitHub, &creds, &signed),
            Ok(Precheck::NeedsBody(_))
        ));
        let unprefixed = headers(&[(GITHUB_SIGNATURE_256, "00")]);
        assert!(matches!(
            precheck(CodeHostKind::GitHub, &creds, &unprefixed),
            Err(VerifyError::MalformedHeader { .. })
        ));
        let ping = headers(&[(EVENT_KEY, BITBUCKET_PING)]);
        assert!(matches!(
            precheck(CodeHostKind::BitbucketServer, &creds, &ping),
            Ok(Precheck::Verified(v)) if v.method == VerifyMethod::UnsignedPing
        ));
    }

    #[test]
    fn a_body_streamed_through_the_check_in_pieces_verifies_as_it_would_whole() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let current = ReceiverCredentials::secret(secret("new"))
            .with_previous(Credential::Secret(secret("old")));
        let sig = format!("sha256={}", signing::hex_hmac_sha256(b"old", body));
        let h = headers(&[(GITHUB_SIGNATURE_256, sig.as_str())]);
        let streamed = |pieces: &[&[u8]]| {
            let Ok(Precheck::NeedsBody(mut check)) = precheck(CodeHostKind::GitHub, &current, &h)
            else {
                panic!("a signed GitHub request needs its body");
            };
            for piece in pieces {
                check.update(piece);
            }
            check.finish(Timestamp::now())
        };
        let (head, tail) = body.split_at(9);
        assert_eq!(
            streamed(&[head, b"", tail]).map(|v| v.key),
            Ok(Some(KeyUsed::Previous))
        );
        assert_eq!(
            streamed(&[head]),
            Err(VerifyError::BadSignature(GITHUB_SIGNATURE_256)),
            "a body cut short does not verify"
        );
    }

    #[test]
    fn errors_never_echo_what_was_sent() {
        let creds = ReceiverCredentials::secret(secret("topsecret"));
        let h = headers(&[(GITLAB_TOKEN, "guessed-token")]);
        let err = verify(CodeHostKind::GitLab, &creds, &h, b"")
            .unwrap_err()
            .to_string();
        assert!(
            !err.contains("guessed-token") && !err.contains("topsecret"),
            "{err}"
        );
    }
}
