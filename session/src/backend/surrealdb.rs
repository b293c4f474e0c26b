//! Sessions as SurrealDB records in a table of their own.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use surrealdb::engine::any::Any;
use surrealdb::types::{Datetime, QueryError, RecordId, RecordIdKey};
use surrealdb::{Connection, IndexedResults, Surreal};

use crate::backend::convert::{
    millis_to_db, stored_key, stored_u64, stored_version, version_to_db,
};
use crate::backend::table_name::TableName;
use crate::backend::{BackendError, Record, SaveOutcome, SessionBackend, StorageKey};

/// The live record under `$rid`, as `[data, version, expires_at, index_value]`.
const LOAD: &str =
    "SELECT VALUE [data, version, expires_at, index_value] FROM $rid WHERE expires_at > $now";

/// Creates the record unless a live one exists: an expired one is deleted first, and a live one
/// makes `CREATE` fail with "already exists", which is the conflict. One transaction, so a rerun
/// after an engine-level conflict repeats both statements or neither.
const CREATE: &str = "BEGIN TRANSACTION;
    DELETE $rid WHERE expires_at <= $now;
    CREATE $rid CONTENT {
        data: $data, version: $version, expires_at: $expires_at, index_value: $index_value
    } RETURN NONE;
    COMMIT TRANSACTION";

/// Replaces the live record if its version is `$expected`; answers the written version, if any.
const REPLACE: &str = "UPDATE $rid
    SET data = $data, version = $version, expires_at = $expires_at, index_value = $index_value
    WHERE version = $expected AND expires_at > $now
    RETURN VALUE version";

/// Moves the live record's expiry; answers its version, if any.
const TOUCH: &str =
    "UPDATE $rid SET expires_at = $expires_at WHERE expires_at > $now RETURN VALUE version";

const DELETE: &str = "DELETE $rid";

/// The statements that name the table, formatted once. The name is a validated identifier
/// (no backtick), so quoting it in backticks needs no escaping.
struct TableStatements {
    schema: String,
    delete_expired: String,
    count: String,
    delete_all: String,
    list_keys: String,
    /// Binds: index, now. Returns `[id, data, version, expires_at, index_value]` rows.
    find_by_index: String,
}

impl TableStatements {
    fn new(table: &TableName) -> Self {
        let t = format!("`{}`", table.as_str());
        Self {
            // SCHEMAFULL with typed fields: the server refuses a record whose expiry is not a
            // datetime (a string would compare as text) or whose version is not an integer.
            schema: format!(
                "DEFINE TABLE IF NOT EXISTS {t} SCHEMAFULL;
                 DEFINE FIELD IF NOT EXISTS data ON TABLE {t} TYPE string;
                 DEFINE FIELD IF NOT EXISTS version ON TABLE {t} TYPE int;
                 DEFINE FIELD IF NOT EXISTS expires_at ON TABLE {t} TYPE datetime;
                 DEFINE FIELD IF NOT EXISTS index_value ON TABLE {t} TYPE option<string>;
                 DEFINE INDEX IF NOT EXISTS expires_at ON TABLE {t} FIELDS expires_at;
                 DEFINE INDEX IF NOT EXISTS index_value ON TABLE {t} FIELDS index_value;"
            ),
            // One id per deleted record comes back to count them, not the whole records.
            delete_expired: format!("DELETE {t} WHERE expires_at <= $now RETURN VALUE $before.id"),
            count: format!("SELECT VALUE count() FROM {t} WHERE expires_at > $now GROUP ALL"),
            delete_all: format!("DELETE {t}"),
            list_keys: format!("SELECT VALUE id FROM {t} WHERE expires_at > $now"),
            find_by_index: format!(
                "SELECT VALUE [id, data, version, expires_at, index_value] FROM {t} \
                 WHERE index_value = $index AND expires_at > $now"
            ),
        }
    }
}

