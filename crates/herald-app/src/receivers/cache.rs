//! The receivers that code hosts' requests name, kept for a moment: at
//! thousands of requests a second, each would otherwise read its receiver
//! from the store before anything else.
//!
//! A change made through this node (update, rotation, delete) drops the entry
//! at once. A change made through another node reaches this one within
//! [`RECEIVER_CACHE_TTL`], and sooner for a request that fails verification:
//! a refusal drops the entry, so a code host already sending the new secret
//! is refused at most once per node, within that moment after the rotation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use herald_store::{ReceiverId, ReceiverRecord};

/// How long a receiver read from the store serves requests.
pub const RECEIVER_CACHE_TTL: Duration = Duration::from_secs(1);
/// Entries past which expired ones are swept out when a new one is added.
/// Only receivers that exist are cached, so the map cannot grow past the
/// receivers there are; the sweep keeps long-gone ones from staying.
const SWEEP_ABOVE: usize = 1024;

#[derive(Default)]
pub(crate) struct ReceiverCache {
    entries: Mutex<HashMap<ReceiverId, Cached>>,
}

struct Cached {
    record: Arc<ReceiverRecord>,
    read_at: Instant,
}

impl Cached {
    fn is_fresh(&self, now: Instant) -> bool {
        now.duration_since(self.read_at) < RECEIVER_CACHE_TTL
    }
}

impl ReceiverCache {
    /// The receiver, if it was read from the store within the TTL.
    pub(crate) fn get(&self, id: ReceiverId) -> Option<Arc<ReceiverRecord>> {
        let entries = self.entries();
        entries
            .get(&id)
            .filter(|cached| cached.is_fresh(Instant::now()))
            .map(|cached| Arc::clone(&cached.record))
    }

    /// Keeps a receiver just read from the store.
    pub(crate) fn put(&self, record: ReceiverRecord) -> Arc<ReceiverRecord> {
        let record = Arc::new(record);
        let now = Instant::now();
        let mut entries = self.entries();
        if entries.len() >= SWEEP_ABOVE {
            entries.retain(|_, cached| cached.is_fresh(now));
        }
        entries.insert(
            record.id,
            Cached {
                record: Arc::clone(&record),
                read_at: now,
            },
        );
        record
    }

    /// Drops a receiver that changed, or whose credentials refused a request.
    pub(crate) fn forget(&self, id: ReceiverId) {
        self.entries().remove(&id);
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<ReceiverId, Cached>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use herald_core::time::Timestamp;

    use super::*;

    fn record(id: ReceiverId) -> ReceiverRecord {
        ReceiverRecord {
            id,
            name: None,
            kind: "github".to_owned(),
            urn: "https://github.com".to_owned(),
            credentials_sealed: Vec::new(),
            previous_credentials_sealed: None,
            previous_valid_until: None,
            github_legacy_sha1: false,
            gitlab_standard_webhooks: false,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
            unverified_dropped: 0,
        }
    }

    #[test]
    fn a_receiver_is_served_until_it_is_forgotten() {
        let cache = ReceiverCache::default();
        let id = ReceiverId::new();
        assert!(cache.get(id).is_none());
        cache.put(record(id));
        assert_eq!(cache.get(id).map(|r| r.id), Some(id));
        cache.forget(id);
        assert!(cache.get(id).is_none());
    }

    #[test]
    fn an_entry_past_its_time_is_not_served() {
        let cache = ReceiverCache::default();
        let id = ReceiverId::new();
        cache.put(record(id));
        cache.entries().get_mut(&id).expect("just put").read_at -= RECEIVER_CACHE_TTL;
        assert!(cache.get(id).is_none());
    }
}
