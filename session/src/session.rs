//! One request's view of its session: the shared live entry plus what this request did to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::SystemTime;

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

/// What one request did to a stored session: written by its handles, read once at close.
#[derive(Default)]
pub(crate) struct RequestMarks {
    /// One bit per field (by declaration order) that this request wrote.
    dirty: AtomicU64,
    /// The entry's write counter after this request's last write: a save that carried that
    /// many writes carried this request's.
    last_write: AtomicU64,
    actions: AtomicU8,
}

impl RequestMarks {
    fn clear(&self) {
        self.dirty.store(0, Ordering::Relaxed);
        self.last_write.store(0, Ordering::Relaxed);
        self.actions.store(0, Ordering::Relaxed);
    }

    fn read(&self) -> Marks {
        Marks {
            dirty: self.dirty.load(Ordering::Acquire),
            last_write: self.last_write.load(Ordering::Acquire),
            actions: self.actions.load(Ordering::Acquire),
        }
    }
}

/// The request marks an entry keeps for one request at a time, so that the usual request (the
/// only one of its session in flight) allocates nothing of its own.
#[derive(Default)]
pub(crate) struct InlineMarks {
    /// Handles of the request that claimed the marks; 0 when they are free.
    holders: AtomicUsize,
    marks: RequestMarks,
}

/// One handle of the request holding an entry's [`InlineMarks`]; the last one dropped frees
/// them. Late handles (a clone kept by a spawned task) keep them claimed, so they can never
/// write into another request's marks.
pub(crate) struct Claim<T>(Arc<Entry<T>>);

impl<T> Claim<T> {
    /// Claims `entry`'s inline marks, or gives the entry back when another request holds them.
    fn new(entry: Arc<Entry<T>>) -> Result<Self, Arc<Entry<T>>> {
        let inline = &entry.request_marks;
        // Acquire: the previous holder's last writes happen before the clear.
        match inline
            .holders
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => {
                inline.marks.clear();
                Ok(Self(entry))
            }
            Err(_) => Err(entry),
        }
    }

    fn marks(&self) -> &RequestMarks {
        &self.0.request_marks.marks
    }
}

impl<T> Clone for Claim<T> {
    fn clone(&self) -> Self {
        // A new handle is made from a live one, so the count is above 0 and stays claimed.
        self.0.request_marks.holders.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(&self.0))
    }
}

impl<T> Drop for Claim<T> {
    fn drop(&mut self) {
        // Release: this handle's writes happen before the next claimer's clear.
        self.0.request_marks.holders.fetch_sub(1, Ordering::Release);
    }
}

/// A stored session with marks of its own, for a request that finds another request of the
/// session in flight.
pub(crate) struct RequestSession<T> {
    entry: Arc<Entry<T>>,
    marks: RequestMarks,
}

/// The session of one request, shared by the layer and every extractor of that request.
pub(crate) enum Session<T> {
    /// A stored session; the request's marks are the entry's inline ones (the usual case) or
    /// its own.
    Existing {
        /// The id the request arrived with.
        id: SessionId,
        marks: MarksHome<T>,
        lifetimes: Lifetimes,
    },
    /// A new session. Until it is stored only this request can reach its entry, so the entry
    /// itself carries the request's marks (its unsaved fields, write counter and
    /// `creator_actions`): no allocation of per-request state for a new session.
    Fresh {
        /// The id it gets if this request writes to it.
        id: SessionId,
        entry: Arc<Entry<T>>,
        lifetimes: Lifetimes,
    },
}

/// Where a stored session's request marks live.
pub(crate) enum MarksHome<T> {
    Inline(Claim<T>),
    Own(Arc<RequestSession<T>>),
}

impl<T> Clone for MarksHome<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Inline(claim) => Self::Inline(claim.clone()),
            Self::Own(session) => Self::Own(Arc::clone(session)),
        }
    }
}

impl<T> MarksHome<T> {
    fn entry(&self) -> &Arc<Entry<T>> {
        match self {
            Self::Inline(claim) => &claim.0,
            Self::Own(session) => &session.entry,
        }
    }

    fn marks(&self) -> &RequestMarks {
        match self {
            Self::Inline(claim) => claim.marks(),
            Self::Own(session) => &session.marks,
        }
    }
}

impl<T> Clone for Session<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Existing {
                id,
                marks,
                lifetimes,
            } => Self::Existing {
                id: *id,
                marks: marks.clone(),
                lifetimes: *lifetimes,
            },
            Self::Fresh {
                id,
                entry,
                lifetimes,
            } => Self::Fresh {
                id: *id,
                entry: Arc::clone(entry),
                lifetimes: *lifetimes,
            },
        }
    }
}

