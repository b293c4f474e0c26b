//! The store outside a request: read, list and destroy sessions by id, handle or indexed
//! value, count and clear them. Every destruction ends this server's cached copy at once, and
//! reaches other servers' caches through the backend's announcements.

use std::sync::Arc;

use crate::backend::{BackendError, Record, StorageKey};
use crate::clock::now_millis;
use crate::data::{Indexed, SessionData};
use crate::entry::Entry;
use crate::id::SessionId;
use crate::index::index_value;
use crate::info::{SessionHandle, SessionInfo};
use crate::record::{self, Meta};
use crate::store::load::decode;
use crate::store::{SessionStore, StoreInner};

impl<T: SessionData> SessionStore<T> {
    /// Runs `read` on the session `id` as it is stored now, outside any request; `None` when
    /// there is no such live session (or this server cannot read its record).
    ///
    /// With a backend the record is read from it, so the answer holds for every server;
    /// `memory_only` fields are then at their defaults. A memory-only store reads its live
    /// value.
    ///
    /// ```
    /// # use typed_session::{SessionData, SessionId, SessionStore};
    /// #[derive(SessionData)]
    /// struct Visit {
    ///     count: u64,
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = SessionStore::<Visit>::builder().build().await?;
    /// let count = store.read_session(SessionId::generate(), |visit| visit.count).await?;
    /// assert_eq!(count, None);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the backend fails.
    pub async fn read_session<R>(
        &self,
        id: SessionId,
        read: impl FnOnce(&T) -> R,
    ) -> Result<Option<R>, BackendError> {
        let inner = &self.inner;
        let now = now_millis();
        let Some(backend) = inner.backend.as_deref() else {
            let entry = inner.memory.lookup(id, inner.lifetimes, now);
            return Ok(entry.map(|entry| read(&entry.lock().value)));
        };
        let key = StorageKey::for_id(id);
        let stored = inner
            .read_stored(backend, &key, now)
            .await
            .map_err(|error| BackendError::new("reading a session", error))?;
        Ok(stored
            .and_then(|stored| stored.decoded.ok())
            .map(|(_, value)| read(&value)))
    }

    /// Ends the session `id` on every server: its record is deleted, this server's cached copy
    /// ends at once (a request holding it gets 409 if it writes), and other servers drop theirs
    /// at their backend's announcement (or, without announcements, at their next touch).
    ///
    /// # Errors
    ///
    /// When the backend fails; the session may then still be stored.
    pub async fn destroy_id(&self, id: SessionId) -> Result<(), BackendError> {
        self.inner
            .destroy_stored(&StorageKey::for_id(id), Some(id))
            .await
    }

    /// Ends the session named by `handle`, like [`destroy_id`](Self::destroy_id). A handle of
    /// no live session is no error. Check that the handle belongs to whom the request is from
    /// before acting on one a client sent ([`destroy_sessions_of`](Self::destroy_sessions_of)
    /// and [`sessions_of`](Self::sessions_of) only ever see one user's sessions).
    ///
    /// # Errors
    ///
    /// When the backend fails.
    pub async fn destroy(&self, handle: &SessionHandle) -> Result<(), BackendError> {
        self.inner.destroy_stored(handle.storage_key(), None).await
    }

    /// How many live sessions there are: with a backend, the stored ones (all servers', not
    /// only this server's cache, which [`count`](Self::count) tells); without, those in memory.
    ///
    /// # Errors
    ///
    /// When the backend fails.
    pub async fn count_stored(&self) -> Result<u64, BackendError> {
        let inner = &self.inner;
        let now = now_millis();
        match inner.backend.as_deref() {
            Some(backend) => backend.count(now).await,
            None => {
                let live = inner.memory.live_entries().into_iter();
                let live = live.filter(|(_, entry)| !entry.is_over(inner.lifetimes, now, false));
                Ok(live.count() as u64)
            }
        }
    }

    /// Ends every session: deletes every record of the backend, ends every session cached
    /// here, and (where the backend announces changes) on every other server.
    ///
    /// # Errors
    ///
    /// When the backend fails; cached sessions here are ended regardless.
    pub async fn clear_all(&self) -> Result<(), BackendError> {
        let inner = &self.inner;
        let deleted = match inner.backend.as_deref() {
            Some(backend) => backend.delete_all().await,
            None => Ok(()),
        };
        for (id, entry) in inner.memory.live_entries() {
            entry.end();
            inner.memory.remove(id, &entry);
        }
        deleted
    }
}

