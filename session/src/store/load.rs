//! The backend protocol of reading: find a session missing from memory, touch a cached one
//! (extend its stored expiry, confirm it still exists), refresh it from a newer stored copy,
//! and decode records.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tracing::field::Empty;

use crate::backend::{StorageKey, readable_version};
use crate::crypto::Sealer;
use crate::data::SessionData;
use crate::entry::Entry;
use crate::id::SessionId;
use crate::observe;
use crate::record;
use crate::store::StoreInner;
use crate::store::erased::DynBackend;
use crate::store::error::StoreError;
use crate::store::memory::Loaded;

impl<T: SessionData> StoreInner<T> {
    /// `false` only when the key-store knows `id` was never stored.
    pub(super) fn may_be_stored(&self, id: SessionId) -> bool {
        #[cfg(feature = "key-store")]
        if let Some(key_store) = &self.key_store {
            return key_store.may_contain(&StorageKey::for_id(id));
        }
        let _ = id;
        true
    }

    /// The encryption of the session stored under `key`, if the store has keys.
    pub(super) fn sealer<'a>(&'a self, key: &'a StorageKey) -> Option<Sealer<'a>> {
        self.keys
            .current()
            .map(|_| Sealer::new(&self.keys, key.as_str()))
    }

    /// Whether the backend's copy should be confirmed and its expiry extended now.
    pub(super) fn touch_due(&self, entry: &Entry<T>, now: u64) -> bool {
        now.saturating_sub(entry.synced_at.load(Ordering::Acquire)) >= self.touch_interval
    }

    /// Extends the backend expiry and confirms the session still exists there; reloads it if
    /// another server saved a newer version. `false` when it is gone (destroyed or expired
    /// elsewhere) or its stored copy cannot be read here: the cached entry is dropped.
    pub(super) async fn touch(
        &self,
        backend: &dyn DynBackend,
        entry: &Arc<Entry<T>>,
        now: u64,
    ) -> Result<bool, StoreError> {
        let span = tracing::debug_span!(
            "session.touch",
            session = T::NAME,
            key = Empty,
            outcome = Empty,
        );
        observe::record_key(&span, || entry.lock().id);
        let touching = self.touch_stored(backend, entry, now);
        observe::traced(span, touching, |touched| match touched {
            Ok(true) => "live",
            Ok(false) => "gone",
            Err(error) => error.kind(),
        })
        .await
    }

    /// [`touch`](Self::touch) but for its span.
    async fn touch_stored(
        &self,
        backend: &dyn DynBackend,
        entry: &Arc<Entry<T>>,
        now: u64,
    ) -> Result<bool, StoreError> {
        // The entry's current id: a parallel renewal may have moved it since this request's id.
        let id = entry.lock().id;
        let key = StorageKey::for_id(id);
        let expires_at =
            self.lifetimes
                .stored_expires_at(entry.created_at, now, entry.is_long_term());
        let touched = backend
            .touch(&key, expires_at, now)
            .await
            .and_then(|version| version.map(readable_version).transpose());
        let touched = match touched {
            // Unless renewed meanwhile, the request goes on as one whose load found nothing
            // usable.
            Err(error) if error.is_malformed() => return Ok(!self.forget(entry, id, &error)),
            touched => touched?,
        };
        let Some(stored_version) = touched else {
            if entry.lock().version == 0 {
                // Never saved (only memory_only fields written): memory is its only copy.
                entry.synced_at.store(now, Ordering::Release);
                return Ok(true);
            }
            let slot = entry.lock();
            if slot.id != id {
                // Renewed while we touched the old key: the session lives on under its new id.
                return Ok(true);
            }
            entry.end();
            drop(slot);
            self.memory.remove(id, entry);
            return Ok(false);
        };
        entry.synced_at.store(now, Ordering::Release);
        if stored_version != entry.lock().version {
            match self.refresh(backend, id, entry, now).await {
                // Dropped from memory, record kept: the request goes on as one whose load found
                // nothing usable.
                Err(StoreError::Unreadable(_)) => return Ok(false),
                Err(error) => return Err(error),
                Ok(_) => {}
            }
        }
        Ok(true)
    }

