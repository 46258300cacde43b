//! Sealing secrets at rest. A sealed value is
//! `nonce (24 bytes) || XChaCha20-Poly1305 ciphertext`, under a 32-byte key that
//! lives outside the database (a key file in the data directory, or the config).
//!
//! Every value is bound to the row and column it is stored in (a [`Binding`],
//! the AEAD's associated data), so someone who can write the database but does
//! not hold the key cannot move a sealed value to another row or column: it
//! then fails to open instead of being used in the wrong place.
//!
//! The database also holds a [`SecretCipher::key_check`], a keyed fingerprint of
//! the key, so a node started with another key is refused before it claims work.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use uuid::Uuid;

use crate::signing::hmac_sha256;

const NONCE_LEN: usize = 24;
pub const KEY_LEN: usize = 32;

/// What the key check is an HMAC of: a fixed label, so the check reveals
/// nothing about the key and cannot be mistaken for any other MAC Herald makes.
const KEY_CHECK_LABEL: &[u8] = b"herald key check v1";

#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    #[error("the sealed value is corrupt, belongs to another row, or was sealed with another key")]
    Open,
    #[error("a secret key must be {KEY_LEN} bytes, got {0}")]
    KeyLength(usize),
}

/// The columns that hold sealed values. A receiver's previous credentials are
/// bound like its current ones, because rotating moves the current value there
/// unchanged (the store cannot re-seal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    WebhookUrl,
    WebhookSecret,
    ReceiverCredentials,
    RepositorySource,
}

impl SealedColumn {
    pub fn name(self) -> &'static str {
        match self {
            Self::WebhookUrl => "webhooks.url",
            Self::WebhookSecret => "webhooks.secret",
            Self::ReceiverCredentials => "receivers.credentials",
            Self::RepositorySource => "repositories.source",
        }
    }

    /// The binding of this column in the row with id `row`.
    pub fn of(self, row: Uuid) -> Binding {
        Binding(format!("{}:{row}", self.name()).into_bytes())
    }
}

/// Where a sealed value lives, as associated data: `"<column>:<row id>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding(Vec<u8>);

impl Binding {
    /// The binding of a value sealed for a purpose rather than a row, such as
    /// a console session cookie: `"purpose:<name>"`, which no column's binding
    /// can equal, so neither kind of value opens in the other's place.
    pub fn purpose(name: &'static str) -> Binding {
        Binding(format!("purpose:{name}").into_bytes())
    }
}

#[derive(Clone)]
pub struct SecretCipher {
    aead: XChaCha20Poly1305,
    key_check: [u8; 32],
}

impl SecretCipher {
    pub fn new(key: &[u8]) -> Result<Self, CipherError> {
        if key.len() != KEY_LEN {
            return Err(CipherError::KeyLength(key.len()));
        }
        Ok(Self {
            aead: XChaCha20Poly1305::new(Key::from_slice(key)),
            key_check: hmac_sha256(key, &[KEY_CHECK_LABEL]),
        })
    }

    pub fn generate_key() -> [u8; KEY_LEN] {
        let mut key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        key
    }

    /// HMAC-SHA256(key, label): equal for equal keys, and useless for finding
    /// the key. The database keeps the first node's, and every node compares.
    pub fn key_check(&self) -> [u8; 32] {
        self.key_check
    }

    pub fn seal(&self, plaintext: &[u8], at: &Binding) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: &at.0,
        };
        let ciphertext = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), payload)
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens a value sealed for `at`; one sealed for any other place fails.
    pub fn open(&self, sealed: &[u8], at: &Binding) -> Result<Vec<u8>, CipherError> {
        self.open_with(sealed, &at.0)
    }

    /// Opens a value sealed before values were bound to their place (no
    /// associated data). Only the one-time re-sealing at start uses it.
    pub fn open_unbound(&self, sealed: &[u8]) -> Result<Vec<u8>, CipherError> {
        self.open_with(sealed, &[])
    }

    /// Re-seals a value sealed before binding so it is bound to `at`.
    pub fn rebind(&self, sealed: &[u8], at: &Binding) -> Result<Vec<u8>, CipherError> {
        Ok(self.seal(&self.open_unbound(sealed)?, at))
    }

    fn open_with(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CipherError> {
        if sealed.len() < NONCE_LEN {
            return Err(CipherError::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad,
        };
        self.aead
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| CipherError::Open)
    }
}

