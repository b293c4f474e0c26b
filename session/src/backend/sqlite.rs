//! Sessions in a SQLite database, through sqlx.

use std::sync::Arc;

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};

use crate::backend::sql::{
    Dialect, RecordRow, TableName, UpsertStatements, millis_to_db, record_from_row,
    shared_sql_constructors, shared_sql_methods, stored_count, stored_key, stored_version,
    upsert_sql_backend, version_to_db,
};
use crate::backend::{BackendError, Record, SaveOutcome, SessionBackend, StorageKey};

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
///     index_value VARCHAR(255)
/// );
/// CREATE INDEX IF NOT EXISTS "typed_sessions_expires_at" ON "typed_sessions" (expires_at);
/// CREATE INDEX IF NOT EXISTS "typed_sessions_index_value" ON "typed_sessions" (index_value);
/// ```
///
/// `index_value` holds the `#[session(index)]` value, for
/// [`find_by_index`](SessionBackend::find_by_index); a table from before it gains the column.
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

    shared_sql_constructors!(SqlitePool, |table| UpsertStatements::new(
        Dialect::Sqlite,
        table
    ));
}

impl SqliteBackend {
    /// One compare-and-set save, in its own statement: SQLite has one writer at a time, so
    /// grouping saves would only add a wait.
    async fn save_record(
        &self,
        key: &StorageKey,
        record: &Record,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        let version = version_to_db(record.version)?;
        let expires_at = millis_to_db(record.expires_at);
        let query = match expected_version {
            None => sqlx::query(&self.statements.insert)
                .bind(key.as_str())
                .bind(record.data.as_str())
                .bind(version)
                .bind(expires_at)
                .bind(record.index.as_deref())
                .bind(millis_to_db(now)),
            Some(expected) => sqlx::query(&self.statements.common.update)
                .bind(record.data.as_str())
                .bind(version)
                .bind(expires_at)
                .bind(record.index.as_deref())
                .bind(key.as_str())
                .bind(version_to_db(expected)?)
                .bind(millis_to_db(now)),
        };
        let done = query
            .execute(&self.pool)
            .await
            .map_err(|e| BackendError::new("saving a session", e))?;
        Ok(SaveOutcome::written(done.rows_affected() == 1))
    }
}

upsert_sql_backend!(SqliteBackend);