    /// Reads the backend's newer copy of the session under `id` into the cached entry, keeping
    /// this server's unsaved writes and those a save in flight is writing. `false` when the record is gone. A newer copy this server
    /// cannot read (written with a key it lacks or in a newer format during a rolling change, or
    /// damaged) is never merged nor saved over: the cached entry is dropped and
    /// [`StoreError::Unreadable`] returned. Nothing is taken once the entry has moved to
    /// another id (a parallel renewal): that record is no longer its copy.
    pub(super) async fn refresh(
        &self,
        backend: &dyn DynBackend,
        id: SessionId,
        entry: &Arc<Entry<T>>,
        now: u64,
    ) -> Result<bool, StoreError> {
        let key = StorageKey::for_id(id);
        let Some(stored) = self.read_stored(backend, &key, now).await? else {
            return Ok(false);
        };
        let mut slot = entry.lock();
        if slot.id != id || (stored.version != 0 && stored.version <= slot.version) {
            // Moved on, or already as new (a save on this server overtook this load): nothing
            // to take.
            return Ok(true);
        }
        match stored.decoded {
            Ok((_, value)) => {
                // A save in flight here may yet lose its race: its fields stay too.
                let keep = slot.unsaved | entry.saving();
                slot.value.merge_stored(value, keep);
                slot.version = stored.version;
                Ok(true)
            }
            Err(error) => {
                drop(slot);
                self.unreadable(entry, id, error)
            }
        }
    }

    /// The record under `key` as this server reads it; `None` when there is none. One that is
    /// there but cannot be read here (malformed, at version 0, or not decodable) comes with the
    /// reason in [`Stored::decoded`]: never a failure of the request, since the storage works.
    pub(super) async fn read_stored(
        &self,
        backend: &dyn DynBackend,
        key: &StorageKey,
        now: u64,
    ) -> Result<Option<Stored<T>>, StoreError> {
        // A version no save can follow is damage, whichever backend let it through.
        let loaded = backend
            .load(key, now)
            .await
            .and_then(|record| match record {
                Some(record) => readable_version(record.version).map(|_| Some(record)),
                None => Ok(None),
            });
        let record = match loaded {
            Ok(Some(record)) => record,
            Ok(None) => return Ok(None),
            Err(error) if error.is_malformed() => {
                return Ok(Some(Stored {
                    version: 0,
                    expires_at: 0,
                    decoded: Err(error.into()),
                }));
            }
            Err(error) => return Err(error.into()),
        };
        let decoded = if record.version == 0 {
            // Not a record any save wrote: cached at 0 it would pass for never stored.
            Err(record::DecodeError::VersionZero.into())
        } else {
            decode::<T>(&record.data, self.sealer(key), self.encrypt_all).map_err(Into::into)
        };
        Ok(Some(Stored {
            version: record.version,
            expires_at: record.expires_at,
            decoded,
        }))
    }

    /// [`refresh`](Self::refresh)'s answer to a record it cannot read.
    fn unreadable(
        &self,
        entry: &Arc<Entry<T>>,
        id: SessionId,
        error: Box<dyn std::error::Error + Send + Sync>,
    ) -> Result<bool, StoreError> {
        if self.forget(entry, id, &error) {
            Err(StoreError::Unreadable(error))
        } else {
            Ok(true)
        }
    }

    /// Drops the cached copy of the session under `id`, whose stored record this server cannot
    /// read, and keeps the record: it may be another server's newer copy (a newer format, a key
    /// this server lacks), and it expires in due course if not. `false` when the entry has
    /// moved to another id meanwhile (a parallel renewal), and so lives on.
    fn forget(&self, entry: &Arc<Entry<T>>, id: SessionId, error: &dyn std::fmt::Display) -> bool {
        {
            let slot = entry.lock();
            if slot.id != id {
                return false;
            }
            entry.end_unreadable();
        }
        tracing::warn!(
            %error,
            data = std::any::type_name::<T>(),
            "typed-session: a stored session cannot be read; dropping the cached copy and keeping the record"
        );
        self.memory.remove(id, entry);
        true
    }

    /// Loads a session missing from memory and caches it. A copy read while the session's
    /// cached entry was being evicted is read again (see [`Loaded::Stale`]), a few times at
    /// most.
    pub(super) async fn load(
        &self,
        backend: &dyn DynBackend,
        id: SessionId,
        now: u64,
    ) -> Result<Option<Arc<Entry<T>>>, StoreError> {
        if !self.may_be_stored(id) {
            return Ok(None);
        }
        let span = tracing::debug_span!(
            "session.load",
            session = T::NAME,
            key = Empty,
            outcome = Empty,
        );
        observe::record_key(&span, || id);
        observe::traced(
            span,
            self.load_stored(backend, id, now),
            |loaded| match loaded {
                Ok(Some(_)) => "found",
                Ok(None) => "none",
                Err(error) => error.kind(),
            },
        )
        .await
    }

