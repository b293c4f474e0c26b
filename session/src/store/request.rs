//! One request's session in order: open it before the handler (from memory, or through the
//! backend when a load or touch is due), close it after (create, save, renew or destroy it,
//! and answer with the cookie that goes with it). The backend protocol lives in
//! [`load`](super::load) and [`save`](super::save).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{Extensions, HeaderMap};
use tracing::field::Empty;

use crate::binding::ClientBinding;
use crate::clock::now_millis;
use crate::config::ClientIp;
use crate::data::SessionData;
use crate::entry::Entry;
use crate::id::SessionId;
use crate::observe;
use crate::session::{Marks, RequestSession, Session};
use crate::store::StoreInner;
use crate::store::error::StoreError;
use crate::store::save::ended_unsaved;
use crate::transport::{Incoming, MAX_BACKEND_LOOKUPS, MAX_SIGNATURE_CHECKS};

/// The outcome of looking the request's presented ids up in memory.
enum Cached<T> {
    /// A live session in memory, its value verified.
    Hit(Incoming, Arc<Entry<T>>),
    /// None in memory; `maybe_stored`: some presented id may name a stored session.
    Miss { maybe_stored: bool },
}

/// Where opening a request's session stands after [`StoreInner::open_now`].
pub(crate) enum Opening<T> {
    /// Found without I/O: the session and the request's client binding.
    Ready(Session<T>, ClientBinding),
    /// The rest needs the backend, or is a refusal: see [`StoreInner::open`].
    Pending(Pending<T>),
}

/// What [`StoreInner::open`] goes on from: nothing already done is done again.
pub(crate) struct Pending<T> {
    binding: ClientBinding,
    now: u64,
    step: Step<T>,
}

/// The step of opening that [`StoreInner::open_now`] could not take.
enum Step<T> {
    /// IP binding cannot be checked for a request that presents an id.
    Refuse(ClientIp),
    /// A presented id's session is cached and its value verified; its touch is due.
    Touch(Incoming, Arc<Entry<T>>),
    /// No presented id's session is cached and some may be stored; `checks` signature checks
    /// are left.
    Load { checks: usize },
}

/// What closing a request's session takes: see [`StoreInner::plan_close`].
pub(crate) struct ClosePlan {
    step: Close,
    /// The entry's write counter after the request's last write: what a save must carry.
    last_write: u64,
}

/// The one decision of closing.
#[derive(Clone, Copy)]
enum Close {
    /// Nothing for the store or the client to learn.
    Nothing,
    /// The request wrote to a stored session that ended while it ran: it fails.
    Ended,
    /// A new session the client cannot be given an id for: IP binding cannot tell its address.
    Refuse(ClientIp),
    /// A stored session to destroy, and its client told to drop the id.
    Destroy,
    /// A new session to place in memory, `persist`ed to the backend, its id handed out.
    Create { persist: bool },
    /// A stored session: consent withdrawn (`withdraw`) deletes its record; then it moves to a
    /// fresh id (`renew`), or is saved (`persist`) and its cookie sent again (`resend`).
    Keep {
        withdraw: bool,
        renew: bool,
        persist: bool,
        resend: bool,
    },
}

/// Whether a request's writes to its stored session still have a session to go to: `false`
/// when it ended while the request ran. A write also restarts the idle clock, so a handler
/// that ran longer than the idle timeout keeps its session. New sessions and requests that
/// wrote nothing pass.
#[inline]
fn wrote_to_live<T>(session: &Session<T>, marks: Marks) -> bool {
    if session.is_new() || !marks.wrote() {
        return true;
    }
    let entry = session.entry();
    if entry.is_ended() {
        return false;
    }
    entry.mark_used(now_millis());
    true
}

