//! The purge schedule: expired sessions are evicted on an interval, for as long as their store
//! lives.
//!
//! The interval is kept by a sleeping thread, not by a Tokio timer: a timer in the runtime's
//! wheel is looked at on every park of the runtime, for an event that comes once a minute.
//! Taking it out saved 64 instructions per hot request in `benches/callgrind.sh` (net of what a
//! second thread costs a process that had none). Each purge still runs as a task on the store's
//! runtime, where the backend's connections live.
//!
//! The same thread enforces the memory capacity when a request finds the store over it: the
//! sweep is O(sessions held), which a request must not pay (at 200,000 sessions it stalled one
//! for 83-196 ms).

use std::io;
use std::sync::Weak;
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;

use crate::clock::now_millis;
use crate::store::StoreInner;

/// The name of a store's purge thread, as `ps -T` and debuggers show it (Linux keeps 15 bytes).
const THREAD_NAME: &str = "session-purge";

/// How often, at most, a memory-only store warns that its capacity evicted live sessions.
const EVICTION_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Owned by the store: asks its thread for capacity sweeps. Dropping it (with the store) ends
/// the purge thread, once any purge in flight has ended.
pub(crate) struct PurgeStop {
    /// Room for one request: a full channel means a sweep is already on its way.
    sweep: mpsc::SyncSender<()>,
}

impl PurgeStop {
    /// Asks the thread to bring memory back under its capacity; returns at once.
    pub(crate) fn request_sweep(&self) {
        match self.sweep.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            // The thread has ended (its runtime is gone): nothing can sweep; purges stopped too.
            Err(TrySendError::Disconnected(())) => {}
        }
    }
}

/// A store's purge schedule, before its thread starts (which needs the store built).
pub(crate) struct PurgeSchedule {
    wake: mpsc::Receiver<()>,
}

impl PurgeSchedule {
    /// A schedule, and the handle whose drop stops it.
    pub(crate) fn new() -> (PurgeStop, Self) {
        let (sweep, wake) = mpsc::sync_channel(1);
        (PurgeStop { sweep }, Self { wake })
    }

    /// Purges `store` every `every` on `runtime`, from a thread that holds only a `Weak`, so
    /// it never keeps the store alive.
    pub(crate) fn start<T: Send + Sync + 'static>(
        self,
        store: Weak<StoreInner<T>>,
        every: Duration,
        runtime: Handle,
    ) -> io::Result<()> {
        let wake = self.wake;
        std::thread::Builder::new()
            .name(THREAD_NAME.into())
            // It only sleeps, sweeps and hands purges to the runtime; the room is for the
            // application's log subscriber when it warns (pages are only committed when touched).
            .stack_size(256 * 1024)
            .spawn(move || {
                // `None`: an interval too long to count, so no purge is ever due.
                let mut next_purge = Instant::now().checked_add(every);
                let mut evictions = EvictionLog::default();
                loop {
                    // A message asks for a sweep; `Timeout` is the purge tick; `Disconnected`
                    // is the store gone.
                    let woken = match next_purge {
                        Some(at) => wake.recv_timeout(at.saturating_duration_since(Instant::now())),
                        None => wake.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    };
                    match woken {
                        Ok(()) => {
                            if let Some(store) = store.upgrade() {
                                evictions.record(store.sweep_memory(), store.backend.is_some());
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    next_purge = Instant::now().checked_add(every);
                    let (finished, done) = mpsc::channel();
                    let store = store.clone();
                    runtime.spawn(async move {
                        purge_once(&store).await;
                        let _ = finished.send(());
                    });
                    // One purge at a time. A task that ends without saying so never ran to its
                    // end: its runtime has shut down (it drops new tasks unrun) or the purge
                    // panicked. Either way no later purge would fare better.
                    if done.recv().is_err() {
                        tracing::warn!(
                            "typed-session: a scheduled purge could not run (the store's runtime has shut down, or the purge panicked); no more are scheduled for this store, call SessionStore::purge_expired instead"
                        );
                        return;
                    }
                }
            })?;
        Ok(())
    }
}

/// A failing backend is logged and tried again at the next tick: the schedule never dies of it.
async fn purge_once<T>(store: &Weak<StoreInner<T>>) {
    let Some(store) = store.upgrade() else { return };
    match store.purge(now_millis()).await {
        Ok(0) => {}
        Ok(deleted) => tracing::debug!(deleted, "typed-session: purged expired sessions"),
        Err(error) => {
            store.observer().error("purge");
            tracing::warn!(%error, "typed-session: purging expired sessions failed");
        }
    }
}

/// Tells what capacity sweeps evicted: for a memory-only store those are live sessions whose
/// users start over, which an operator should hear about (at most once a minute, with a count);
/// with a backend only cached copies go, which costs a reload.
#[derive(Default)]
struct EvictionLog {
    unreported: usize,
    last_warned: Option<Instant>,
}

impl EvictionLog {
    fn record(&mut self, (evicted, capacity): (usize, usize), persistent: bool) {
        if evicted == 0 {
            return;
        }
        if persistent {
            tracing::debug!(
                evicted,
                capacity,
                "typed-session: memory capacity reached; evicted cached sessions"
            );
            return;
        }
        self.unreported += evicted;
        if self
            .last_warned
            .is_some_and(|at| at.elapsed() < EVICTION_WARNING_INTERVAL)
        {
            return;
        }
        self.last_warned = Some(Instant::now());
        tracing::warn!(
            evicted = self.unreported,
            capacity,
            "typed-session: the memory-only store is at its capacity and evicted the least recently used sessions (their users start over); raise SessionConfig::with_memory_capacity or add a backend"
        );
        self.unreported = 0;
    }
}
