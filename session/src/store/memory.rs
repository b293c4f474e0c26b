//! The in-process session map: live typed values, no serialisation on a hit.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use crate::id::{IdHashBuilder, SessionId};
use crate::store::lifetime::Lifetimes;

/// One live session: its value under a lock, and its timestamps (unix milliseconds).
pub(crate) struct Entry<T> {
    slot: Mutex<Slot<T>>,
    pub(crate) created_at: u64,
    /// The last request of this session on this server.
    last_access: AtomicU64,
    /// The last time the backend confirmed the session and extended its expiry.
    pub(crate) synced_at: AtomicU64,
    pub(crate) long_term: AtomicBool,
    /// Storage consent (`SessionMode::OptIn`); always set under `SessionMode::Persistent`.
    pub(crate) consent: AtomicBool,
    /// [`LIVE`]; or [`ENDED`], destroyed here or found gone from the backend; or
    /// [`UNREADABLE`], dropped because its stored copy cannot be read here. An ended session is
    /// never served or saved again. An atomic of its own, so the lookup of every request checks
    /// it without taking the value's lock.
    ended: AtomicU8,
    /// While the session is new and unstored, the operations its creating request asked for
    /// (see `Session::Fresh`); unused after.
    pub(crate) creator_actions: AtomicU8,
    /// One save at a time per session on this server: parallel requests queue here and most
    /// find their writes already carried by the save before them. Made on first use (a save, a
    /// renewal, a destroy, a withdrawn consent): most sessions of a memory-only store never
    /// need it, and the entry stays smaller (24 bytes with the default features).
    save_lock: OnceLock<Box<tokio::sync::Mutex<()>>>,
}

/// States of [`Entry::ended`].
const LIVE: u8 = 0;
const ENDED: u8 = 1;
const UNREADABLE: u8 = 2;

/// What the lock of an [`Entry`] guards: the value and the bookkeeping that must change with it.
pub(crate) struct Slot<T> {
    pub(crate) value: T,
    /// The session's current id; renewal changes it, and saves always use it.
    pub(crate) id: SessionId,
    /// The backend version this value is based on; 0 before the first save.
    pub(crate) version: u64,
    /// Fields written on this server since the last save: kept over the stored values when a
    /// save loses a compare-and-set race.
    pub(crate) unsaved: u64,
    /// Writes so far (a counter), and how many of them the last successful save carried: a
    /// request whose last write is carried needs no save of its own.
    pub(crate) writes: u64,
    pub(crate) saved_writes: u64,
}

impl<T> Entry<T> {
    pub(crate) fn new(value: T, id: SessionId, now: u64) -> Self {
        Self::with_meta(value, id, now, false, 0, now)
    }

    /// An entry for a value read from the backend.
    pub(crate) fn with_meta(
        value: T,
        id: SessionId,
        created_at: u64,
        long_term: bool,
        version: u64,
        now: u64,
    ) -> Self {
        Self {
            slot: Mutex::new(Slot {
                value,
                id,
                version,
                unsaved: 0,
                writes: 0,
                saved_writes: 0,
            }),
            created_at,
            last_access: AtomicU64::new(now),
            synced_at: AtomicU64::new(now),
            long_term: AtomicBool::new(long_term),
            consent: AtomicBool::new(true),
            ended: AtomicU8::new(LIVE),
            creator_actions: AtomicU8::new(0),
            save_lock: OnceLock::new(),
        }
    }

    /// Locks the value. A panic in another request's accessor closure poisons the mutex; the
    /// value is still the one that closure left, and refusing every later request of the
    /// session would turn one bug into a lost session.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session's save lock (see the field).
    pub(crate) fn save_lock(&self) -> &tokio::sync::Mutex<()> {
        self.save_lock.get_or_init(Box::default)
    }

    pub(crate) fn has_consent(&self) -> bool {
        self.consent.load(Ordering::Acquire)
    }

    pub(crate) fn is_long_term(&self) -> bool {
        self.long_term.load(Ordering::Acquire)
    }

