//! One request's view of its session: the shared live entry plus what this request did to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::SystemTime;

use crate::clock::to_system_time;
use crate::id::SessionId;
use crate::store::Lifetimes;
use crate::store::memory::Entry;

const DESTROY: u8 = 1;
const RENEW: u8 = 2;

/// The session of one request, shared by the layer and every extractor of that request.
pub(crate) struct RequestSession<T> {
    pub(crate) id: SessionId,
    pub(crate) entry: Arc<Entry<T>>,
    /// Not yet in the store: created only if this request writes to it.
    pub(crate) is_new: bool,
    lifetimes: Lifetimes,
    /// One bit per field (by declaration order) that this request wrote.
    dirty: AtomicU64,
    actions: AtomicU8,
}

impl<T> RequestSession<T> {
    pub(crate) fn existing(id: SessionId, entry: Arc<Entry<T>>, lifetimes: Lifetimes) -> Self {
        Self::new(id, entry, false, lifetimes)
    }

    pub(crate) fn fresh(value: T, now: u64, lifetimes: Lifetimes) -> Self {
        let entry = Arc::new(Entry::new(value, now));
        Self::new(SessionId::generate(), entry, true, lifetimes)
    }

    fn new(id: SessionId, entry: Arc<Entry<T>>, is_new: bool, lifetimes: Lifetimes) -> Self {
        Self {
            id,
            entry,
            is_new,
            lifetimes,
            dirty: AtomicU64::new(0),
            actions: AtomicU8::new(0),
        }
    }

    pub(crate) fn dirty(&self) -> u64 {
        self.dirty.load(Ordering::Acquire)
    }

    pub(crate) fn destroy_requested(&self) -> bool {
        self.actions.load(Ordering::Acquire) & DESTROY != 0
    }

    pub(crate) fn renew_requested(&self) -> bool {
        self.actions.load(Ordering::Acquire) & RENEW != 0
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
        read(&self.0.entry.lock())
    }

    /// Runs `write` on the value under its lock and marks field number `field` dirty.
    pub fn write<R>(&self, field: u32, write: impl FnOnce(&mut T) -> R) -> R {
        let result = write(&mut self.0.entry.lock());
        self.mark(1 << field);
        result
    }

    /// Runs `write` on the value under its lock and marks every field dirty.
    pub fn write_all<R>(&self, write: impl FnOnce(&mut T) -> R) -> R {
        let result = write(&mut self.0.entry.lock());
        self.mark(u64::MAX);
        result
    }

    /// Runs `take` under the lock; marks field number `field` dirty only if it took something,
    /// so taking from an empty field neither writes nor creates a session.
    pub fn take<U>(&self, field: u32, take: impl FnOnce(&mut T) -> Option<U>) -> Option<U> {
        let taken = take(&mut self.0.entry.lock());
        if taken.is_some() {
            self.mark(1 << field);
        }
        taken
    }

    fn mark(&self, fields: u64) {
        self.0.dirty.fetch_or(fields, Ordering::AcqRel);
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

    pub(crate) fn destroy(&self) {
        self.0.actions.fetch_or(DESTROY, Ordering::AcqRel);
    }

    pub(crate) fn renew(&self) {
        self.0.actions.fetch_or(RENEW, Ordering::AcqRel);
    }
}
