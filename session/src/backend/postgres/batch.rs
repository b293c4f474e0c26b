//! Concurrent saves grouped into one statement, so that many share one commit.
//!
//! A save on PostgreSQL waits for its commit's WAL flush, and a pool connection waits with it:
//! one save per statement caps writes at `pool size / flush time` whatever the load. Here saves
//! queue on a few lanes; each lane sends what has queued while its previous statement ran as
//! one statement, one transaction, one flush. Every save keeps its own compare-and-set (the
//! statement checks each row's expected version and answers which rows it wrote), and each
//! caller is answered only after the commit. A save of a key already in the statement waits
//! for the next one, and a key always goes to the same lane, so two statements of one server in
//! flight never touch the same row. Each statement writes its rows in key order, as every other
//! server's statements do, so that two servers saving the same sessions at once wait for each
//! other rather than deadlock (and should PostgreSQL still report a deadlock, the saves run one
//! by one).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::announce::Announcement;
use super::fields::ApartSave;
use crate::backend::sql::{millis_to_db, version_to_db};
use crate::backend::{BackendError, Record, SaveOutcome, StorageKey};

/// Statements in flight at once, each on a pool connection of its own.
const LANES: usize = 4;

/// The most saves in one statement.
const BATCH: usize = 256;

/// Saves that may queue on one lane before callers wait to queue.
const QUEUE: usize = 1024;

/// The lanes saves run on. Each save brings its table's statement (see [`statement`]): a
/// backend renamed to another table shares its clones' lanes, and statements never mix tables.
#[derive(Debug, Default)]
pub(super) struct SaveBatcher {
    lanes: [Lane; LANES],
}

/// One lane: a task sending its queue's saves a statement at a time, started at its first save
/// (and again if it is gone, as when the runtime that ran it shut down).
#[derive(Debug, Default)]
struct Lane {
    queue: Mutex<Option<mpsc::Sender<PendingSave>>>,
}

/// The row a save writes: the record whole, or field by field (see
/// [`fields`](super::fields)).
#[derive(Debug)]
pub(super) struct Row {
    data: String,
    version: i64,
    expires_at: i64,
    index: Option<String>,
    /// `None`: `data` is the whole record.
    field_count: Option<i32>,
    /// Only the changed fields are written, over the row stored field by field that this save
    /// replaces.
    partial: bool,
    /// The fields written, with their positions.
    members: Vec<(i32, String)>,
}

impl Row {
    /// `record` stored whole.
    pub(super) fn whole(record: &Record) -> Result<Self, BackendError> {
        Ok(Self {
            data: record.data.clone(),
            version: version_to_db(record.version)?,
            expires_at: millis_to_db(record.expires_at),
            index: record.index.clone(),
            field_count: None,
            partial: false,
            members: Vec::new(),
        })
    }

    /// `record` stored field by field, as `apart` cuts it: only its head and the fields
    /// written are copied.
    pub(super) fn apart(record: &Record, apart: &ApartSave<'_>) -> Result<Self, BackendError> {
        Ok(Self {
            data: apart.head.to_owned(),
            version: version_to_db(record.version)?,
            expires_at: millis_to_db(record.expires_at),
            index: record.index.clone(),
            field_count: Some(apart.field_count),
            partial: apart.partial,
            members: apart
                .members
                .iter()
                .map(|&(position, json)| (position, json.to_owned()))
                .collect(),
        })
    }
}

/// A save waiting for its statement, with where to answer.
struct PendingSave {
    sql: Arc<str>,
    key: StorageKey,
    row: Row,
    expected: Option<i64>,
    now: i64,
    announcement: Announcement,
    answer: oneshot::Sender<Result<bool, Arc<sqlx::Error>>>,
}

impl PendingSave {
    /// Announces the save if it was written, then answers its caller.
    fn settle(self, pool: &PgPool, outcome: Result<bool, Arc<sqlx::Error>>) {
        if matches!(outcome, Ok(true)) {
            self.announcement.send(pool);
        }
        let _ = self.answer.send(outcome);
    }
}

