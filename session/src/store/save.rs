//! The backend protocol of writing: save under compare-and-set (reloading on a lost race),
//! renew the id, destroy, withdraw consent, and what a request learns when its session ended
//! under it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::field::Empty;

use crate::backend::{BackendError, FieldSave, Record, STORE_APART_FROM, SaveOutcome, StorageKey};
use crate::clock::now_millis;
use crate::data::SessionData;
use crate::entry::{Ending, Entry, LastWrite, Slot};
use crate::id::SessionId;
use crate::observe;
use crate::record::{self, Encoded, Meta, Reuse};
use crate::store::StoreInner;
use crate::store::erased::DynBackend;
use crate::store::error::StoreError;

/// A save that keeps losing compare-and-set races gives up once it has made at least this many
/// attempts *and* has been at it for [`SAVE_PATIENCE`]. A count alone is not enough: a loser
/// pays a reload and a save per attempt while a busy winner saves back to back, so a burst on
/// the other server can outlast any fixed count without anything being wrong.
const MIN_SAVE_ATTEMPTS: u32 = 16;

/// How long a save keeps retrying lost races before the request fails with 503.
const SAVE_PATIENCE: Duration = Duration::from_secs(3);

/// What one save attempt writes.
struct Snapshot {
    id: SessionId,
    /// `id`'s storage key, hashed once per attempt for both the encryption and the write.
    key: StorageKey,
    record: Record,
    /// How `record.data` is cut into fields (its own `data` left empty): for a backend that
    /// writes only the changed ones, and for the next save to copy from.
    layout: Encoded,
    expected: Option<u64>,
    /// The write counter the record carries.
    writes: u64,
    /// The unsaved-field bits this attempt took over; given back if it fails.
    in_flight: u64,
}

/// What a request that wrote to its session gets when the session ended before its writes or
/// its renewal were stored: never a success over a write that went nowhere.
pub(super) fn ended_unsaved<T>(entry: &Entry<T>) -> StoreError {
    match entry.ending() {
        Some(Ending::Unreadable) => StoreError::Unreadable(
            "the session was dropped: its stored copy cannot be read here".into(),
        ),
        Some(Ending::Discarded) => StoreError::Unsaved(Box::new(StoreError::Backend(
            BackendError::new("saving a session", "a parallel request's save failed"),
        ))),
        Some(Ending::Gone) | None => StoreError::Gone,
    }
}

impl<T: SessionData> StoreInner<T> {
    /// Consent withdrawn: the stored copy goes, the session lives on in memory.
    pub(super) async fn withdraw(&self, entry: &Entry<T>) -> Result<(), StoreError> {
        let Some(backend) = self.backend.as_deref() else {
            return Ok(());
        };
        let _saving = entry.save_lock().lock().await;
        let (id, stored) = {
            let slot = entry.lock();
            (slot.id, slot.version != 0)
        };
        if stored {
            backend.delete(&StorageKey::for_id(id)).await?;
            entry.lock().version = 0;
        }
        Ok(())
    }

    /// Ends the session: the backend record first, then the entry, under the save lock so no
    /// save in flight can write the record again after the delete.
    pub(super) async fn destroy(&self, entry: &Arc<Entry<T>>) -> Result<(), StoreError> {
        let span = tracing::debug_span!(
            "session.destroy",
            session = T::NAME,
            key = Empty,
            outcome = Empty,
        );
        observe::record_key(&span, || entry.lock().id);
        observe::traced(span, self.destroy_stored_copy(entry), |destroyed| {
            destroyed
                .as_ref()
                .map_or_else(StoreError::kind, |()| "destroyed")
        })
        .await
    }

    /// [`destroy`](Self::destroy) but for its span.
    async fn destroy_stored_copy(&self, entry: &Arc<Entry<T>>) -> Result<(), StoreError> {
        let _saving = entry.save_lock().lock().await;
        let id = entry.lock().id;
        if let Some(backend) = self.backend.as_deref() {
            backend.delete(&StorageKey::for_id(id)).await?;
        }
        entry.end();
        if self.backend.is_none() {
            self.memory.remove(id, entry);
        }
        self.observer().destroyed();
        // With a backend the ended entry stays in memory as a tombstone until the next purge,
        // so a load that raced the delete cannot cache the session again.
        Ok(())
    }

    /// Renewal: the session moves to a fresh id in memory and backend, and the old id dies.
    /// Returns the id the client should now hold; [`StoreError::Gone`] if the session ended
    /// meanwhile.
    pub(super) async fn renew(
        &self,
        old: SessionId,
        entry: &Arc<Entry<T>>,
        persisted: bool,
        write: u64,
    ) -> Result<SessionId, StoreError> {
        let span = tracing::debug_span!(
            "session.renew",
            session = T::NAME,
            key = Empty,
            outcome = Empty,
        );
        observe::record_key(&span, || old);
        let renewing = self.move_to_fresh_id(old, entry, persisted, write);
        observe::traced(span, renewing, |renewed| {
            renewed
                .as_ref()
                .map_or_else(StoreError::kind, |_| "renewed")
        })
        .await
    }

