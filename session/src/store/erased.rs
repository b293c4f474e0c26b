//! A [`SessionBackend`] behind a pointer, so `SessionStore<T>` does not name its backend type.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::backend::{
    BackendError, ChangeFeed, FieldSave, Record, SaveOutcome, SessionBackend, StorageKey,
};
use crate::observe;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BackendError>> + Send + 'a>>;

/// The object-safe twin of [`SessionBackend`]. Boxing each future costs an allocation per
/// backend call, which is noise next to the round trip it stands for.
pub(crate) trait DynBackend: Send + Sync + 'static {
    fn create_schema(&self) -> BoxFuture<'_, ()>;
    fn load<'a>(&'a self, key: &'a StorageKey, now: u64) -> BoxFuture<'a, Option<Record>>;
    fn save_fields<'a>(
        &'a self,
        key: &'a StorageKey,
        fields: &'a FieldSave<'a>,
        expected_version: Option<u64>,
        now: u64,
    ) -> BoxFuture<'a, SaveOutcome>;
    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        expires_at: u64,
        now: u64,
    ) -> BoxFuture<'a, Option<u64>>;
    fn delete<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, ()>;
    fn delete_expired(&self, now: u64) -> BoxFuture<'_, u64>;
    #[cfg_attr(not(feature = "key-store"), allow(dead_code))]
    fn list_keys(&self, now: u64) -> BoxFuture<'_, Vec<StorageKey>>;
    fn count(&self, now: u64) -> BoxFuture<'_, u64>;
    fn delete_all(&self) -> BoxFuture<'_, ()>;
    fn find_by_index<'a>(
        &'a self,
        index: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Vec<(StorageKey, Record)>>;
    fn changes(&self) -> BoxFuture<'_, Option<ChangeFeed>>;
}

/// A backend whose calls on the request path give up after a time limit, so that a server
/// that is down or frozen costs a request a bounded wait and a 503, never a hang. A call that
/// times out has an unknown outcome, like any failed call: the store treats it as failed
/// (compare-and-set keeps a write that landed anyway from being applied twice by this server).
/// The purge's calls are not limited: deleting many expired records may take long, and
/// nothing waits on it.
///
/// Every call, limited or not, is timed here for `typed_session_backend_seconds`: this is the
/// one place all of them pass.
pub(crate) struct Limited<B> {
    backend: B,
    timeout: Duration,
    /// The data type's name, the `session` label of the latency metric.
    session: &'static str,
}

impl<B> Limited<B> {
    pub(crate) fn new(backend: B, timeout: Duration, session: &'static str) -> Self {
        Self {
            backend,
            timeout,
            session,
        }
    }

    /// `call` timed as `op`, unlimited.
    fn timed<'a, T: 'a>(
        &self,
        op: &'static str,
        call: impl Future<Output = Result<T, BackendError>> + Send + 'a,
    ) -> BoxFuture<'a, T> {
        Box::pin(observe::timed(self.session, op, call))
    }

    /// `call` timed as `op`, and failed as `context` past the time limit.
    fn limit<'a, T: 'a>(
        &self,
        op: &'static str,
        context: &'static str,
        call: impl Future<Output = Result<T, BackendError>> + Send + 'a,
    ) -> BoxFuture<'a, T> {
        let timeout = self.timeout;
        Box::pin(observe::timed(self.session, op, async move {
            tokio::time::timeout(timeout, call)
                .await
                .unwrap_or_else(|_| {
                    Err(BackendError::new(
                        context,
                        format!(
                            "no answer within the backend timeout of {} ms (SessionConfig::with_backend_timeout)",
                            timeout.as_millis()
                        ),
                    ))
                })
        }))
    }
}

impl<B: SessionBackend> DynBackend for Limited<B> {
    fn create_schema(&self) -> BoxFuture<'_, ()> {
        self.timed(
            "create_schema",
            SessionBackend::create_schema(&self.backend),
        )
    }

    fn load<'a>(&'a self, key: &'a StorageKey, now: u64) -> BoxFuture<'a, Option<Record>> {
        self.limit(
            "load",
            "loading a session",
            SessionBackend::load(&self.backend, key, now),
        )
    }

    fn save_fields<'a>(
        &'a self,
        key: &'a StorageKey,
        fields: &'a FieldSave<'a>,
        expected_version: Option<u64>,
        now: u64,
    ) -> BoxFuture<'a, SaveOutcome> {
        self.limit(
            "save",
            "saving a session",
            SessionBackend::save_fields(&self.backend, key, fields, expected_version, now),
        )
    }

    fn touch<'a>(
        &'a self,
        key: &'a StorageKey,
        expires_at: u64,
        now: u64,
    ) -> BoxFuture<'a, Option<u64>> {
        self.limit(
            "touch",
            "extending a session's expiry",
            SessionBackend::touch(&self.backend, key, expires_at, now),
        )
    }

    fn delete<'a>(&'a self, key: &'a StorageKey) -> BoxFuture<'a, ()> {
        self.limit(
            "delete",
            "deleting a session",
            SessionBackend::delete(&self.backend, key),
        )
    }

    fn delete_expired(&self, now: u64) -> BoxFuture<'_, u64> {
        self.timed(
            "delete_expired",
            SessionBackend::delete_expired(&self.backend, now),
        )
    }

    fn list_keys(&self, now: u64) -> BoxFuture<'_, Vec<StorageKey>> {
        self.timed("list_keys", SessionBackend::list_keys(&self.backend, now))
    }

    fn count(&self, now: u64) -> BoxFuture<'_, u64> {
        self.timed("count", SessionBackend::count(&self.backend, now))
    }

    fn delete_all(&self) -> BoxFuture<'_, ()> {
        self.timed("delete_all", SessionBackend::delete_all(&self.backend))
    }

    fn find_by_index<'a>(
        &'a self,
        index: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Vec<(StorageKey, Record)>> {
        self.limit(
            "find_by_index",
            "finding sessions by index",
            SessionBackend::find_by_index(&self.backend, index, now),
        )
    }

    fn changes(&self) -> BoxFuture<'_, Option<ChangeFeed>> {
        self.limit(
            "changes",
            "subscribing to other servers' changes",
            SessionBackend::changes(&self.backend),
        )
    }
}