/// The batch statement on table `t` and its fields table `f` (both quoted). Binds arrays, one
/// element per save: id, data, version, expires_at, index_value, expected version (NULL:
/// create), now, field_count (NULL: stored whole), partial; then the fields written, one
/// element per field: id, position, member. Returns the ids it wrote.
///
/// Three parts share one snapshot: `updated` is the compare-and-set replace (for a partial
/// save, only over the row stored field by field with as many fields), `replaced` a create
/// over an expired row, `inserted` a create where there is no row (`DO NOTHING` when one
/// appeared meanwhile, or is live: a conflict). Each row carries its own `now`. The fields of
/// the rows written are then written too (the triggers `create_schema` installs remove the
/// ones left over).
pub(crate) fn statement(t: &str, f: &str) -> String {
    let set = "data = i.data, version = i.version, expires_at = i.expires_at, \
               index_value = i.index_value, field_count = i.field_count";
    format!(
        "WITH input AS (\
           SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::text[], \
                                $6::int8[], $7::int8[], $8::int4[], $9::bool[]) \
           AS i(id, data, version, expires_at, index_value, expected, now, field_count, \
                partial)), \
         updated AS (\
           UPDATE {t} AS s SET {set} \
           FROM input i \
           WHERE i.expected IS NOT NULL AND s.id = i.id AND s.version = i.expected \
             AND s.expires_at > i.now AND (NOT i.partial OR s.field_count = i.field_count) \
           RETURNING s.id), \
         replaced AS (\
           UPDATE {t} AS s SET {set} \
           FROM input i \
           WHERE i.expected IS NULL AND s.id = i.id AND s.expires_at <= i.now \
           RETURNING s.id), \
         inserted AS (\
           INSERT INTO {t} (id, data, version, expires_at, index_value, field_count) \
           SELECT id, data, version, expires_at, index_value, field_count FROM input \
           WHERE expected IS NULL \
           ON CONFLICT (id) DO NOTHING \
           RETURNING id), \
         written AS (\
           SELECT id FROM updated UNION ALL SELECT id FROM replaced \
           UNION ALL SELECT id FROM inserted), \
         stored_fields AS (\
           INSERT INTO {f} (id, position, member) \
           SELECT m.id, m.position, m.member \
           FROM unnest($10::text[], $11::int4[], $12::text[]) AS m(id, position, member) \
           WHERE m.id IN (SELECT id FROM written) \
           ON CONFLICT (id, position) DO UPDATE SET member = excluded.member) \
         SELECT id FROM written"
    )
}

impl SaveBatcher {
    /// Queues a compare-and-set save and answers once its statement committed (or failed);
    /// the lane sends `announcement` once the save committed.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn save(
        &self,
        pool: &PgPool,
        sql: &Arc<str>,
        key: &StorageKey,
        row: Row,
        expected_version: Option<u64>,
        now: u64,
        announcement: Announcement,
    ) -> Result<SaveOutcome, BackendError> {
        let context = "saving a session";
        let (answer, answered) = oneshot::channel();
        let mut pending = PendingSave {
            sql: Arc::clone(sql),
            key: key.clone(),
            row,
            expected: expected_version.map(version_to_db).transpose()?,
            now: millis_to_db(now),
            announcement,
            answer,
        };
        let lane = &self.lanes[lane_of(key)];
        // At most twice: a lane found gone is started again once.
        for _ in 0..2 {
            let queue = lane.queue(pool);
            match queue.send(pending).await {
                Ok(()) => {
                    return match answered.await {
                        Ok(Ok(written)) => Ok(SaveOutcome::written(written)),
                        Ok(Err(error)) => Err(BackendError::new(context, error)),
                        Err(_) => Err(BackendError::new(
                            context,
                            "the save's batch task stopped before answering",
                        )),
                    };
                }
                Err(mpsc::error::SendError(back)) => {
                    lane.forget(&queue);
                    pending = back;
                }
            }
        }
        Err(BackendError::new(
            context,
            "the save's batch task could not be started",
        ))
    }
}

impl Lane {
    /// The lane's queue, starting its task if there is none.
    fn queue(&self, pool: &PgPool) -> mpsc::Sender<PendingSave> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue
            .get_or_insert_with(|| {
                let (sender, pending) = mpsc::channel(QUEUE);
                tokio::spawn(run_lane(pool.clone(), pending));
                sender
            })
            .clone()
    }

    /// Drops `dead`, a queue whose task is gone, unless another caller replaced it already.
    fn forget(&self, dead: &mpsc::Sender<PendingSave>) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.as_ref().is_some_and(|q| q.same_channel(dead)) {
            *queue = None;
        }
    }
}

/// The lane a key's saves go to: always the same one for a key. Keys are hex digests, so their
/// last digit spreads them evenly.
fn lane_of(key: &StorageKey) -> usize {
    key.as_str()
        .chars()
        .next_back()
        .and_then(|last| last.to_digit(16))
        .map_or(0, |digit| digit as usize % LANES)
}

