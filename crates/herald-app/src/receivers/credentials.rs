//! A receiver's credentials at rest: one sealed JSON value per credential, so
//! the store holds only ciphertext and a rotation can keep the old credential
//! whole (an Azure DevOps username with its password).

use herald_core::cipher::{Binding, SealedColumn, SecretCipher};
use herald_core::secret::Secret;
use herald_core::time::Timestamp;
use herald_ingest::{Credential, ReceiverCredentials};
use herald_store::{ReceiverId, ReceiverRecord};
use serde::{Deserialize, Serialize};

use crate::AppError;

/// The plaintext that gets sealed.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Stored {
    Secret { secret: String },
    Basic { username: String, password: String },
}

/// Where a receiver's credentials are sealed: current and previous alike, as a
/// rotation moves the current value to previous unchanged.
fn binding(receiver: ReceiverId) -> Binding {
    SealedColumn::ReceiverCredentials.of(receiver.as_uuid())
}

pub fn seal(cipher: &SecretCipher, receiver: ReceiverId, credential: &Credential) -> Vec<u8> {
    let stored = match credential {
        Credential::Secret(secret) => Stored::Secret {
            secret: secret.expose().to_owned(),
        },
        Credential::Basic { username, password } => Stored::Basic {
            username: username.clone(),
            password: password.expose().to_owned(),
        },
    };
    // A two-variant enum of strings always serializes.
    let plaintext = serde_json::to_vec(&stored).unwrap_or_default();
    cipher.seal(&plaintext, &binding(receiver))
}

pub fn open(
    cipher: &SecretCipher,
    receiver: ReceiverId,
    sealed: &[u8],
) -> Result<Credential, AppError> {
    let plaintext = cipher.open(sealed, &binding(receiver))?;
    let stored: Stored = serde_json::from_slice(&plaintext)
        .map_err(|e| AppError::internal("stored receiver credentials are unreadable", &e))?;
    Ok(match stored {
        Stored::Secret { secret } => Credential::Secret(Secret::from_stored(secret)),
        Stored::Basic { username, password } => Credential::Basic {
            username,
            password: Secret::from_stored(password),
        },
    })
}

/// Whether the credentials a rotation replaced still verify at `now`.
pub fn previous_in_grace(record: &ReceiverRecord, now: Timestamp) -> bool {
    record.previous_credentials_sealed.is_some()
        && record.previous_valid_until.is_some_and(|until| until > now)
}

/// What verification checks a request against: the current credentials, the
/// previous ones while their grace period runs, and the receiver's opt-ins.
pub fn for_verification(
    cipher: &SecretCipher,
    record: &ReceiverRecord,
    now: Timestamp,
) -> Result<ReceiverCredentials, AppError> {
    let mut credentials = ReceiverCredentials {
        current: open(cipher, record.id, &record.credentials_sealed)?,
        previous: None,
        github_legacy_sha1: record.github_legacy_sha1,
        gitlab_standard_webhooks: record.gitlab_standard_webhooks,
    };
    if previous_in_grace(record, now)
        && let Some(sealed) = &record.previous_credentials_sealed
    {
        credentials.previous = Some(open(cipher, record.id, sealed)?);
    }
    Ok(credentials)
}

/// The username of an Azure DevOps receiver, which is not a secret.
pub fn username(credential: &Credential) -> Option<&str> {
    match credential {
        Credential::Basic { username, .. } => Some(username),
        Credential::Secret(_) => None,
    }
}

/// The secret, or the basic-auth password.
pub fn secret(credential: &Credential) -> &Secret {
    match credential {
        Credential::Secret(secret) => secret,
        Credential::Basic { password, .. } => password,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> SecretCipher {
        SecretCipher::new(&SecretCipher::generate_key()).unwrap()
    }

    #[test]
    fn both_shapes_round_trip_and_the_ciphertext_hides_them() {
        let cipher = cipher();
        for credential in [
            Credential::Secret(Secret::parse("s3cret").unwrap()),
            Credential::Basic {
                username: "azure".into(),
                password: Secret::parse("pa:ss").unwrap(),
            },
        ] {
            let receiver = ReceiverId::new();
            let sealed = seal(&cipher, receiver, &credential);
            assert!(!String::from_utf8_lossy(&sealed).contains("s3cret"));
            assert!(!String::from_utf8_lossy(&sealed).contains("pa:ss"));
            assert_eq!(open(&cipher, receiver, &sealed).unwrap(), credential);
            assert!(
                open(&cipher, ReceiverId::new(), &sealed).is_err(),
                "another receiver's credentials do not open"
            );
        }
    }
}
