//! Building a [`SessionStore`]: validation happens here, so mistakes surface at start-up.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::backend::{BackendError, NullBackend, SessionBackend};
use crate::config::SessionConfig;
use crate::crypto::KeyRing;
use crate::data::{Indexed, SessionData};
use crate::error::ConfigError;
use crate::error::ConfigError as Misconfigured;
use crate::lifetime::Lifetimes;
use crate::store::erased::{DynBackend, Limited};
use crate::store::memory::MemoryStore;
use crate::store::purge::PurgeSchedule;
use crate::store::{SessionStore, StoreInner, changes};
use crate::transport::IdTransport;

/// Configures and builds a [`SessionStore`]; from [`SessionStore::builder`].
#[must_use = "a builder does nothing until `.build().await`"]
pub struct SessionStoreBuilder<T> {
    config: SessionConfig,
    /// The backend, to be put behind the configured time limit once the config is final.
    backend: Option<LimitBackend>,
    create_schema: bool,
    /// `max_sessions_per_index`.
    index_cap: Option<usize>,
    data: PhantomData<fn() -> T>,
}

/// Puts a backend behind the configured time limit ([`Limited`]).
type LimitBackend = Box<dyn FnOnce(std::time::Duration) -> Box<dyn DynBackend> + Send>;

impl<T> std::fmt::Debug for SessionStoreBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStoreBuilder")
            .field("config", &self.config)
            .field("persistent", &self.backend.is_some())
            .field("create_schema", &self.create_schema)
            .finish_non_exhaustive()
    }
}

/// Why [`SessionStoreBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting in [`SessionConfig`] is invalid.
    #[error("invalid session configuration: {0}")]
    Config(#[from] ConfigError),
    /// The backend could not create its schema (table, index): unreachable, or no permission.
    #[error("the session backend is not ready: {0}")]
    Backend(#[from] BackendError),
    /// `build` ran outside a Tokio runtime, which the purges run on.
    #[error(
        "SessionStore::build must run inside a Tokio runtime (its purges run as Tokio tasks); call it from your async main"
    )]
    NoRuntime,
    /// The store has a backend but its Tokio runtime has no time driver, which bounds every
    /// backend call ([`SessionConfig::with_backend_timeout`]).
    #[error(
        "a session store with a backend needs the Tokio time driver, which bounds its backend calls: build the runtime with enable_all() or enable_time() (#[tokio::main] does)"
    )]
    NoTimer,
    /// The thread that schedules the purges could not be started (a process or memory limit).
    #[error(
        "the session store's purge thread could not be started ({0}); check the process's thread and memory limits"
    )]
    PurgeThread(#[source] std::io::Error),
}

impl<T: SessionData> SessionStoreBuilder<T> {
    pub(crate) fn new() -> Self {
        Self {
            config: SessionConfig::default(),
            backend: None,
            create_schema: true,
            index_cap: None,
            data: PhantomData,
        }
    }

    /// Persists sessions in `backend`, with memory as a cache in front of it (default: memory
    /// only, [`NullBackend`](crate::backend::NullBackend)).
    pub fn backend<B: SessionBackend>(mut self, backend: B) -> Self {
        // The null backend stores nothing, so the store treats it as no backend at all:
        // memory is then the only copy, and no touch may mistake "not stored" for "deleted".
        let is_null = (&backend as &dyn std::any::Any).is::<NullBackend>();
        self.backend = if is_null {
            None
        } else {
            let limit: LimitBackend =
                Box::new(move |timeout| Box::new(Limited::new(backend, timeout, T::NAME)));
            Some(limit)
        };
        self
    }

    /// Whether [`build`](Self::build) creates the backend's table or index if missing (default
    /// `true`). Turn it off when the schema is managed by migrations and the application's
    /// database user may not run DDL.
    pub fn create_schema(mut self, create: bool) -> Self {
        self.create_schema = create;
        self
    }

    /// Replaces the configuration (default: [`SessionConfig::default()`]).
    pub fn config(mut self, config: SessionConfig) -> Self {
        self.config = config;
        self
    }

