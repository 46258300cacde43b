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
    let mut mac = keyed(key);
    for part in parts {
        mac.update(part);
    }
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
    let mut mac = BodyMac::standard(key, msg_id, timestamp_secs);
    mac.update(body);
    mac.matches_standard(header)
}

/// Checks `sha256=<hex>` (GitHub `X-Hub-Signature-256`, Bitbucket `X-Hub-Signature`).
pub fn verify_prefixed_sha256(key: &[u8], body: &[u8], header: &str) -> bool {
    let mut mac = BodyMac::sha256(key);
    mac.update(body);
    mac.matches_prefixed(header)
}

/// Checks GitHub's legacy `X-Hub-Signature: sha1=<hex>`.
pub fn verify_prefixed_sha1(key: &[u8], body: &[u8], header: &str) -> bool {
    let mut mac = BodyMac::sha1(key);
    mac.update(body);
    mac.matches_prefixed(header)
}

/// An HMAC of a request body computed piece by piece as the body arrives, so
/// the signature is known when its last byte is, without a second pass over
/// the bytes; then checked against the signature header, in constant time.
pub struct BodyMac(Running);

enum Running {
    Sha256(HmacSha256),
    Sha1(HmacSha1),
    /// Standard Webhooks: HMAC-SHA256 of `id.timestamp.body`.
    Standard(HmacSha256),
}

impl BodyMac {
    /// For `sha256=<hex>` headers.
    pub fn sha256(key: &[u8]) -> Self {
        Self(Running::Sha256(keyed(key)))
    }

    /// For GitHub's legacy `sha1=<hex>` header.
    pub fn sha1(key: &[u8]) -> Self {
        let mac = HmacSha1::new_from_slice(key).expect("HMAC takes any key length");
        Self(Running::Sha1(mac))
    }

    /// For a Standard Webhooks `webhook-signature` header: the signed content
    /// starts with the message id and timestamp, then the body.
    pub fn standard(key: &[u8], msg_id: &str, timestamp_secs: i64) -> Self {
        let mut mac = keyed(key);
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_secs.to_string().as_bytes());
        mac.update(b".");
        Self(Running::Standard(mac))
    }

    /// Feeds the next piece of the body.
    pub fn update(&mut self, piece: &[u8]) {
        match &mut self.0 {
            Running::Sha256(mac) | Running::Standard(mac) => mac.update(piece),
            Running::Sha1(mac) => mac.update(piece),
        }
    }

    /// Whether a `sha256=<hex>` or `sha1=<hex>` header (whichever this MAC is
    /// for) carries the body's signature.
    pub fn matches_prefixed(self, header: &str) -> bool {
        let header = header.trim();
        match self.0 {
            Running::Sha256(mac) => header
                .strip_prefix("sha256=")
                .is_some_and(|hex_sig| verify_hex(&mac.finalize().into_bytes(), hex_sig)),
            Running::Sha1(mac) => header
                .strip_prefix("sha1=")
                .is_some_and(|hex_sig| verify_hex(&mac.finalize().into_bytes(), hex_sig)),
            Running::Standard(_) => false,
        }
    }

    /// Whether any `v1,<base64>` entry of a Standard Webhooks header carries
    /// the signature.
    pub fn matches_standard(self, header: &str) -> bool {
        let Running::Standard(mac) = self.0 else {
            return false;
        };
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        let mut found = false;
        for entry in header.split_whitespace() {
            if let Some(sig) = entry.strip_prefix("v1,") {
                // Keep looping after a match so timing doesn't reveal which entry matched.
                found |= bool::from(sig.as_bytes().ct_eq(expected.as_bytes()));
            }
        }
        found
    }
}

/// Key material is inside; nothing of it is printed.
impl std::fmt::Debug for BodyMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.0 {
            Running::Sha256(_) => "sha256",
            Running::Sha1(_) => "sha1",
            Running::Standard(_) => "standard",
        };
        f.debug_tuple("BodyMac").field(&kind).finish()
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    HmacSha256::new_from_slice(key).expect("HMAC takes any key length")
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

    #[test]
    fn a_body_fed_in_pieces_signs_as_it_does_whole() {
        let sig = format!("sha256={}", hex_hmac_sha256(b"k", b"hello world"));
        let mut mac = BodyMac::sha256(b"k");
        for piece in [&b"hel"[..], b"", b"lo wor", b"ld"] {
            mac.update(piece);
        }
        assert!(mac.matches_prefixed(&sig));
        let key = STANDARD.decode(SPEC_KEY_B64).unwrap();
        let mut standard = BodyMac::standard(&key, SPEC_ID, SPEC_TS);
        let (head, tail) = SPEC_BODY.split_at(5);
        standard.update(head);
        standard.update(tail);
        assert!(standard.matches_standard(SPEC_SIG));
    }

    #[test]
    fn a_running_mac_prints_no_key_material() {
        assert_eq!(format!("{:?}", BodyMac::sha1(b"k")), "BodyMac(\"sha1\")");
    }
}
