//! The key-store: a Bloom filter of the storage keys in the backend, so an id that was never
//! stored is turned away without a backend round trip.
//!
//! A Bloom filter answers "certainly absent" or "maybe present". Present keys are never reported
//! absent as long as every stored key was inserted, which holds on one server: this server
//! inserts each key it stores, and the filter is rebuilt from the backend at every purge (a
//! Bloom filter cannot forget, so deleted keys leave only with a rebuild). With several servers,
//! a key stored by another server is unknown here, so the filter would turn a valid session
//! away: use it on one server only.

use std::sync::{Arc, PoisonError, RwLock};

use fastbloom::AtomicBloomFilter;

use crate::backend::{BackendError, StorageKey};
use crate::config::KeyStoreConfig;

pub(crate) struct KeyStore {
    config: KeyStoreConfig,
    filter: RwLock<Arc<AtomicBloomFilter>>,
}

impl KeyStore {
    pub(crate) fn new(config: KeyStoreConfig, keys: impl IntoIterator<Item = StorageKey>) -> Self {
        Self {
            filter: RwLock::new(Arc::new(build(config, keys))),
            config,
        }
    }

    fn current(&self) -> Arc<AtomicBloomFilter> {
        Arc::clone(&self.filter.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// `false` only for a key that was never stored.
    pub(crate) fn may_contain(&self, key: &StorageKey) -> bool {
        self.current().contains(key.as_str())
    }

    pub(crate) fn insert(&self, key: &StorageKey) {
        self.current().insert(key.as_str());
    }

    /// Replaces the filter with one of `stored` (the backend's keys now) plus `recent` (keys in
    /// memory, which covers sessions stored while `stored` was being listed).
    pub(crate) fn rebuild(
        &self,
        stored: Result<Vec<StorageKey>, BackendError>,
        recent: impl IntoIterator<Item = StorageKey>,
    ) -> Result<(), BackendError> {
        let fresh = Arc::new(build(self.config, stored?));
        *self.filter.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
        for key in recent {
            fresh.insert(key.as_str());
        }
        Ok(())
    }
}

fn build(config: KeyStoreConfig, keys: impl IntoIterator<Item = StorageKey>) -> AtomicBloomFilter {
    let filter = AtomicBloomFilter::with_false_pos(config.false_positive_rate)
        .expected_items(config.expected_items.max(1));
    for key in keys {
        filter.insert(key.as_str());
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::SessionId;

    #[test]
    fn never_forgets_an_inserted_key_and_rebuilds_without_deleted_ones() {
        let config = KeyStoreConfig::new(1000, 0.001);
        let keys: Vec<StorageKey> = (0..500)
            .map(|_| StorageKey::for_id(SessionId::generate()))
            .collect();
        let store = KeyStore::new(config, keys.clone());
        assert!(keys.iter().all(|key| store.may_contain(key)));
        let strangers = (0..1000)
            .filter(|_| store.may_contain(&StorageKey::for_id(SessionId::generate())))
            .count();
        assert!(strangers < 20, "false positives: {strangers}");
        let added = StorageKey::for_id(SessionId::generate());
        store.insert(&added);
        assert!(store.may_contain(&added));
        store
            .rebuild(Ok(keys[..10].to_vec()), [added.clone()])
            .unwrap();
        assert!(keys[..10].iter().all(|key| store.may_contain(key)));
        assert!(store.may_contain(&added), "recent keys survive a rebuild");
        let gone = keys[10..]
            .iter()
            .filter(|key| store.may_contain(key))
            .count();
        assert!(gone < 10, "deleted keys leave with the rebuild: {gone}");
    }
}
