//! Sessions in a MySQL or MariaDB table, through sqlx.

use std::sync::Arc;

use sqlx::mysql::MySqlPool;

use crate::backend::sql::{
    CommonStatements, Dialect, INDEX_COLUMN, RecordRow, TableName, millis_to_db, record_from_row,
    shared_sql_constructors, shared_sql_methods, stored_count, stored_key, stored_version,
    version_to_db,
};
use crate::backend::{BackendError, Record, SaveOutcome, SessionBackend, StorageKey};

/// Stores sessions in one table of a MySQL or MariaDB database; several application servers
/// can share it.
///
/// [`create_schema`](SessionBackend::create_schema) creates, with the default table name:
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS `typed_sessions` (
///     id CHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
///     data MEDIUMTEXT CHARACTER SET utf8mb4 NOT NULL,
///     version BIGINT NOT NULL,
///     expires_at BIGINT NOT NULL,
///     index_value VARCHAR(255) CHARACTER SET utf8mb4,
///     INDEX expires_at_index (expires_at),
///     INDEX index_value_index (index_value)
/// ) ENGINE = InnoDB
/// ```
///
/// `index_value` holds the `#[session(index)]` value, for
/// [`find_by_index`](SessionBackend::find_by_index); a table from before it gains the column
/// and its index.
///
/// `id` is the [`StorageKey`] (a hash of the session id; lowercase hex, so the default
/// case-insensitive collation compares it exactly), `data` holds up to 16 MiB (within the
/// server's `max_allowed_packet`), `version` is the compare-and-set counter and `expires_at`
/// unix milliseconds. The index is declared inside `CREATE TABLE` because MySQL, unlike
/// MariaDB, has no `CREATE INDEX IF NOT EXISTS`.
///
/// ```no_run
/// use typed_session::backend::{MySqlBackend, SessionBackend};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), typed_session::backend::BackendError> {
/// let backend = MySqlBackend::connect("mysql://app@127.0.0.1:3306/app")
///     .await?
///     .with_table_name("app_sessions")?;
/// backend.create_schema().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MySqlBackend {
    pool: MySqlPool,
    statements: Arc<Statements>,
}

/// Every statement of one table, formatted once.
#[derive(Debug)]
struct Statements {
    common: CommonStatements,
    create_table: String,
    /// Clears the way for an insert. Binds: id, now.
    delete_expired_row: String,
    /// Fails with a unique violation when the row exists. Binds: id, data, version, expires_at,
    /// index_value.
    insert: String,
    /// Binds: expires_at, id, now. Rows affected counts matched rows: sqlx connects with
    /// `CLIENT_FOUND_ROWS`, so an unchanged expiry still counts.
    touch: String,
    /// Binds: id. Returns: version.
    version: String,
}

impl Statements {
    fn new(table: &TableName) -> Self {
        let t = Dialect::MySql.quote(table.as_str());
        Self {
            common: CommonStatements::new(Dialect::MySql, table, "s.data"),
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id CHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY, \
                 data MEDIUMTEXT CHARACTER SET utf8mb4 NOT NULL, \
                 version BIGINT NOT NULL, \
                 expires_at BIGINT NOT NULL, \
                 {INDEX_COLUMN} CHARACTER SET utf8mb4, \
                 INDEX expires_at_index (expires_at), \
                 INDEX index_value_index (index_value)\
                 ) ENGINE = InnoDB"
            ),
            delete_expired_row: format!("DELETE FROM {t} WHERE id = ? AND expires_at <= ?"),
            insert: format!(
                "INSERT INTO {t} (id, data, version, expires_at, index_value) VALUES (?, ?, ?, ?, ?)"
            ),
            touch: format!("UPDATE {t} SET expires_at = ? WHERE id = ? AND expires_at > ?"),
            version: format!("SELECT version FROM {t} WHERE id = ?"),
        }
    }
}

impl MySqlBackend {
    /// Opens a pool on `url` (for example `mysql://user@host:3306/db`) and uses the table
    /// `typed_sessions`.
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        let pool = MySqlPool::connect(url)
            .await
            .map_err(|e| BackendError::new("connecting to MySQL", e))?;
        Ok(Self::from_pool(pool))
    }

    shared_sql_constructors!(MySqlPool, Statements::new);

    /// `save` without an expected version: remove an expired row in the way, then insert; a
    /// live row makes the insert fail on the primary key, which is the conflict. (Unlike
    /// `INSERT IGNORE`, this does not also downgrade other errors, such as an oversized value,
    /// to warnings; unlike `ON DUPLICATE KEY UPDATE`, its outcome does not hinge on
    /// rows-affected conventions.)
    async fn insert(
        &self,
        key: &StorageKey,
        record: &Record,
        version: i64,
        expires_at: i64,
        now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        let context = "saving a session";
        sqlx::query(&self.statements.delete_expired_row)
            .bind(key.as_str())
            .bind(millis_to_db(now))
            .execute(&self.pool)
            .await
            .map_err(|e| BackendError::new(context, e))?;
        let inserted = sqlx::query(&self.statements.insert)
            .bind(key.as_str())
            .bind(record.data.as_str())
            .bind(version)
            .bind(expires_at)
            .bind(record.index.as_deref())
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(SaveOutcome::Saved),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(SaveOutcome::Conflict),
            Err(e) => Err(BackendError::new(context, e)),
        }
    }
}

impl SessionBackend for MySqlBackend {
    async fn create_schema(&self) -> Result<(), BackendError> {
        sqlx::query(&self.statements.create_table)
            .execute(&self.pool)
            .await
            .map_err(|e| BackendError::new("creating the sessions table", e))?;
        self.add_index_column().await
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
        match expected_version {
            None => self.insert(key, record, version, expires_at, now).await,
            Some(expected) => {
                // sqlx connects with `CLIENT_FOUND_ROWS`, so this counts the matched row even if
                // nothing in it changed.
                let done = sqlx::query(&self.statements.common.update)
                    .bind(record.data.as_str())
                    .bind(version)
                    .bind(expires_at)
                    .bind(record.index.as_deref())
                    .bind(key.as_str())
                    .bind(version_to_db(expected)?)
                    .bind(millis_to_db(now))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| BackendError::new("saving a session", e))?;
                Ok(SaveOutcome::written(done.rows_affected() == 1))
            }
        }
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: u64,
        now: u64,
    ) -> Result<Option<u64>, BackendError> {
        let context = "touching a session";
        // The update locks the row until commit, so the version read after it is the one whose
        // expiry was moved.
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| BackendError::new(context, e))?;
        let moved = sqlx::query(&self.statements.touch)
            .bind(millis_to_db(expires_at))
            .bind(key.as_str())
            .bind(millis_to_db(now))
            .execute(&mut *tx)
            .await
            .map_err(|e| BackendError::new(context, e))?;
        let version = if moved.rows_affected() == 0 {
            None
        } else {
            sqlx::query_scalar::<_, i64>(&self.statements.version)
                .bind(key.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| BackendError::new(context, e))?
        };
        tx.commit()
            .await
            .map_err(|e| BackendError::new(context, e))?;
        version.map(stored_version).transpose()
    }

    shared_sql_methods!();
}