    /// [`renew`](Self::renew) but for its span.
    async fn move_to_fresh_id(
        &self,
        old: SessionId,
        entry: &Arc<Entry<T>>,
        persisted: bool,
        write: u64,
    ) -> Result<SessionId, StoreError> {
        let mut saving = entry.save_lock().lock().await;
        let ended = entry.is_ended();
        let (current, stored) = {
            let slot = entry.lock();
            (slot.id, slot.version != 0)
        };
        if ended {
            return Err(ended_unsaved(entry));
        }
        if current != old {
            // A parallel request renewed it already: this request's writes go to the new id,
            // and this client learns it too.
            drop(saving);
            if persisted {
                self.save(entry, write).await?;
            }
            return Ok(current);
        }
        let Some(backend) = self.backend.as_deref() else {
            self.observer().renewed();
            return Ok(self.memory.rekey(old, entry));
        };
        let old_key = StorageKey::for_id(old);
        let still_stored = if stored {
            match self.refresh(backend, old, entry, now_millis()).await {
                Ok(found) => found,
                // The request's writes (a log-in, most often) must not stay under the old id.
                Err(error @ StoreError::Backend(_)) => return Err(self.discard(entry, old, error)),
                Err(error) => return Err(error),
            }
        } else {
            true
        };
        if !still_stored {
            // Deleted elsewhere (a log-out on another server) or expired while this request
            // ran: never brought back.
            entry.end();
            self.memory.remove(old, entry);
            return Err(StoreError::Gone);
        }
        if !stored && !persisted {
            // Never stored and nothing to store: memory is its only copy.
            self.observer().renewed();
            return Ok(self.memory.rekey(old, entry));
        }
        // The session moves so that its entry always names an id with a record: the new record
        // is written, the entry takes the new id, the old record is deleted, and only then does
        // the old id leave memory (a request that missed memory under it meanwhile would load
        // the old record and cache the session under it again).
        let new = self.memory.reserve(entry);
        if let Err(error) = self.write_new(backend, entry, new, &mut saving).await {
            self.memory.remove(new, entry);
            return Err(self.discard(entry, old, error));
        }
        if entry.is_ended() {
            // Dropped meanwhile by a request that found its stored copy unreadable: the new
            // record goes, and the old one (perhaps another server's newer copy) stays.
            if let Err(cleanup) = backend.delete(&StorageKey::for_id(new)).await {
                tracing::warn!(error = %cleanup, "typed-session: an abandoned renewal left its new record to expire");
            }
            self.memory.remove(new, entry);
            return Err(ended_unsaved(entry));
        }
        if stored && let Err(error) = backend.delete(&old_key).await {
            // The old record, which the client still holds, stays as it was; the new one goes
            // if it can, and this server's copy with the request's writes is dropped, so that
            // the failed request's writes are not stored later.
            if let Err(cleanup) = backend.delete(&StorageKey::for_id(new)).await {
                tracing::warn!(error = %cleanup, "typed-session: a failed renewal left its new record to expire");
            }
            self.memory.remove(new, entry);
            return Err(self.discard(entry, old, error.into()));
        }
        self.memory.remove(old, entry);
        self.observer().renewed();
        Ok(new)
    }

    /// Drops this server's copy of the session after a failed save or renewal, with its unsaved
    /// writes: the request is answered that they were not kept, so no later save may store
    /// them. Parallel requests that wrote to it fail too; the next request loads the stored
    /// copy. Returns the request's error.
    #[cold]
    pub(super) fn discard(
        &self,
        entry: &Arc<Entry<T>>,
        id: SessionId,
        error: StoreError,
    ) -> StoreError {
        entry.discard();
        self.memory.remove(id, entry);
        StoreError::Unsaved(Box::new(error))
    }

    /// Writes the entry as a new record under `id` and, once it is written, names the entry by
    /// `id` at the new record's version. The caller holds the save lock (`last_write`).
    async fn write_new(
        &self,
        backend: &dyn DynBackend,
        entry: &Entry<T>,
        id: SessionId,
        last_write: &mut Option<LastWrite>,
    ) -> Result<(), StoreError> {
        let now = now_millis();
        let snapshot = self.snapshot(&mut entry.lock(), entry, now, id, None, None)?;
        *last_write = None;
        let unsettled = Unsettled::new(entry, snapshot.in_flight);
        let outcome = backend
            .save_fields(&snapshot.key, &snapshot.fields(), None, now)
            .await;
        unsettled.settled();
        // A conflict would take a live record under a fresh random id.
        if self.settle(entry, &snapshot, outcome, now)? {
            *last_write = kept(snapshot);
            Ok(())
        } else {
            Err(StoreError::Contention(1))
        }
    }

