//! Webhooks' URLs and secrets as this node last opened them.
//!
//! Opening a target decrypts two sealed values and parses a URL, which was
//! the largest single cost of preparing an attempt (2.6 % of Herald's CPU in
//! herald-bench's publish scenario, BENCHMARKS.md). Every attempt of a
//! webhook opens the same sealed bytes until the webhook is updated or its
//! secret rotated, so the opened target is kept beside the exact sealed
//! bytes it came from: a changed URL or secret is a different key, opened
//! afresh, and an entry that cannot be opened is never kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use herald_core::cipher::SecretCipher;
use herald_core::id::WebhookId;
use herald_store::WebhookRecord;

use crate::request::{Target, TargetError};

/// At most this many webhooks' targets are kept; past it the cache starts
/// over, so deleted webhooks' secrets do not stay in memory for good.
const MOST_KEPT: usize = 4096;

/// One opened target and the sealed values it was opened from.
struct Opened {
    url_sealed: Vec<u8>,
    secret_sealed: Vec<u8>,
    target: Arc<Target>,
}

impl Opened {
    fn opens(&self, webhook: &WebhookRecord) -> bool {
        self.url_sealed == webhook.url_sealed && self.secret_sealed == webhook.secret_sealed
    }
}

#[derive(Default)]
pub(crate) struct OpenedTargets {
    by_webhook: Mutex<HashMap<WebhookId, Opened>>,
}

impl OpenedTargets {
    /// The webhook's target, opened now unless its sealed values are the
    /// ones opened last time.
    pub fn open(
        &self,
        cipher: &SecretCipher,
        webhook: &WebhookRecord,
    ) -> Result<Arc<Target>, TargetError> {
        if let Some(opened) = self.lock().get(&webhook.id)
            && opened.opens(webhook)
        {
            return Ok(Arc::clone(&opened.target));
        }
        let target = Arc::new(Target::open(cipher, webhook)?);
        let mut kept = self.lock();
        if kept.len() >= MOST_KEPT {
            kept.clear();
        }
        kept.insert(
            webhook.id,
            Opened {
                url_sealed: webhook.url_sealed.clone(),
                secret_sealed: webhook.secret_sealed.clone(),
                target: Arc::clone(&target),
            },
        );
        Ok(target)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WebhookId, Opened>> {
        // The map is only ever read or replaced whole per entry, so a panic
        // elsewhere cannot leave an entry half written.
        self.by_webhook
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use herald_core::cipher::SealedColumn;

    use super::*;
    use crate::request::tests::sealed_record;

    const SECRET: &[u8] = b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn cipher() -> SecretCipher {
        SecretCipher::new(&SecretCipher::generate_key()).unwrap()
    }

    fn open(targets: &OpenedTargets, cipher: &SecretCipher, hook: &WebhookRecord) -> Arc<Target> {
        targets.open(cipher, hook).expect("the target opens")
    }

    #[test]
    fn a_changed_url_or_secret_is_opened_afresh_and_an_unchanged_one_is_not() {
        let cipher = cipher();
        let targets = OpenedTargets::default();
        let mut hook = sealed_record(&cipher, b"http://127.0.0.1:1/a", SECRET);
        let first = open(&targets, &cipher, &hook);
        assert!(Arc::ptr_eq(&first, &open(&targets, &cipher, &hook)));

        hook.url_sealed = cipher.seal(
            b"http://127.0.0.1:2/b",
            &SealedColumn::WebhookUrl.of(hook.id.as_uuid()),
        );
        let updated = open(&targets, &cipher, &hook);
        assert_eq!(updated.url.display(), "http://127.0.0.1:2/b");

        hook.secret_sealed = cipher.seal(
            b"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &SealedColumn::WebhookSecret.of(hook.id.as_uuid()),
        );
        let rotated = open(&targets, &cipher, &hook);
        assert!(
            !Arc::ptr_eq(&updated, &rotated),
            "a rotated secret is opened afresh"
        );
        assert_eq!(rotated.url.display(), "http://127.0.0.1:2/b");
    }

    #[test]
    fn what_this_node_cannot_open_is_refused_every_time_and_not_kept() {
        let other_key = cipher();
        let hook = sealed_record(&other_key, b"http://127.0.0.1:1/a", SECRET);
        let (cipher, targets) = (cipher(), OpenedTargets::default());
        for _ in 0..2 {
            assert!(matches!(
                targets.open(&cipher, &hook),
                Err(TargetError::Unsealable(_))
            ));
        }
        assert!(targets.lock().is_empty());
    }
}
