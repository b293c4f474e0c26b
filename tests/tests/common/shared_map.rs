//! A backend a user might write: a shared in-process map. Used by the conformance suite (as
//! "a user-written backend") and by the end-to-end suite, where its clones act as one database
//! shared by several servers.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use typed_session::backend::{
    BackendError, Record, SaveOutcome, SessionBackend, StorageKey, readable_version,
};

/// Clones share one map.
#[derive(Clone, Default)]
pub struct SharedMap(Arc<Mutex<HashMap<StorageKey, Record>>>);

impl SharedMap {
    pub fn map(&self) -> MutexGuard<'_, HashMap<StorageKey, Record>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SessionBackend for SharedMap {
    async fn create_schema(&self) -> Result<(), BackendError> {
        Ok(())
    }

    async fn load(&self, key: &StorageKey, now: u64) -> Result<Option<Record>, BackendError> {
        let live = self.map().get(key).filter(|r| r.expires_at > now).cloned();
        live.map(|r| readable_version(r.version).map(|_| r))
            .transpose()
    }

    async fn save(
        &self,
        key: &StorageKey,
        record: &Record,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        let mut map = self.map();
        let live = map
            .get(key)
            .filter(|r| r.expires_at > now)
            .map(|r| r.version);
        if live != expected_version {
            return Ok(SaveOutcome::Conflict);
        }
        map.insert(key.clone(), record.clone());
        Ok(SaveOutcome::Saved)
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: u64,
        now: u64,
    ) -> Result<Option<u64>, BackendError> {
        let mut map = self.map();
        let live = map.get_mut(key).filter(|r| r.expires_at > now);
        live.map(|r| {
            r.expires_at = expires_at;
            readable_version(r.version)
        })
        .transpose()
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), BackendError> {
        self.map().remove(key);
        Ok(())
    }

    async fn delete_expired(&self, now: u64) -> Result<u64, BackendError> {
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, r| r.expires_at > now);
        Ok((before - map.len()) as u64)
    }

    async fn count(&self, now: u64) -> Result<u64, BackendError> {
        Ok(self.map().values().filter(|r| r.expires_at > now).count() as u64)
    }

    async fn delete_all(&self) -> Result<(), BackendError> {
        self.map().clear();
        Ok(())
    }

    async fn list_keys(&self, now: u64) -> Result<Vec<StorageKey>, BackendError> {
        Ok(self
            .map()
            .iter()
            .filter(|(_, r)| r.expires_at > now)
            .map(|(k, _)| k.clone())
            .collect())
    }
}
