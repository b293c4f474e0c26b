//! One live session as every request of it shares it: the value under its lock and the
//! bookkeeping that must change with it, the timestamps, and how it ended.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use crate::id::SessionId;
use crate::lifetime::Lifetimes;
use crate::record::Encoded;
use crate::transport::KnownValue;

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
    /// [`LIVE`], or why it ended: [`ENDED`], destroyed, expired or found gone from the backend;
    /// [`UNREADABLE`], dropped because its stored copy cannot be read here; [`DISCARDED`],
    /// dropped because a save failed. An ended session is never served or saved again. An
    /// atomic of its own, so the lookup of every request checks it without taking the value's
    /// lock.
    ended: AtomicU8,
    /// While the session is new and unstored, the operations its creating request asked for
    /// (see `Session::Fresh`); unused after.
    pub(crate) creator_actions: AtomicU8,
    /// What only some sessions need, made on first use (see [`Extras`]): most sessions of an
    /// unsigned memory-only store never need it, and the entry stays smaller (112 bytes with the
    /// default features), which keeps a new session's entry copied inline.
    extras: OnceLock<Box<Extras>>,
}

/// The parts of an [`Entry`] made when first needed.
#[derive(Default)]
struct Extras {
    /// One save at a time per session on this server: parallel requests queue here and most
    /// find their writes already carried by the save before them. Needed from a session's
    /// first save, renewal, destroy or withdrawn consent.
    save_lock: tokio::sync::Mutex<Option<LastWrite>>,
    /// The session's last signed value this server issued or verified in full, so that the
    /// client's next request is recognised without an HMAC. Needed from a signed store's first
    /// value.
    known_value: KnownValue,
    /// The `#[session(index)]` value this server last checked `max_sessions_per_index` for
    /// (`None` before the first check).
    checked_index: Mutex<Option<Option<String>>>,
    /// The dirty bits of the fields a save on this server is writing right now (taken from
    /// `Slot::unsaved` until it settles). Changed only under the value's lock.
    saving: AtomicU64,
}

/// What the save lock guards: the record this server last wrote for the session (when it is
/// worth keeping), so that the next save copies the fields that did not change.
pub(crate) struct LastWrite {
    /// The id and version it was written under: it serves only the save that replaces exactly
    /// that record. Any other change of the value (a reload after a lost race, a renewal)
    /// comes with another version or id.
    pub(crate) id: SessionId,
    pub(crate) version: u64,
    pub(crate) encoded: Encoded,
}

/// States of [`Entry::ended`].
const LIVE: u8 = 0;
const ENDED: u8 = 1;
const DISCARDED: u8 = 2;
const UNREADABLE: u8 = 3;

/// Why a session ended, as a request that wrote to it learns at its close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Destroyed, expired or gone from the backend: a write to it went nowhere.
    Gone,
    /// Its stored copy cannot be read here.
    Unreadable,
    /// A save failed, and this server's copy with its unsaved writes was dropped.
    Discarded,
}

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
            extras: OnceLock::new(),
        }
    }

    /// Locks the value. A panic in another request's accessor closure poisons the mutex; the
    /// value is still the one that closure left, and refusing every later request of the
    /// session would turn one bug into a lost session.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session's save lock (see the field).
    pub(crate) fn save_lock(&self) -> &tokio::sync::Mutex<Option<LastWrite>> {
        &self.extras().save_lock
    }

    /// The session's known-good signed value (see the field of [`Extras`]).
    pub(crate) fn known_value(&self) -> &KnownValue {
        &self.extras().known_value
    }

    /// Whether `index` differs from the index value last checked against
    /// `max_sessions_per_index` on this server (always, the first time); notes it.
    pub(crate) fn index_moved(&self, index: Option<&str>) -> bool {
        let mut checked = self
            .extras()
            .checked_index
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if checked
            .as_ref()
            .is_some_and(|last| last.as_deref() == index)
        {
            return false;
        }
        *checked = Some(index.map(str::to_owned));
        true
    }

    fn extras(&self) -> &Extras {
        self.extras.get_or_init(Box::default)
    }

    /// The fields a save on this server is writing right now: a newer stored copy read
    /// meanwhile must not replace them, as it must not replace unsaved ones. Read and set under
    /// the value's lock.
    pub(crate) fn saving(&self) -> u64 {
        self.extras
            .get()
            .map_or(0, |extras| extras.saving.load(Ordering::Relaxed))
    }

    /// Notes the fields a save attempt took over (0 once it settles); under the value's lock.
    pub(crate) fn set_saving(&self, fields: u64) {
        self.extras().saving.store(fields, Ordering::Relaxed);
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

    /// Whether the session is over at `now`: past its absolute timeout, or unused for its idle
    /// (or long-term) timeout. `in_use` (a request holds it) counts as a use that lasts, so a
    /// handler that runs longer than the idle timeout does not lose its session under it.
    pub(crate) fn is_over(&self, lifetimes: Lifetimes, now: u64, in_use: bool) -> bool {
        let long_term = self.is_long_term();
        if now >= lifetimes.age_limit(self.created_at, long_term) {
            return true;
        }
        !in_use && now >= lifetimes.idle_limit(self.last_access.load(Ordering::Relaxed), long_term)
    }

    /// The last request of the session on this server (unix milliseconds).
    #[inline]
    pub(crate) fn last_used(&self) -> u64 {
        self.last_access.load(Ordering::Relaxed)
    }

    /// Restarts the idle clock: a request of the session (its start, or its write).
    #[inline]
    pub(crate) fn mark_used(&self, now: u64) {
        // A plain store, not a read-modify-write: requests within one millisecond skip it, and
        // a race between two stores can only move the idle clock back by a millisecond.
        if self.last_access.load(Ordering::Relaxed) < now {
            self.last_access.store(now, Ordering::Relaxed);
        }
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

    /// Marks the session over because a save failed: its unsaved writes are dropped with it,
    /// and parallel requests that wrote to it fail too, so no request is answered as if its
    /// write were kept. `max`: an unreadable session stays marked as such.
    pub(crate) fn discard(&self) {
        self.ended.fetch_max(DISCARDED, Ordering::AcqRel);
    }

    #[inline]
    pub(crate) fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire) != LIVE
    }

    /// Why the session ended; `None` while it is live.
    pub(crate) fn ending(&self) -> Option<Ending> {
        match self.ended.load(Ordering::Acquire) {
            LIVE => None,
            UNREADABLE => Some(Ending::Unreadable),
            DISCARDED => Some(Ending::Discarded),
            _ => Some(Ending::Gone),
        }
    }
}