/// Sends the queued saves a statement at a time until every clone of the backend is gone.
async fn run_lane(pool: PgPool, mut queue: mpsc::Receiver<PendingSave>) {
    let mut batch: Vec<PendingSave> = Vec::with_capacity(BATCH);
    let mut waiting: Vec<PendingSave> = Vec::new();
    loop {
        batch.append(&mut waiting);
        if batch.is_empty() {
            if queue.recv_many(&mut batch, BATCH).await == 0 {
                return;
            }
        } else {
            while batch.len() < BATCH {
                match queue.try_recv() {
                    Ok(save) => batch.push(save),
                    Err(_) => break,
                }
            }
        }
        // A second save of a key waits for the next statement (one statement writes a row
        // once), and so does a save on another table.
        let sql = Arc::clone(&batch[0].sql);
        let mut keys = HashSet::with_capacity(batch.len());
        let (mut this, next): (Vec<_>, Vec<_>) = batch
            .drain(..)
            .partition(|save| Arc::ptr_eq(&save.sql, &sql) && keys.insert(save.key.clone()));
        waiting = next;
        this.sort_unstable_by(|a, b| a.key.as_str().cmp(b.key.as_str()));
        run_batch(&pool, &sql, this).await;
    }
}

/// Whether PostgreSQL refused a statement for something its rows carry (a value a column cannot
/// hold: SQLSTATE classes 22, 23, 54) or for meeting another server's statement (a deadlock or
/// serialisation failure, class 40): run alone, each save then fails or succeeds on its own.
/// Anything else (the connection, the server's state) would fail each save alike.
fn worth_running_alone(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(error) = error else {
        return false;
    };
    error.code().is_some_and(|code| {
        ["22", "23", "54", "40"]
            .iter()
            .any(|class| code.starts_with(class))
    })
}

/// Runs one statement and answers its saves. When PostgreSQL refuses the statement for
/// something one row carries, or for a deadlock with another server, each save runs alone
/// (see [`worth_running_alone`]).
async fn run_batch(pool: &PgPool, sql: &str, batch: Vec<PendingSave>) {
    match execute(pool, sql, &batch).await {
        Ok(written) => {
            for save in batch {
                let done = written.contains(save.key.as_str());
                save.settle(pool, Ok(done));
            }
        }
        Err(error) if batch.len() > 1 && worth_running_alone(&error) => {
            for save in batch {
                let alone = execute(pool, sql, std::slice::from_ref(&save)).await;
                let outcome = alone.map(|written| !written.is_empty()).map_err(Arc::new);
                save.settle(pool, outcome);
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for save in batch {
                save.settle(pool, Err(Arc::clone(&error)));
            }
        }
    }
}

/// The ids the statement wrote.
async fn execute(
    pool: &PgPool,
    sql: &str,
    batch: &[PendingSave],
) -> Result<HashSet<String>, sqlx::Error> {
    let column = |f: fn(&PendingSave) -> i64| batch.iter().map(f).collect::<Vec<_>>();
    let fields = || {
        batch.iter().flat_map(|save| {
            let id = save.key.as_str();
            save.row
                .members
                .iter()
                .map(move |(position, member)| (id, *position, member.as_str()))
        })
    };
    let written: Vec<String> = sqlx::query_scalar(sql)
        .bind(batch.iter().map(|s| s.key.as_str()).collect::<Vec<_>>())
        .bind(
            batch
                .iter()
                .map(|s| s.row.data.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(column(|s| s.row.version))
        .bind(column(|s| s.row.expires_at))
        .bind(
            batch
                .iter()
                .map(|s| s.row.index.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(batch.iter().map(|s| s.expected).collect::<Vec<_>>())
        .bind(column(|s| s.now))
        .bind(batch.iter().map(|s| s.row.field_count).collect::<Vec<_>>())
        .bind(batch.iter().map(|s| s.row.partial).collect::<Vec<_>>())
        .bind(fields().map(|(id, _, _)| id).collect::<Vec<_>>())
        .bind(
            fields()
                .map(|(_, position, _)| position)
                .collect::<Vec<_>>(),
        )
        .bind(fields().map(|(_, _, member)| member).collect::<Vec<_>>())
        .fetch_all(pool)
        .await?;
    Ok(written.into_iter().collect())
}
