//! After the handler: destroy, renew or save what the request changed, and answer with the
//! cookie that goes with it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::HeaderMap;

use crate::backend::{Record, SaveOutcome, StorageKey};
use crate::clock::now_millis;
use crate::data::SessionData;
use crate::id::SessionId;
use crate::record::{self, Meta};
use crate::session::RequestSession;
use crate::store::StoreInner;
use crate::store::error::StoreError;
use crate::store::memory::Entry;

/// Compare-and-set attempts before a save gives up. Each lost attempt reloads and merges, so
/// running out takes another server winning this many times in a row.
const MAX_SAVE_ATTEMPTS: u32 = 16;

impl<T: SessionData> StoreInner<T> {
    /// Applies what the request did. Writes to a cached session already happened on the shared
    /// live value; what remains is the backend copy and the cookie.
    pub(crate) async fn close(
        &self,
        session: &RequestSession<T>,
        headers: &mut HeaderMap,
    ) -> Result<(), StoreError> {
        let entry = &session.entry;
        if session.destroy_requested() {
            if !session.is_new {
                self.destroy(entry).await?;
                self.cookie.remove(headers);
            }
            return Ok(());
        }
        let changed = session.dirty() != 0 || session.long_term_changed();
        if session.is_new {
            if changed {
                let id = self.memory.insert_new(session.id, entry);
                self.enforce_capacity();
                let persisted = session.dirty() & T::PERSISTED != 0 || session.long_term_changed();
                if persisted && let Err(error) = self.save(entry, session.last_write()).await {
                    // The client gets an error and no cookie: keep nothing it cannot reach.
                    entry.end();
                    self.memory.remove(id, entry);
                    return Err(error);
                }
                self.set_cookie(headers, entry, id);
            }
            return Ok(());
        }
        if session.renew_requested() {
            // Held across the move, so a parallel save sees either the old id and version or
            // the new ones, never a mix that would look like a deleted session.
            let _saving = entry.save_lock.lock().await;
            if let Some(new_id) = self.memory.renew(session.id, entry) {
                let persisted = session.dirty() & T::PERSISTED != 0;
                self.move_stored(session.id, entry, persisted).await?;
                self.set_cookie(headers, entry, new_id);
            }
            return Ok(());
        }
        if session.dirty() & T::PERSISTED != 0 || session.long_term_changed() {
            self.save(entry, session.last_write()).await?;
        }
        if session.long_term_changed() {
            let id = entry.lock().id;
            self.set_cookie(headers, entry, id);
        }
        Ok(())
    }

    pub(crate) fn enforce_capacity(&self) {
        if let Some(capacity) = self.config.memory_capacity {
            self.memory.enforce_capacity(capacity);
        }
    }

    fn set_cookie(&self, headers: &mut HeaderMap, entry: &Entry<T>, id: SessionId) {
        let max_age = entry
            .is_long_term()
            .then_some(self.config.long_term_timeout);
        self.cookie.set(headers, id, max_age);
    }

    async fn destroy(&self, entry: &Arc<Entry<T>>) -> Result<(), StoreError> {
        let id = {
            let mut slot = entry.lock();
            slot.ended = true;
            slot.id
        };
        self.memory.remove(id, entry);
        if let Some(backend) = self.backend.as_deref() {
            backend.delete(&StorageKey::for_id(id)).await?;
        }
        Ok(())
    }

    /// Renewal in the backend, under the entry's save lock: the record moves to the new id's
    /// key (its version restarting at 1) and the old key is deleted, so the old id can never be
    /// loaded again.
    async fn move_stored(
        &self,
        old: SessionId,
        entry: &Entry<T>,
        changed: bool,
    ) -> Result<(), StoreError> {
        let Some(backend) = self.backend.as_deref() else {
            return Ok(());
        };
        let stored = entry.lock().version != 0;
        if stored || changed {
            let now = now_millis();
            let (new, record, writes) = self.snapshot(entry, None, now)?;
            // The key is new and random: a conflict would take a live record under it already.
            backend
                .save(&StorageKey::for_id(new), &record, None, now)
                .await?;
            let mut slot = entry.lock();
            slot.version = record.version;
            slot.mark_saved(writes);
        }
        if stored {
            backend.delete(&StorageKey::for_id(old)).await?;
        }
        Ok(())
    }

    /// Saves the entry unless a save since `write` already carried it: compare-and-set on the
    /// version, and on a lost race reload, keep this server's unsaved fields, take the others
    /// from the stored copy, and try again.
    async fn save(&self, entry: &Arc<Entry<T>>, write: u64) -> Result<(), StoreError> {
        let Some(backend) = self.backend.as_deref() else {
            return Ok(());
        };
        let _saving = entry.save_lock.lock().await;
        for _ in 0..MAX_SAVE_ATTEMPTS {
            let now = now_millis();
            let (id, expected) = {
                let slot = entry.lock();
                if slot.ended || slot.saved_writes >= write {
                    return Ok(());
                }
                (slot.id, (slot.version != 0).then_some(slot.version))
            };
            let key = StorageKey::for_id(id);
            let (_, record, writes) = self.snapshot(entry, expected, now)?;
            match backend.save(&key, &record, expected, now).await? {
                SaveOutcome::Saved => {
                    let mut slot = entry.lock();
                    slot.version = slot.version.max(record.version);
                    slot.mark_saved(writes);
                    drop(slot);
                    entry.synced_at.store(now, Ordering::Release);
                    return Ok(());
                }
                SaveOutcome::Conflict => {
                    if !self.refresh(backend, &key, entry, now).await? && expected.is_some() {
                        // Deleted by another server (logout, renewal): never bring it back.
                        entry.end();
                        self.memory.remove(id, entry);
                        return Ok(());
                    }
                }
            }
        }
        Err(StoreError::Contention(MAX_SAVE_ATTEMPTS))
    }

    /// The record to write for `entry` now: its id, the record, and the write count it carries.
    fn snapshot(
        &self,
        entry: &Entry<T>,
        expected: Option<u64>,
        now: u64,
    ) -> Result<(SessionId, Record, u64), StoreError> {
        let long_term = entry.is_long_term();
        let meta = Meta {
            created_at: entry.created_at,
            long_term,
            schema: T::SCHEMA,
        };
        let slot = entry.lock();
        let data = record::encode(meta, |fields| slot.value.encode(fields))?;
        let record = Record {
            data,
            version: expected.map_or(1, |version| version + 1),
            expires_at: self.lifetimes.expires_at(entry.created_at, now, long_term),
        };
        Ok((slot.id, record, slot.writes))
    }
}

impl<T> crate::store::memory::Slot<T> {
    /// Records a successful save carrying the first `writes` writes. Fields written since stay
    /// unsaved (all of them: which fields those later writes touched is not tracked apart).
    fn mark_saved(&mut self, writes: u64) {
        self.saved_writes = self.saved_writes.max(writes);
        if self.writes == writes {
            self.unsaved = 0;
        }
    }
}
