//! Console sessions, with no table: a session is the presented token, when it
//! ends and a CSRF nonce, sealed with the cluster's secrets key
//! (XChaCha20-Poly1305, bound to the purpose `console.session`) into the
//! cookie itself. Nobody without the key can read or forge one, every node
//! opens every node's sessions, and each request authenticates the token
//! inside again, so revoking the token ends every session made with it.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_core::cipher::{Binding, SecretCipher};
use herald_core::secret::Secret;
use herald_core::signing::tokens_equal;
use herald_core::time::Timestamp;
use rand::RngCore;

use crate::App;

/// How long a session lasts after signing in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The cookie's value is at most this long; anything longer is not ours.
const MAX_COOKIE_LEN: usize = 4096;

const PURPOSE: &str = "console.session";

/// An opened session.
#[derive(Debug)]
pub struct Session {
    /// The token signed in with, to authenticate again on each request.
    pub token: Secret,
    /// What every state-changing form must carry back.
    pub csrf: String,
    pub expires_at: Timestamp,
}

impl Session {
    /// Whether a form's CSRF field is this session's, in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        tokens_equal(presented.as_bytes(), self.csrf.as_bytes())
    }
}

/// A session just sealed into a cookie value.
#[derive(Debug)]
pub struct SealedSession {
    pub cookie: String,
    pub expires_at: Timestamp,
}

impl App {
    /// Seals a session for `token`, which the caller has authenticated.
    pub fn seal_session(&self, token: &str) -> SealedSession {
        let expires_at = Timestamp::now().saturating_add(SESSION_LIFETIME);
        seal(self.cipher(), token, expires_at)
    }

    /// Opens a session cookie; `None` when it is forged, damaged, sealed with
    /// another key or expired. The token inside is not yet authenticated.
    pub fn open_session(&self, cookie: &str) -> Option<Session> {
        open(self.cipher(), cookie, Timestamp::now())
    }
}

fn seal(cipher: &SecretCipher, token: &str, expires_at: Timestamp) -> SealedSession {
    let mut nonce = [0u8; 18];
    rand::rng().fill_bytes(&mut nonce);
    let csrf = URL_SAFE_NO_PAD.encode(nonce);
    let plain = format!("{}\n{csrf}\n{token}", expires_at.millis());
    let sealed = cipher.seal(plain.as_bytes(), &Binding::purpose(PURPOSE));
    SealedSession {
        cookie: URL_SAFE_NO_PAD.encode(sealed),
        expires_at,
    }
}

fn open(cipher: &SecretCipher, cookie: &str, now: Timestamp) -> Option<Session> {
    if cookie.len() > MAX_COOKIE_LEN {
        return None;
    }
    let sealed = URL_SAFE_NO_PAD.decode(cookie).ok()?;
    let plain = cipher.open(&sealed, &Binding::purpose(PURPOSE)).ok()?;
    let plain = String::from_utf8(plain).ok()?;
    let mut parts = plain.splitn(3, '\n');
    let expires_at = Timestamp::from_millis(parts.next()?.parse().ok()?);
    let csrf = parts.next()?.to_owned();
    let token = Secret::from_stored(parts.next()?.to_owned());
    if expires_at <= now {
        return None;
    }
    Some(Session {
        token,
        csrf,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use herald_core::cipher::SealedColumn;

    use super::*;

    fn cipher() -> SecretCipher {
        SecretCipher::new(&SecretCipher::generate_key()).unwrap()
    }

    fn in_an_hour() -> Timestamp {
        Timestamp::now().saturating_add(Duration::from_secs(3600))
    }

    #[test]
    fn a_sealed_session_opens_with_its_token_and_csrf_until_it_expires() {
        let cipher = cipher();
        let expires_at = in_an_hour();
        let sealed = seal(&cipher, "hrld_token", expires_at);
        let session = open(&cipher, &sealed.cookie, Timestamp::now()).unwrap();
        assert_eq!(session.token.expose(), "hrld_token");
        assert_eq!(session.expires_at, expires_at);
        assert!(session.csrf_matches(&session.csrf));
        assert!(!session.csrf_matches("guess"));
        assert!(
            open(&cipher, &sealed.cookie, expires_at).is_none(),
            "expired"
        );
    }

    #[test]
    fn each_session_has_its_own_csrf_token() {
        let cipher = cipher();
        let a = open(
            &cipher,
            &seal(&cipher, "t", in_an_hour()).cookie,
            Timestamp::now(),
        )
        .unwrap();
        let b = open(
            &cipher,
            &seal(&cipher, "t", in_an_hour()).cookie,
            Timestamp::now(),
        )
        .unwrap();
        assert_ne!(a.csrf, b.csrf);
    }

    #[test]
    fn a_forged_tampered_or_foreign_cookie_does_not_open() {
        let cipher = cipher();
        let cookie = seal(&cipher, "hrld_token", in_an_hour()).cookie;
        let now = Timestamp::now();
        assert!(open(&self::cipher(), &cookie, now).is_none(), "another key");
        let mut bytes = URL_SAFE_NO_PAD.decode(&cookie).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(
            open(&cipher, &URL_SAFE_NO_PAD.encode(bytes), now).is_none(),
            "tampered"
        );
        assert!(open(&cipher, "not base64!", now).is_none());
        assert!(open(&cipher, &"A".repeat(MAX_COOKIE_LEN + 1), now).is_none());
        // A value sealed for a column does not open as a session.
        let column = cipher.seal(
            format!("{}\nx\ntoken", in_an_hour().millis()).as_bytes(),
            &SealedColumn::WebhookSecret.of(uuid::Uuid::nil()),
        );
        assert!(open(&cipher, &URL_SAFE_NO_PAD.encode(column), now).is_none());
    }
}
