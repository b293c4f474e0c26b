//! Every metric the store emits, in one place (names and labels are listed in the README).
//!
//! With the `metrics` feature each function records through the `metrics` facade, into whatever
//! recorder the application installed (none: the facade's no-op). Without it every function is
//! empty and inlined away, so call sites carry no `cfg`. No function is called on the path of a
//! memory hit: only where the store creates, loads, saves, renews, destroys, expires or purges
//! a session, or calls its backend.
//!
//! Every metric has the label `session`, the data type's [`NAME`](crate::SessionData::NAME),
//! so that the stores of several types in one application are told apart. A label value that
//! is not a literal costs the facade one small allocation per call, which only the paths above
//! pay.

use std::future::Future;

use tracing::{Instrument, Span};

use crate::backend::StorageKey;

/// What a span shows of a session: the first 8 hex digits of its storage key (the SHA-256 of
/// its id), enough to follow one session through the log, and no way back to the id.
pub(crate) fn key_prefix(key: &StorageKey) -> &str {
    key.as_str().get(..8).unwrap_or_default()
}

/// Runs `phase` inside `span` (a phase of a request: open, load, touch, save, renew, destroy),
/// then records `outcome` of its result on the span's `outcome` field. A disabled span (no
/// subscriber wants it) costs a check per poll, and `outcome` is never called.
pub(crate) async fn traced<O>(
    span: Span,
    phase: impl Future<Output = O>,
    outcome: impl FnOnce(&O) -> &'static str,
) -> O {
    let output = phase.instrument(span.clone()).await;
    if !span.is_disabled() {
        span.record("outcome", outcome(&output));
    }
    output
}

#[cfg(feature = "metrics")]
mod emit {
    use std::future::Future;
    use std::time::Instant;

    use metrics::{counter, gauge, histogram};

    pub(crate) fn count(name: &'static str, session: &'static str, n: u64) {
        counter!(name, "session" => session).increment(n);
    }

    pub(crate) fn error(session: &'static str, kind: &'static str) {
        counter!("typed_session_errors_total", "session" => session, "kind" => kind).increment(1);
    }

    // A gauge is an `f64`: exact up to 2^53 sessions.
    pub(crate) fn cached(session: &'static str, sessions: usize) {
        gauge!("typed_session_cached_sessions", "session" => session).set(sessions as f64);
    }

    pub(crate) async fn timed<F: Future>(
        session: &'static str,
        op: &'static str,
        call: F,
    ) -> F::Output {
        let started = Instant::now();
        let output = call.await;
        histogram!("typed_session_backend_seconds", "session" => session, "op" => op)
            .record(started.elapsed());
        output
    }
}

#[cfg(not(feature = "metrics"))]
mod emit {
    use std::future::Future;

    #[inline(always)]
    pub(crate) fn count(_: &'static str, _: &'static str, _: u64) {}

    #[inline(always)]
    pub(crate) fn error(_: &'static str, _: &'static str) {}

    #[inline(always)]
    pub(crate) fn cached(_: &'static str, _: usize) {}

    /// The call itself: no wrapper future, no clock read.
    #[inline(always)]
    pub(crate) fn timed<F: Future>(_: &'static str, _: &'static str, call: F) -> F {
        call
    }
}

/// A new session was placed in memory and (with a backend, if it is to be stored) saved.
#[inline(always)]
pub(crate) fn created(session: &'static str) {
    emit::count("typed_session_sessions_created_total", session, 1);
}

/// A session missing from memory was loaded from the backend and cached.
#[inline(always)]
pub(crate) fn loaded(session: &'static str) {
    emit::count("typed_session_sessions_loaded_total", session, 1);
}

/// A record was written (a save, or a renewal's new record).
#[inline(always)]
pub(crate) fn saved(session: &'static str) {
    emit::count("typed_session_sessions_saved_total", session, 1);
}

/// A save lost a compare-and-set race to another writer (and reloads and tries again).
#[inline(always)]
pub(crate) fn conflict(session: &'static str) {
    emit::count("typed_session_save_conflicts_total", session, 1);
}

/// A session was destroyed (log-out, or by id, handle or index outside a request).
#[inline(always)]
pub(crate) fn destroyed(session: &'static str) {
    emit::count("typed_session_sessions_destroyed_total", session, 1);
}

/// A session moved to a fresh id.
#[inline(always)]
pub(crate) fn renewed(session: &'static str) {
    emit::count("typed_session_sessions_renewed_total", session, 1);
}

/// `n` sessions were found past their idle or absolute timeout, in memory or on load.
#[inline(always)]
pub(crate) fn expired(session: &'static str, n: u64) {
    if n > 0 {
        emit::count("typed_session_sessions_expired_total", session, n);
    }
}

/// The backend's purge deleted `n` expired records.
#[inline(always)]
pub(crate) fn purged(session: &'static str, n: u64) {
    if n > 0 {
        emit::count("typed_session_sessions_purged_total", session, n);
    }
}

/// A request failed (`kind`: see `StoreError::kind`), or a scheduled purge did (`purge`).
#[inline(always)]
pub(crate) fn error(session: &'static str, kind: &'static str) {
    emit::error(session, kind);
}

/// How many sessions memory holds, set where the store counts them anyway (purge and capacity
/// sweep), never per request.
#[inline(always)]
pub(crate) fn cached(session: &'static str, sessions: usize) {
    emit::cached(session, sessions);
}

/// `call` to the backend, its duration recorded under `op` (`load`, `save`, `touch`, …).
#[inline(always)]
pub(crate) fn timed<F: Future>(
    session: &'static str,
    op: &'static str,
    call: F,
) -> impl Future<Output = F::Output> {
    emit::timed(session, op, call)
}