/// Stores sessions in a SurrealDB table, one record per session, over any engine: a remote
/// server (`ws://`, `http://`) or an embedded one (`mem://`, `rocksdb://`, …), whichever the
/// application enables on its own `surrealdb` dependency.
///
/// A session is the record `<table>:⟨hashed id⟩` with fields `data` (string), `version` (int)
/// and `expires_at` (datetime). The table is `typed_sessions` unless changed with
/// [`with_table_name`](Self::with_table_name); [`create_schema`](SessionBackend::create_schema)
/// (run by `build()`) defines it `SCHEMAFULL` with those types and an index on `expires_at`.
/// Every read filters out expired records; the store's purge deletes them. Saves are
/// compare-and-set on `version`, each one request on the record.
///
/// The backend works in its own copy of the client's session (a clone of the [`Surreal`]
/// handle), so choosing its namespace and database leaves the application's handle alone, and
/// signing in on the handle before [`from_client`](Self::from_client) carries over.
///
/// ```no_run
/// use typed_session::backend::{SessionBackend, SurrealBackend};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), typed_session::backend::BackendError> {
/// let backend = SurrealBackend::connect("ws://127.0.0.1:8000", "app", "web")
///     .await?
///     .with_table_name("sessions")?;
/// backend.create_schema().await?;
/// # Ok(())
/// # }
/// ```
pub struct SurrealBackend<C: Connection = Any> {
    db: Surreal<C>,
    table: TableName,
    statements: Arc<TableStatements>,
}

impl<C: Connection> Clone for SurrealBackend<C> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            table: self.table.clone(),
            statements: Arc::clone(&self.statements),
        }
    }
}

impl<C: Connection> fmt::Debug for SurrealBackend<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SurrealBackend")
            .field("table", &self.table.as_str())
            .finish_non_exhaustive()
    }
}

impl SurrealBackend<Any> {
    /// Connects to `url` with whichever engine its scheme names (`ws://host:8000`,
    /// `mem://`, …; the engine's cargo feature must be enabled on `surrealdb`) and works in
    /// `namespace` and `database`. For a server that needs credentials, sign in on your own
    /// handle and use [`from_client`](Self::from_client).
    pub async fn connect(url: &str, namespace: &str, database: &str) -> Result<Self, BackendError> {
        let db = surrealdb::engine::any::connect(url)
            .await
            .map_err(|e| BackendError::new("connecting to SurrealDB", e))?;
        Self::from_client(&db, namespace, database).await
    }
}

impl<C: Connection> SurrealBackend<C> {
    /// Works through a copy of `client`'s session (its engine, connection and sign-in) in
    /// `namespace` and `database`, and the table `typed_sessions`.
    pub async fn from_client(
        client: &Surreal<C>,
        namespace: &str,
        database: &str,
    ) -> Result<Self, BackendError> {
        let context = "choosing the SurrealDB namespace and database";
        if namespace.is_empty() || database.is_empty() {
            return Err(BackendError::new(
                context,
                format!(
                    "the namespace ({namespace:?}) and the database ({database:?}) must both be \
                     named"
                ),
            ));
        }
        let db = client.clone();
        db.use_ns(namespace)
            .use_db(database)
            .await
            .map_err(|e| BackendError::new(context, e))?;
        let table = TableName::default_table();
        Ok(Self {
            db,
            statements: Arc::new(TableStatements::new(&table)),
            table,
        })
    }

    /// Stores sessions in the table `name` instead: a letter or underscore, then at most 62
    /// letters, digits or underscores.
    pub fn with_table_name(self, name: &str) -> Result<Self, BackendError> {
        let table = TableName::new(name)?;
        Ok(Self {
            db: self.db,
            statements: Arc::new(TableStatements::new(&table)),
            table,
        })
    }

    /// The backend's handle, for your own queries in its namespace and database.
    #[must_use]
    pub fn client(&self) -> &Surreal<C> {
        &self.db
    }

    /// The table name.
    #[must_use]
    pub fn table_name(&self) -> &str {
        self.table.as_str()
    }

    fn record_id(&self, key: &StorageKey) -> RecordId {
        RecordId::new(self.table.as_str(), key.as_str())
    }

    /// Runs `query` with `bindings` and fails on the first statement that failed. A statement
    /// that lost a write-write race inside the engine ("transaction conflict") wrote nothing
    /// and is run again: every statement here is a single-record compare-and-set, so a rerun
    /// judges the record as it now is. Without this, a touch racing a save would make the save
    /// report a conflict (and reload) or the touch fail the request.
    async fn try_run(
        &self,
        query: &str,
        bindings: Bindings,
    ) -> Result<IndexedResults, surrealdb::Error> {
        let mut attempt = 1;
        loop {
            let mut request = self.db.query(query);
            for (name, value) in &bindings.0 {
                request = request.bind((*name, value.clone()));
            }
            match request.await.and_then(telling_error) {
                Err(error) if is_transaction_conflict(&error) && attempt < CONFLICT_ATTEMPTS => {
                    // A short pause that grows and differs between callers, so two writers
                    // that keep colliding fall out of step.
                    let jitter = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |since| u64::from(since.subsec_nanos() % 250));
                    let pause = Duration::from_micros(100 * u64::from(attempt) + jitter);
                    attempt += 1;
                    tokio::time::sleep(pause).await;
                }
                outcome => return outcome,
            }
        }
    }

    async fn run(
        &self,
        query: &str,
        bindings: Bindings,
        context: &'static str,
    ) -> Result<IndexedResults, BackendError> {
        self.try_run(query, bindings)
            .await
            .map_err(|e| BackendError::new(context, e))
    }
}