    /// Validates the configuration, creates the backend's schema, starts the purge schedule
    /// and returns the store.
    ///
    /// # Errors
    ///
    /// [`BuildError::Config`] names the setting to change; [`BuildError::Backend`] when the
    /// schema cannot be created; [`BuildError::NoRuntime`] when called outside Tokio;
    /// [`BuildError::NoTimer`] when a store with a backend runs on a runtime without a time
    /// driver; [`BuildError::PurgeThread`] when the system refuses a thread.
    pub async fn build(self) -> Result<SessionStore<T>, BuildError> {
        let config = self.config;
        let cookie_name = config.cookie_name.as_deref().unwrap_or(T::NAME);
        config.validate(cookie_name, self.backend.is_some())?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let keys = KeyRing::new(config.key.clone(), config.previous_keys.clone());
        if keys.current().is_none() && !T::ENCRYPTED.is_empty() {
            return Err(Misconfigured::MissingEncryptionKey(format!(
                "`{}` (#[session(encrypt)] on {})",
                std::any::type_name::<T>(),
                T::ENCRYPTED.join(", ")
            ))
            .into());
        }
        if self.backend.is_some() && !has_time_driver() {
            return Err(BuildError::NoTimer);
        }
        let backend = self.backend.map(|limit| limit(config.backend_timeout));
        if let Some(backend) = backend.as_ref().filter(|_| self.create_schema) {
            backend.create_schema().await?;
        }
        #[cfg(feature = "key-store")]
        let key_store = match (&backend, config.key_store) {
            (Some(backend), Some(key_store)) => {
                let keys = backend.list_keys(crate::clock::now_millis()).await?;
                Some(crate::store::key_store::KeyStore::new(key_store, keys))
            }
            _ => None,
        };
        let transport = IdTransport::new(cookie_name, config.header_name()?, &config, &keys);
        let opt_in = config.mode == crate::config::SessionMode::OptIn;
        let encrypt_all = config.encrypt_all;
        let lifetimes = Lifetimes::from_config(&config, backend.is_some());
        let purge_interval = config.purge_interval;
        let touch_interval = crate::clock::saturating_millis(config.touch_interval);
        let (purge, purge_schedule) = PurgeSchedule::new();
        let has_backend = backend.is_some();
        let inner = Arc::new(StoreInner {
            memory: MemoryStore::new(config.memory_capacity, T::NAME),
            backend,
            touch_interval,
            lifetimes,
            transport,
            keys,
            opt_in,
            encrypt_all,
            #[cfg(feature = "key-store")]
            key_store,
            config,
            key_index: changes::KeyIndex::new(has_backend),
            index_cap: self.index_cap,
            purge_thread: purge,
        });
        if inner.backend.is_some() {
            runtime.spawn(changes::follow(Arc::downgrade(&inner)));
        }
        purge_schedule
            .start(Arc::downgrade(&inner), purge_interval, runtime)
            .map_err(BuildError::PurgeThread)?;
        Ok(SessionStore { inner })
    }
}

impl<T: Indexed> SessionStoreBuilder<T> {
    /// Keeps at most `max` sessions per value of the `#[session(index)]` field ("at most 3
    /// devices per user"): when a save gives a session a value (a log-in), the oldest sessions
    /// of that value beyond `max` are destroyed, the saving one never. Default: no limit.
    ///
    /// The check runs after the save that sets or changes the value, and after the first save
    /// of each session on each server; sessions that log in on several servers at the same
    /// instant may each see the others' not yet, and exceed the cap until the next log-in.
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use typed_session::{SessionData, SessionStore};
    ///
    /// #[derive(SessionData)]
    /// struct Login {
    ///     #[session(index)]
    ///     user_id: Option<u64>,
    /// }
    ///
    /// let builder = SessionStore::<Login>::builder()
    ///     .max_sessions_per_index(NonZeroUsize::new(3).unwrap());
    /// ```
    pub fn max_sessions_per_index(mut self, max: std::num::NonZeroUsize) -> Self {
        self.index_cap = Some(max.get());
        self
    }
}

/// Whether the current Tokio runtime has a time driver. Tokio offers no query for it, and a
/// timer made without one panics; so one is made here, once, at build, where the answer can
/// become an error instead of a panic in a request.
fn has_time_driver() -> bool {
    std::panic::catch_unwind(|| drop(tokio::time::sleep(std::time::Duration::ZERO))).is_ok()
}
