//! A backend wrapper that counts round trips, can be switched "down", and can fail a number of
//! deletes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use typed_session::backend::{BackendError, Record, SaveOutcome, SessionBackend, StorageKey};

pub struct Instrumented<B> {
    inner: B,
    calls: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    deletes_to_fail: Arc<AtomicUsize>,
}

#[derive(Clone)]
pub struct Calls(Arc<AtomicUsize>);

impl Calls {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
pub struct Switch(Arc<AtomicBool>);

impl Switch {
    pub fn set_down(&self, down: bool) {
        self.0.store(down, Ordering::SeqCst);
    }
}

/// A handle on how many of the wrapped backend's next deletes fail.
#[derive(Clone)]
pub struct FailingDeletes(Arc<AtomicUsize>);

impl FailingDeletes {
    /// Makes the next `count` deletes fail (0: none).
    pub fn set(&self, count: usize) {
        self.0.store(count, Ordering::SeqCst);
    }
}

impl<B> Instrumented<B> {
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            calls: Arc::default(),
            down: Arc::default(),
            deletes_to_fail: Arc::default(),
        }
    }

    pub fn calls(&self) -> Calls {
        Calls(Arc::clone(&self.calls))
    }

    pub fn switch(&self) -> Switch {
        Switch(Arc::clone(&self.down))
    }

    /// Makes the next deletes fail, as many as set.
    pub fn failing_deletes(&self) -> FailingDeletes {
        FailingDeletes(Arc::clone(&self.deletes_to_fail))
    }

    fn enter(&self) -> Result<(), BackendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(BackendError::new(
                "reaching the server",
                "connection refused (switched down by the test)",
            ));
        }
        Ok(())
    }
}

impl<B: SessionBackend> SessionBackend for Instrumented<B> {
    async fn create_schema(&self) -> Result<(), BackendError> {
        // Not counted: it runs once, at build time.
        self.inner.create_schema().await
    }

    async fn load(&self, key: &StorageKey, now: u64) -> Result<Option<Record>, BackendError> {
        self.enter()?;
        self.inner.load(key, now).await
    }

    async fn save(
        &self,
        key: &StorageKey,
        record: &Record,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        self.enter()?;
        self.inner.save(key, record, expected_version, now).await
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: u64,
        now: u64,
    ) -> Result<Option<u64>, BackendError> {
        self.enter()?;
        self.inner.touch(key, expires_at, now).await
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), BackendError> {
        self.enter()?;
        let failing =
            self.deletes_to_fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                });
        if failing.is_ok() {
            return Err(BackendError::new(
                "deleting a session",
                "refused (a failing delete set by the test)",
            ));
        }
        self.inner.delete(key).await
    }

    async fn delete_expired(&self, now: u64) -> Result<u64, BackendError> {
        self.enter()?;
        self.inner.delete_expired(now).await
    }

    async fn count(&self, now: u64) -> Result<u64, BackendError> {
        self.enter()?;
        self.inner.count(now).await
    }

    async fn delete_all(&self) -> Result<(), BackendError> {
        self.enter()?;
        self.inner.delete_all().await
    }

    async fn list_keys(&self, now: u64) -> Result<Vec<StorageKey>, BackendError> {
        self.enter()?;
        self.inner.list_keys(now).await
    }
}