    pub(crate) fn expires_at(&self, lifetimes: Lifetimes) -> u64 {
        lifetimes.expires_at(
            self.created_at,
            self.last_access.load(Ordering::Relaxed),
            self.is_long_term(),
        )
    }

    fn is_expired(&self, lifetimes: Lifetimes, now: u64) -> bool {
        now >= self.expires_at(lifetimes)
    }

    /// Marks the session over: saves of parallel requests stop.
    pub(crate) fn end(&self) {
        // `max`: an unreadable session stays marked as such.
        self.ended.fetch_max(ENDED, Ordering::AcqRel);
    }

    /// Marks the session over because its stored copy cannot be read here: saves of parallel
    /// requests fail rather than drop their writes unnoticed.
    pub(crate) fn end_unreadable(&self) {
        self.ended.store(UNREADABLE, Ordering::Release);
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire) != LIVE
    }

    pub(crate) fn is_unreadable(&self) -> bool {
        self.ended.load(Ordering::Acquire) == UNREADABLE
    }
}

/// Sessions by id.
pub(crate) struct MemoryStore<T> {
    sessions: DashMap<SessionId, Arc<Entry<T>>, IdHashBuilder>,
}

impl<T> MemoryStore<T> {
    pub(crate) fn new() -> Self {
        Self {
            sessions: DashMap::default(),
        }
    }

