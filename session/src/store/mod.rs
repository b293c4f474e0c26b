//! The session store: configuration, the memory map and the purge task.

mod builder;
mod lifetime;
pub(crate) mod memory;
mod purge;

pub use builder::{BuildError, SessionStoreBuilder};
pub(crate) use lifetime::Lifetimes;

use std::fmt;
use std::sync::Arc;

use crate::clock::now_millis;
use crate::config::SessionConfig;
use crate::data::SessionData;
use crate::transport::cookie::CookieTransport;
use memory::MemoryStore;

/// Holds the sessions of one data type `T`, and how they are configured.
///
/// Build it once at start-up with [`SessionStore::builder`], then hand it to
/// [`SessionLayer::new`](crate::SessionLayer::new). Cloning is cheap (an `Arc`), and every clone
/// is the same store. The store owns a purge task that evicts expired sessions; it stops when
/// the last clone is dropped.
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
    pub(crate) memory: MemoryStore<T>,
    pub(crate) config: SessionConfig,
    pub(crate) lifetimes: Lifetimes,
    pub(crate) cookie: CookieTransport,
    purge_task: tokio::task::AbortHandle,
}

impl<T> Drop for StoreInner<T> {
    fn drop(&mut self) {
        self.purge_task.abort();
    }
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

    /// The name of the cookie that carries this store's session ids.
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        self.inner.cookie.name()
    }

    /// How many sessions are held in memory, expired ones not yet purged included.
    #[must_use]
    pub fn count(&self) -> usize {
        self.inner.memory.len()
    }

    /// Evicts every expired session now, instead of waiting for the purge task; returns how
    /// many were evicted.
    pub fn purge_expired(&self) -> usize {
        self.inner.purge(now_millis())
    }
}

impl<T> StoreInner<T> {
    pub(crate) fn purge(&self, now: u64) -> usize {
        self.memory.purge(self.lifetimes, now)
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