impl<T: SessionData> StoreInner<T> {
    /// Opens the request's session as far as memory allows: the common case, a live session in
    /// memory whose touch is not due or a new one, is [`Opening::Ready`] with no I/O. Otherwise
    /// the presented ids were looked up and verified once here, and [`open`](Self::open) goes
    /// on from where this stopped.
    ///
    /// Only an id this store issued and still holds is adopted; anything else (malformed,
    /// expired, destroyed, invented by the client) gets a fresh id, which stops session fixation
    /// through a chosen id.
    #[inline]
    pub(crate) fn open_now(&self, headers: &HeaderMap, extensions: &Extensions) -> Opening<T> {
        let now = now_millis();
        let binding = self.transport.binding(headers, extensions);
        let pending = |binding, step| Opening::Pending(Pending { binding, now, step });
        if let Some(unknown) = self.refused(headers, &binding) {
            return pending(binding, Step::Refuse(unknown));
        }
        let mut checks = MAX_SIGNATURE_CHECKS;
        match self.find_cached(headers, &binding, now, &mut checks) {
            Cached::Hit(incoming, entry) => {
                if self.backend.is_some() && self.touch_due(&entry, now) {
                    return pending(binding, Step::Touch(incoming, entry));
                }
                entry.mark_used(now);
                Opening::Ready(self.request_session(incoming, entry, false, now), binding)
            }
            Cached::Miss { maybe_stored: true } => pending(binding, Step::Load { checks }),
            Cached::Miss {
                maybe_stored: false,
            } => Opening::Ready(self.fresh(now), binding),
        }
    }

    /// The rest of opening after [`open_now`](Self::open_now): the session and the request's
    /// client binding, for signing the id handed back. Traced as `session.open`, the parent of
    /// the backend phases it takes (a memory hit never gets here, so it has no span at all).
    pub(crate) async fn open(
        &self,
        pending: Pending<T>,
        headers: &HeaderMap,
    ) -> Result<(Session<T>, ClientBinding), StoreError> {
        let span = tracing::debug_span!("session.open", session = T::NAME, outcome = Empty);
        let opening = self.open_pending(pending, headers);
        observe::traced(span, opening, |opened| match opened {
            Ok((session, _)) if session.is_new() => "fresh",
            Ok(_) => "existing",
            Err(error) => error.kind(),
        })
        .await
    }

    /// [`open`](Self::open) but for its span.
    async fn open_pending(
        &self,
        pending: Pending<T>,
        headers: &HeaderMap,
    ) -> Result<(Session<T>, ClientBinding), StoreError> {
        let Pending { binding, now, step } = pending;
        let found = match step {
            Step::Refuse(unknown) => return Err(StoreError::UnknownClientIp(unknown)),
            Step::Touch(incoming, entry) => self.existing(incoming, entry, now).await?,
            Step::Load { checks } => self.find_stored(headers, &binding, now, checks).await?,
        };
        Ok((found.unwrap_or_else(|| self.fresh(now)), binding))
    }

    /// A new session, stored only if the request writes to it.
    #[inline]
    fn fresh(&self, now: u64) -> Session<T> {
        Session::fresh(T::initial(), now, !self.opt_in)
    }

    /// The configured binding source, when IP binding cannot be checked for a request that
    /// presents an id: the request is refused (a fresh visitor is refused later, if it is to be
    /// given an id).
    #[inline]
    fn refused(&self, headers: &HeaderMap, binding: &ClientBinding) -> Option<ClientIp> {
        let unknown = binding.unknown_ip()?;
        self.transport.incoming(headers).map(|_| unknown)
    }

    /// The first presented id whose session is live in memory and whose value verifies. Ids
    /// are looked up before any is verified, so values planted in front of the real one cost a
    /// parse and a lookup each, not a signature check.
    #[inline]
    fn find_cached(
        &self,
        headers: &HeaderMap,
        binding: &ClientBinding,
        now: u64,
        checks: &mut usize,
    ) -> Cached<T> {
        let mut maybe_stored = false;
        let Some(candidates) = self.transport.incoming(headers) else {
            return Cached::Miss { maybe_stored };
        };
        for presented in candidates {
            let Some(entry) = self.memory.lookup(presented.id, self.lifetimes, now) else {
                maybe_stored |= self.backend.is_some() && self.may_be_stored(presented.id);
                continue;
            };
            if *checks == 0 {
                break;
            }
            *checks -= 1;
            if let Some(incoming) = self
                .transport
                .verify_known(&presented, binding, || entry.known_value())
            {
                return Cached::Hit(incoming, entry);
            }
        }
        Cached::Miss { maybe_stored }
    }

    /// A memory-only store has no touch to re-send a "remember me" cookie on, so the cookie's
    /// `Max-Age` slides here, at most once per touch interval, as it does with a backend.
    #[inline]
    fn slide_cookie_in_memory(&self, session: &RequestSession<T>, now: u64) {
        let entry = session.entry();
        if self.backend.is_none() && entry.is_long_term() && self.touch_due(entry, now) {
            entry.synced_at.store(now, Ordering::Release);
            session.mark_touched();
        }
    }

