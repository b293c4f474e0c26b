//! The in-process session map: live typed values, no serialisation on a hit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;

use crate::entry::Entry;
use crate::id::{IdHashBuilder, SessionId};
use crate::lifetime::Lifetimes;
use crate::observe::Observer;

/// How many counters [`MemoryStore::removals`] spreads ids over.
const REMOVAL_STRIPES: usize = 1024;

/// What [`MemoryStore::insert_loaded`] did with a loaded session.
pub(crate) enum Loaded<T> {
    /// Cached (or a parallel request's copy was already): the session's one live entry.
    Cached(Arc<Entry<T>>),
    /// A tombstone holds the id: the session was destroyed while it loaded.
    Ended,
    /// The id's cached entry was removed while this copy was read from the backend: the copy may
    /// be older than what that entry saved, so it was not cached. Read it again.
    Stale,
}

/// Sessions by id.
pub(crate) struct MemoryStore<T> {
    sessions: DashMap<SessionId, Arc<Entry<T>>, IdHashBuilder>,
    /// Removals of cached entries, counted per stripe of ids (under the shard lock of the id
    /// removed). A load notes its id's count before reading the backend and caches its copy
    /// only if the count has not moved: otherwise an entry that saved after that read may have
    /// been evicted meanwhile, and caching the older copy would let its next save overwrite
    /// those writes (a lost increment under a small capacity).
    removals: Box<[AtomicU32]>,
    /// Placements so far, so that the size is counted only every so often (counting locks
    /// every shard).
    placed: AtomicUsize,
    /// The bound on sessions held, and one less than how many placements go between two
    /// counts (a power of two, so that the check is a mask): see [`may_exceed`](Self::may_exceed).
    capacity: Option<(usize, usize)>,
    /// The store's metrics: expiries are counted here.
    observer: Observer,
}

impl<T> MemoryStore<T> {
    /// A map bounded to `capacity` sessions (`None`: unbounded), the bound enforced by
    /// [`enforce_capacity`](Self::enforce_capacity) when [`may_exceed`](Self::may_exceed) says so.
    pub(crate) fn new(capacity: Option<usize>, name: &'static str) -> Self {
        Self {
            observer: Observer::new(name),
            sessions: DashMap::default(),
            removals: removal_stripes(),
            placed: AtomicUsize::new(0),
            capacity: capacity.map(|bound| {
                let stride = (bound / 64).clamp(1, 1024).next_power_of_two();
                (bound, stride - 1)
            }),
        }
    }

    /// After a placement: whether the map may now hold more than its capacity. It is counted
    /// on every placement up to a capacity of 64, then about every `capacity / 64`-th (at most
    /// every 1024th), so it overshoots by at most about a 32nd before a sweep is asked for.
    #[inline]
    pub(crate) fn may_exceed(&self) -> bool {
        let Some((bound, mask)) = self.capacity else {
            return false;
        };
        let placed = self.placed.fetch_add(1, Ordering::Relaxed);
        placed & mask == 0 && self.sessions.len() > bound
    }

    /// A store of `shards` shards (a power of two above one), whatever the machine's core count.
    #[cfg(test)]
    fn with_shards(shards: usize) -> Self {
        Self {
            sessions: DashMap::with_hasher_and_shard_amount(IdHashBuilder::default(), shards),
            removals: removal_stripes(),
            placed: AtomicUsize::new(0),
            capacity: None,
            observer: Observer::new("test"),
        }
    }

    /// The live session under `id`, its idle clock left alone (see [`Entry::mark_used`]); an
    /// expired one is ended, removed and reported as absent, so it is never served. One that a
    /// running request holds is not idle.
    #[inline]
    pub(crate) fn lookup(
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
        // The map's reference and ours: any more are requests that hold it.
        if entry.is_over(lifetimes, now, Arc::strong_count(&entry) > 2) {
            // Ended first, so a request that holds it learns that its writes went nowhere.
            entry.end();
            self.remove(id, &entry);
            self.observer.expired(1);
            return None;
        }
        Some(entry)
    }

