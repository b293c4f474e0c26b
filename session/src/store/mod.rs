//! The session store: configuration, the memory map and the purge schedule.

mod admin;
mod builder;
mod changes;
mod erased;
mod error;
#[cfg(feature = "key-store")]
mod key_store;
mod load;
mod memory;
mod ops;
mod purge;
mod request;
mod save;

pub use builder::{BuildError, SessionStoreBuilder};
pub(crate) use error::StoreError;
pub(crate) use request::{ClosePlan, Opening, Pending};

use std::fmt;
use std::sync::Arc;

use tracing::Instrument;

use crate::clock::now_millis;
use crate::config::SessionConfig;
use crate::crypto::KeyRing;
use crate::data::SessionData;
use crate::lifetime::Lifetimes;
use crate::observe::Observer;
use crate::transport::IdTransport;
use erased::DynBackend;
use memory::MemoryStore;

/// Holds the sessions of one data type `T`, and how they are configured.
///
/// Build it once at start-up with [`SessionStore::builder`], then hand it to
/// [`SessionLayer::new`](crate::SessionLayer::new). Cloning is cheap (an `Arc`), and every clone
/// is the same store. The store purges expired sessions on an interval, as tasks on the runtime
/// it was built in; the small thread that keeps the interval ends when the last clone is dropped.
///
/// ```
/// use typed_session::{SessionConfig, SessionData, SessionStore};
///
/// #[derive(SessionData)]
/// struct Visit {
///     count: u64,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), typed_session::BuildError> {
/// let store = SessionStore::<Visit>::builder()
///     .config(SessionConfig::default().with_cookie_name("visit"))
///     .build()
///     .await?;
/// assert_eq!(store.count(), 0);
/// # Ok(())
/// # }
/// ```
pub struct SessionStore<T: SessionData> {
    pub(crate) inner: Arc<StoreInner<T>>,
}

pub(crate) struct StoreInner<T> {
    memory: MemoryStore<T>,
    /// `None` for memory-only stores, which then skip every backend step (and all encoding).
    backend: Option<Box<dyn DynBackend>>,
    config: SessionConfig,
    lifetimes: Lifetimes,
    touch_interval: u64,
    transport: IdTransport,
    keys: KeyRing,
    /// `SessionMode::OptIn`: sessions are stored only with consent.
    opt_in: bool,
    /// `with_encrypt_all`: the whole record is encrypted.
    encrypt_all: bool,
    #[cfg(feature = "key-store")]
    key_store: Option<key_store::KeyStore>,
    /// Which cached session a storage key names, for other servers' announcements.
    key_index: changes::KeyIndex,
    /// `max_sessions_per_index`.
    index_cap: Option<usize>,
    /// Stops the purge thread when the store goes; asks it for capacity sweeps.
    purge_thread: purge::PurgeStop,
}

impl<T: SessionData> SessionStore<T> {
    /// Starts configuring a store.
    pub fn builder() -> SessionStoreBuilder<T> {
        SessionStoreBuilder::new()
    }

    /// The configuration the store was built with.
    #[must_use]
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The name of the cookie that carries this store's session ids (in header-only mode, the
    /// header's name).
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        self.inner.transport.name()
    }

    /// Whether the store has a persistent backend (not only memory).
    #[must_use]
    pub fn is_persistent(&self) -> bool {
        self.inner.backend.is_some()
    }

    /// How many sessions are held in memory, expired ones not yet purged included. With a
    /// backend this is the cache, not the number of stored sessions.
    #[must_use]
    pub fn count(&self) -> usize {
        self.inner.memory.len()
    }

    /// Purges now instead of waiting for the next scheduled purge: evicts expired sessions
    /// (and, with a backend, sessions idle past the memory TTL) from memory and deletes expired
    /// records from the backend. Returns how many records the backend deleted.
    ///
    /// # Errors
    ///
    /// When the backend fails; memory is purged regardless.
    pub async fn purge_expired(&self) -> Result<u64, crate::backend::BackendError> {
        self.inner.purge(now_millis()).await
    }
}

impl<T> StoreInner<T> {
    /// The store's metrics.
    #[inline]
    pub(crate) fn observer(&self) -> &Observer {
        self.memory.observer()
    }

    /// Tells the client to drop its session id (a removal cookie, or an empty header).
    pub(crate) fn remove_id(&self, headers: &mut http::HeaderMap) {
        self.transport.remove(headers);
    }

    /// After a session was placed in memory: past the capacity, the purge thread is asked to
    /// sweep (see [`MemoryStore::enforce_capacity`]); the request never sweeps itself.
    #[inline]
    pub(crate) fn enforce_capacity(&self) {
        if self.memory.may_exceed() {
            self.purge_thread.request_sweep();
        }
    }

    /// Brings memory back under its capacity; returns how many went, and the capacity.
    pub(crate) fn sweep_memory(&self) -> (usize, usize) {
        let capacity = self.config.memory_capacity.unwrap_or(usize::MAX);
        let evicted = self.memory.enforce_capacity(capacity);
        self.observer().cached(self.memory.len());
        (evicted, capacity)
    }

    /// Purges memory and the backend, traced as `session.purge`.
    pub(crate) async fn purge(&self, now: u64) -> Result<u64, crate::backend::BackendError> {
        let span = tracing::debug_span!(
            "session.purge",
            session = self.observer().session(),
            deleted = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let purged = self.purge_now(now).instrument(span.clone()).await;
        match &purged {
            Ok(deleted) => span.record("deleted", deleted).record("outcome", "purged"),
            Err(_) => span.record("outcome", "backend"),
        };
        purged
    }

    /// [`purge`](Self::purge) but for its span.
    async fn purge_now(&self, now: u64) -> Result<u64, crate::backend::BackendError> {
        let memory_ttl = self
            .backend
            .is_some()
            .then(|| crate::clock::saturating_millis(self.config.memory_ttl));
        self.memory.purge(self.lifetimes, now, memory_ttl);
        // Counted here, where the purge's walk of memory has just paid for it.
        self.observer().cached(self.memory.len());
        self.prune_key_index();
        let Some(backend) = &self.backend else {
            return Ok(0);
        };
        let deleted = backend.delete_expired(now).await?;
        self.observer().purged(deleted);
        #[cfg(feature = "key-store")]
        if let Some(key_store) = &self.key_store {
            let recent = self.memory.ids().map(crate::backend::StorageKey::for_id);
            key_store.rebuild(backend.list_keys(now).await, recent)?;
        }
        Ok(deleted)
    }
}

impl<T: SessionData> Clone for SessionStore<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: SessionData> fmt::Debug for SessionStore<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("data", &std::any::type_name::<T>())
            .field("cookie", &self.cookie_name())
            .field("sessions", &self.count())
            .finish_non_exhaustive()
    }
}