impl<T: Indexed> SessionStore<T> {
    /// The live sessions whose `#[session(index)]` field holds `value`, oldest first: a user's
    /// devices.
    ///
    /// With a backend the list comes from its index and holds for every server; a memory-only
    /// store walks its sessions. A record this server cannot read is left out.
    ///
    /// ```
    /// use typed_session::{SessionData, SessionStore};
    ///
    /// #[derive(SessionData)]
    /// struct Login {
    ///     #[session(index)]
    ///     user_id: Option<u64>,
    ///     user_agent: Option<String>,
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = SessionStore::<Login>::builder().build().await?;
    /// for device in store.sessions_of(&42).await? {
    ///     println!("{} since {:?}: {:?}", device.handle, device.created_at, device.data.user_agent);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the backend fails.
    pub async fn sessions_of(&self, value: &T::Index) -> Result<Vec<SessionInfo<T>>, BackendError> {
        let Some(index) = index_value(value) else {
            return Ok(Vec::new());
        };
        self.inner.sessions_indexed(&index, now_millis()).await
    }

    /// Ends every session whose indexed field holds `value` except `keep` (the current one, for
    /// "log out my other devices"; `None` ends them all): see [`destroy`](Self::destroy).
    /// Returns how many ended.
    ///
    /// # Errors
    ///
    /// When the backend fails; the sessions ended before it stay ended.
    pub async fn destroy_sessions_of(
        &self,
        value: &T::Index,
        keep: Option<&SessionHandle>,
    ) -> Result<usize, BackendError> {
        let mut ended = 0;
        for session in self.sessions_of(value).await? {
            if Some(&session.handle) != keep {
                self.destroy(&session.handle).await?;
                ended += 1;
            }
        }
        Ok(ended)
    }
}

impl<T: SessionData> StoreInner<T> {
    /// Deletes the record under `key` and ends this server's cached copy of its session (`id`
    /// when the caller knows it), under that copy's save lock so that no save in flight writes
    /// the record again.
    async fn destroy_stored(
        &self,
        key: &StorageKey,
        id: Option<SessionId>,
    ) -> Result<(), BackendError> {
        let id = id.or_else(|| self.cached_id(key));
        let cached = id.and_then(|id| Some((id, self.memory.get(id)?)));
        let mut destroyed_cached = false;
        if let Some((id, entry)) = cached.filter(|(_, entry)| !entry.is_ended()) {
            destroyed_cached = true;
            // Deletes the record under the entry's current id.
            self.destroy(&entry)
                .await
                .map_err(|error| BackendError::new("destroying a session", error))?;
            if entry.lock().id == id {
                return Ok(());
            }
        }
        // Not cached here, or renewed since it was stored under `key`: that record goes too.
        let Some(backend) = self.backend.as_deref() else {
            return Ok(());
        };
        backend.delete(key).await?;
        if destroyed_cached {
            // Counted once, by the destroy of its cached copy above.
            return Ok(());
        }
        self.observer().destroyed();
        Ok(())
    }

    /// The cached session stored under `key`: from the key map a backend's store keeps, or,
    /// where there is none (a memory-only store, an unindexed one without announcements), by
    /// hashing every cached id.
    fn cached_id(&self, key: &StorageKey) -> Option<SessionId> {
        if self.key_index.is_complete() {
            return self.key_index.id_of(key);
        }
        self.memory
            .live_entries()
            .into_iter()
            .map(|(id, _)| id)
            .find(|id| StorageKey::for_id(*id) == *key)
    }

    /// The sessions whose index is `index`, oldest first.
    async fn sessions_indexed(
        &self,
        index: &str,
        now: u64,
    ) -> Result<Vec<SessionInfo<T>>, BackendError> {
        let mut found = match self.backend.as_deref() {
            Some(backend) => backend
                .find_by_index(index, now)
                .await?
                .into_iter()
                .filter_map(|(key, record)| self.info(key, &record))
                .collect(),
            None => self.memory_sessions_indexed(index, now),
        };
        found.sort_by(|a: &SessionInfo<T>, b| {
            (a.created_at, &a.handle).cmp(&(b.created_at, &b.handle))
        });
        Ok(found)
    }