    /// A store of `shards` shards (a power of two above one), whatever the machine's core count.
    #[cfg(test)]
    fn with_shards(shards: usize) -> Self {
        Self {
            sessions: DashMap::with_hasher_and_shard_amount(IdHashBuilder::default(), shards),
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
        if entry.is_ended() {
            // A tombstone: destroyed, kept so a racing load cannot cache the session again.
            return None;
        }
        if entry.is_expired(lifetimes, now) {
            self.remove(id, &entry);
            return None;
        }
        // A plain store, not a read-modify-write: requests within one millisecond skip it, and
        // a race between two stores can only move the idle clock back by a millisecond.
        if entry.last_access.load(Ordering::Relaxed) < now {
            entry.last_access.store(now, Ordering::Relaxed);
        }
        Some(entry)
    }

    /// Stores a new session under `id`, or under a fresh id if `id` is taken (a 2^-122 event,
    /// but an existing session is never overwritten), and names the entry by it. Returns the
    /// id used.
    pub(crate) fn insert_new(&self, id: SessionId, entry: &Arc<Entry<T>>) -> SessionId {
        let placed = self.place(id, entry);
        entry.lock().id = placed;
        placed
    }

    /// [`insert_new`](Self::insert_new) for an entry created under `id`: its value's lock is
    /// taken only if the id has to change.
    #[inline]
    pub(crate) fn insert_created(&self, id: SessionId, entry: &Arc<Entry<T>>) -> SessionId {
        let placed = self.place(id, entry);
        if placed != id {
            entry.lock().id = placed;
        }
        placed
    }

    /// Holds `entry` under one more, fresh id, which it returns, without naming the entry by
    /// it: a renewal names the entry only once the backend has a record under the new id.
    pub(crate) fn reserve(&self, entry: &Arc<Entry<T>>) -> SessionId {
        self.place(SessionId::generate(), entry)
    }

    /// Stores `entry` under `id`, or under a fresh id if `id` is taken; returns the id used.
    #[inline]
    fn place(&self, id: SessionId, entry: &Arc<Entry<T>>) -> SessionId {
        // No loop here: this way the map's entry lookup is inlined into every new session's path.
        match self.sessions.entry(id) {
            MapEntry::Vacant(slot) => {
                slot.insert(Arc::clone(entry));
                id
            }
            MapEntry::Occupied(taken) => {
                // Its shard's lock goes before another id is tried (it may be in the same shard).
                drop(taken);
                self.place_elsewhere(entry)
            }
        }
    }

    /// [`place`](Self::place) after a collision: under fresh ids until one is free.
    #[cold]
    #[inline(never)]
    fn place_elsewhere(&self, entry: &Arc<Entry<T>>) -> SessionId {
        loop {
            let id = SessionId::generate();
            if let MapEntry::Vacant(slot) = self.sessions.entry(id) {
                slot.insert(Arc::clone(entry));
                return id;
            }
        }
    }

    /// Caches a session loaded from the backend, unless a parallel request cached it first, in
    /// which case that entry wins (one live value per session per server). `None` when what is
    /// cached is a tombstone: the session was destroyed while it loaded.
    pub(crate) fn insert_loaded(
        &self,
        id: SessionId,
        entry: Arc<Entry<T>>,
    ) -> Option<Arc<Entry<T>>> {
        let cached = Arc::clone(self.sessions.entry(id).or_insert(entry).value());
        (!cached.is_ended()).then_some(cached)
    }

    /// Moves `entry` from `old` (if it is still there: it may have been evicted) to a fresh id,
    /// which it returns. The caller holds the entry's save lock and has checked that the entry is
    /// live and still named `old`, so two renewals never both move it.
    pub(crate) fn rekey(&self, old: SessionId, entry: &Arc<Entry<T>>) -> SessionId {
        self.remove(old, entry);
        self.insert_new(SessionId::generate(), entry)
    }

    /// Removes `id` if it still holds `entry`.
    pub(crate) fn remove(&self, id: SessionId, entry: &Arc<Entry<T>>) {
        self.sessions
            .remove_if(&id, |_, current| Arc::ptr_eq(current, entry));
    }

    /// Evicts every expired session, and with `idle_limit` every session unused for that long
    /// (a cache eviction: the backend still has it). Returns how many were evicted.
    pub(crate) fn purge(&self, lifetimes: Lifetimes, now: u64, idle_limit: Option<u64>) -> usize {
        let before = self.sessions.len();
        self.sessions.retain(|_, entry| {
            let idle_too_long = idle_limit.is_some_and(|limit| {
                now.saturating_sub(entry.last_access.load(Ordering::Relaxed)) >= limit
            });
            !entry.is_expired(lifetimes, now) && !idle_too_long && !entry.is_ended()
        });
        before.saturating_sub(self.sessions.len())
    }

    /// The ids held, tombstones included.
    #[cfg_attr(not(feature = "key-store"), allow(dead_code))]
    pub(crate) fn ids(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.sessions.iter().map(|entry| *entry.key())
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Keeps at most `capacity` sessions: past it, evicts the least recently used tenth in one
    /// sweep, so the O(n) sweep runs once per `capacity / 10` insertions, not on each.
    pub(crate) fn enforce_capacity(&self, capacity: usize) {
        let len = self.sessions.len();
        if len <= capacity {
            return;
        }
        let target = capacity - capacity / 10;
        let mut ages: Vec<u64> = self
            .sessions
            .iter()
            .map(|entry| entry.last_access.load(Ordering::Relaxed))
            .collect();
        let excess = ages.len().saturating_sub(target);
        if excess == 0 {
            return;
        }
        let (_, threshold, _) = ages.select_nth_unstable(excess - 1);
        let threshold = *threshold;
        // Everything older than the threshold goes; of the entries exactly at it, only as many
        // as still needed (so ties never spare an older entry).
        let older = ages.iter().filter(|age| **age < threshold).count();
        let mut ties = excess - older;
        let mut evicted = 0_usize;
        self.sessions.retain(|_, entry| {
            let age = entry.last_access.load(Ordering::Relaxed);
            let evict = age < threshold || (age == threshold && ties > 0);
            if evict {
                ties -= usize::from(age == threshold);
                evicted += 1;
            }
            !evict
        });
        tracing::debug!(evicted, capacity, "typed-session: memory capacity reached");
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

    fn entry(value: u32, now: u64) -> Arc<Entry<u32>> {
        Arc::new(Entry::new(value, SessionId::generate(), now))
    }

    #[test]
    fn a_taken_id_is_never_overwritten() {
        // Two shards, so that some of the fresh ids drawn after a collision land in the taken
        // id's shard (a held shard lock would deadlock there) on any machine.
        let store = MemoryStore::with_shards(2);
        let id = SessionId::generate();
        let first = entry(1, 0);
        assert_eq!(store.insert_new(id, &first), id);
        for value in 2..60 {
            let other = entry(value, 0);
            let placed = store.insert_new(id, &other);
            assert_ne!(placed, id);
            assert_eq!(other.lock().id, placed);
            let found = store.get_live(placed, lifetimes(), 0).expect("placed");
            assert!(Arc::ptr_eq(&found, &other));
        }
        let found = store.get_live(id, lifetimes(), 0).expect("still there");
        assert!(Arc::ptr_eq(&found, &first));
    }

    #[test]
    fn expired_entries_are_never_served_and_get_purged() {
        let store = MemoryStore::new();
        let a = store.insert_new(SessionId::generate(), &entry(1, 0));
        let b = store.insert_new(SessionId::generate(), &entry(2, 0));
        assert!(store.get_live(a, lifetimes(), 5).is_some());
        assert!(store.get_live(b, lifetimes(), 10).is_none(), "idle");
        assert_eq!(store.len(), 1, "an expired lookup removes the entry");
        assert_eq!(store.purge(lifetimes(), 14, None), 0);
        assert_eq!(store.purge(lifetimes(), 15, None), 1);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn purge_with_an_idle_limit_evicts_quiet_entries() {
        let store = MemoryStore::new();
        store.insert_new(SessionId::generate(), &entry(1, 0));
        assert_eq!(store.purge(lifetimes(), 4, Some(5)), 0);
        assert_eq!(store.purge(lifetimes(), 5, Some(5)), 1);
    }

    #[test]
    fn rekey_moves_the_entry_to_a_fresh_id() {
        let store = MemoryStore::new();
        let live = entry(7, 0);
        let old = store.insert_new(SessionId::generate(), &live);
        let new = store.rekey(old, &live);
        assert_ne!(old, new);
        assert_eq!(live.lock().id, new, "the entry knows its new id");
        assert!(store.get_live(old, lifetimes(), 1).is_none());
        assert_eq!(
            store
                .get_live(new, lifetimes(), 1)
                .expect("live")
                .lock()
                .value,
            7
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn tombstones_are_never_served_nor_replaced_by_a_load() {
        let store = MemoryStore::new();
        let dead = entry(1, 0);
        let id = store.insert_new(SessionId::generate(), &dead);
        dead.end();
        assert!(store.get_live(id, lifetimes(), 1).is_none());
        assert!(store.insert_loaded(id, entry(2, 0)).is_none());
        assert_eq!(store.purge(lifetimes(), 1, None), 1, "purged");
    }

    #[test]
    fn capacity_evicts_the_least_recently_used() {
        let store = MemoryStore::new();
        let ids: Vec<SessionId> = (0..20)
            .map(|age| store.insert_new(SessionId::generate(), &entry(age, u64::from(age))))
            .collect();
        store.enforce_capacity(20);
        assert_eq!(store.len(), 20, "at capacity nothing goes");
        store.insert_new(SessionId::generate(), &entry(99, 100));
        store.enforce_capacity(20);
        assert_eq!(store.len(), 18, "down to nine tenths");
        assert!(
            store.get_live(ids[0], lifetimes_long(), 100).is_none(),
            "oldest evicted"
        );
        assert!(store.get_live(ids[2], lifetimes_long(), 100).is_none());
        assert!(store.get_live(ids[3], lifetimes_long(), 100).is_some());
    }

    fn lifetimes_long() -> Lifetimes {
        Lifetimes::from_config(&SessionConfig::default())
    }

    #[test]
    fn the_first_cached_load_wins() {
        let store = MemoryStore::new();
        let id = SessionId::generate();
        let first = store.insert_loaded(id, entry(1, 0)).unwrap();
        let second = store.insert_loaded(id, entry(2, 0)).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
    }
}