/// What a request did to its session, read once when it closes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Marks {
    /// One bit per field that the request wrote.
    pub(crate) dirty: u64,
    /// The entry's write counter after the request's last write.
    pub(crate) last_write: u64,
    actions: u8,
}

impl Marks {
    fn has(self, action: u8) -> bool {
        self.actions & action != 0
    }

    pub(crate) fn destroy_requested(self) -> bool {
        self.has(DESTROY)
    }

    pub(crate) fn renew_requested(self) -> bool {
        self.has(RENEW)
    }

    pub(crate) fn long_term_changed(self) -> bool {
        self.has(LONG_TERM_CHANGED)
    }

    /// Whether opening this request extended the session's stored expiry.
    pub(crate) fn touched(self) -> bool {
        self.has(TOUCHED)
    }

    /// Whether the id arrived signed with a previous key.
    pub(crate) fn resign(self) -> bool {
        self.has(RESIGN)
    }

    pub(crate) fn consent_changed(self) -> bool {
        self.has(CONSENT_CHANGED)
    }

    /// Whether a stored session's cookie goes out again: when what it says changed, when it was
    /// signed with a retired key, and (a long-term cookie's Max-Age slides with the session)
    /// with each touch.
    pub(crate) fn resend_cookie(self, long_term: bool) -> bool {
        self.long_term_changed()
            || self.consent_changed()
            || self.resign()
            || (self.touched() && long_term)
    }
}

impl<T> Session<T> {
    /// A stored session found under `id`, as this request's.
    pub(crate) fn existing(id: SessionId, entry: Arc<Entry<T>>, lifetimes: Lifetimes) -> Self {
        let marks = match Claim::new(entry) {
            Ok(claim) => MarksHome::Inline(claim),
            Err(entry) => MarksHome::Own(Arc::new(RequestSession {
                entry,
                marks: RequestMarks::default(),
            })),
        };
        Self::Existing {
            id,
            marks,
            lifetimes,
        }
    }

    /// Records that opening this request extended the session's stored expiry.
    pub(crate) fn mark_touched(&self) {
        self.mark(TOUCHED);
    }

    /// Records that the id arrived signed with a previous key.
    pub(crate) fn mark_resign(&self) {
        self.mark(RESIGN);
    }

    /// A new session; `consent` is whether it may be stored before `set_store(true)`.
    pub(crate) fn fresh(value: T, now: u64, lifetimes: Lifetimes, consent: bool) -> Self {
        let id = SessionId::generate();
        let entry = Entry::new(value, id, now);
        entry.consent.store(consent, Ordering::Release);
        Self::Fresh {
            id,
            entry: Arc::new(entry),
            lifetimes,
        }
    }

    /// The id the request arrived with (or, for a new session, the id it will get).
    pub(crate) fn id(&self) -> SessionId {
        match self {
            Self::Existing { id, .. } | Self::Fresh { id, .. } => *id,
        }
    }

    pub(crate) fn entry(&self) -> &Arc<Entry<T>> {
        match self {
            Self::Existing { marks, .. } => marks.entry(),
            Self::Fresh { entry, .. } => entry,
        }
    }

    /// Not yet in the store: created only if this request writes to it.
    pub(crate) fn is_new(&self) -> bool {
        matches!(self, Self::Fresh { .. })
    }

    fn lifetimes(&self) -> Lifetimes {
        match self {
            Self::Existing { lifetimes, .. } | Self::Fresh { lifetimes, .. } => *lifetimes,
        }
    }

    fn actions(&self) -> &AtomicU8 {
        match self {
            Self::Existing { marks, .. } => &marks.marks().actions,
            Self::Fresh { entry, .. } => &entry.creator_actions,
        }
    }

    fn mark(&self, action: u8) {
        self.actions().fetch_or(action, Ordering::AcqRel);
    }

    /// What the request did, read once at close.
    #[inline]
    pub(crate) fn marks(&self) -> Marks {
        match self {
            Self::Existing { marks, .. } => marks.marks().read(),
            Self::Fresh { entry, .. } => {
                let slot = entry.lock();
                Marks {
                    dirty: slot.unsaved,
                    last_write: slot.writes,
                    actions: entry.creator_actions.load(Ordering::Acquire),
                }
            }
        }
    }

