//! One request's view of its session: the shared live entry plus what this request did to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::SystemTime;

use crate::binding::ClientBinding;
use crate::clock::to_system_time;
use crate::id::SessionId;
use crate::store::Lifetimes;
use crate::store::memory::{Entry, Slot};

const DESTROY: u8 = 1;
const RENEW: u8 = 2;
const LONG_TERM_CHANGED: u8 = 4;
const TOUCHED: u8 = 8;
const RESIGN: u8 = 16;
const CONSENT_CHANGED: u8 = 32;

/// The session of one request, shared by the layer and every extractor of that request.
pub(crate) struct RequestSession<T> {
    /// The id the request arrived with (or, for a new session, the id it will get).
    pub(crate) id: SessionId,
    pub(crate) entry: Arc<Entry<T>>,
    /// Not yet in the store: created only if this request writes to it.
    pub(crate) is_new: bool,
    lifetimes: Lifetimes,
    /// The client this request came from, for signing the id handed back.
    pub(crate) binding: ClientBinding,
    /// One bit per field (by declaration order) that this request wrote.
    dirty: AtomicU64,
    /// The entry's write counter after this request's last write: a save that carried that
    /// many writes carried this request's.
    last_write: AtomicU64,
    actions: AtomicU8,
}

impl<T> RequestSession<T> {
    pub(crate) fn existing(
        id: SessionId,
        entry: Arc<Entry<T>>,
        lifetimes: Lifetimes,
        binding: ClientBinding,
    ) -> Self {
        Self::new(id, entry, false, lifetimes, binding)
    }

    /// A new session; `consent` is whether it may be stored before `set_store(true)`.
    pub(crate) fn fresh(
        value: T,
        now: u64,
        lifetimes: Lifetimes,
        binding: ClientBinding,
        consent: bool,
    ) -> Self {
        let id = SessionId::generate();
        let entry = Entry::new(value, id, now);
        entry.consent.store(consent, Ordering::Release);
        Self::new(id, Arc::new(entry), true, lifetimes, binding)
    }

    fn new(
        id: SessionId,
        entry: Arc<Entry<T>>,
        is_new: bool,
        lifetimes: Lifetimes,
        binding: ClientBinding,
    ) -> Self {
        Self {
            id,
            entry,
            is_new,
            lifetimes,
            binding,
            dirty: AtomicU64::new(0),
            last_write: AtomicU64::new(0),
            actions: AtomicU8::new(0),
        }
    }

    pub(crate) fn dirty(&self) -> u64 {
        self.dirty.load(Ordering::Acquire)
    }

    pub(crate) fn last_write(&self) -> u64 {
        self.last_write.load(Ordering::Acquire)
    }

    fn has(&self, action: u8) -> bool {
        self.actions.load(Ordering::Acquire) & action != 0
    }

    pub(crate) fn destroy_requested(&self) -> bool {
        self.has(DESTROY)
    }

    pub(crate) fn renew_requested(&self) -> bool {
        self.has(RENEW)
    }

    pub(crate) fn long_term_changed(&self) -> bool {
        self.has(LONG_TERM_CHANGED)
    }

    /// Whether opening this request extended the session's stored expiry.
    pub(crate) fn touched(&self) -> bool {
        self.has(TOUCHED)
    }

    pub(crate) fn mark_touched(&self) {
        self.actions.fetch_or(TOUCHED, Ordering::AcqRel);
    }

    /// Whether the id arrived signed with a previous key.
    pub(crate) fn resign(&self) -> bool {
        self.has(RESIGN)
    }

    pub(crate) fn mark_resign(&self) {
        self.actions.fetch_or(RESIGN, Ordering::AcqRel);
    }

    pub(crate) fn consent_changed(&self) -> bool {
        self.has(CONSENT_CHANGED)
    }

    /// Runs `change` on the slot under its lock, then records the write for this request and
    /// for the entry: `fields` dirty here, unsaved there.
    fn write<R>(&self, fields: u64, change: impl FnOnce(&mut Slot<T>) -> (bool, R)) -> R {
        let mut slot = self.entry.lock();
        let (changed, result) = change(&mut slot);
        if changed {
            slot.unsaved |= fields;
            slot.writes += 1;
            // Plain stores: every writer of this request's marks holds the value's lock here, so
            // they never race, and the response is built only after the handler returned.
            self.last_write.store(slot.writes, Ordering::Release);
            let dirty = self.dirty.load(Ordering::Relaxed);
            self.dirty.store(dirty | fields, Ordering::Release);
            drop(slot);
        }
        result
    }
}

/// The request's session as the generated accessors see it. Not part of the public API:
/// generated code calls it, users call the accessors.
#[doc(hidden)]
pub struct RawSession<T>(pub(crate) Arc<RequestSession<T>>);

impl<T> Clone for RawSession<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> RawSession<T> {
    /// Runs `read` on the value under its lock; marks nothing.
    pub fn read<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        read(&self.0.entry.lock().value)
    }

    /// Runs `write` on the value under its lock and marks field number `field` dirty.
    pub fn write<R>(&self, field: u32, write: impl FnOnce(&mut T) -> R) -> R {
        self.0
            .write(1 << field, |slot| (true, write(&mut slot.value)))
    }

    /// Runs `write` on the value under its lock and marks every field dirty.
    pub fn write_all<R>(&self, write: impl FnOnce(&mut T) -> R) -> R {
        self.0
            .write(u64::MAX, |slot| (true, write(&mut slot.value)))
    }

    /// Runs `take` under the lock; marks field number `field` dirty only if it took something,
    /// so taking from an empty field neither writes nor creates a session.
    pub fn take<U>(&self, field: u32, take: impl FnOnce(&mut T) -> Option<U>) -> Option<U> {
        self.0.write(1 << field, |slot| {
            let taken = take(&mut slot.value);
            (taken.is_some(), taken)
        })
    }

    pub(crate) fn id(&self) -> SessionId {
        self.0.id
    }

    pub(crate) fn is_new(&self) -> bool {
        self.0.is_new
    }

    pub(crate) fn expires_at(&self) -> SystemTime {
        to_system_time(self.0.entry.expires_at(self.0.lifetimes))
    }

    pub(crate) fn is_long_term(&self) -> bool {
        self.0.entry.is_long_term()
    }

    pub(crate) fn set_long_term(&self, long_term: bool) {
        let entry = &self.0.entry;
        // Under the value lock, so a save's snapshot sees the flag and the write counter agree.
        let changed = self.0.write(0, |_| {
            let changed = entry.long_term.swap(long_term, Ordering::AcqRel) != long_term;
            (changed, changed)
        });
        if changed {
            self.0.actions.fetch_or(LONG_TERM_CHANGED, Ordering::AcqRel);
        }
    }

    pub(crate) fn has_consent(&self) -> bool {
        self.0.entry.has_consent()
    }

    pub(crate) fn set_consent(&self, consent: bool) {
        let entry = &self.0.entry;
        let changed = self.0.write(0, |_| {
            let changed = entry.consent.swap(consent, Ordering::AcqRel) != consent;
            (changed, changed)
        });
        if changed {
            self.0.actions.fetch_or(CONSENT_CHANGED, Ordering::AcqRel);
        }
    }

    /// Asks for a new id at response time when a `renew_on_change` field changed.
    pub fn renew_if(&self, changed: bool) {
        if changed {
            self.renew();
        }
    }

    pub(crate) fn destroy(&self) {
        self.0.actions.fetch_or(DESTROY, Ordering::AcqRel);
    }

    pub(crate) fn renew(&self) {
        self.0.actions.fetch_or(RENEW, Ordering::AcqRel);
    }
}
