//! Sessions in a SQLite database, through sqlx.

use std::sync::Arc;

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};

use crate::backend::sql::{
    CommonStatements, Dialect, TableName, millis_to_db, record_from_row, stored_count, stored_key,
    stored_u64, version_to_db,
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
///     expires_at BIGINT NOT NULL
/// );
/// CREATE INDEX IF NOT EXISTS "typed_sessions_expires_at" ON "typed_sessions" (expires_at);
/// ```
///
/// `id` is the [`StorageKey`] (a hash of the session id), `version` the compare-and-set counter
/// and `expires_at` unix milliseconds. Use a database file: `sqlite::memory:` gives every
/// pooled connection a database of its own.
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
/// let record = Record { data: "{}".into(), version: 1, expires_at: now + 3_600_000 };
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
    statements: Arc<Statements>,
}

/// Every statement of one table, formatted once.
#[derive(Debug)]
struct Statements {
    common: CommonStatements,
    create_table: String,
    create_index: String,
    /// Creates the row, or replaces an expired one. Binds: id, data, version, expires_at, now.
    insert: String,
    /// Binds: expires_at, id, now. Returns: version.
    touch: String,
}

impl Statements {
    fn new(table: &TableName) -> Self {
        let dialect = Dialect::Sqlite;
        let t = dialect.quote(table.as_str());
        let index = dialect.quote(&table.index_name());
        Self {
            common: CommonStatements::new(dialect, table),
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id TEXT PRIMARY KEY NOT NULL, \
                 data TEXT NOT NULL, \
                 version BIGINT NOT NULL, \
                 expires_at BIGINT NOT NULL)"
            ),
            create_index: format!("CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at)"),
            // The upsert's WHERE turns "a live row exists" into zero rows changed.
            insert: format!(
                "INSERT INTO {t} (id, data, version, expires_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                 version = excluded.version, expires_at = excluded.expires_at \
                 WHERE {t}.expires_at <= ?"
            ),
            touch: format!(
                "UPDATE {t} SET expires_at = ? WHERE id = ? AND expires_at > ? RETURNING version"
            ),
        }
    }
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

    /// Uses an existing pool and the table `typed_sessions`.
    #[must_use]
    pub fn from_pool(pool: SqlitePool) -> Self {
        Self {
            pool,
            statements: Arc::new(Statements::new(&TableName::default_table())),
        }
    }

    /// Uses table `name` instead; it must match `[A-Za-z_][A-Za-z0-9_]{0,62}`.
    pub fn with_table_name(self, name: &str) -> Result<Self, BackendError> {
        let table = TableName::new(name)?;
        Ok(Self {
            pool: self.pool,
            statements: Arc::new(Statements::new(&table)),
        })
    }

    /// The pool, for your own queries or to close it.
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl SessionBackend for SqliteBackend {
    async fn create_schema(&self) -> Result<(), BackendError> {
        let context = "creating the sessions table";
        for statement in [&self.statements.create_table, &self.statements.create_index] {
            sqlx::query(statement)
                .execute(&self.pool)
                .await
                .map_err(|e| BackendError::new(context, e))?;
        }
        Ok(())
    }

    async fn load(&self, key: &StorageKey, now: u64) -> Result<Option<Record>, BackendError> {
        let row = sqlx::query_as::<_, (String, i64, i64)>(&self.statements.common.load)
            .bind(key.as_str())
            .bind(millis_to_db(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| BackendError::new("loading a session", e))?;
        row.map(record_from_row).transpose()
    }

    async fn save(
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
                .bind(millis_to_db(now)),
            Some(expected) => sqlx::query(&self.statements.common.update)
                .bind(record.data.as_str())
                .bind(version)
                .bind(expires_at)
                .bind(key.as_str())
                .bind(version_to_db(expected)?)
                .bind(millis_to_db(now)),
        };
        let done = query
            .execute(&self.pool)
            .await
            .map_err(|e| BackendError::new("saving a session", e))?;
        Ok(if done.rows_affected() == 1 {
            SaveOutcome::Saved
        } else {
            SaveOutcome::Conflict
        })
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: u64,
        now: u64,
    ) -> Result<Option<u64>, BackendError> {
        let version = sqlx::query_scalar::<_, i64>(&self.statements.touch)
            .bind(millis_to_db(expires_at))
            .bind(key.as_str())
            .bind(millis_to_db(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| BackendError::new("touching a session", e))?;
        version.map(|v| stored_u64(v, "version")).transpose()
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), BackendError> {
        sqlx::query(&self.statements.common.delete)
            .bind(key.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| BackendError::new("deleting a session", e))?;
        Ok(())
    }

    async fn delete_expired(&self, now: u64) -> Result<u64, BackendError> {
        let done = sqlx::query(&self.statements.common.delete_expired)
            .bind(millis_to_db(now))
            .execute(&self.pool)
            .await
            .map_err(|e| BackendError::new("deleting expired sessions", e))?;
        Ok(done.rows_affected())
    }

    async fn count(&self, now: u64) -> Result<u64, BackendError> {
        let count = sqlx::query_scalar::<_, i64>(&self.statements.common.count)
            .bind(millis_to_db(now))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| BackendError::new("counting sessions", e))?;
        stored_count(count)
    }

    async fn delete_all(&self) -> Result<(), BackendError> {
        sqlx::query(&self.statements.common.delete_all)
            .execute(&self.pool)
            .await
            .map_err(|e| BackendError::new("deleting all sessions", e))?;
        Ok(())
    }

    async fn list_keys(&self, now: u64) -> Result<Vec<StorageKey>, BackendError> {
        let ids = sqlx::query_scalar::<_, String>(&self.statements.common.list_keys)
            .bind(millis_to_db(now))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| BackendError::new("listing session keys", e))?;
        ids.iter().map(|id| stored_key(id)).collect()
    }
}
