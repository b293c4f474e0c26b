//! A backend wrapper that counts round trips, can be switched "down", can fail a number of
//! deletes, can play a rival server that saves first, and can hold saves at a gate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use typed_session::backend::{BackendError, Record, SaveOutcome, SessionBackend, StorageKey};

pub struct Instrumented<B> {
    inner: B,
    calls: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    deletes_to_fail: Arc<AtomicUsize>,
    rival: Rival,
    gate: Gate,
}

/// A handle on the wrapper's gate: while it is closed, saves wait before they reach the
/// backend, as a slow write would.
#[derive(Clone, Default)]
pub struct Gate {
    closed: Arc<AtomicBool>,
    waiting: Arc<AtomicUsize>,
}

impl Gate {
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
    }

    /// How many saves are waiting at the gate.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    async fn pass(&self) {
        if !self.closed.load(Ordering::SeqCst) {
            return;
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        while self.closed.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
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

/// A handle on a rival server: while it has wins left, each compare-and-set save through the
/// wrapper finds the stored record one version on, as if another server had just saved it.
#[derive(Clone, Default)]
pub struct Rival {
    wins_left: Arc<AtomicU64>,
    won: Arc<AtomicU64>,
}

impl Rival {
    /// The rival saves first the next `count` times (0: never again).
    pub fn wins(&self, count: u64) {
        self.wins_left.store(count, Ordering::SeqCst);
    }

    /// How many saves the rival has beaten so far.
    pub fn won(&self) -> u64 {
        self.won.load(Ordering::SeqCst)
    }

    fn takes_a_win(&self) -> bool {
        let took = self
            .wins_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if took {
            self.won.fetch_add(1, Ordering::SeqCst);
        }
        took
    }
}

impl<B> Instrumented<B> {
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            calls: Arc::default(),
            down: Arc::default(),
            deletes_to_fail: Arc::default(),
            rival: Rival::default(),
            gate: Gate::default(),
        }
    }

    /// The gate saves wait at while it is closed.
    pub fn gate(&self) -> Gate {
        self.gate.clone()
    }

    /// A rival server that saves first while it has wins left.
    pub fn rival(&self) -> Rival {
        self.rival.clone()
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
        self.gate.pass().await;
        self.enter()?;
        if expected_version.is_some() && self.rival.takes_a_win() {
            // The rival's write, a round trip's time before ours: the stored record, one
            // version on. (The pause also keeps a save that never wins from spinning.)
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            if let Some(mut stored) = self.inner.load(key, now).await? {
                let current = stored.version;
                stored.version += 1;
                self.inner.save(key, &stored, Some(current), now).await?;
            }
        }
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
