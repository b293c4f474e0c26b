//! Sessions in a PostgreSQL table, through sqlx.

mod announce;
pub(crate) mod batch;
pub(crate) mod fields;

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use self::announce::{Announcement, Announcer};
use self::batch::{Row, SaveBatcher};
use self::fields::ApartSave;
use crate::backend::sql::{
    Dialect, RecordRow, TableName, UpsertStatements, millis_to_db, record_from_row,
    shared_sql_constructors, shared_sql_methods, stored_count, stored_key, stored_version,
    upsert_sql_backend,
};
use crate::backend::{
    BackendError, Change, ChangeFeed, FieldSave, Record, SaveOutcome, SessionBackend, StorageKey,
};

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
///     expires_at BIGINT NOT NULL,
///     index_value VARCHAR(255),
///     field_count INTEGER
/// );
/// CREATE INDEX IF NOT EXISTS "typed_sessions_expires_at" ON "typed_sessions" (expires_at);
/// CREATE INDEX IF NOT EXISTS "typed_sessions_index_value" ON "typed_sessions" (index_value);
/// CREATE TABLE IF NOT EXISTS "typed_sessions_fields" (
///     id TEXT NOT NULL,
///     position INTEGER NOT NULL,
///     member TEXT NOT NULL,
///     PRIMARY KEY (id, position)
/// );
/// -- and triggers "typed_sessions_trimfields" (after an update of field_count),
/// -- "typed_sessions_dropfields" (after a delete) and "typed_sessions_wipefields" (after a
/// -- truncate), with functions of the same names.
/// ```
///
/// and a function and row trigger, both `"typed_sessions_announce"`, that `pg_notify` every
/// delete (`<storage key> - <origin tag>`) on the channel `typed_sessions_changes`, for other
/// servers' caches (see [`changes`](SessionBackend::changes)). Saves are announced on the same
/// channel (`<storage key> <version> <origin tag>`) by the backend right after they commit,
/// many in one statement: a `NOTIFY` inside the saving transaction would hold PostgreSQL's
/// notification lock through the commit's WAL flush and so serialise every save (measured:
/// half the write throughput). A touch announces nothing.
///
/// `index_value` holds the `#[session(index)]` value, for
/// [`find_by_index`](SessionBackend::find_by_index). `field_count` and the fields table hold
/// sessions stored field by field ([`with_partial_writes`](Self::with_partial_writes)): the
/// triggers drop a session's field rows with it, and the rows past its field count when a save
/// stores fewer (or stores it whole again). Every version that knows them reads both forms. A
/// table from before either gains the column (and the fields table) in `create_schema`; where
/// the application may not run DDL, add them in a migration, or every read fails.
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
    /// The tag its connections write into their announcements (`typed_session.origin`), so that
    /// its own are left out of its feed; `None` for a pool made elsewhere.
    origin: Option<Arc<str>>,
    /// Sends the announcements of saves, once one was made.
    announcer: Arc<Announcer>,
    /// Groups concurrent saves into one statement.
    batcher: Arc<SaveBatcher>,
    /// Sessions are written field by field (see [`with_partial_writes`](Self::with_partial_writes)).
    partial_writes: bool,
}

impl PostgresBackend {
    /// `record` stored whole.
    async fn save_record(
        &self,
        key: &StorageKey,
        record: &Record,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        let row = Row::whole(record)?;
        self.save_row(key, row, record.version, expected_version, now)
            .await
    }

    /// The record stored field by field, as `apart` cuts it.
    async fn save_apart(
        &self,
        key: &StorageKey,
        record: &Record,
        apart: &ApartSave<'_>,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<bool, BackendError> {
        let row = Row::apart(record, apart)?;
        let outcome = self
            .save_row(key, row, record.version, expected_version, now)
            .await?;
        Ok(outcome == SaveOutcome::Saved)
    }

    /// A compare-and-set save, in one statement with the other saves queued meanwhile (see
    /// [`batch`]); once committed, announced to the other servers.
    async fn save_row(
        &self,
        key: &StorageKey,
        row: Row,
        version: u64,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        let origin = self.origin.as_deref().unwrap_or_default();
        let announcement = Announcement {
            announcer: Arc::clone(&self.announcer),
            channel: Arc::clone(&self.statements.channel),
            payload: format!("{key} {version} {origin}"),
        };
        self.batcher
            .save(
                &self.pool,
                &self.statements.save_batch,
                key,
                row,
                expected_version,
                now,
                announcement,
            )
            .await
    }
}

