//! Sealing secrets at rest. Webhook secrets are stored as
//! `nonce (24 bytes) || XChaCha20-Poly1305 ciphertext`, under a 32-byte key that
//! lives outside the database (a key file in the data directory, or the config).

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;

const NONCE_LEN: usize = 24;
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum CipherError {
    #[error("the sealed secret is corrupt or was sealed with another key")]
    Open,
    #[error("a secret key must be {KEY_LEN} bytes, got {0}")]
    KeyLength(usize),
}

#[derive(Clone)]
pub struct SecretCipher {
    aead: XChaCha20Poly1305,
}

impl SecretCipher {
    pub fn new(key: &[u8]) -> Result<Self, CipherError> {
        if key.len() != KEY_LEN {
            return Err(CipherError::KeyLength(key.len()));
        }
        Ok(Self {
            aead: XChaCha20Poly1305::new(Key::from_slice(key)),
        })
    }

    pub fn generate_key() -> [u8; KEY_LEN] {
        let mut key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        key
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CipherError> {
        if sealed.len() < NONCE_LEN {
            return Err(CipherError::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.aead
            .decrypt(XNonce::from_slice(nonce), ciphertext)
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

    #[test]
    fn seal_then_open_round_trips_and_ciphertext_hides_plaintext() {
        let cipher = SecretCipher::new(&SecretCipher::generate_key()).unwrap();
        let sealed = cipher.seal(b"whsec_abc");
        assert!(!sealed.windows(9).any(|w| w == b"whsec_abc"));
        assert_eq!(cipher.open(&sealed).unwrap(), b"whsec_abc");
    }

    #[test]
    fn another_key_or_tampering_fails_to_open() {
        let a = SecretCipher::new(&SecretCipher::generate_key()).unwrap();
        let b = SecretCipher::new(&SecretCipher::generate_key()).unwrap();
        let mut sealed = a.seal(b"s");
        assert!(b.open(&sealed).is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(a.open(&sealed).is_err());
    }
}
