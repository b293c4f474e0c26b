//! A [`SessionBackend`] behind a pointer, so `SessionStore<T>` does not name its backend type.

use std::future::Future;
use std::pin::Pin;

use crate::backend::{BackendError, Record, SaveOutcome, SessionBackend, StorageKey};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BackendError>> + Send + 'a>>;

/// The object-safe twin of [`SessionBackend`]. Boxing each future costs an allocation per
/// backend call, which is noise next to the round trip it stands for.
pub(crate) trait DynBackend: Send + Sync + 'static {
    fn create_schema(&self) -> BoxFuture<'_, ()>;
    fn load<'a>(&'a self, key: &'a StorageKey, now: u64) -> BoxFuture<'a, Option<Record>>;
    fn save<'a>(
        &'a self,
        key: &'a StorageKey,
        record: &'a Record,
        expected_version: Option<u64>,
        now: u64,
    ) -> BoxFuture<'a, SaveOutcome>;
    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        expires_at: u64,
        now: u64,
    ) -> BoxFuture<'a, Option<u64>>;
    fn delete<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, ()>;
    fn delete_expired(&self, now: u64) -> BoxFuture<'_, u64>;
    #[cfg_attr(not(feature = "key-store"), allow(dead_code))]
    fn list_keys(&self, now: u64) -> BoxFuture<'_, Vec<StorageKey>>;
}

impl<B: SessionBackend> DynBackend for B {
    fn create_schema(&self) -> BoxFuture<'_, ()> {
        Box::pin(SessionBackend::create_schema(self))
    }

    fn load<'a>(&'a self, key: &'a StorageKey, now: u64) -> BoxFuture<'a, Option<Record>> {
        Box::pin(SessionBackend::load(self, key, now))
    }

    fn save<'a>(
        &'a self,
        key: &'a StorageKey,
        record: &'a Record,
        expected_version: Option<u64>,
        now: u64,
    ) -> BoxFuture<'a, SaveOutcome> {
        Box::pin(SessionBackend::save(
            self,
            key,
            record,
            expected_version,
            now,
        ))
    }

    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        expires_at: u64,
        now: u64,
    ) -> BoxFuture<'a, Option<u64>> {
        Box::pin(SessionBackend::touch(self, key, expires_at, now))
    }

    fn delete<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, ()> {
        Box::pin(SessionBackend::delete(self, key))
    }

    fn delete_expired(&self, now: u64) -> BoxFuture<'_, u64> {
        Box::pin(SessionBackend::delete_expired(self, now))
    }

    fn list_keys(&self, now: u64) -> BoxFuture<'_, Vec<StorageKey>> {
        Box::pin(SessionBackend::list_keys(self, now))
    }
}
