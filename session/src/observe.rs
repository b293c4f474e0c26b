//! Every metric the store emits, in one place (names and labels are listed in the README).
//!
//! With the `metrics` feature each function records through the `metrics` facade, into whatever
//! recorder the application installed (none: the facade's no-op). Without it every function is
//! empty and inlined away, so call sites carry no `cfg`. No function is called on the path of a
//! memory hit: only where the store creates, loads, saves, renews, destroys, expires or purges
//! a session, or calls its backend.
//!
//! Every metric has the label `session`, the data type's [`NAME`](crate::SessionData::NAME),
//! so that the stores of several types in one application are told apart. The keys of the
//! counters and the gauge are built once per store ([`Observer`]): the facade's macros would
//! build a key with a label that is not a literal, an allocation, on every call, which a new
//! session (created in memory, no I/O) should not pay. Errors and backend latency, which come
//! with I/O or a failure, use the macros.

use std::future::Future;

use tracing::{Instrument, Span};

use crate::backend::StorageKey;
use crate::id::SessionId;

/// What a span shows of a session: the first 8 hex digits of its storage key (the SHA-256 of
/// its id), enough to follow one session through the log, and no way back to the id.
pub(crate) fn key_prefix(key: &StorageKey) -> &str {
    key.as_str().get(..8).unwrap_or_default()
}

/// Records the `key` field (the first 8 hex digits of the session's storage key) on `span`,
/// only when a subscriber wants the span: hashing the id costs about 2,600 instructions, which a
/// save must not pay for a span nobody reads. (Computed in the span macro, it was paid on every
/// save whenever a dependency turned on `tracing`'s `log` feature, as sqlx does.)
pub(crate) fn record_key(span: &Span, id: impl FnOnce() -> SessionId) {
    if !span.is_disabled() {
        span.record(
            "key",
            tracing::field::display(key_prefix(&StorageKey::for_id(id()))),
        );
    }
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

    use metrics::{Key, Label, Level, Metadata, Unit, counter, histogram};

    static METADATA: Metadata<'static> =
        Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

    /// A counter's key, labelled with the session type, built once.
    pub(crate) struct Counter(Key);

    impl Counter {
        pub(crate) fn new(name: &'static str, session: &'static str) -> Self {
            Self(Key::from_parts(name, vec![Label::new("session", session)]))
        }

        pub(crate) fn add(&self, n: u64) {
            metrics::with_recorder(|recorder| recorder.register_counter(&self.0, &METADATA))
                .increment(n);
        }
    }

    /// A gauge's key, labelled with the session type, built once.
    pub(crate) struct Gauge(Key);

    impl Gauge {
        pub(crate) fn new(name: &'static str, session: &'static str) -> Self {
            Self(Key::from_parts(name, vec![Label::new("session", session)]))
        }

        // A gauge is an `f64`: exact up to 2^53.
        pub(crate) fn set(&self, value: usize) {
            metrics::with_recorder(|recorder| recorder.register_gauge(&self.0, &METADATA))
                .set(value as f64);
        }
    }

    /// Gives a recorder (a Prometheus exporter's `# HELP` and unit) what a metric means.
    pub(crate) fn describe(name: &'static str, kind: super::Kind, help: &'static str) {
        match kind {
            super::Kind::Counter => metrics::describe_counter!(name, Unit::Count, help),
            super::Kind::Gauge => metrics::describe_gauge!(name, Unit::Count, help),
            super::Kind::Seconds => metrics::describe_histogram!(name, Unit::Seconds, help),
        }
    }

    pub(crate) fn error(session: &'static str, kind: &'static str) {
        counter!(super::ERRORS, "session" => session, "kind" => kind).increment(1);
    }

    pub(crate) async fn timed<F: Future>(
        session: &'static str,
        op: &'static str,
        call: F,
    ) -> F::Output {
        let started = Instant::now();
        let output = call.await;
        histogram!(super::BACKEND, "session" => session, "op" => op).record(started.elapsed());
        output
    }
}

#[cfg(not(feature = "metrics"))]
mod emit {
    use std::future::Future;

    pub(crate) struct Counter;

    impl Counter {
        #[inline(always)]
        pub(crate) fn new(_: &'static str, _: &'static str) -> Self {
            Self
        }

        #[inline(always)]
        pub(crate) fn add(&self, _: u64) {}
    }

    pub(crate) struct Gauge;

    impl Gauge {
        #[inline(always)]
        pub(crate) fn new(_: &'static str, _: &'static str) -> Self {
            Self
        }

        #[inline(always)]
        pub(crate) fn set(&self, _: usize) {}
    }

    #[inline(always)]
    pub(crate) fn describe(_: &'static str, _: super::Kind, _: &'static str) {}

    #[inline(always)]
    pub(crate) fn error(_: &'static str, _: &'static str) {}

    /// The call itself: no wrapper future, no clock read.
    #[inline(always)]
    pub(crate) fn timed<F: Future>(_: &'static str, _: &'static str, call: F) -> F {
        call
    }
}

/// What a metric measures, for its description.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Seconds,
}

