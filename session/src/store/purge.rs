//! The purge task: evicts expired sessions on an interval, for as long as its store lives.

use std::sync::Weak;
use std::time::Duration;

use tokio::time::{MissedTickBehavior, interval};

use crate::clock::now_millis;
use crate::store::StoreInner;

/// Runs until the store is gone. It holds only a `Weak`, so it never keeps the store alive;
/// the store also aborts it on drop, so it does not even wait for its next tick.
pub(crate) async fn purge_loop<T: Send + Sync + 'static>(
    store: Weak<StoreInner<T>>,
    every: Duration,
) {
    let mut ticks = interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate; nothing can have expired yet
    loop {
        ticks.tick().await;
        let Some(store) = store.upgrade() else { return };
        // A failing backend is logged and tried again next tick: the task never dies of it.
        match store.purge(now_millis()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "typed-session: purged expired sessions"),
            Err(error) => tracing::warn!(%error, "typed-session: purging expired sessions failed"),
        }
    }
}
