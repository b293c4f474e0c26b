//! Building a [`SessionStore`]: validation happens here, so mistakes surface at start-up.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::config::SessionConfig;
use crate::data::SessionData;
use crate::error::ConfigError;
use crate::store::memory::MemoryStore;
use crate::store::purge::purge_loop;
use crate::store::{Lifetimes, SessionStore, StoreInner};
use crate::transport::cookie::CookieTransport;

/// Configures and builds a [`SessionStore`]; from [`SessionStore::builder`].
#[must_use = "a builder does nothing until `.build().await`"]
#[derive(Debug)]
pub struct SessionStoreBuilder<T> {
    config: SessionConfig,
    data: PhantomData<fn() -> T>,
}

/// Why [`SessionStoreBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting in [`SessionConfig`] is invalid.
    #[error("invalid session configuration: {0}")]
    Config(#[from] ConfigError),
    /// `build` ran outside a Tokio runtime, which the purge task needs.
    #[error(
        "SessionStore::build must run inside a Tokio runtime (its purge task is a Tokio task); call it from your async main"
    )]
    NoRuntime,
}

impl<T: SessionData> SessionStoreBuilder<T> {
    pub(crate) fn new() -> Self {
        Self {
            config: SessionConfig::default(),
            data: PhantomData,
        }
    }

    /// Replaces the configuration (default: [`SessionConfig::default()`]).
    pub fn config(mut self, config: SessionConfig) -> Self {
        self.config = config;
        self
    }

    /// Validates the configuration, starts the purge task and returns the store.
    ///
    /// # Errors
    ///
    /// [`BuildError::Config`] names the setting to change; [`BuildError::NoRuntime`] when called
    /// outside Tokio.
    pub async fn build(self) -> Result<SessionStore<T>, BuildError> {
        let config = self.config;
        let cookie_name = config.cookie_name.as_deref().unwrap_or(T::NAME);
        config.validate(cookie_name)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let cookie = CookieTransport::new(cookie_name, &config);
        let lifetimes = Lifetimes::from_config(&config);
        let purge_interval = config.purge_interval;
        let inner = Arc::new_cyclic(|weak| StoreInner {
            memory: MemoryStore::new(),
            lifetimes,
            cookie,
            config,
            purge_task: runtime
                .spawn(purge_loop(weak.clone(), purge_interval))
                .abort_handle(),
        });
        Ok(SessionStore { inner })
    }
}
