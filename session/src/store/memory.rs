//! The in-process session map: live typed values, no serialisation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use crate::id::SessionId;
use crate::store::lifetime::Lifetimes;

/// One live session: its value and its timestamps (unix milliseconds).
pub(crate) struct Entry<T> {
    value: Mutex<T>,
    created_at: u64,
    last_access: AtomicU64,
}

impl<T> Entry<T> {
    pub(crate) fn new(value: T, now: u64) -> Self {
        Self {
            value: Mutex::new(value),
            created_at: now,
            last_access: AtomicU64::new(now),
        }
    }

    /// Locks the value. A panic in another request's accessor closure poisons the mutex; the
    /// value is still the one that closure left, and refusing every later request of the
    /// session would turn one bug into a lost session.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn expires_at(&self, lifetimes: Lifetimes) -> u64 {
        lifetimes.expires_at(self.created_at, self.last_access.load(Ordering::Relaxed))
    }

    fn is_expired(&self, lifetimes: Lifetimes, now: u64) -> bool {
        lifetimes.is_expired(
            self.created_at,
            self.last_access.load(Ordering::Relaxed),
            now,
        )
    }
}

/// Sessions by id.
pub(crate) struct MemoryStore<T> {
    sessions: DashMap<SessionId, Arc<Entry<T>>>,
}

impl<T> MemoryStore<T> {
    pub(crate) fn new() -> Self {
        Self {
            sessions: DashMap::new(),
        }
    }

    /// The live session under `id`, its idle clock restarted; an expired one is removed and
    /// reported as absent, so it is never served.
    pub(crate) fn get_live(
        &self,
        id: SessionId,
        lifetimes: Lifetimes,
        now: u64,
    ) -> Option<Arc<Entry<T>>> {
        let entry = Arc::clone(&*self.sessions.get(&id)?);
        if entry.is_expired(lifetimes, now) {
            self.remove(id, &entry);
            return None;
        }
        entry.last_access.fetch_max(now, Ordering::Relaxed);
        Some(entry)
    }

    /// Stores a new session under `id`, or under a fresh id if `id` is taken (a 2^-122 event,
    /// but an existing session is never overwritten). Returns the id used.
    pub(crate) fn insert_new(&self, mut id: SessionId, entry: Arc<Entry<T>>) -> SessionId {
        loop {
            match self.sessions.entry(id) {
                MapEntry::Vacant(slot) => {
                    slot.insert(entry);
                    return id;
                }
                MapEntry::Occupied(_) => id = SessionId::generate(),
            }
        }
    }

    /// Moves the session `entry` from `old` to a fresh id. `None` when it is no longer under
    /// `old` (destroyed or renewed by a parallel request): then nothing moves, so a dead id
    /// is never revived.
    pub(crate) fn renew(&self, old: SessionId, entry: &Arc<Entry<T>>) -> Option<SessionId> {
        let (_, moved) = self
            .sessions
            .remove_if(&old, |_, current| Arc::ptr_eq(current, entry))?;
        Some(self.insert_new(SessionId::generate(), moved))
    }

    /// Removes `id` if it still holds `entry`.
    pub(crate) fn remove(&self, id: SessionId, entry: &Arc<Entry<T>>) {
        self.sessions
            .remove_if(&id, |_, current| Arc::ptr_eq(current, entry));
    }

    /// Evicts every expired session; returns how many.
    pub(crate) fn purge(&self, lifetimes: Lifetimes, now: u64) -> usize {
        let before = self.sessions.len();
        self.sessions
            .retain(|_, entry| !entry.is_expired(lifetimes, now));
        before.saturating_sub(self.sessions.len())
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionConfig;
    use std::time::Duration;

    fn lifetimes() -> Lifetimes {
        Lifetimes::from_config(
            &SessionConfig::default()
                .with_idle_timeout(Duration::from_millis(10))
                .with_absolute_timeout(Duration::from_millis(100)),
        )
    }

    #[test]
    fn expired_entries_are_never_served_and_get_purged() {
        let store = MemoryStore::new();
        let a = store.insert_new(SessionId::generate(), Arc::new(Entry::new(1, 0)));
        let b = store.insert_new(SessionId::generate(), Arc::new(Entry::new(2, 0)));
        assert!(store.get_live(a, lifetimes(), 5).is_some());
        assert!(store.get_live(b, lifetimes(), 10).is_none(), "idle");
        assert_eq!(store.len(), 1, "an expired lookup removes the entry");
        assert_eq!(store.purge(lifetimes(), 14), 0);
        assert_eq!(store.purge(lifetimes(), 15), 1);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn renew_moves_once_and_never_revives() {
        let store = MemoryStore::new();
        let entry = Arc::new(Entry::new(7, 0));
        let old = store.insert_new(SessionId::generate(), Arc::clone(&entry));
        let new = store.renew(old, &entry).expect("moved");
        assert_ne!(old, new);
        assert!(store.get_live(old, lifetimes(), 1).is_none());
        assert_eq!(
            *store.get_live(new, lifetimes(), 1).expect("live").lock(),
            7
        );
        assert!(
            store.renew(old, &entry).is_none(),
            "a second renew of the old id"
        );
        assert_eq!(store.len(), 1);
    }
}