impl PostgresBackend {
    /// Opens a pool on `url` (for example `postgres://user@host:5432/db`) and uses the table
    /// `typed_sessions`. Its connections carry a random tag that its announcements of saves and
    /// deletes carry too, so that it hears only other instances' (see
    /// [`changes`](SessionBackend::changes)).
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        let context = "connecting to PostgreSQL";
        let origin: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| BackendError::new(context, e))?
            .options([("typed_session.origin", &*origin)]);
        let pool = PgPool::connect_with(options)
            .await
            .map_err(|e| BackendError::new(context, e))?;
        Ok(Self {
            origin: Some(origin),
            ..Self::from_pool(pool)
        })
    }

    shared_sql_constructors!(
        PgPool,
        |table| UpsertStatements::new(Dialect::Postgres, table),
        origin: None,
        announcer: Arc::default(),
        batcher: Arc::default(),
        partial_writes: false
    );

    /// Stores each session field by field, so that a save writes only the fields that changed
    /// (off by default).
    ///
    /// The row keeps the record's head in `data` and the number of fields in `field_count`;
    /// the table `<table>_fields` (made by [`create_schema`](SessionBackend::create_schema),
    /// with the triggers that keep it in step) keeps one row per field. Records shorter than
    /// 512 bytes are stored whole (see [`FieldSave::worth_storing_apart`]). A save that
    /// replaces the record this server last wrote writes only the changed fields, in the same
    /// grouped statement and under the same compare-and-set on the version; any other save
    /// writes every field. A record sealed whole (`with_encrypt_all`) is stored whole.
    ///
    /// Every reader of this version joins the parts back into the record exactly as it was
    /// saved, whatever its own setting, so servers with and without it share sessions and it
    /// can be turned on or off in a rolling deploy, once every server runs a version that reads
    /// both forms.
    ///
    /// Measured (`benches/README.md`, over TCP): a one-field write to a session holding 10 KiB
    /// more served 24,106 requests/s with it (27,473 for a one-field session) where, stored
    /// whole, it served 14,285.
    ///
    /// ```no_run
    /// use typed_session::backend::PostgresBackend;
    ///
    /// # async fn run() -> Result<(), typed_session::backend::BackendError> {
    /// let backend = PostgresBackend::connect("postgres://app@127.0.0.1:5432/app")
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

upsert_sql_backend!(PostgresBackend, {
    /// `LISTEN`s on the table's channel, on a connection of its own to the pool's server (the
    /// pool keeps all its connections for queries). Announcements come from the trigger
    /// that [`create_schema`](SessionBackend::create_schema) installs; a table made without it
    /// announces nothing. The feed ends when that connection is lost.
    async fn changes(&self) -> Result<Option<ChangeFeed>, BackendError> {
        let context = "subscribing to session changes";
        // A pool of one of its own, on the same server and credentials, as `PgListener::connect`
        // makes: the application's pool keeps all its connections for queries.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_with((*self.pool.connect_options()).clone())
            .await
            .map_err(|e| BackendError::new(context, e))?;
        let mut listener = PgListener::connect_with(&own)
            .await
            .map_err(|e| BackendError::new(context, e))?;
        listener
            .listen(&self.statements.channel)
            .await
            .map_err(|e| BackendError::new(context, e))?;
        let (sender, feed) = tokio::sync::mpsc::channel(CHANGES_BUFFER);
        let origin = self.origin.clone();
        tokio::spawn(async move {
            // `Ok(None)`: the connection was lost (announcements may have been missed meanwhile).
            while let Ok(Some(notification)) = listener.try_recv().await {
                let Some(change) = Change::parse(notification.payload(), origin.as_deref()) else {
                    continue;
                };
                if sender.send(change).await.is_err() {
                    break;
                }
            }
        });
        Ok(Some(feed))
    }
});

/// How many announcements may wait for the store before the listener waits too.
const CHANGES_BUFFER: usize = 1024;
