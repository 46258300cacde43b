//! herald-ingest's request checks, which see every unauthenticated request:
//! `verify` (each host's signature, token and basic-auth header parsers) with
//! every opt-in on and a current and a previous credential, then the header
//! redaction for the request log and `identify`.
#![no_main]

use herald_core::secret::Secret;
use herald_core::time::Timestamp;
use herald_fuzz::request;
use herald_ingest::{
    CodeHostKind, Credential, ReceiverCredentials, identify, redact_headers, verify_at,
};
use libfuzzer_sys::fuzz_target;

/// 2026-01-01T00:00:00Z: a fixed clock keeps runs reproducible.
const NOW_MS: i64 = 1_767_225_600_000;

fuzz_target!(|data: &[u8]| {
    let (headers, body) = request(data);
    let secret = Secret::from_stored("fuzz-secret".to_owned());
    let with_secret = ReceiverCredentials::secret(secret.clone())
        .with_previous(Credential::Secret(Secret::from_stored(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        )))
        .with_github_legacy_sha1()
        .with_gitlab_standard_webhooks();
    let with_basic = ReceiverCredentials::basic("herald", secret);
    for kind in CodeHostKind::ALL {
        let creds = match kind {
            CodeHostKind::AzureDevOps => &with_basic,
            _ => &with_secret,
        };
        let now = Timestamp::from_millis(NOW_MS);
        let _ = verify_at(kind, creds, &headers, body, now);
        let _ = redact_headers(kind, &headers);
        let _ = identify(kind, &headers, body);
    }
});