    /// [`load`](Self::load) but for its span.
    async fn load_stored(
        &self,
        backend: &dyn DynBackend,
        id: SessionId,
        now: u64,
    ) -> Result<Option<Arc<Entry<T>>>, StoreError> {
        for _ in 0..MAX_STALE_LOADS {
            let mark = self.memory.removal_mark(id);
            let Some(entry) = self.read_entry(backend, id, now).await? else {
                return Ok(None);
            };
            match self.memory.insert_loaded(id, Arc::new(entry), mark) {
                Loaded::Cached(entry) => {
                    self.enforce_capacity();
                    self.observer().loaded();
                    return Ok(Some(entry));
                }
                Loaded::Ended => return Ok(None),
                Loaded::Stale => tokio::task::yield_now().await,
            }
        }
        Err(StoreError::Churning(MAX_STALE_LOADS))
    }

    /// The session under `id` as stored, as an entry to cache; `None` when there is none this
    /// server can serve.
    async fn read_entry(
        &self,
        backend: &dyn DynBackend,
        id: SessionId,
        now: u64,
    ) -> Result<Option<Entry<T>>, StoreError> {
        let key = StorageKey::for_id(id);
        let Some(stored) = self.read_stored(backend, &key, now).await? else {
            return Ok(None);
        };
        let (mut meta, value) = match stored.decoded {
            Ok(decoded) => decoded,
            Err(error) => {
                // The visitor gets a fresh session under a new id. The record stays (it expires
                // in due course): deleting it would turn a server started with a wrong key, or
                // an old server during a rolling key change, into a session shredder.
                tracing::warn!(
                    %error,
                    data = std::any::type_name::<T>(),
                    "typed-session: a stored session cannot be read; starting a fresh one"
                );
                return Ok(None);
            }
        };
        // A creation time ahead of this clock (another server's skew, or damage) counts from
        // now, so the absolute timeout still ends the session.
        meta.created_at = meta.created_at.min(now);
        let expires_at = self
            .lifetimes
            .expires_at(meta.created_at, now, meta.long_term);
        if expires_at <= now {
            // Expired under this store's timeouts (which may be shorter than the writer's).
            self.observer().expired(1);
            return Ok(None);
        }
        // When the record's expiry was last extended, as far as it tells: a record near its end
        // gets its touch on this very request.
        let synced_at = self
            .lifetimes
            .stored_touched_at(stored.expires_at, meta.long_term)
            .min(now);
        let entry = Entry::with_meta(
            value,
            id,
            meta.created_at,
            meta.long_term,
            stored.version,
            now,
        );
        entry.synced_at.store(synced_at, Ordering::Release);
        self.key_index.note(&key, id);
        Ok(Some(entry))
    }
}

/// How many times a load is read again because the session's cached entry was evicted while
/// it read, before the request fails with 503 (it takes a session evicted and reloaded that
/// often within one backend read).
const MAX_STALE_LOADS: u32 = 8;

/// A stored record as this server reads it: see [`StoreInner::read_stored`].
pub(super) struct Stored<T> {
    /// The record's version; 0 when it could not be told (a malformed record).
    version: u64,
    expires_at: u64,
    /// Its metadata and value, or why this server cannot read it.
    pub(super) decoded: Result<(record::Meta, T), Box<dyn std::error::Error + Send + Sync>>,
}

/// Decodes a stored record into its metadata and value, migrating records of an older schema
/// first. (A record of a newer schema, from a newer release during a rolling deploy, is read
/// by the usual rules: unknown fields ignored, missing ones defaulted.)
pub(super) fn decode<T: SessionData>(
    data: &str,
    sealer: Option<Sealer<'_>>,
    require_sealed: bool,
) -> Result<(record::Meta, T), record::DecodeError> {
    let (meta, mut fields) = record::decode(data, sealer, require_sealed)?;
    if meta.schema < T::SCHEMA {
        T::migrate(fields.fields_mut(), meta.schema)?;
    }
    Ok((meta, T::decode(&fields)?))
}
