//! Sessions in a PostgreSQL table, through sqlx.

use std::sync::Arc;

use sqlx::postgres::PgPool;

use crate::backend::sql::{
    Dialect, TableName, UpsertStatements, millis_to_db, record_from_row, shared_sql_constructors,
    shared_sql_methods, stored_count, stored_key, stored_version, upsert_sql_backend,
    version_to_db,
};
use crate::backend::{BackendError, Record, SaveOutcome, SessionBackend, StorageKey};

/// Stores sessions in one table of a PostgreSQL database; several application servers can
/// share it.
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
/// and `expires_at` unix milliseconds. The table name is quoted, so it is case-sensitive.
///
/// ```no_run
/// use typed_session::backend::{PostgresBackend, SessionBackend};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), typed_session::backend::BackendError> {
/// let backend = PostgresBackend::connect("postgres://app@127.0.0.1:5432/app")
///     .await?
///     .with_table_name("app_sessions")?;
/// backend.create_schema().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresBackend {
    pool: PgPool,
    statements: Arc<UpsertStatements>,
}

impl PostgresBackend {
    /// Opens a pool on `url` (for example `postgres://user@host:5432/db`) and uses the table
    /// `typed_sessions`.
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        let pool = PgPool::connect(url)
            .await
            .map_err(|e| BackendError::new("connecting to PostgreSQL", e))?;
        Ok(Self::from_pool(pool))
    }

    shared_sql_constructors!(PgPool, |table| UpsertStatements::new(
        Dialect::Postgres,
        table
    ));
}

upsert_sql_backend!(PostgresBackend);