impl fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretCipher(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> SecretCipher {
        SecretCipher::new(&SecretCipher::generate_key()).unwrap()
    }

    fn url_of(row: Uuid) -> Binding {
        SealedColumn::WebhookUrl.of(row)
    }

    #[test]
    fn seal_then_open_round_trips_and_ciphertext_hides_plaintext() {
        let cipher = cipher();
        let at = url_of(Uuid::now_v7());
        let sealed = cipher.seal(b"whsec_abc", &at);
        assert!(!sealed.windows(9).any(|w| w == b"whsec_abc"));
        assert_eq!(cipher.open(&sealed, &at).unwrap(), b"whsec_abc");
    }

    #[test]
    fn another_key_or_tampering_fails_to_open() {
        let (a, b) = (cipher(), cipher());
        let at = url_of(Uuid::now_v7());
        let mut sealed = a.seal(b"s", &at);
        assert!(b.open(&sealed, &at).is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(a.open(&sealed, &at).is_err());
    }

    #[test]
    fn a_value_moved_to_another_row_or_column_fails_to_open() {
        let cipher = cipher();
        let (first, second) = (Uuid::now_v7(), Uuid::now_v7());
        let first_secret = cipher.seal(b"s1", &SealedColumn::WebhookSecret.of(first));
        let second_secret = cipher.seal(b"s2", &SealedColumn::WebhookSecret.of(second));
        // Swapped between two rows:
        let at_first = SealedColumn::WebhookSecret.of(first);
        let at_second = SealedColumn::WebhookSecret.of(second);
        assert!(cipher.open(&second_secret, &at_first).is_err());
        assert!(cipher.open(&first_secret, &at_second).is_err());
        // Moved to another column of the same row:
        assert!(cipher.open(&first_secret, &url_of(first)).is_err());
        // Or opened as if it had never been bound:
        assert!(cipher.open_unbound(&first_secret).is_err());
    }

    #[test]
    fn an_unbound_value_opens_only_unbound_until_rebound() {
        let cipher = cipher();
        let at = url_of(Uuid::now_v7());
        let unbound = legacy_seal(&cipher, b"https://x.example/");
        assert!(cipher.open(&unbound, &at).is_err());
        let rebound = cipher.rebind(&unbound, &at).unwrap();
        assert_eq!(cipher.open(&rebound, &at).unwrap(), b"https://x.example/");
        assert!(
            cipher.rebind(&unbound, &at).is_ok(),
            "rebinding is repeatable"
        );
        assert!(other_rebinds_fail(&unbound, &at));
    }

    fn other_rebinds_fail(unbound: &[u8], at: &Binding) -> bool {
        cipher().rebind(unbound, at).is_err()
    }

    /// How values were sealed before bindings: no associated data.
    fn legacy_seal(cipher: &SecretCipher, plaintext: &[u8]) -> Vec<u8> {
        let nonce = [7u8; NONCE_LEN];
        let mut sealed = nonce.to_vec();
        sealed.extend(
            cipher
                .aead
                .encrypt(XNonce::from_slice(&nonce), plaintext)
                .unwrap(),
        );
        sealed
    }

    #[test]
    fn the_key_check_is_the_same_for_one_key_and_differs_between_keys() {
        let key = SecretCipher::generate_key();
        let one = SecretCipher::new(&key).unwrap();
        let again = SecretCipher::new(&key).unwrap();
        assert_eq!(one.key_check(), again.key_check());
        assert_ne!(one.key_check(), cipher().key_check());
    }
}