    /// Saves the entry unless a save since `write` already carried it: compare-and-set on the
    /// version, and on a lost race reload, keep this server's unsaved fields, take the others
    /// from the stored copy, and try again.
    ///
    /// A save that fails drops this server's copy of the session ([`Entry::discard`]): its
    /// unsaved writes must not be stored later by another request's save, since this request
    /// is answered that they were not kept. The next request loads the stored copy.
    pub(super) async fn save(&self, entry: &Arc<Entry<T>>, write: u64) -> Result<(), StoreError> {
        let Some(backend) = self.backend.as_deref() else {
            return Ok(());
        };
        if !entry.has_consent() {
            return Ok(());
        }
        let span = tracing::debug_span!(
            "session.save",
            session = T::NAME,
            key = Empty,
            attempts = Empty,
            outcome = Empty,
        );
        observe::record_key(&span, || entry.lock().id);
        observe::traced(span, self.save_to(backend, entry, write), |saved| {
            saved.as_ref().map_or_else(StoreError::kind, |()| "saved")
        })
        .await
    }

    /// [`save`](Self::save) but for its span.
    async fn save_to(
        &self,
        backend: &dyn DynBackend,
        entry: &Arc<Entry<T>>,
        write: u64,
    ) -> Result<(), StoreError> {
        let mut last_write = entry.save_lock().lock().await;
        match self
            .save_locked(backend, entry, write, &mut last_write)
            .await
        {
            Err(
                error
                @ (StoreError::Backend(_) | StoreError::Encode(_) | StoreError::Contention(_)),
            ) => {
                let id = entry.lock().id;
                Err(self.discard(entry, id, error))
            }
            outcome => outcome,
        }
    }

    /// [`save`](Self::save) under the entry's save lock, which keeps the record written last.
    async fn save_locked(
        &self,
        backend: &dyn DynBackend,
        entry: &Arc<Entry<T>>,
        write: u64,
        last_write: &mut Option<LastWrite>,
    ) -> Result<(), StoreError> {
        // Read only once a race is lost: the common save never looks at the clock.
        let mut first_loss: Option<Instant> = None;
        let mut attempts: u32 = 0;
        loop {
            attempts = attempts.saturating_add(1);
            let now = now_millis();
            let snapshot = {
                let mut slot = entry.lock();
                if slot.saved_writes >= write {
                    return Ok(());
                }
                if entry.is_ended() {
                    return Err(ended_unsaved(entry));
                }
                let (id, expected) = (slot.id, (slot.version != 0).then_some(slot.version));
                // Taken: until this attempt settles there is no record to patch, so should it
                // be dropped mid-write (the client went away), the next save encodes every
                // field again.
                self.snapshot(&mut slot, entry, now, id, expected, last_write.take())?
            };
            let unsettled = Unsettled::new(entry, snapshot.in_flight);
            let outcome = backend
                .save_fields(&snapshot.key, &snapshot.fields(), snapshot.expected, now)
                .await;
            unsettled.settled();
            if self.settle(entry, &snapshot, outcome, now)? {
                tracing::Span::current().record("attempts", attempts);
                *last_write = kept(snapshot);
                return Ok(());
            }
            tracing::debug!(
                attempt = attempts,
                "typed-session: a save lost a compare-and-set race; reloading to try again"
            );
            let lost_since = *first_loss.get_or_insert_with(Instant::now);
            if attempts >= MIN_SAVE_ATTEMPTS && lost_since.elapsed() >= SAVE_PATIENCE {
                return Err(StoreError::Contention(attempts));
            }
            if !self.refresh(backend, snapshot.id, entry, now).await? && snapshot.expected.is_some()
            {
                // Deleted by another server (log-out, renewal) or expired while the request
                // ran: never brought back, and the request is not told its write was kept.
                entry.end();
                self.memory.remove(snapshot.id, entry);
                return Err(StoreError::Gone);
            }
            // Lets an in-process backend's other writers finish before this one tries again.
            tokio::task::yield_now().await;
        }
    }

