//! One request's view of its session: the shared live entry plus what this request did to it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::SystemTime;

use crate::clock::to_system_time;
use crate::data::SessionData;
use crate::entry::{Entry, Slot};
use crate::error::SessionError;
use crate::id::SessionId;
use crate::info::SessionHandle;
use crate::lifetime::Lifetimes;

const DESTROY: u8 = 1;
const RENEW: u8 = 2;
const LONG_TERM_CHANGED: u8 = 4;
const TOUCHED: u8 = 8;
const RESIGN: u8 = 16;
const CONSENT_CHANGED: u8 = 32;

/// A stored session as one request sees it: the shared live entry plus what this request did
/// to it.
pub(crate) struct RequestSession<T> {
    /// The id the request arrived with.
    id: SessionId,
    entry: Arc<Entry<T>>,
    /// One bit per field (by declaration order) that this request wrote.
    dirty: AtomicU64,
    /// The entry's write counter after this request's last write: a save that carried that
    /// many writes carried this request's.
    last_write: AtomicU64,
    actions: AtomicU8,
}

impl<T> RequestSession<T> {
    pub(crate) fn existing(id: SessionId, entry: Arc<Entry<T>>) -> Self {
        Self {
            id,
            entry,
            dirty: AtomicU64::new(0),
            last_write: AtomicU64::new(0),
            actions: AtomicU8::new(0),
        }
    }

    pub(crate) fn entry(&self) -> &Arc<Entry<T>> {
        &self.entry
    }

    pub(crate) fn mark_touched(&self) {
        self.actions.fetch_or(TOUCHED, Ordering::AcqRel);
    }

    pub(crate) fn mark_resign(&self) {
        self.actions.fetch_or(RESIGN, Ordering::AcqRel);
    }
}

/// The session of one request, shared by the layer and every extractor of that request.
pub(crate) enum Session<T> {
    /// A stored session: the request's own marks beside the shared entry.
    Existing(Arc<RequestSession<T>>),
    /// A new session. Until it is stored only this request can reach its entry, so the entry
    /// itself carries the request's marks (its unsaved fields, write counter and
    /// `creator_actions`): no allocation of per-request state for a new session.
    Fresh {
        /// The id it gets if this request writes to it (barring a collision with a live id,
        /// odds about 2^-122, which places it under another). Kept here, not only in the entry, so
        /// that reading it takes no lock (an accessor's closure holds that lock).
        id: SessionId,
        entry: Arc<Entry<T>>,
    },
}