    /// The request's session for a cached `entry` whose value verified: touched first if due.
    /// `None` when the touch found it gone.
    async fn existing(
        &self,
        incoming: Incoming,
        entry: Arc<Entry<T>>,
        now: u64,
    ) -> Result<Option<Session<T>>, StoreError> {
        entry.mark_used(now);
        let mut touched = false;
        if let Some(backend) = self.backend.as_deref()
            && self.touch_due(&entry, now)
        {
            if !self.touch(backend, &entry, now).await? {
                return Ok(None);
            }
            touched = true;
        }
        Ok(Some(self.request_session(incoming, entry, touched, now)))
    }

    /// The request's view of a live, verified session; `touched`: its stored expiry was just
    /// extended (a "remember me" cookie goes out again).
    #[inline]
    fn request_session(
        &self,
        incoming: Incoming,
        entry: Arc<Entry<T>>,
        touched: bool,
        now: u64,
    ) -> Session<T> {
        let session = RequestSession::existing(incoming.id, entry);
        if touched {
            session.mark_touched();
        }
        self.slide_cookie_in_memory(&session, now);
        if incoming.resign {
            session.mark_resign();
        }
        Session::Existing(Arc::new(session))
    }

    /// The first presented id missing from memory whose value verifies and whose stored record
    /// loads, within `checks` signature checks and [`MAX_BACKEND_LOOKUPS`] round trips.
    async fn find_stored(
        &self,
        headers: &HeaderMap,
        binding: &ClientBinding,
        now: u64,
        mut checks: usize,
    ) -> Result<Option<Session<T>>, StoreError> {
        let Some(backend) = self.backend.as_deref() else {
            return Ok(None);
        };
        let Some(candidates) = self.transport.incoming(headers) else {
            return Ok(None);
        };
        let mut lookups = MAX_BACKEND_LOOKUPS;
        for presented in candidates {
            if checks == 0 || lookups == 0 {
                break;
            }
            if !self.may_be_stored(presented.id) {
                continue;
            }
            // Cached meanwhile by a parallel request: that entry is the session.
            let cached = self.memory.lookup(presented.id, self.lifetimes, now);
            checks -= 1;
            let Some(incoming) = self.transport.verify(&presented, binding) else {
                continue;
            };
            let entry = match cached {
                Some(entry) => entry,
                None => {
                    lookups -= 1;
                    match self.load(backend, presented.id, now).await? {
                        Some(entry) => entry,
                        None => continue,
                    }
                }
            };
            self.transport
                .note_verified(&presented, binding, incoming, || entry.known_value());
            if let Some(session) = self.existing(incoming, entry, now).await? {
                return Ok(Some(session));
            }
        }
        Ok(None)
    }

    /// What closing the request's session takes, decided once from what the request did.
    #[inline]
    fn plan_close(&self, session: &Session<T>, binding: &ClientBinding) -> ClosePlan {
        let marks = session.marks();
        let entry = session.entry();
        let step = if marks.destroy_requested() {
            // A new session has nothing to destroy: it was never placed anywhere.
            if session.is_new() {
                Close::Nothing
            } else {
                Close::Destroy
            }
        } else if !wrote_to_live(session, marks) {
            Close::Ended
        } else {
            let meta_changed = marks.long_term_changed() || marks.consent_changed();
            // Without storage consent (`SessionMode::OptIn`) the session stays in memory.
            let persist = self.backend.is_some()
                && (marks.dirty & T::PERSISTED != 0 || meta_changed)
                && entry.has_consent();
            if !session.is_new() {
                Close::Keep {
                    withdraw: self.backend.is_some()
                        && marks.consent_changed()
                        && !entry.has_consent(),
                    renew: marks.renew_requested(),
                    persist,
                    resend: marks.resend_cookie(entry.is_long_term()),
                }
            } else if marks.dirty == 0 && !meta_changed {
                Close::Nothing
            } else if let Some(unknown) = binding.unknown_ip() {
                Close::Refuse(unknown)
            } else {
                Close::Create { persist }
            }
        };
        ClosePlan {
            step,
            last_write: marks.last_write,
        }
    }

