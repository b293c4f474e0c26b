//! Where sessions persist: the [`SessionBackend`] trait and the built-in backends.
//!
#![doc = include_str!("../../docs/storage.md")]

mod change;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "redis",
    feature = "mongodb",
    feature = "surrealdb"
))]
// Redis alone uses only `millis_to_db`.
#[cfg_attr(
    not(any(
        feature = "sqlite",
        feature = "postgres",
        feature = "mysql",
        feature = "mongodb",
        feature = "surrealdb"
    )),
    allow(dead_code)
)]
mod convert;
mod error;
mod fields;
pub(crate) mod key;
#[cfg(feature = "mongodb")]
mod mongodb;
#[cfg(feature = "mysql")]
mod mysql;
mod null;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "surrealdb")]
mod surrealdb;
#[cfg(any(
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "surrealdb"
))]
mod table_name;

#[cfg(feature = "redis")]
pub use self::redis::RedisBackend;
pub use change::{Change, ChangeFeed};
pub use error::BackendError;
pub(crate) use fields::STORE_APART_FROM;
pub use fields::{FieldSave, Member};
pub use key::StorageKey;
#[cfg(feature = "mongodb")]
pub use mongodb::MongoBackend;
#[cfg(feature = "mysql")]
pub use mysql::MySqlBackend;
pub use null::NullBackend;
#[cfg(feature = "postgres")]
pub use postgres::PostgresBackend;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteBackend;
#[cfg(feature = "surrealdb")]
pub use surrealdb::SurrealBackend;

use std::future::Future;

/// The highest version a record can have: `i64::MAX`, what the built-in backends' version
/// columns and fields (signed 64-bit integers) hold.
///
/// A record at this version can never be saved again, since the version after it does not fit,
/// so [`load`](SessionBackend::load) and [`touch`](SessionBackend::touch) report it as
/// [`BackendError::malformed`] (see [`readable_version`]): its visitor gets a fresh session
/// instead of a 503 at every save. Counting from 1, no session gets there; damage does.
pub const MAX_VERSION: u64 = i64::MAX as u64;

/// `version`, as read from storage by [`load`](SessionBackend::load) or
/// [`touch`](SessionBackend::touch), if a save can follow it; [`BackendError::malformed`] from
/// [`MAX_VERSION`] up.
///
/// ```
/// use typed_session::backend::{MAX_VERSION, readable_version};
///
/// assert_eq!(readable_version(MAX_VERSION - 1).unwrap(), MAX_VERSION - 1);
/// assert!(readable_version(MAX_VERSION).is_err_and(|e| e.is_malformed()));
/// ```
pub fn readable_version(version: u64) -> Result<u64, BackendError> {
    if version < MAX_VERSION {
        Ok(version)
    } else {
        Err(BackendError::malformed(
            "reading a stored session",
            format!("stored version {version} leaves no room for another save"),
        ))
    }
}

/// One stored session as a backend sees it.
///
/// `data` is the store's encoding of the session (a JSON document); backends store it verbatim.
/// `version` increases by one with every save and makes saves compare-and-set. `expires_at` is
/// the instant (unix milliseconds) the session ends: a backend must never return a record at or
/// past it, and may delete it any time after. `index` is the value of the session's
/// `#[session(index)]` field, which [`find_by_index`](SessionBackend::find_by_index) looks
/// sessions up by; a backend stores it with the record, in the same write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The encoded session.
    pub data: String,
    /// The version of this record; the first save of a session writes version 1, and none
    /// writes more than [`MAX_VERSION`].
    pub version: u64,
    /// When the session ends, in unix milliseconds.
    pub expires_at: u64,
    /// The value the session is found by (its `#[session(index)]` field, at most
    /// [`MAX_INDEX_LEN`] bytes), or `None` when it has none.
    pub index: Option<String>,
}

/// The longest [`Record::index`] the store writes, in bytes: longer values are stored as their
/// SHA-256 (`sha256:` and 64 hex digits), so that every backend can index the column (MySQL
/// indexes at most 3072 bytes of a key; a `VARCHAR(255)` of 4-byte characters fits).
pub const MAX_INDEX_LEN: usize = 128;

/// What a compare-and-set [`SessionBackend::save`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The record was written.
    Saved,
    /// Nothing was written: the stored version is not the expected one (or a record exists
    /// where none was expected). The store reloads, merges and retries.
    Conflict,
}

impl SaveOutcome {
    /// [`Saved`](Self::Saved) if the record was written, else [`Conflict`](Self::Conflict):
    /// for a backend whose compare-and-set reports whether it wrote (a row count, a flag).
    ///
    /// ```
    /// use typed_session::backend::SaveOutcome;
    ///
    /// let rows_affected = 0;
    /// assert_eq!(SaveOutcome::written(rows_affected == 1), SaveOutcome::Conflict);
    /// ```
    #[must_use]
    pub fn written(written: bool) -> Self {
        if written { Self::Saved } else { Self::Conflict }
    }
}

