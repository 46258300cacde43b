//! Webhook secrets. A secret never prints: `Debug` and `Display` are redacted,
//! so a secret can sit in any struct that gets logged.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

use crate::validation::FieldError;

/// The prefix of secrets in the Standard Webhooks format.
pub const WHSEC_PREFIX: &str = "whsec_";
pub const MAX_SECRET_LEN: usize = 200;
/// Below this many characters (or key bytes, for a `whsec_` secret) a secret
/// is accepted but weak: short enough to guess offline from one signed request.
pub const MIN_STRONG_SECRET_LEN: usize = 16;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// `whsec_` followed by the base64 of 32 random bytes.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self(format!("{WHSEC_PREFIX}{}", STANDARD.encode(key)))
    }

    /// A secret given by a user: 1 to 200 characters.
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let len = text.chars().count();
        if len == 0 || len > MAX_SECRET_LEN {
            return Err(FieldError::new(
                "secret",
                format!(
                    "must be 1 to {MAX_SECRET_LEN} characters long, got {len}; omit it to have one generated"
                ),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// Why this secret is weak, for a warning next to an accepted create or
    /// update; `None` when it is long enough. A `whsec_` secret is measured by
    /// the key bytes it decodes to, since those are what is signed with.
    pub fn weakness(&self) -> Option<String> {
        let advice = "use at least 16 random characters, or omit the secret to have one generated";
        if let Some(key) = self.whsec_key() {
            return (key.len() < MIN_STRONG_SECRET_LEN).then(|| {
                format!(
                    "this whsec_ secret decodes to only {} key bytes; {advice}",
                    key.len()
                )
            });
        }
        let len = self.0.chars().count();
        (len < MIN_STRONG_SECRET_LEN)
            .then(|| format!("this secret is only {len} characters long; {advice}"))
    }

    /// Rebuilds a secret read back from the store; no validation.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The text the user gave or was given. Call only to show it to its owner
    /// or to seal it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key for the Standard Webhooks signature: the base64-decoded bytes
    /// of a `whsec_` secret, else the UTF-8 bytes of the secret.
    pub fn standard_key(&self) -> Vec<u8> {
        self.whsec_key()
            .unwrap_or_else(|| self.0.as_bytes().to_vec())
    }

    /// The key bytes of a `whsec_<base64>` secret; `None` for any other text.
    fn whsec_key(&self) -> Option<Vec<u8>> {
        let encoded = self.0.strip_prefix(WHSEC_PREFIX)?;
        STANDARD.decode(encoded).ok()
    }

    /// The HMAC key for hex signatures (Sourcegraph, SonarQube, code hosts):
    /// always the UTF-8 bytes, as those products do.
    pub fn raw_key(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_is_whsec_with_32_key_bytes() {
        let s = Secret::generate();
        assert!(s.expose().starts_with(WHSEC_PREFIX));
        assert_eq!(s.standard_key().len(), 32);
    }

    #[test]
    fn plain_secret_keys_with_its_utf8_bytes() {
        let s = Secret::parse("hunter2").unwrap();
        assert_eq!(s.standard_key(), b"hunter2");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::parse("hunter2").unwrap();
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }

    #[test]
    fn short_secrets_are_accepted_with_a_weakness() {
        let short = Secret::parse("hunter2").unwrap();
        let warning = short.weakness().unwrap();
        assert!(warning.contains("only 7 characters"), "{warning}");
        assert!(!warning.contains("hunter2"), "{warning}");
        assert!(Secret::parse(&"é".repeat(15)).unwrap().weakness().is_some());
        assert_eq!(Secret::parse(&"é".repeat(16)).unwrap().weakness(), None);
        assert_eq!(Secret::generate().weakness(), None);
    }

    #[test]
    fn a_whsec_secret_is_measured_by_its_key_bytes() {
        let eight = Secret::parse(&format!("{WHSEC_PREFIX}{}", STANDARD.encode([7u8; 8]))).unwrap();
        assert!(eight.expose().chars().count() >= MIN_STRONG_SECRET_LEN);
        let warning = eight.weakness().unwrap();
        assert!(warning.contains("8 key bytes"), "{warning}");
        let sixteen =
            Secret::parse(&format!("{WHSEC_PREFIX}{}", STANDARD.encode([7u8; 16]))).unwrap();
        assert_eq!(sixteen.weakness(), None);
        // Not base64: keyed (and measured) by its characters.
        assert_eq!(
            Secret::parse("whsec_not*base64*but-long")
                .unwrap()
                .weakness(),
            None
        );
    }

    #[test]
    fn length_limits_are_enforced() {
        assert!(Secret::parse("").is_err());
        assert!(Secret::parse(&"x".repeat(201)).is_err());
        assert!(Secret::parse(&"é".repeat(200)).is_ok());
    }
}
