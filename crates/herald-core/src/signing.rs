//! Signatures Herald sends and checks. Every comparison is constant-time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;

/// HMAC-SHA256 over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

fn hmac_sha1(key: &[u8], body: &[u8]) -> [u8; 20] {
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The Standard Webhooks `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
pub fn standard_signature(key: &[u8], msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let ts = timestamp_secs.to_string();
    let mac = hmac_sha256(key, &[msg_id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{}", STANDARD.encode(mac))
}

/// Lower-case hex HMAC-SHA256 of the body: Sourcegraph's and SonarQube's headers,
/// and the `sha256=` part of GitHub's and Bitbucket's.
pub fn hex_hmac_sha256(key: &[u8], body: &[u8]) -> String {
    hex::encode(hmac_sha256(key, &[body]))
}

/// Checks a Standard Webhooks `webhook-signature` header, which may carry several
/// space-separated `v1,<sig>` entries (during key rotation).
pub fn verify_standard(
    key: &[u8],
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let expected = standard_signature(key, msg_id, timestamp_secs, body);
    let expected_sig = &expected.as_bytes()[3..];
    let mut found = false;
    for entry in header.split_whitespace() {
        if let Some(sig) = entry.strip_prefix("v1,") {
            // Keep looping after a match so timing doesn't reveal which entry matched.
            found |= bool::from(sig.as_bytes().ct_eq(expected_sig));
        }
    }
    found
}

/// Checks `sha256=<hex>` (GitHub `X-Hub-Signature-256`, Bitbucket `X-Hub-Signature`).
pub fn verify_prefixed_sha256(key: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    verify_hex(&hmac_sha256(key, &[body]), hex_sig)
}

/// Checks GitHub's legacy `X-Hub-Signature: sha1=<hex>`.
pub fn verify_prefixed_sha1(key: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha1=") else {
        return false;
    };
    verify_hex(&hmac_sha1(key, body), hex_sig)
}

fn verify_hex(expected: &[u8], given_hex: &str) -> bool {
    match hex::decode(given_hex.trim()) {
        Ok(given) => bool::from(given.as_slice().ct_eq(expected)),
        Err(_) => false,
    }
}

/// Constant-time equality of two tokens (GitLab's `X-Gitlab-Token`, basic-auth passwords).
pub fn tokens_equal(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The Standard Webhooks specification's published test vector.
    const SPEC_KEY_B64: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1614265330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn standard_signature_matches_the_spec_vector() {
        let key = STANDARD.decode(SPEC_KEY_B64).unwrap();
        assert_eq!(
            standard_signature(&key, SPEC_ID, SPEC_TS, SPEC_BODY),
            SPEC_SIG
        );
    }

    #[test]
    fn standard_verification_accepts_any_listed_signature_and_rejects_tampering() {
        let key = STANDARD.decode(SPEC_KEY_B64).unwrap();
        let header = format!("v1,bm90IGl0 {SPEC_SIG}");
        assert!(verify_standard(&key, SPEC_ID, SPEC_TS, SPEC_BODY, &header));
        assert!(!verify_standard(
            &key,
            SPEC_ID,
            SPEC_TS,
            b"{\"test\": 1}",
            &header
        ));
        assert!(!verify_standard(
            &key,
            SPEC_ID,
            SPEC_TS + 1,
            SPEC_BODY,
            &header
        ));
    }

    #[test]
    fn hex_signature_matches_a_known_value() {
        // echo -n 'hello' | openssl dgst -sha256 -hmac 'secret'
        assert_eq!(
            hex_hmac_sha256(b"secret", b"hello"),
            "88aab3ede8d3adf94d26ab90d3bafd4a2083070c3bcce9c014ee04a443847c0b"
        );
    }

    #[test]
    fn prefixed_checks_need_the_prefix_and_the_right_key() {
        let sig = format!("sha256={}", hex_hmac_sha256(b"k", b"body"));
        assert!(verify_prefixed_sha256(b"k", b"body", &sig));
        assert!(!verify_prefixed_sha256(b"other", b"body", &sig));
        assert!(!verify_prefixed_sha256(b"k", b"body", &sig[7..]));
        assert!(!verify_prefixed_sha256(b"k", b"body", "sha256=zz"));
    }
}
