//! The default backend: none at all. Sessions live in memory only.

use crate::backend::{BackendError, Record, SaveOutcome, SessionBackend, StorageKey};

/// Stores nothing: sessions live only in the store's memory and end with the process. The
/// default backend of a [`SessionStore`](crate::SessionStore).
///
/// The store recognises it and skips record encoding altogether, so memory-only sessions pay no
/// serialisation at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullBackend;

impl SessionBackend for NullBackend {
    async fn create_schema(&self) -> Result<(), BackendError> {
        Ok(())
    }

    async fn load(&self, _key: &StorageKey, _now: u64) -> Result<Option<Record>, BackendError> {
        Ok(None)
    }

    async fn save(
        &self,
        _key: &StorageKey,
        _record: &Record,
        _expected_version: Option<u64>,
        _now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        Ok(SaveOutcome::Saved)
    }

    async fn touch(
        &self,
        _key: &StorageKey,
        _expires_at: u64,
        _now: u64,
    ) -> Result<Option<u64>, BackendError> {
        Ok(None)
    }

    async fn delete(&self, _key: &StorageKey) -> Result<(), BackendError> {
        Ok(())
    }

    async fn delete_expired(&self, _now: u64) -> Result<u64, BackendError> {
        Ok(0)
    }

    async fn count(&self, _now: u64) -> Result<u64, BackendError> {
        Ok(0)
    }

    async fn delete_all(&self) -> Result<(), BackendError> {
        Ok(())
    }

    async fn list_keys(&self, _now: u64) -> Result<Vec<StorageKey>, BackendError> {
        Ok(Vec::new())
    }
}