    /// Books the outcome of a save attempt: `true` when saved; on a conflict or an error the
    /// attempt's unsaved bits go back to the entry.
    fn settle(
        &self,
        entry: &Entry<T>,
        snapshot: &Snapshot,
        outcome: Result<SaveOutcome, BackendError>,
        now: u64,
    ) -> Result<bool, StoreError> {
        let mut slot = entry.lock();
        entry.set_saving(0);
        match outcome {
            Ok(SaveOutcome::Saved) => {
                #[cfg(feature = "key-store")]
                if snapshot.expected.is_none()
                    && let Some(key_store) = &self.key_store
                {
                    key_store.insert(&snapshot.key);
                }
                // A first record (or a renewal's) sets the version; a compare-and-set only
                // raises it, in case a refresh already read a later one.
                slot.version = match snapshot.expected {
                    None => snapshot.record.version,
                    Some(_) => slot.version.max(snapshot.record.version),
                };
                slot.id = snapshot.id;
                slot.saved_writes = slot.saved_writes.max(snapshot.writes);
                self.key_index.note(&snapshot.key, snapshot.id);
                drop(slot);
                entry.synced_at.store(now, Ordering::Release);
                self.observer().saved();
                Ok(true)
            }
            Ok(SaveOutcome::Conflict) => {
                slot.unsaved |= snapshot.in_flight;
                self.observer().conflict();
                Ok(false)
            }
            Err(error) => {
                slot.unsaved |= snapshot.in_flight;
                Err(error.into())
            }
        }
    }

    /// The record to write for `entry` now under `id`, replacing version `expected` (`None`: a
    /// new record), taken under its lock (so the long-term flag, the value and the write counter
    /// agree). When `last_write` is the record being replaced, it is patched: only the fields
    /// changed since are encoded.
    fn snapshot(
        &self,
        slot: &mut Slot<T>,
        entry: &Entry<T>,
        now: u64,
        id: SessionId,
        expected: Option<u64>,
        last_write: Option<LastWrite>,
    ) -> Result<Snapshot, StoreError> {
        let long_term = entry.is_long_term();
        let meta = Meta {
            created_at: entry.created_at,
            long_term,
            schema: T::SCHEMA,
        };
        let key = StorageKey::for_id(id);
        let reuse = last_write
            .filter(|last| last.id == id && Some(last.version) == expected)
            .map(|last| Reuse {
                previous: last.encoded,
                changed: slot.unsaved,
            });
        let sealer = self.sealer(&key);
        let mut layout = record::encode(
            meta,
            sealer,
            self.encrypt_all,
            T::PERSISTED,
            reuse,
            |fields| slot.value.encode(fields),
        )?;
        let data = std::mem::take(&mut layout.data);
        let version = expected.map_or(Some(1), |version| version.checked_add(1));
        let Some(version) = version else {
            return Err(BackendError::new(
                "saving a session",
                "the stored version is at its maximum; the record is corrupt",
            )
            .into());
        };
        Ok(Snapshot {
            id,
            key,
            layout,
            record: Record {
                data,
                version,
                expires_at: self
                    .lifetimes
                    .stored_expires_at(entry.created_at, now, long_term),
                index: slot.value.index(),
            },
            expected,
            writes: slot.writes,
            in_flight: {
                let taken = std::mem::take(&mut slot.unsaved);
                entry.set_saving(taken);
                taken
            },
        })
    }
}

/// A save attempt between its snapshot and its settling: if it is dropped there (its request
/// was cancelled), the unsaved-field bits it took go back to the entry (and stop counting as
/// being saved), so that a later save that loses a race still keeps those fields over the
/// stored copy.
struct Unsettled<'a, T> {
    entry: &'a Entry<T>,
    in_flight: u64,
}

impl<'a, T> Unsettled<'a, T> {
    fn new(entry: &'a Entry<T>, in_flight: u64) -> Self {
        Self { entry, in_flight }
    }

    /// The attempt's outcome is about to be settled, which books the bits itself.
    fn settled(mut self) {
        self.in_flight = 0;
    }
}

impl<T> Drop for Unsettled<'_, T> {
    fn drop(&mut self) {
        if self.in_flight != 0 {
            let mut slot = self.entry.lock();
            slot.unsaved |= self.in_flight;
            self.entry.set_saving(0);
        }
    }
}

impl Snapshot {
    /// The record with its fields shown one by one (or whole, when it shows none).
    fn fields(&self) -> FieldSave<'_> {
        let layout = &self.layout;
        FieldSave::new(
            &self.record,
            layout.head_end,
            &layout.names,
            &layout.spans,
            layout.copied,
        )
        .unwrap_or_else(|| FieldSave::whole(&self.record))
    }
}

/// What a written `snapshot` leaves for the next save to copy from: the record, when it is
/// long enough to be worth keeping.
fn kept(snapshot: Snapshot) -> Option<LastWrite> {
    let Snapshot {
        id,
        record,
        mut layout,
        ..
    } = snapshot;
    let worth_keeping = record.data.len() >= STORE_APART_FROM && !layout.spans.is_empty();
    worth_keeping.then(|| {
        layout.data = record.data;
        LastWrite {
            id,
            version: record.version,
            encoded: layout,
        }
    })
}
