//! The purge schedule: expired sessions are evicted on an interval, for as long as their store
//! lives.
//!
//! The interval is kept by a sleeping thread, not by a Tokio timer: a timer in the runtime's
//! wheel is looked at on every park of the runtime, for an event that comes once a minute.
//! Taking it out saved 64 instructions per hot request in `benches/callgrind.sh` (net of what a
//! second thread costs a process that had none). Each purge still runs as a task on the store's
//! runtime, where the backend's connections live.

use std::convert::Infallible;
use std::io;
use std::sync::Weak;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use tokio::runtime::Handle;

use crate::clock::now_millis;
use crate::store::StoreInner;

/// The name of a store's purge thread, as `ps -T` and debuggers show it (Linux keeps 15 bytes).
const THREAD_NAME: &str = "session-purge";

/// Owned by the store. Dropping it (with the store) ends the purge thread, once any purge in
/// flight has ended.
pub(crate) struct PurgeStop {
    _stop: mpsc::Sender<Infallible>,
}

/// A store's purge schedule, before its thread starts (which needs the store built).
pub(crate) struct PurgeSchedule {
    stopped: mpsc::Receiver<Infallible>,
}

impl PurgeSchedule {
    /// A schedule, and the handle whose drop stops it.
    pub(crate) fn new() -> (PurgeStop, Self) {
        let (stop, stopped) = mpsc::channel();
        (PurgeStop { _stop: stop }, Self { stopped })
    }

    /// Purges `store` every `every` on `runtime`, from a thread that holds only a `Weak`, so
    /// it never keeps the store alive.
    pub(crate) fn start<T: Send + Sync + 'static>(
        self,
        store: Weak<StoreInner<T>>,
        every: Duration,
        runtime: Handle,
    ) -> io::Result<()> {
        let stopped = self.stopped;
        std::thread::Builder::new()
            .name(THREAD_NAME.into())
            // It only sleeps and hands purges to the runtime; the room is for the application's
            // log subscriber when it warns (pages are only committed when touched).
            .stack_size(256 * 1024)
            .spawn(move || {
                // `Timeout` is the tick; `Disconnected` is the store gone.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
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
        Err(error) => tracing::warn!(%error, "typed-session: purging expired sessions failed"),
    }
}