/// A place to persist sessions: implement it to store sessions anywhere.
///
/// Every method receives the current time (`now`, unix milliseconds) from the store, so all
/// expiry decisions use one clock per request. Methods are `async` and must be cancel-safe in
/// the usual sense (dropping a future leaves the store consistent: a save either happened or
/// did not).
///
/// The contract, checked for every built-in backend by one conformance suite (run it on yours
/// with the `conformance` cargo feature: `typed_session::backend::conformance::check`):
///
/// - `load` returns the record saved last under the key, unless it expired (`expires_at <= now`).
/// - `save` with `expected_version: None` creates the record only if no live record has that key;
///   with `Some(v)` it replaces the record only if the live record's version is `v`. Otherwise it
///   writes nothing and answers [`SaveOutcome::Conflict`].
/// - `touch` moves a live record's expiry to `expires_at` without rewriting its data and returns
///   its version; `None` if there is no live record.
/// - A live record that cannot be returned as a [`Record`] (damaged in storage: a negative or
///   non-numeric version, a missing field, a value of the wrong type) is
///   [`BackendError::malformed`] at `load` and `touch`, and so is one at [`MAX_VERSION`], after
///   which no save fits ([`readable_version`] checks it). A compare-and-set `save` against a
///   record whose version cannot be read matches no expected version: a
///   [`SaveOutcome::Conflict`], never a write over it nor an error.
/// - Versions only ever come from the store: a backend stores and compares them, and never adds
///   to one itself (the store hands every save its next version).
/// - `load` returns a record's [`index`](Record::index) as it was saved, and
///   [`find_by_index`](SessionBackend::find_by_index) returns every live record saved with a
///   given index: the default walks [`list_keys`](SessionBackend::list_keys), a backend with an
///   index on it answers from that.
/// - `delete_expired` removes records with `expires_at <= now` (a backend whose server expires keys
///   by itself may answer `0`); `count` and `list_keys` see only live records; `delete_all`
///   removes every record of this backend, and nothing else.
///
/// # Example: a backend over a `Mutex<HashMap>`
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use typed_session::backend::{
///     BackendError, Record, SaveOutcome, SessionBackend, StorageKey, readable_version,
/// };
///
/// #[derive(Default)]
/// struct MapBackend(Mutex<HashMap<StorageKey, Record>>);
///
/// impl MapBackend {
///     fn map(&self) -> std::sync::MutexGuard<'_, HashMap<StorageKey, Record>> {
///         self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
///     }
/// }
///
/// impl SessionBackend for MapBackend {
///     async fn create_schema(&self) -> Result<(), BackendError> {
///         Ok(())
///     }
///
///     async fn load(&self, key: &StorageKey, now: u64) -> Result<Option<Record>, BackendError> {
///         let live = self.map().get(key).filter(|r| r.expires_at > now).cloned();
///         live.map(|r| readable_version(r.version).map(|_| r)).transpose()
///     }
///
///     async fn save(
///         &self,
///         key: &StorageKey,
///         record: &Record,
///         expected_version: Option<u64>,
///         now: u64,
///     ) -> Result<SaveOutcome, BackendError> {
///         let mut map = self.map();
///         let live = map.get(key).filter(|r| r.expires_at > now).map(|r| r.version);
///         if live != expected_version {
///             return Ok(SaveOutcome::Conflict);
///         }
///         map.insert(key.clone(), record.clone());
///         Ok(SaveOutcome::Saved)
///     }
///
///     async fn touch(&self, key: &StorageKey, expires_at: u64, now: u64) -> Result<Option<u64>, BackendError> {
///         let mut map = self.map();
///         let live = map.get_mut(key).filter(|r| r.expires_at > now);
///         live.map(|r| {
///             r.expires_at = expires_at;
///             readable_version(r.version)
///         })
///         .transpose()
///     }
///
///     async fn delete(&self, key: &StorageKey) -> Result<(), BackendError> {
///         self.map().remove(key);
///         Ok(())
///     }
///
///     async fn delete_expired(&self, now: u64) -> Result<u64, BackendError> {
///         let mut map = self.map();
///         let before = map.len();
///         map.retain(|_, r| r.expires_at > now);
///         Ok((before - map.len()) as u64)
///     }
///
///     async fn count(&self, now: u64) -> Result<u64, BackendError> {
///         Ok(self.map().values().filter(|r| r.expires_at > now).count() as u64)
///     }
///
///     async fn delete_all(&self) -> Result<(), BackendError> {
///         self.map().clear();
///         Ok(())
///     }
///
///     async fn list_keys(&self, now: u64) -> Result<Vec<StorageKey>, BackendError> {
///         Ok(self.map().iter().filter(|(_, r)| r.expires_at > now).map(|(k, _)| k.clone()).collect())
///     }
/// }
/// ```
pub trait SessionBackend: Send + Sync + 'static {
    /// Creates the table, index or whatever the backend needs; idempotent. Run by
    /// [`SessionStoreBuilder::build`](crate::SessionStoreBuilder::build).
    fn create_schema(&self) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// The live record under `key`, if any. A record that is there but cannot be returned
    /// (a negative version or one at [`MAX_VERSION`], a missing or mistyped field) is
    /// [`BackendError::malformed`]: the store then starts a fresh session under a new id
    /// instead of failing every request that presents it, and leaves the record alone.
    fn load(
        &self,
        key: &StorageKey,
        now: u64,
    ) -> impl Future<Output = Result<Option<Record>, BackendError>> + Send;

    /// Writes `record` if the live record's version is `expected_version` (`None`: no live
    /// record). A live record whose version cannot be read (damaged, so that
    /// [`load`](Self::load) calls it malformed) has no version to match: the answer is
    /// [`SaveOutcome::Conflict`], never a write over it nor an error (the store then reloads,
    /// meets the damage and drops its cached copy, where an error would fail every save of
    /// that copy).
    fn save(
        &self,
        key: &StorageKey,
        record: &Record,
        expected_version: Option<u64>,
        now: u64,
    ) -> impl Future<Output = Result<SaveOutcome, BackendError>> + Send;

    /// [`save`](Self::save), given the record cut into its fields with the changed ones marked
    /// (see [`FieldSave`]): a backend that stores fields apart can write only those, under the
    /// same compare-and-set. The store saves through this method; the default writes
    /// [`FieldSave::record`] whole with [`save`](Self::save).
    ///
    /// An override must leave storage as `save` of the whole record would, as
    /// [`load`](Self::load) and every other method see it, and fall back to a whole write when
    /// the stored copy is not in a form it can update in part (written by `save`, or by an
    /// older version).
    fn save_fields(
        &self,
        key: &StorageKey,
        fields: &FieldSave<'_>,
        expected_version: Option<u64>,
        now: u64,
    ) -> impl Future<Output = Result<SaveOutcome, BackendError>> + Send {
        self.save(key, fields.record(), expected_version, now)
    }

    /// Moves a live record's expiry to `expires_at`, leaving its data and version alone; returns
    /// its version, or `None` if there is no live record under `key`. A stored version that
    /// cannot be read, or is at [`MAX_VERSION`], is [`BackendError::malformed`], as in
    /// [`load`](Self::load).
    fn touch(
        &self,
        key: &StorageKey,
        expires_at: u64,
        now: u64,
    ) -> impl Future<Output = Result<Option<u64>, BackendError>> + Send;

    /// Removes the record under `key`, if any.
    fn delete(&self, key: &StorageKey) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Removes every expired record; returns how many.
    fn delete_expired(&self, now: u64) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// How many live records there are.
    fn count(&self, now: u64) -> impl Future<Output = Result<u64, BackendError>> + Send;

    /// Removes every record of this backend (its table, its key prefix), and nothing else.
    fn delete_all(&self) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// The keys of all live records.
    fn list_keys(
        &self,
        now: u64,
    ) -> impl Future<Output = Result<Vec<StorageKey>, BackendError>> + Send;

    /// The live records whose [`index`](Record::index) is `index`, with their keys: the sessions
    /// of one user, for [`SessionStore::sessions_of`](crate::SessionStore::sessions_of).
    ///
    /// The default reads every live record ([`list_keys`](Self::list_keys), then
    /// [`load`](Self::load) each), which is right for any backend and slow for a big one: the
    /// built-in backends keep an index and answer from it. A record that cannot be read is left
    /// out.
    fn find_by_index(
        &self,
        index: &str,
        now: u64,
    ) -> impl Future<Output = Result<Vec<(StorageKey, Record)>, BackendError>> + Send {
        async move {
            let mut found = Vec::new();
            for key in self.list_keys(now).await? {
                match self.load(&key, now).await {
                    Ok(Some(record)) if record.index.as_deref() == Some(index) => {
                        found.push((key, record));
                    }
                    Ok(_) => {}
                    Err(error) if error.is_malformed() => {}
                    Err(error) => return Err(error),
                }
            }
            Ok(found)
        }
    }

    /// Subscribes to the saves and deletes other backend instances make (other servers, or
    /// other stores in this process), so that a store drops its cached copy of a changed
    /// session at once instead of at its next touch. A backend that supports it announces each
    /// of its own saves and deletes together with the write, and leaves its own announcements
    /// out of the feed it returns.
    ///
    /// `None`, the default, means the backend announces nothing: other servers then learn of a
    /// change at their next touch (at most `touch_interval` later). An error, or a feed that
    /// ends, makes the store fall back to that bound, treat every cached session as unverified,
    /// and subscribe again with backoff.
    fn changes(&self) -> impl Future<Output = Result<Option<ChangeFeed>, BackendError>> + Send {
        async { Ok(None) }
    }
}