/// Query parameters by name.
struct Bindings(Vec<(&'static str, surrealdb::types::Value)>);

impl Bindings {
    fn new() -> Self {
        Self(Vec::with_capacity(6))
    }

    fn with(mut self, name: &'static str, value: impl surrealdb::types::SurrealValue) -> Self {
        self.0.push((name, value.into_value()));
        self
    }
}

/// The latest instant (unix ms) stored as is: SurrealDB's index keys hold a datetime as signed
/// 64-bit nanoseconds, so a later one (though a valid datetime) would be missed by the
/// `expires_at` index. It is in the year 2262.
const LATEST_MILLIS: u64 = i64::MAX as u64 / 1_000_000;

/// An instant (unix ms) as a SurrealDB datetime; past [`LATEST_MILLIS`] it saturates, which
/// still lies after every real `now`.
fn date(millis: u64) -> Datetime {
    let millis = millis_to_db(millis.min(LATEST_MILLIS));
    let nanos = u32::try_from(millis % 1000 * 1_000_000).unwrap_or(0);
    Datetime::from_timestamp(millis / 1000, nanos).unwrap_or(Datetime::MAX_UTC)
}

/// A stored datetime as unix ms; one before 1970 is a malformed record.
fn stored_millis(at: Datetime) -> Result<u64, BackendError> {
    stored_u64(at.timestamp_millis(), "expires_at")
}

/// How often a statement runs before an engine-level transaction conflict is given up on.
const CONFLICT_ATTEMPTS: u32 = 16;

fn is_transaction_conflict(error: &surrealdb::Error) -> bool {
    error.query_details() == Some(&QueryError::TransactionConflict)
}

/// The response, or its most telling error: a lost race before any other, since in a failed
/// transaction the other statements only report that they were not run.
fn telling_error(mut response: IndexedResults) -> Result<IndexedResults, surrealdb::Error> {
    let mut errors: Vec<(usize, surrealdb::Error)> = response.take_errors().into_iter().collect();
    if errors.is_empty() {
        return Ok(response);
    }
    errors.sort_unstable_by_key(|(statement, _)| *statement);
    let telling = errors.iter().position(|(_, error)| lost_a_race(error));
    Err(errors.swap_remove(telling.unwrap_or(0)).1)
}

/// Whether a failed write wrote nothing because another one got there first.
fn lost_a_race(error: &surrealdb::Error) -> bool {
    error.is_already_exists() || is_transaction_conflict(error)
}

impl<C: Connection> SessionBackend for SurrealBackend<C> {
    async fn create_schema(&self) -> Result<(), BackendError> {
        self.run(
            &self.statements.schema,
            Bindings::new(),
            "defining the sessions table",
        )
        .await?;
        Ok(())
    }

    async fn load(&self, key: &StorageKey, now: u64) -> Result<Option<Record>, BackendError> {
        let context = "loading a session";
        let bindings = Bindings::new()
            .with("rid", self.record_id(key))
            .with("now", date(now));
        let mut response = self.run(LOAD, bindings, context).await?;
        let rows: Vec<(String, i64, Datetime, Option<String>)> = response
            .take(0)
            .map_err(|e| BackendError::new(context, e))?;
        let Some((data, version, expires_at, index)) = rows.into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(Record {
            data,
            version: stored_version(version)?,
            expires_at: stored_millis(expires_at)?,
            index,
        }))
    }

    async fn save(
        &self,
        key: &StorageKey,
        record: &Record,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        let context = "saving a session";
        let mut bindings = Bindings::new()
            .with("rid", self.record_id(key))
            .with("now", date(now))
            .with("data", record.data.clone())
            .with("version", version_to_db(record.version)?)
            .with("expires_at", date(record.expires_at))
            .with("index_value", record.index.clone());
        let query = match expected_version {
            None => CREATE,
            Some(expected) => {
                bindings = bindings.with("expected", version_to_db(expected)?);
                REPLACE
            }
        };
        let mut response = match self.try_run(query, bindings).await {
            Ok(response) => response,
            Err(error) if lost_a_race(&error) => return Ok(SaveOutcome::Conflict),
            Err(error) => return Err(BackendError::new(context, error)),
        };
        let written = match expected_version {
            None => true,
            Some(_) => {
                let versions: Vec<i64> = response
                    .take(0)
                    .map_err(|e| BackendError::new(context, e))?;
                !versions.is_empty()
            }
        };
        Ok(SaveOutcome::written(written))
    }

    async fn touch(
        &self,
        key: &StorageKey,
        expires_at: u64,
        now: u64,
    ) -> Result<Option<u64>, BackendError> {
        let context = "touching a session";
        let bindings = Bindings::new()
            .with("rid", self.record_id(key))
            .with("now", date(now))
            .with("expires_at", date(expires_at));
        let mut response = self.run(TOUCH, bindings, context).await?;
        let versions: Vec<i64> = response
            .take(0)
            .map_err(|e| BackendError::new(context, e))?;
        versions.into_iter().next().map(stored_version).transpose()
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), BackendError> {
        let bindings = Bindings::new().with("rid", self.record_id(key));
        self.run(DELETE, bindings, "deleting a session").await?;
        Ok(())
    }

    async fn delete_expired(&self, now: u64) -> Result<u64, BackendError> {
        let context = "deleting expired sessions";
        let bindings = Bindings::new().with("now", date(now));
        let mut response = self
            .run(&self.statements.delete_expired, bindings, context)
            .await?;
        let deleted: Vec<surrealdb::types::Value> = response
            .take(0)
            .map_err(|e| BackendError::new(context, e))?;
        Ok(u64::try_from(deleted.len()).unwrap_or(u64::MAX))
    }

    async fn count(&self, now: u64) -> Result<u64, BackendError> {
        let context = "counting sessions";
        let bindings = Bindings::new().with("now", date(now));
        let mut response = self.run(&self.statements.count, bindings, context).await?;
        let counts: Vec<i64> = response
            .take(0)
            .map_err(|e| BackendError::new(context, e))?;
        counts
            .first()
            .map_or(Ok(0), |&count| stored_u64(count, "count()"))
    }

    async fn delete_all(&self) -> Result<(), BackendError> {
        self.run(
            &self.statements.delete_all,
            Bindings::new(),
            "deleting all sessions",
        )
        .await?;
        Ok(())
    }

    async fn find_by_index(
        &self,
        index: &str,
        now: u64,
    ) -> Result<Vec<(StorageKey, Record)>, BackendError> {
        let context = "finding sessions by index";
        let bindings = Bindings::new()
            .with("index", index.to_owned())
            .with("now", date(now));
        let mut response = self
            .run(&self.statements.find_by_index, bindings, context)
            .await?;
        let rows: Vec<(RecordId, String, i64, Datetime, Option<String>)> = response
            .take(0)
            .map_err(|e| BackendError::new(context, e))?;
        // A damaged record is left out, as the trait's default does.
        Ok(rows
            .into_iter()
            .filter_map(|(id, data, version, expires_at, index)| {
                let RecordIdKey::String(key) = id.key else {
                    return None;
                };
                let record = Record {
                    data,
                    version: stored_version(version).ok()?,
                    expires_at: stored_millis(expires_at).ok()?,
                    index,
                };
                Some((stored_key(&key).ok()?, record))
            })
            .collect())
    }

    async fn list_keys(&self, now: u64) -> Result<Vec<StorageKey>, BackendError> {
        let context = "listing session keys";
        let bindings = Bindings::new().with("now", date(now));
        let mut response = self
            .run(&self.statements.list_keys, bindings, context)
            .await?;
        let ids: Vec<RecordId> = response
            .take(0)
            .map_err(|e| BackendError::new(context, e))?;
        ids.into_iter()
            .map(|id| match id.key {
                RecordIdKey::String(key) => stored_key(&key),
                other => Err(BackendError::new(
                    context,
                    format!("record key {other:?} is not a session key"),
                )),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_convert_and_saturate() {
        for millis in [0, 999, 1_000, 1_700_000_000_123] {
            assert_eq!(stored_millis(date(millis)).unwrap(), millis);
        }
        assert_eq!(stored_millis(date(u64::MAX)).unwrap(), LATEST_MILLIS);
        assert!(
            date(u64::MAX) > date(4_102_444_800_000),
            "later than the year 2100"
        );
    }
}