    /// A found record as the list shows it; `None` (logged) when this server cannot read it.
    fn info(&self, key: StorageKey, record: &Record) -> Option<SessionInfo<T>> {
        match decode::<T>(&record.data, self.sealer(&key), self.encrypt_all) {
            Ok((meta, value)) => Some(SessionInfo::new(
                SessionHandle::from_key(key),
                meta.created_at,
                self.lifetimes
                    .stored_touched_at(record.expires_at, meta.long_term),
                record.expires_at,
                meta.long_term,
                value,
            )),
            Err(error) => {
                tracing::warn!(%error, "typed-session: a listed session cannot be read here; leaving it out");
                None
            }
        }
    }

    /// A memory-only store's sessions whose index is `index`, each copied through its stored
    /// form (as a backend would give it).
    fn memory_sessions_indexed(&self, index: &str, now: u64) -> Vec<SessionInfo<T>> {
        let mut found = Vec::new();
        for (id, entry) in self.memory.live_entries() {
            if entry.is_over(self.lifetimes, now, false) {
                continue;
            }
            let key = StorageKey::for_id(id);
            let copy = {
                let slot = entry.lock();
                if slot.id != id || slot.value.index().as_deref() != Some(index) {
                    continue;
                }
                self.copy_of(&entry, &slot.value, &key)
            };
            let Some(value) = copy else { continue };
            let long_term = entry.is_long_term();
            found.push(SessionInfo::new(
                SessionHandle::from_key(key),
                entry.created_at,
                entry.last_used(),
                entry.expires_at(self.lifetimes),
                long_term,
                value,
            ));
        }
        found
    }

    /// `value` encoded and decoded again, as a backend would hand it back.
    fn copy_of(&self, entry: &Entry<T>, value: &T, key: &StorageKey) -> Option<T> {
        let meta = Meta {
            created_at: entry.created_at,
            long_term: entry.is_long_term(),
            schema: T::SCHEMA,
        };
        let sealer = self.sealer(key);
        let copied = record::encode(
            meta,
            sealer,
            self.encrypt_all,
            T::PERSISTED,
            None,
            |fields| value.encode(fields),
        )
        .map_err(|error| error.to_string())
        .and_then(|encoded| {
            decode::<T>(&encoded.data, sealer, self.encrypt_all).map_err(|e| e.to_string())
        });
        match copied {
            Ok((_, value)) => Some(value),
            Err(error) => {
                tracing::warn!(%error, "typed-session: a listed session cannot be copied; leaving it out");
                None
            }
        }
    }

    /// After a save of `entry` under its index `index`: past the store's
    /// `max_sessions_per_index`, the oldest other sessions of that index are destroyed.
    pub(super) async fn enforce_index_cap(&self, entry: &Arc<Entry<T>>) {
        let Some(cap) = self.index_cap else { return };
        let (id, index) = {
            let slot = entry.lock();
            (slot.id, slot.value.index())
        };
        if !entry.index_moved(index.as_deref()) {
            return;
        }
        let Some(index) = index else { return };
        let own = StorageKey::for_id(id);
        let outcome = async {
            let sessions = self.sessions_indexed(&index, now_millis()).await?;
            let others: Vec<_> = sessions
                .into_iter()
                .filter(|session| *session.handle.storage_key() != own)
                .collect();
            let excess = (others.len() + 1).saturating_sub(cap);
            for session in others.iter().take(excess) {
                self.destroy_stored(session.handle.storage_key(), None)
                    .await?;
            }
            Ok::<usize, BackendError>(excess)
        };
        match outcome.await {
            Ok(0) => {}
            Ok(evicted) => tracing::info!(
                evicted,
                cap,
                "typed-session: ended the oldest sessions of an index past max_sessions_per_index"
            ),
            Err(error) => tracing::warn!(
                %error,
                "typed-session: could not end the sessions past max_sessions_per_index"
            ),
        }
    }
}
