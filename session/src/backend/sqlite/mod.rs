//! Sessions in a SQLite database, through sqlx.

pub(crate) mod fields;

use std::sync::Arc;

use std::str::FromStr;

use sqlx::Sqlite;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous,
};

use self::fields::ApartSave;

use crate::backend::sql::{
    Dialect, RecordRow, TableName, UpsertStatements, millis_to_db, record_from_row,
    shared_sql_constructors, shared_sql_methods, stored_count, stored_key, stored_version,
    upsert_sql_backend, version_to_db,
};
use crate::backend::{BackendError, FieldSave, Record, SaveOutcome, SessionBackend, StorageKey};

/// Stores sessions in one table of a SQLite database (the one server-less backend that
/// survives a restart).
///
/// [`create_schema`](SessionBackend::create_schema) creates, with the default table name:
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS "typed_sessions" (
///     id TEXT PRIMARY KEY NOT NULL,
///     data TEXT NOT NULL,
///     version BIGINT NOT NULL,
///     expires_at BIGINT NOT NULL,
///     index_value VARCHAR(255),
///     fields_apart INTEGER
/// );
/// CREATE INDEX IF NOT EXISTS "typed_sessions_expires_at" ON "typed_sessions" (expires_at);
/// CREATE INDEX IF NOT EXISTS "typed_sessions_index_value" ON "typed_sessions" (index_value);
/// CREATE TABLE IF NOT EXISTS "typed_sessions_fields" (
///     id TEXT NOT NULL,
///     position INTEGER NOT NULL,
///     member TEXT NOT NULL,
///     PRIMARY KEY (id, position)
/// );
/// -- and two triggers: "typed_sessions_trimfields" (after an update of fields_apart) and
/// -- "typed_sessions_dropfields" (after a delete).
/// ```
///
/// `index_value` holds the `#[session(index)]` value, for
/// [`find_by_index`](SessionBackend::find_by_index). `fields_apart` and the fields table hold
/// the large fields of sessions stored with
/// [`with_partial_writes`](Self::with_partial_writes): the triggers drop a session's field
/// rows with it, and the rows a save no longer uses. Every version that knows them reads both
/// forms. A table from before either gains the column (and the fields table) in
/// `create_schema`; where the application may not run DDL, add them in a migration, or every
/// read fails.
///
/// `id` is the [`StorageKey`] (a hash of the session id), `version` the compare-and-set counter
/// and `expires_at` unix milliseconds. Use a database file: `sqlite::memory:` gives every
/// pooled connection a database of its own.
///
/// SQLite keeps any value in any column (a declared type is only a preference), so a row
/// written by other hands can hold text or a blob where a number or text belongs. Such a row is
/// a malformed record: its visitor gets a fresh session and the row is left as it is. One whose
/// `expires_at` is not a number never expires (SQLite orders text after every number), so it is
/// never purged either: delete it yourself.
///
/// ```
/// use typed_session::backend::{Record, SessionBackend, SqliteBackend, StorageKey};
/// use typed_session::SessionId;
/// use std::time::UNIX_EPOCH;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("typed_session_doc_{}", SessionId::generate()));
/// # std::fs::create_dir_all(&dir)?;
/// # let path = dir.join("sessions.db");
/// # let url = format!("sqlite://{}?mode=rwc", path.display());
/// // `mode=rwc` creates the file if it is missing.
/// let backend = SqliteBackend::connect(&url).await?.with_table_name("app_sessions")?;
/// backend.create_schema().await?;
///
/// let now = u64::try_from(UNIX_EPOCH.elapsed()?.as_millis())?;
/// let key = StorageKey::for_id(SessionId::generate());
/// let record = Record { data: "{}".into(), version: 1, expires_at: now + 3_600_000, index: None };
/// backend.save(&key, &record, None, now).await?;
/// assert_eq!(backend.load(&key, now).await?, Some(record));
/// # backend.pool().close().await;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    pool: SqlitePool,
    statements: Arc<UpsertStatements>,
    /// Large fields are stored apart (see [`with_partial_writes`](Self::with_partial_writes)).
    partial_writes: bool,
}

impl SqliteBackend {
    /// Opens a pool on `url` (for example `sqlite://sessions.db?mode=rwc`) and uses the table
    /// `typed_sessions`.
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        // Write-ahead logging with `synchronous = NORMAL`: each save is one append to the log
        // instead of a synced rewrite of the journal (tens of microseconds, not a millisecond),
        // still durable across application crashes; readers never wait for writers. A busy
        // timeout rides out the brief write lock of a parallel save.
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| BackendError::new("parsing the SQLite URL", e))?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePool::connect_with(options)
            .await
            .map_err(|e| BackendError::new("connecting to SQLite", e))?;
        Ok(Self::from_pool(pool))
    }

    shared_sql_constructors!(
        SqlitePool,
        |table| UpsertStatements::new(Dialect::Sqlite, table),
        partial_writes: false
    );
}