/// Every metric with what it measures: described to the recorder when a store is built.
const DESCRIPTIONS: &[(&str, Kind, &str)] = &[
    (CREATED, Kind::Counter, "New sessions handed out"),
    (
        LOADED,
        Kind::Counter,
        "Sessions loaded from the backend into memory",
    ),
    (
        SAVED,
        Kind::Counter,
        "Session records written (saves and renewals)",
    ),
    (
        CONFLICTS,
        Kind::Counter,
        "Compare-and-set races lost by a save (reloaded and retried)",
    ),
    (
        DESTROYED,
        Kind::Counter,
        "Sessions destroyed (log-outs, by id, handle or index)",
    ),
    (RENEWED, Kind::Counter, "Sessions moved to a fresh id"),
    (EXPIRED, Kind::Counter, "Sessions found past their timeouts"),
    (
        PURGED,
        Kind::Counter,
        "Expired session records deleted from the backend by the purge",
    ),
    (
        CACHED,
        Kind::Gauge,
        "Sessions held in memory, set at each purge and capacity sweep",
    ),
    (ERRORS, Kind::Counter, "Failed requests and purges, by kind"),
    (
        BACKEND,
        Kind::Seconds,
        "Duration of each backend call, by operation",
    ),
];

const CREATED: &str = "typed_session_sessions_created_total";
const LOADED: &str = "typed_session_sessions_loaded_total";
const SAVED: &str = "typed_session_sessions_saved_total";
const CONFLICTS: &str = "typed_session_save_conflicts_total";
const DESTROYED: &str = "typed_session_sessions_destroyed_total";
const RENEWED: &str = "typed_session_sessions_renewed_total";
const EXPIRED: &str = "typed_session_sessions_expired_total";
const PURGED: &str = "typed_session_sessions_purged_total";
const CACHED: &str = "typed_session_cached_sessions";
const ERRORS: &str = "typed_session_errors_total";
const BACKEND: &str = "typed_session_backend_seconds";

/// A store's metrics: the data type's name and the keys of its counters and gauge.
pub(crate) struct Observer {
    session: &'static str,
    created: emit::Counter,
    loaded: emit::Counter,
    saved: emit::Counter,
    conflicts: emit::Counter,
    destroyed: emit::Counter,
    renewed: emit::Counter,
    expired: emit::Counter,
    purged: emit::Counter,
    cached: emit::Gauge,
}

impl Observer {
    /// The metrics of the sessions of type `session` (its `NAME`).
    /// Also describes every metric to the recorder installed now (install it before building
    /// the store for the descriptions to reach it; the values reach it either way).
    pub(crate) fn new(session: &'static str) -> Self {
        for &(name, kind, help) in DESCRIPTIONS {
            emit::describe(name, kind, help);
        }
        let counter = |name| emit::Counter::new(name, session);
        Self {
            session,
            created: counter(CREATED),
            loaded: counter(LOADED),
            saved: counter(SAVED),
            conflicts: counter(CONFLICTS),
            destroyed: counter(DESTROYED),
            renewed: counter(RENEWED),
            expired: counter(EXPIRED),
            purged: counter(PURGED),
            cached: emit::Gauge::new(CACHED, session),
        }
    }

    /// The data type's name.
    pub(crate) fn session(&self) -> &'static str {
        self.session
    }

    /// A new session was placed in memory and (with a backend, if it is to be stored) saved.
    #[inline(always)]
    pub(crate) fn created(&self) {
        self.created.add(1);
    }

    /// A session missing from memory was loaded from the backend and cached.
    #[inline(always)]
    pub(crate) fn loaded(&self) {
        self.loaded.add(1);
    }

    /// A record was written (a save, or a renewal's new record).
    #[inline(always)]
    pub(crate) fn saved(&self) {
        self.saved.add(1);
    }

    /// A save lost a compare-and-set race to another writer (and reloads and tries again).
    #[inline(always)]
    pub(crate) fn conflict(&self) {
        self.conflicts.add(1);
    }

    /// A session was destroyed (log-out, or by id, handle or index outside a request).
    #[inline(always)]
    pub(crate) fn destroyed(&self) {
        self.destroyed.add(1);
    }

    /// A session moved to a fresh id.
    #[inline(always)]
    pub(crate) fn renewed(&self) {
        self.renewed.add(1);
    }

    /// `n` sessions were found past their idle or absolute timeout, in memory or on load.
    #[inline(always)]
    pub(crate) fn expired(&self, n: u64) {
        if n > 0 {
            self.expired.add(n);
        }
    }

    /// The backend's purge deleted `n` expired records.
    #[inline(always)]
    pub(crate) fn purged(&self, n: u64) {
        if n > 0 {
            self.purged.add(n);
        }
    }

    /// How many sessions memory holds, set where the store counts them anyway (purge and
    /// capacity sweep), never per request.
    #[inline(always)]
    pub(crate) fn cached(&self, sessions: usize) {
        self.cached.set(sessions);
    }

    /// A request failed (`kind`: see `StoreError::kind`), or a scheduled purge did (`purge`).
    #[inline(always)]
    pub(crate) fn error(&self, kind: &'static str) {
        emit::error(self.session, kind);
    }
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