    /// [`lookup`](Self::lookup), and the idle clock restarted.
    #[cfg(test)]
    pub(crate) fn get_live(
        &self,
        id: SessionId,
        lifetimes: Lifetimes,
        now: u64,
    ) -> Option<Arc<Entry<T>>> {
        let entry = self.lookup(id, lifetimes, now)?;
        entry.mark_used(now);
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

    /// The removal count of `id`'s stripe, to pass to [`insert_loaded`](Self::insert_loaded)
    /// once the session is read from the backend.
    pub(crate) fn removal_mark(&self, id: SessionId) -> u32 {
        self.stripe(id).load(Ordering::Acquire)
    }

    fn stripe(&self, id: SessionId) -> &AtomicU32 {
        let [.., a, b] = id.to_bytes();
        &self.removals[usize::from(u16::from_le_bytes([a, b])) % REMOVAL_STRIPES]
    }

    /// Counts a removal of `id`'s entry; called under the lock of its shard.
    fn note_removal(&self, id: SessionId) {
        self.stripe(id).fetch_add(1, Ordering::AcqRel);
    }

    /// Caches a session loaded from the backend, unless a parallel request cached it first, in
    /// which case that entry wins (one live value per session per server); see [`Loaded`].
    /// `mark` is [`removal_mark`](Self::removal_mark) from before the backend was read.
    pub(crate) fn insert_loaded(
        &self,
        id: SessionId,
        entry: Arc<Entry<T>>,
        mark: u32,
    ) -> Loaded<T> {
        match self.sessions.entry(id) {
            MapEntry::Occupied(cached) if cached.get().is_ended() => Loaded::Ended,
            MapEntry::Occupied(cached) => Loaded::Cached(Arc::clone(cached.get())),
            // Compared under the shard's lock, which every removal of `id` holds too.
            MapEntry::Vacant(_) if self.removal_mark(id) != mark => Loaded::Stale,
            MapEntry::Vacant(slot) => {
                slot.insert(Arc::clone(&entry));
                Loaded::Cached(entry)
            }
        }
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
        self.sessions.remove_if(&id, |_, current| {
            let ours = Arc::ptr_eq(current, entry);
            if ours {
                self.note_removal(id);
            }
            ours
        });
    }

    /// Evicts every expired session, and with `idle_limit` every session unused for that long
    /// (a cache eviction: the backend still has it). A session a running request holds is
    /// never evicted, only ended and removed past its absolute timeout: a second copy loaded
    /// beside the held one would let one copy's save overwrite the other's writes. Returns how
    /// many were evicted.
    pub(crate) fn purge(&self, lifetimes: Lifetimes, now: u64, idle_limit: Option<u64>) -> usize {
        let before = self.sessions.len();
        let mut expired = 0;
        self.sessions.retain(|id, entry| {
            let in_use = Arc::strong_count(entry) > 1;
            let keep = if entry.is_ended() {
                false
            } else if entry.is_over(lifetimes, now, in_use) {
                entry.end();
                expired += 1;
                false
            } else {
                in_use
                    || idle_limit.is_none_or(|limit| now.saturating_sub(entry.last_used()) < limit)
            };
            if !keep {
                self.note_removal(*id);
            }
            keep
        });
        self.observer.expired(expired);
        before.saturating_sub(self.sessions.len())
    }

    /// Runs `visit` on every cached entry, ended ones included.
    pub(crate) fn for_each_entry(&self, mut visit: impl FnMut(&Entry<T>)) {
        for entry in &self.sessions {
            visit(entry.value());
        }
    }

    /// The live (not ended) entries with their ids, taken one shard at a time: for the admin
    /// operations that walk a memory-only store.
    pub(crate) fn live_entries(&self) -> Vec<(SessionId, Arc<Entry<T>>)> {
        self.sessions
            .iter()
            .filter(|entry| !entry.value().is_ended())
            .map(|entry| (*entry.key(), Arc::clone(entry.value())))
            .collect()
    }

    /// The entry under `id`, tombstones included.
    pub(crate) fn get(&self, id: SessionId) -> Option<Arc<Entry<T>>> {
        self.sessions.get(&id).map(|entry| Arc::clone(&entry))
    }

    /// Whether an entry (live or a tombstone) is cached under `id`.
    pub(crate) fn contains(&self, id: SessionId) -> bool {
        self.sessions.contains_key(&id)
    }

    /// The ids held, tombstones included.
    #[cfg_attr(not(feature = "key-store"), allow(dead_code))]
    pub(crate) fn ids(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.sessions.iter().map(|entry| *entry.key())
    }

    /// The store's metrics.
    pub(crate) fn observer(&self) -> &Observer {
        &self.observer
    }

    pub(crate) fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Keeps at most `capacity` sessions: past it, evicts the least recently used, down to nine
    /// tenths of it, so one O(n) sweep serves `capacity / 10` insertions. Sessions that running
    /// requests hold are never evicted (see [`purge`](Self::purge)), so the map may stay above
    /// the bound while more than that many are in use. Returns how many were evicted.
    pub(crate) fn enforce_capacity(&self, capacity: usize) -> usize {
        let len = self.sessions.len();
        if len <= capacity {
            return 0;
        }
        let target = capacity - capacity / 10;
        let mut ages: Vec<u64> = self
            .sessions
            .iter()
            .filter(|entry| Arc::strong_count(entry.value()) == 1)
            .map(|entry| entry.last_used())
            .collect();
        let excess = len.saturating_sub(target).min(ages.len());
        if excess == 0 {
            return 0;
        }
        let (_, threshold, _) = ages.select_nth_unstable(excess - 1);
        let threshold = *threshold;
        // Everything older than the threshold goes; of the entries exactly at it, only as many
        // as still needed (so ties never spare an older entry).
        let older = ages.iter().filter(|age| **age < threshold).count();
        let mut ties = excess - older;
        let mut evicted = 0_usize;
        self.sessions.retain(|id, entry| {
            if Arc::strong_count(entry) > 1 {
                return true;
            }
            let age = entry.last_used();
            let evict = age < threshold || (age == threshold && ties > 0);
            if evict {
                ties -= usize::from(age == threshold);
                evicted += 1;
                self.note_removal(*id);
            }
            !evict
        });
        evicted
    }
}

/// [`MemoryStore::removals`], zeroed.
fn removal_stripes() -> Box<[AtomicU32]> {
    (0..REMOVAL_STRIPES).map(|_| AtomicU32::new(0)).collect()
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
            false,
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
        let store = MemoryStore::new(None, "test");
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
        let store = MemoryStore::new(None, "test");
        store.insert_new(SessionId::generate(), &entry(1, 0));
        assert_eq!(store.purge(lifetimes(), 4, Some(5)), 0);
        assert_eq!(store.purge(lifetimes(), 5, Some(5)), 1);
    }

