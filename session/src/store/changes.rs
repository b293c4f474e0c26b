//! Following other servers' changes: when the backend announces that a session was saved or
//! deleted elsewhere, this server's cached copy is marked unverified, so its next request
//! confirms it with the backend (a touch, which drops a deleted session and refreshes a newer
//! one) instead of serving it as it was. Without announcements, or while they are not arriving,
//! the bound is the touch interval, as before.

use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dashmap::DashMap;

use crate::backend::{Change, StorageKey};
use crate::clock::now_millis;
use crate::data::SessionData;
use crate::id::SessionId;
use crate::store::StoreInner;

/// The first wait before subscribing again after the feed failed or ended; it doubles up to
/// [`MAX_BACKOFF`] while the broker stays away.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Which cached session each storage key names, for the sessions whose keys were seen (loaded
/// or saved) since the store was built. Announcements carry storage keys (hashes of ids), and
/// the cache is keyed by id. Dropped for a backend that turns out to announce nothing; stale
/// pairs are harmless (the id is looked up) and pruned at each purge.
pub(crate) struct KeyIndex {
    ids: DashMap<StorageKey, SessionId>,
    following: AtomicBool,
}

impl KeyIndex {
    /// An index that notes keys from the start when the store has a backend (`persistent`): it
    /// may follow changes, and a session loaded before its first subscription is up must be
    /// found by its key once it is.
    pub(crate) fn new(persistent: bool) -> Self {
        Self {
            ids: DashMap::new(),
            following: AtomicBool::new(persistent),
        }
    }

    /// Stops noting and forgets every key: the backend announces nothing.
    fn stop(&self) {
        self.following.store(false, Ordering::Release);
        self.ids.clear();
    }

    /// The cached session last stored under `key`, if it is known.
    pub(crate) fn id_of(&self, key: &StorageKey) -> Option<SessionId> {
        self.ids.get(key).map(|id| *id)
    }

    /// Whether every cached session that has a record is in the map: a key missing from it
    /// names no cached session.
    pub(crate) fn is_complete(&self) -> bool {
        self.following.load(Ordering::Relaxed)
    }

    /// Notes that `key` names the cached session `id`, when changes are followed.
    pub(crate) fn note(&self, key: &StorageKey, id: SessionId) {
        if self.following.load(Ordering::Relaxed) {
            self.ids.insert(key.clone(), id);
        }
    }
}

impl<T: SessionData> StoreInner<T> {
    /// Marks the cached copy of the session an announcement names as unverified, unless it
    /// already holds that version.
    fn apply(&self, change: &Change) {
        let Some(key) = &change.key else {
            // Every session went (another server's `clear_all`).
            self.unverify_all();
            return;
        };
        let Some(id) = self.key_index.id_of(key) else {
            return;
        };
        let Some(entry) = self.memory.lookup(id, self.lifetimes, now_millis()) else {
            self.key_index.ids.remove(key);
            return;
        };
        if change
            .version
            .is_some_and(|version| entry.lock().version >= version)
        {
            return;
        }
        entry.synced_at.store(0, Ordering::Release);
    }

    /// Marks every cached session unverified: announcements may have been missed.
    fn unverify_all(&self) {
        self.memory
            .for_each_entry(|entry| entry.synced_at.store(0, Ordering::Release));
    }
}

impl<T> StoreInner<T> {
    /// Drops the index pairs whose session is no longer cached.
    pub(crate) fn prune_key_index(&self) {
        self.key_index.ids.retain(|_, id| self.memory.contains(*id));
    }
}

/// Follows the backend's announcements for as long as the store lives: subscribes, applies
/// each change, and when the feed fails or ends, treats every cached session as unverified and
/// subscribes again with backoff. Ends at once for a backend that announces nothing.
pub(crate) async fn follow<T: SessionData>(store: Weak<StoreInner<T>>) {
    let mut backoff = FIRST_BACKOFF;
    let mut warned = false;
    loop {
        let subscribed = {
            let Some(store) = store.upgrade() else { return };
            let Some(backend) = store.backend.as_deref() else {
                return;
            };
            backend.changes().await
        };
        match subscribed {
            Ok(None) => {
                // An indexed store still needs the map, to end its cached copy of a session
                // destroyed by handle.
                if let Some(store) = store.upgrade()
                    && !T::INDEXED
                {
                    store.key_index.stop();
                }
                return;
            }
            Ok(Some(mut feed)) => {
                {
                    let Some(store) = store.upgrade() else { return };
                    // Whatever changed while nobody listened: confirm before serving.
                    store.unverify_all();
                    if warned {
                        tracing::info!("typed-session: following other servers' changes again");
                    }
                }
                backoff = FIRST_BACKOFF;
                while let Some(change) = feed.recv().await {
                    let Some(store) = store.upgrade() else { return };
                    store.apply(&change);
                }
                let Some(store) = store.upgrade() else { return };
                store.unverify_all();
                tracing::warn!(
                    "typed-session: lost the backend's change announcements; cached sessions are confirmed with the backend until they are back"
                );
                warned = true;
            }
            Err(error) => {
                if !warned {
                    tracing::warn!(%error, "typed-session: cannot follow other servers' changes; retrying with backoff, other servers' changes are seen at the next touch meanwhile");
                    warned = true;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