    /// Runs `change` on the slot under its lock, then records the write for this request and
    /// for the entry: `fields` dirty here, unsaved there (for a new session that is one record).
    fn write<R>(&self, fields: u64, change: impl FnOnce(&mut Slot<T>) -> (bool, R)) -> R {
        let mut slot = self.entry().lock();
        let (changed, result) = change(&mut slot);
        if changed {
            slot.unsaved |= fields;
            slot.writes += 1;
            if let Self::Existing { marks, .. } = self {
                let request = marks.marks();
                // Plain stores: every writer of this request's marks holds the value's lock
                // here, so they never race, and the response is built only after the handler
                // returned.
                request.last_write.store(slot.writes, Ordering::Release);
                let dirty = request.dirty.load(Ordering::Relaxed);
                request.dirty.store(dirty | fields, Ordering::Release);
            }
            drop(slot);
        }
        result
    }
}

/// The request's session as the generated accessors see it. Not part of the public API:
/// generated code calls it, users call the accessors.
#[doc(hidden)]
pub struct RawSession<T>(pub(crate) Session<T>);

impl<T> Clone for RawSession<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> RawSession<T> {
    /// Runs `read` on the value under its lock; marks nothing.
    pub fn read<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        read(&self.0.entry().lock().value)
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
        self.0.id()
    }

    pub(crate) fn is_new(&self) -> bool {
        self.0.is_new()
    }

    pub(crate) fn expires_at(&self) -> SystemTime {
        to_system_time(self.0.entry().expires_at(self.0.lifetimes()))
    }

    pub(crate) fn is_long_term(&self) -> bool {
        self.0.entry().is_long_term()
    }

    pub(crate) fn set_long_term(&self, long_term: bool) {
        let entry = self.0.entry();
        // Under the value lock, so a save's snapshot sees the flag and the write counter agree.
        let changed = self.0.write(0, |_| {
            let changed = entry.long_term.swap(long_term, Ordering::AcqRel) != long_term;
            (changed, changed)
        });
        if changed {
            self.0.mark(LONG_TERM_CHANGED);
        }
    }

    pub(crate) fn has_consent(&self) -> bool {
        self.0.entry().has_consent()
    }

    pub(crate) fn set_consent(&self, consent: bool) {
        let entry = self.0.entry();
        let changed = self.0.write(0, |_| {
            let changed = entry.consent.swap(consent, Ordering::AcqRel) != consent;
            (changed, changed)
        });
        if changed {
            self.0.mark(CONSENT_CHANGED);
        }
    }

    /// Asks for a new id at response time when a `renew_on_change` field changed.
    pub fn renew_if(&self, changed: bool) {
        if changed {
            self.renew();
        }
    }

    pub(crate) fn destroy(&self) {
        self.0.mark(DESTROY);
    }

    pub(crate) fn renew(&self) {
        self.0.mark(RENEW);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SessionConfig;

    fn stored_entry() -> Arc<Entry<u64>> {
        Arc::new(Entry::new(0, SessionId::generate(), 0))
    }

    fn open(entry: &Arc<Entry<u64>>) -> RawSession<u64> {
        let lifetimes = Lifetimes::from_config(&SessionConfig::default());
        RawSession(Session::existing(
            SessionId::generate(),
            Arc::clone(entry),
            lifetimes,
        ))
    }

    fn is_inline(session: &RawSession<u64>) -> bool {
        matches!(
            session.0,
            Session::Existing {
                marks: MarksHome::Inline(_),
                ..
            }
        )
    }

    #[test]
    fn parallel_requests_keep_their_marks_apart() {
        let entry = stored_entry();
        let first = open(&entry);
        let second = open(&entry);
        assert!(
            is_inline(&first),
            "the first request takes the entry's marks"
        );
        assert!(
            !is_inline(&second),
            "a parallel request gets marks of its own"
        );
        first.write(0, |value| *value += 1);
        second.destroy();
        let (first_marks, second_marks) = (first.0.marks(), second.0.marks());
        assert_eq!((first_marks.dirty, first_marks.last_write), (1, 1));
        assert!(!first_marks.destroy_requested());
        assert_eq!(second_marks.dirty, 0);
        assert!(second_marks.destroy_requested());
    }

    #[test]
    fn marks_are_freed_with_the_last_handle_and_start_clear() {
        let entry = stored_entry();
        let first = open(&entry);
        let kept = first.clone();
        first.write(0, |value| *value += 1);
        first.renew();
        drop(first);
        assert!(
            !is_inline(&open(&entry)),
            "a handle still held (say by a spawned task) keeps the marks claimed"
        );
        drop(kept);
        let next = open(&entry);
        assert!(is_inline(&next), "free again once every handle is gone");
        let marks = next.0.marks();
        assert_eq!((marks.dirty, marks.last_write), (0, 0));
        assert!(
            !marks.renew_requested(),
            "the previous request's marks are cleared"
        );
    }
}