impl<T> Clone for Session<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Existing(session) => Self::Existing(Arc::clone(session)),
            Self::Fresh { id, entry } => Self::Fresh {
                id: *id,
                entry: Arc::clone(entry),
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

    /// Whether the request changed the session: a field, or what its cookie says.
    #[inline]
    pub(crate) fn wrote(self) -> bool {
        self.dirty != 0 || self.long_term_changed() || self.consent_changed()
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
    /// A new session; `consent` is whether it may be stored before `set_store(true)`.
    pub(crate) fn fresh(value: T, now: u64, consent: bool) -> Self {
        let id = SessionId::generate();
        let entry = Entry::new(value, id, now);
        entry.consent.store(consent, Ordering::Release);
        Self::Fresh {
            id,
            entry: Arc::new(entry),
        }
    }

    /// The id the request arrived with (or, for a new session, the id it will get).
    pub(crate) fn id(&self) -> SessionId {
        match self {
            Self::Existing(session) => session.id,
            Self::Fresh { id, .. } => *id,
        }
    }

    pub(crate) fn entry(&self) -> &Arc<Entry<T>> {
        match self {
            Self::Existing(session) => &session.entry,
            Self::Fresh { entry, .. } => entry,
        }
    }

    /// Not yet in the store: created only if this request writes to it.
    pub(crate) fn is_new(&self) -> bool {
        matches!(self, Self::Fresh { .. })
    }

    fn actions(&self) -> &AtomicU8 {
        match self {
            Self::Existing(session) => &session.actions,
            Self::Fresh { entry, .. } => &entry.creator_actions,
        }
    }

    fn mark(&self, action: u8) {
        self.actions().fetch_or(action, Ordering::AcqRel);
    }

    /// What the request did, read once at close.
    pub(crate) fn marks(&self) -> Marks {
        match self {
            Self::Existing(session) => Marks {
                dirty: session.dirty.load(Ordering::Acquire),
                last_write: session.last_write.load(Ordering::Acquire),
                actions: session.actions.load(Ordering::Acquire),
            },
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
            if let Self::Existing(session) = self {
                // Plain stores: every writer of this request's marks holds the value's lock
                // here, so they never race, and the response is built only after the handler
                // returned.
                session.last_write.store(slot.writes, Ordering::Release);
                let dirty = session.dirty.load(Ordering::Relaxed);
                session.dirty.store(dirty | fields, Ordering::Release);
            }
            drop(slot);
        }
        result
    }
}

/// The request's session as the generated accessors see it. Not part of the public API:
/// generated code calls it, users call the accessors.
#[doc(hidden)]
pub struct RawSession<T> {
    session: Session<T>,
    /// The store, for what a handler asks of it mid-request (and its timeouts, for
    /// `expires_at`): here rather than in the session, which the layer's response future also
    /// carries.
    store: Arc<dyn StoreOps<T>>,
}

/// What a handler can ask of its store during a request. The store implements it; this module
/// sits below the store and cannot name it.
pub(crate) trait StoreOps<T>: Send + Sync {
    /// The store's timeouts.
    fn lifetimes(&self) -> Lifetimes;

    /// Stores the session's writes now (see `TypedSession::save_now`).
    fn save_now<'a>(&'a self, session: &'a Session<T>) -> BoxFuture<'a, Result<(), SessionError>>;

    /// Whether the session is still live, asked of the backend (see `TypedSession::verify`).
    fn verify<'a>(&'a self, session: &'a Session<T>) -> BoxFuture<'a, Result<bool, SessionError>>;
}

/// A boxed future of the store's answer.
pub(crate) type BoxFuture<'a, R> = Pin<Box<dyn Future<Output = R> + Send + 'a>>;

impl<T> Clone for RawSession<T> {
    fn clone(&self) -> Self {
        Self {
            session: self.session.clone(),
            store: Arc::clone(&self.store),
        }
    }
}

impl<T> RawSession<T> {
    pub(crate) fn new(session: Session<T>, store: Arc<dyn StoreOps<T>>) -> Self {
        Self { session, store }
    }

    pub(crate) async fn save_now(&self) -> Result<(), SessionError> {
        self.store.save_now(&self.session).await
    }

    pub(crate) async fn verify(&self) -> Result<bool, SessionError> {
        self.store.verify(&self.session).await
    }

    /// Runs `read` on the value under its lock; marks nothing.
    pub fn read<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        read(&self.session.entry().lock().value)
    }

    /// Runs `write` on the value under its lock and marks field number `field` dirty.
    pub fn write<R>(&self, field: u32, write: impl FnOnce(&mut T) -> R) -> R {
        self.session
            .write(1 << field, |slot| (true, write(&mut slot.value)))
    }

    /// Runs `write` on the value under its lock and marks every field dirty.
    pub fn write_all<R>(&self, write: impl FnOnce(&mut T) -> R) -> R {
        self.session
            .write(u64::MAX, |slot| (true, write(&mut slot.value)))
    }

    /// Runs `take` under the lock; marks field number `field` dirty only if it took something,
    /// so taking from an empty field neither writes nor creates a session.
    pub fn take<U>(&self, field: u32, take: impl FnOnce(&mut T) -> Option<U>) -> Option<U> {
        self.session.write(1 << field, |slot| {
            let taken = take(&mut slot.value);
            (taken.is_some(), taken)
        })
    }

    /// Runs `write` under the lock; marks `fields` dirty only when it says it changed something.
    pub(crate) fn write_if<R>(&self, fields: u64, write: impl FnOnce(&mut T) -> (bool, R)) -> R {
        self.session.write(fields, |slot| write(&mut slot.value))
    }

    pub(crate) fn id(&self) -> SessionId {
        self.session.id()
    }

    pub(crate) fn is_new(&self) -> bool {
        self.session.is_new()
    }

    pub(crate) fn handle(&self) -> SessionHandle {
        SessionHandle::for_id(self.session.entry().lock().id)
    }

    pub(crate) fn expires_at(&self) -> SystemTime {
        to_system_time(self.session.entry().expires_at(self.store.lifetimes()))
    }

    pub(crate) fn is_long_term(&self) -> bool {
        self.session.entry().is_long_term()
    }

    pub(crate) fn set_long_term(&self, long_term: bool) {
        let entry = self.session.entry();
        // Under the value lock, so a save's snapshot sees the flag and the write counter agree.
        let changed = self.session.write(0, |_| {
            let changed = entry.long_term.swap(long_term, Ordering::AcqRel) != long_term;
            (changed, changed)
        });
        if changed {
            self.session.mark(LONG_TERM_CHANGED);
        }
    }

    pub(crate) fn has_consent(&self) -> bool {
        self.session.entry().has_consent()
    }

    pub(crate) fn set_consent(&self, consent: bool) {
        let entry = self.session.entry();
        let changed = self.session.write(0, |_| {
            let changed = entry.consent.swap(consent, Ordering::AcqRel) != consent;
            (changed, changed)
        });
        if changed {
            self.session.mark(CONSENT_CHANGED);
        }
    }

    /// Asks for a new id at response time when a `renew_on_change` field changed.
    pub fn renew_if(&self, changed: bool)
    where
        T: SessionData,
    {
        if changed {
            self.renew();
        }
    }

    pub(crate) fn destroy(&self) {
        self.session.mark(DESTROY);
    }

    pub(crate) fn renew(&self)
    where
        T: SessionData,
    {
        if T::CSRF != 0 {
            // Now, not at response time: a form rendered later in this request already gets a
            // token of the new secret, and tokens handed out before the renewal die with it.
            self.write_if(T::CSRF, |value| (value.rotate_csrf(), ()));
        }
        self.session.mark(RENEW);
    }
}