    /// Closes the session right away when its plan needs no I/O, which is the common case;
    /// otherwise hands the plan to the asynchronous [`close`](Self::close).
    #[inline]
    pub(crate) fn close_now(
        &self,
        session: &Session<T>,
        binding: &ClientBinding,
        headers: &mut HeaderMap,
    ) -> Result<(), ClosePlan> {
        let plan = self.plan_close(session, binding);
        if T::INDEXED && self.index_cap.is_some() {
            // The cap's check is asynchronous; a const `false` for unindexed types.
            return match plan.step {
                Close::Nothing => Ok(()),
                _ => Err(plan),
            };
        }
        match plan.step {
            Close::Nothing => {}
            Close::Create { persist: false } => {
                let id = self.place_created(session);
                self.hand_out(headers, session.entry(), binding, id);
                self.observer().created();
            }
            Close::Keep {
                withdraw: false,
                renew: false,
                persist: false,
                resend,
            } => self.resend_if(resend, headers, session.entry(), binding),
            _ => return Err(plan),
        }
        Ok(())
    }

    /// Carries out a plan that [`close_now`](Self::close_now) could not. Writes to a cached
    /// session already happened on the shared live value; what remains is the backend copy
    /// and the cookie.
    pub(crate) async fn close(
        &self,
        session: &Session<T>,
        binding: &ClientBinding,
        plan: ClosePlan,
        headers: &mut HeaderMap,
    ) -> Result<(), StoreError> {
        let wrote = matches!(plan.step, Close::Create { .. } | Close::Keep { .. });
        self.carry_out(session, binding, plan, headers).await?;
        if T::INDEXED && self.index_cap.is_some() && wrote {
            self.enforce_index_cap(session.entry()).await;
        }
        Ok(())
    }

    /// [`close`](Self::close) but for the index cap.
    async fn carry_out(
        &self,
        session: &Session<T>,
        binding: &ClientBinding,
        plan: ClosePlan,
        headers: &mut HeaderMap,
    ) -> Result<(), StoreError> {
        let entry = session.entry();
        match plan.step {
            Close::Nothing => {}
            Close::Ended => return Err(ended_unsaved(entry)),
            Close::Refuse(unknown) => return Err(StoreError::UnknownClientIp(unknown)),
            Close::Destroy => {
                self.destroy(entry).await?;
                self.transport.remove(headers);
            }
            Close::Create { persist } => {
                let id = self.place_created(session);
                if persist && let Err(error) = self.save(entry, plan.last_write).await {
                    // The client gets an error and no cookie: keep nothing it cannot reach.
                    entry.end();
                    self.memory.remove(id, entry);
                    return Err(error);
                }
                self.hand_out(headers, entry, binding, id);
                self.observer().created();
            }
            Close::Keep {
                withdraw,
                renew,
                persist,
                resend,
            } => {
                if withdraw && let Err(error) = self.withdraw(entry).await {
                    // The stored copy may still be there: this server's copy, which says there
                    // is none, goes too, so that the two never disagree.
                    let id = entry.lock().id;
                    return Err(self.discard(entry, id, error));
                }
                if renew {
                    let renewed = self
                        .renew(session.id(), entry, persist, plan.last_write)
                        .await?;
                    self.hand_out(headers, entry, binding, renewed);
                    return Ok(());
                }
                if persist {
                    self.save(entry, plan.last_write).await?;
                }
                self.resend_if(resend, headers, entry, binding);
            }
        }
        Ok(())
    }

    /// Places a new session in memory under its id (or, after a collision, another one).
    #[inline]
    fn place_created(&self, session: &Session<T>) -> SessionId {
        let id = self.memory.insert_created(session.id(), session.entry());
        self.enforce_capacity();
        id
    }

    /// Sends a stored session's cookie again, under its current id, when `resend`.
    #[inline]
    fn resend_if(
        &self,
        resend: bool,
        headers: &mut HeaderMap,
        entry: &Entry<T>,
        binding: &ClientBinding,
    ) {
        if resend {
            let id = entry.lock().id;
            self.hand_out(headers, entry, binding, id);
        }
    }

    /// Gives the client `id`, signed for its binding, with the consent flag and the lifetime.
    #[inline]
    fn hand_out(
        &self,
        headers: &mut HeaderMap,
        entry: &Entry<T>,
        binding: &ClientBinding,
        id: SessionId,
    ) {
        let max_age = entry
            .is_long_term()
            .then_some(self.config.long_term_timeout);
        self.transport
            .set(headers, id, entry.has_consent(), binding, max_age, || {
                entry.known_value()
            });
    }
}