impl SqliteBackend {
    /// `record` stored whole, in one statement: SQLite has one writer at a time, so grouping
    /// saves would only add a wait.
    async fn save_record(
        &self,
        key: &StorageKey,
        record: &Record,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        let row = self.write_row(
            key,
            record,
            &record.data,
            None,
            false,
            expected_version,
            now,
        )?;
        let done = row
            .execute(&self.pool)
            .await
            .map_err(|e| BackendError::new(SAVING, e))?;
        Ok(SaveOutcome::written(done.rows_affected() == 1))
    }

    /// The record with its large fields stored apart, as `apart` cuts it: the row alone in
    /// one statement when no large field is written, else the row and those fields in one
    /// transaction.
    async fn save_apart(
        &self,
        key: &StorageKey,
        record: &Record,
        apart: &ApartSave<'_>,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<bool, BackendError> {
        let failed = |e| BackendError::new(SAVING, e);
        let row = self.write_row(
            key,
            record,
            &apart.data,
            Some(apart.fields_apart),
            apart.partial,
            expected_version,
            now,
        )?;
        if apart.members.is_empty() {
            let done = row.execute(&self.pool).await.map_err(failed)?;
            return Ok(done.rows_affected() == 1);
        }
        let mut transaction = self.pool.begin().await.map_err(failed)?;
        if row
            .execute(&mut *transaction)
            .await
            .map_err(failed)?
            .rows_affected()
            != 1
        {
            // Dropped, the transaction rolls back.
            return Ok(false);
        }
        for &(position, member) in &apart.members {
            sqlx::query(&self.statements.write_field)
                .bind(key.as_str())
                .bind(position)
                .bind(member)
                .execute(&mut *transaction)
                .await
                .map_err(failed)?;
        }
        transaction.commit().await.map_err(failed)?;
        Ok(true)
    }

    /// The compare-and-set write of a session's row: `data` with `fields_apart` (`None`: the
    /// whole record); `partial` only over a row with the same fields apart.
    #[allow(clippy::too_many_arguments)]
    fn write_row<'q>(
        &'q self,
        key: &'q StorageKey,
        record: &'q Record,
        data: &'q str,
        fields_apart: Option<i64>,
        partial: bool,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<Query<'q, Sqlite, SqliteArguments<'q>>, BackendError> {
        let version = version_to_db(record.version)?;
        let expires_at = millis_to_db(record.expires_at);
        Ok(match expected_version {
            None => sqlx::query(&self.statements.insert)
                .bind(key.as_str())
                .bind(data)
                .bind(version)
                .bind(expires_at)
                .bind(record.index.as_deref())
                .bind(fields_apart)
                .bind(millis_to_db(now)),
            Some(expected) => {
                let stored = fields_apart.filter(|_| partial);
                sqlx::query(&self.statements.update)
                    .bind(data)
                    .bind(version)
                    .bind(expires_at)
                    .bind(record.index.as_deref())
                    .bind(fields_apart)
                    .bind(key.as_str())
                    .bind(version_to_db(expected)?)
                    .bind(millis_to_db(now))
                    .bind(stored)
                    .bind(stored)
            }
        })
    }

    /// Stores each field of 2 KiB or more apart from the session's row, so that a save that
    /// changes only smaller fields does not copy them (off by default).
    ///
    /// SQLite rewrites a whole row on any update: without this, incrementing a counter beside
    /// a 10 KiB field writes the 10 KiB again. With it, the row keeps the record with a
    /// placeholder for each large field and `fields_apart` (a bit per position), and
    /// `<table>_fields` (made by [`create_schema`](SessionBackend::create_schema), with the
    /// triggers that keep it in step) keeps one row per large field. A save that replaces the
    /// record this server last wrote writes only the row and the large fields that changed,
    /// under the same compare-and-set; any other save writes every large field. Records shorter
    /// than 512 bytes, with no field of 2 KiB, or sealed whole (`with_encrypt_all`) are stored
    /// whole.
    ///
    /// Every reader of this version puts the fields back into the record exactly as it was
    /// saved, whatever its own setting, so the setting can change at any time once every
    /// process that opens the database runs a version that reads both forms.
    ///
    /// ```no_run
    /// use typed_session::backend::SqliteBackend;
    ///
    /// # async fn run() -> Result<(), typed_session::backend::BackendError> {
    /// let backend = SqliteBackend::connect("sqlite://sessions.db?mode=rwc")
    ///     .await?
    ///     .with_partial_writes(true);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_partial_writes(self, enabled: bool) -> Self {
        Self {
            partial_writes: enabled,
            ..self
        }
    }
}

/// The context of a save's errors.
const SAVING: &str = "saving a session";

upsert_sql_backend!(SqliteBackend);
