//! API tokens: `hrld_` followed by 32 random bytes (base64url), stored only as
//! their SHA-256 digest. The bytes are random, so one unsalted hash suffices:
//! nothing about the token can be guessed from its digest, and the digest can
//! be found by an index.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How every API token starts, so that a leaked one is recognizable (secret
/// scanners, logs) and told apart from the admin token at once.
pub const TOKEN_PREFIX: &str = "hrld_";

/// Random bytes in a token: 256 bits of entropy.
const TOKEN_BYTES: usize = 32;

/// A token's SHA-256 digest: what the store keeps and looks tokens up by.
pub type TokenDigest = [u8; 32];

/// A freshly generated token. It never prints: it is shown once, to its
/// creator, through [`ApiToken::expose`].
pub struct ApiToken(String);

impl ApiToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> TokenDigest {
        digest(&self.0)
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// The digest a presented token is looked up by.
pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a presented bearer value could be an API token at all; anything
/// else is not looked up.
pub fn looks_like_token(token: &str) -> bool {
    token.starts_with(TOKEN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_prefixed_and_carries_32_random_bytes() {
        let token = ApiToken::generate();
        let encoded = token.expose().strip_prefix(TOKEN_PREFIX).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(encoded).unwrap().len(), 32);
        assert_ne!(token.expose(), ApiToken::generate().expose());
    }

    #[test]
    fn the_digest_is_sha256_of_the_whole_token() {
        // SHA-256("abc"), FIPS 180-2's example.
        assert_eq!(
            hex::encode(digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let token = ApiToken::generate();
        assert_eq!(token.digest(), digest(token.expose()));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let token = ApiToken::generate();
        assert!(!format!("{token:?}").contains(token.expose()));
    }
}