    #[test]
    fn rekey_moves_the_entry_to_a_fresh_id() {
        let store = MemoryStore::new(None, "test");
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
        let store = MemoryStore::new(None, "test");
        let dead = entry(1, 0);
        let id = store.insert_new(SessionId::generate(), &dead);
        dead.end();
        assert!(store.get_live(id, lifetimes(), 1).is_none());
        assert!(matches!(
            store.insert_loaded(id, entry(2, 0), store.removal_mark(id)),
            Loaded::Ended
        ));
        assert_eq!(store.purge(lifetimes(), 1, None), 1, "purged");
    }

    #[test]
    fn capacity_evicts_the_least_recently_used() {
        let store = MemoryStore::new(None, "test");
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
        Lifetimes::from_config(&SessionConfig::default(), false)
    }

    #[test]
    fn the_first_cached_load_wins() {
        let store = MemoryStore::new(None, "test");
        let id = SessionId::generate();
        let mark = store.removal_mark(id);
        let Loaded::Cached(first) = store.insert_loaded(id, entry(1, 0), mark) else {
            panic!("cached");
        };
        let Loaded::Cached(second) = store.insert_loaded(id, entry(2, 0), mark) else {
            panic!("the first one");
        };
        assert!(Arc::ptr_eq(&first, &second));
    }

    #[test]
    fn a_copy_read_before_its_entry_was_evicted_is_not_cached() {
        let store = MemoryStore::new(None, "test");
        let id = SessionId::generate();
        let mark = store.removal_mark(id);
        let Loaded::Cached(newer) = store.insert_loaded(id, entry(2, 0), mark) else {
            panic!("cached");
        };
        // The entry saves and goes idle, and is evicted; a load that read the older record
        // before all that must not be cached.
        drop(newer);
        assert_eq!(store.purge(lifetimes_long(), 1, Some(1)), 1);
        assert!(matches!(
            store.insert_loaded(id, entry(1, 0), mark),
            Loaded::Stale
        ));
        let fresh_mark = store.removal_mark(id);
        assert!(matches!(
            store.insert_loaded(id, entry(2, 0), fresh_mark),
            Loaded::Cached(_)
        ));
    }
}
