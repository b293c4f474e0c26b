//! Sessions as MongoDB documents, removed by a TTL index once they expire.

use std::fmt;
use std::time::Duration;

use mongodb::bson::{Bson, DateTime, Document, doc};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, Cursor, Database, IndexModel};

use crate::backend::convert::{
    millis_to_db, stored_key, stored_u64, stored_version, version_to_db,
};
use crate::backend::{BackendError, Record, SaveOutcome, SessionBackend, StorageKey};

/// The collection used unless told otherwise.
const DEFAULT_COLLECTION: &str = "typed_sessions";

/// The name of the TTL index on `expires_at`.
const TTL_INDEX: &str = "expires_at_ttl";
/// The name of the index on `index_value`, the `#[session(index)]` value.
const VALUE_INDEX: &str = "index_value";

/// MongoDB's code for a write that would break a unique index.
const DUPLICATE_KEY: i32 = 11000;

/// What every operation answers while no database is chosen.
const NO_DATABASE: &str = "the MongoDB connection string names no database and none was \
    chosen: name one in the URL (mongodb://host:27017/app) or call MongoBackend::with_database";

/// Stores sessions in a MongoDB collection, one document per session, so several application
/// servers can share them.
///
/// A session is the document `{ _id, data, version, expires_at, index_value }`: `_id` is the
/// hashed session id (so MongoDB's own unique `_id` index is the unique index on the key), `data`
/// the encoded session, `version` a 64-bit integer, `expires_at` a BSON date, and `index_value`
/// the `#[session(index)]` value or null. [`create_schema`] (run by `build()`) creates a TTL
/// index on `expires_at`, so the server deletes expired sessions by itself, and a sparse index
/// on `index_value`. The backend never relies on it for correctness: every read filters on
/// `expires_at`, and [`delete_expired`](SessionBackend::delete_expired) (the store's purge)
/// deletes what the TTL monitor has not reached yet. Saves are compare-and-set on `version`.
///
/// The database comes from the connection string (`mongodb://host:27017/app`) or from
/// [`with_database`](Self::with_database); with neither, every operation fails, starting with
/// the store's `build()`, rather than writing somewhere unexpected. The collection is
/// `typed_sessions` unless changed with [`with_collection`](Self::with_collection); every
/// document in it belongs to this backend.
///
/// The driver is built with TLS (rustls; `?tls=true` in the URL) but without DNS SRV lookups;
/// for `mongodb+srv://` URLs (Atlas), add `mongodb = { version = "3", features =
/// ["dns-resolver"] }` to your own `Cargo.toml` and Cargo enables it here too.
/// A server that cannot be reached fails each operation after the driver's server selection
/// timeout (30 s unless the URL sets `serverSelectionTimeoutMS`), and the request gets a 503.
///
/// [`create_schema`]: SessionBackend::create_schema
///
/// ```no_run
/// use typed_session::backend::{MongoBackend, SessionBackend};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), typed_session::backend::BackendError> {
/// let backend = MongoBackend::connect("mongodb://127.0.0.1:27017/app")
///     .await?
///     .with_collection("sessions")?;
/// backend.create_schema().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MongoBackend {
    client: Client,
    /// `None` until a database is named: every operation then fails with [`NO_DATABASE`].
    database: Option<Database>,
    collection_name: Box<str>,
    /// The collection `collection_name` in `database`, made once rather than per operation.
    collection: Option<Collection<Document>>,
}

impl fmt::Debug for MongoBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MongoBackend")
            .field("database", &self.database.as_ref().map(Database::name))
            .field("collection", &self.collection_name)
            .finish_non_exhaustive()
    }
}

impl MongoBackend {
    /// Reads the connection string `url` and uses its database (`mongodb://host:27017/app`)
    /// and the collection `typed_sessions`. The driver connects lazily: a server that is down
    /// is noticed by the first operation, normally the store's `build()`.
    pub async fn connect(url: &str) -> Result<Self, BackendError> {
        let client = Client::with_uri_str(url)
            .await
            .map_err(|e| BackendError::new("reading the MongoDB connection string", e))?;
        Ok(Self::from_client(client))
    }

    /// Uses an existing client, its default database (the one its connection string names,
    /// if any) and the collection `typed_sessions`.
    #[must_use]
    pub fn from_client(client: Client) -> Self {
        Self {
            database: client.default_database(),
            client,
            collection_name: DEFAULT_COLLECTION.into(),
            collection: None,
        }
        .targeted()
    }

    /// Stores sessions in the database `name` instead of the connection string's: 1 to 63
    /// bytes, none of them a space or one of `/ \ . " $ * < > : | ?`.
    pub fn with_database(self, name: &str) -> Result<Self, BackendError> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"/\\.\"$*<>:|?".contains(&b));
        if !valid {
            return Err(BackendError::new(
                "choosing the MongoDB database",
                format!(
                    "invalid database name {name:?}: it must be 1 to 63 printable ASCII bytes \
                     without spaces or any of / \\ . \" $ * < > : | ?"
                ),
            ));
        }
        Ok(Self {
            database: Some(self.client.database(name)),
            ..self
        }
        .targeted())
    }

    /// Stores sessions in the collection `name` instead: 1 to 120 bytes of `A-Z a-z 0-9 _ - .`,
    /// not starting with `.` or `system.` (names MongoDB reserves).
    pub fn with_collection(mut self, name: &str) -> Result<Self, BackendError> {
        let valid = !name.is_empty()
            && name.len() <= 120
            && !name.starts_with('.')
            && !name.starts_with("system.")
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
        if !valid {
            return Err(BackendError::new(
                "choosing the MongoDB collection",
                format!(
                    "invalid collection name {name:?}: it must be 1 to 120 bytes of A-Z a-z 0-9 \
                     _ - . and not start with '.' or 'system.'"
                ),
            ));
        }
        self.collection_name = name.into();
        Ok(self.targeted())
    }

    /// Points `collection` at the current database and collection name.
    fn targeted(mut self) -> Self {
        self.collection = self
            .database
            .as_ref()
            .map(|db| db.collection(&self.collection_name));
        self
    }

    /// The client, for your own queries.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The sessions collection, or `None` while no database is chosen.
    #[must_use]
    pub fn collection(&self) -> Option<&Collection<Document>> {
        self.collection.as_ref()
    }

    fn sessions(&self, context: &'static str) -> Result<&Collection<Document>, BackendError> {
        self.collection
            .as_ref()
            .ok_or_else(|| BackendError::new(context, NO_DATABASE))
    }
}

/// A filter matching the live document under `key`.
fn live(key: &StorageKey, now: u64) -> Document {
    doc! { "_id": key.as_str(), "expires_at": { "$gt": date(now) } }
}

/// An instant (unix ms) as a BSON date, saturating like every backend's stored instants.
fn date(millis: u64) -> DateTime {
    DateTime::from_millis(millis_to_db(millis))
}

/// The full document of `record` under `key`.
fn document(key: &StorageKey, record: &Record) -> Result<Document, BackendError> {
    Ok(doc! {
        "_id": key.as_str(),
        "data": record.data.as_str(),
        "version": version_to_db(record.version)?,
        "expires_at": date(record.expires_at),
        "index_value": record.index.as_deref(),
    })
}

/// A document's version: a 64-bit integer (a 32-bit one, as other tools may write, is read too)
/// that a save can follow.
fn version_of(document: &Document, context: &'static str) -> Result<u64, BackendError> {
    match document.get("version") {
        Some(Bson::Int64(version)) => stored_version(*version),
        Some(Bson::Int32(version)) => stored_version(i64::from(*version)),
        other => Err(malformed(context, "version", other)),
    }
}

fn record_from_document(document: &Document) -> Result<Record, BackendError> {
    let context = "reading a stored session";
    let data = match document.get("data") {
        Some(Bson::String(data)) => data.clone(),
        other => return Err(malformed(context, "data", other)),
    };
    let expires_at = match document.get("expires_at") {
        Some(Bson::DateTime(at)) => stored_u64(at.timestamp_millis(), "expires_at")?,
        other => return Err(malformed(context, "expires_at", other)),
    };
    let index = match document.get("index_value") {
        None | Some(Bson::Null) => None,
        Some(Bson::String(index)) => Some(index.clone()),
        other => return Err(malformed(context, "index_value", other)),
    };
    Ok(Record {
        data,
        version: version_of(document, context)?,
        expires_at,
        index,
    })
}

/// Every document a `find` returns.
async fn all_documents(
    found: Result<Cursor<Document>, MongoError>,
    context: &'static str,
) -> Result<Vec<Document>, BackendError> {
    let error = |e| BackendError::new(context, e);
    let mut cursor = found.map_err(error)?;
    let mut documents = Vec::new();
    while cursor.advance().await.map_err(error)? {
        documents.push(cursor.deserialize_current().map_err(error)?);
    }
    Ok(documents)
}

fn malformed(context: &'static str, field: &str, value: Option<&Bson>) -> BackendError {
    let found = value.map_or_else(
        || "nothing".to_owned(),
        |v| format!("{:?}", v.element_type()),
    );
    BackendError::malformed(
        context,
        format!("stored session field {field:?} holds {found}, not the expected type"),
    )
}

fn is_duplicate_key(error: &MongoError) -> bool {
    match &*error.kind {
        ErrorKind::Write(WriteFailure::WriteError(failure)) => failure.code == DUPLICATE_KEY,
        ErrorKind::Command(failure) => failure.code == DUPLICATE_KEY,
        _ => false,
    }
}

impl SessionBackend for MongoBackend {
    /// Creates the TTL index on `expires_at` (the unique index on the key is MongoDB's own
    /// `_id` index); fails if no database is chosen or the server cannot be reached.
    async fn create_schema(&self) -> Result<(), BackendError> {
        let context = "creating the sessions collection's indexes";
        let ttl = IndexModel::builder()
            .keys(doc! { "expires_at": 1 })
            .options(
                IndexOptions::builder()
                    .name(TTL_INDEX.to_owned())
                    .expire_after(Duration::ZERO)
                    .build(),
            )
            .build();
        // Sparse: sessions without an index value (most, in many apps) stay out of it.
        let by_index = IndexModel::builder()
            .keys(doc! { "index_value": 1 })
            .options(
                IndexOptions::builder()
                    .name(VALUE_INDEX.to_owned())
                    .sparse(true)
                    .build(),
            )
            .build();
        let sessions = self.sessions(context)?;
        for index in [ttl, by_index] {
            sessions
                .create_index(index)
                .await
                .map_err(|e| BackendError::new(context, e))?;
        }
        Ok(())
    }

    async fn find_by_index(
        &self,
        index: &str,
        now: u64,
    ) -> Result<Vec<(StorageKey, Record)>, BackendError> {
        let context = "finding sessions by index";
        let found = self
            .sessions(context)?
            .find(doc! { "index_value": index, "expires_at": { "$gt": date(now) } })
            .await;
        let documents = all_documents(found, context).await?;
        // A damaged document is left out, as the trait's default does.
        Ok(documents
            .iter()
            .filter_map(|document| {
                let Some(Bson::String(id)) = document.get("_id") else {
                    return None;
                };
                Some((stored_key(id).ok()?, record_from_document(document).ok()?))
            })
            .collect())
    }

    async fn load(&self, key: &StorageKey, now: u64) -> Result<Option<Record>, BackendError> {
        let context = "loading a session";
        let found = self
            .sessions(context)?
            .find_one(live(key, now))
            .await
            .map_err(|e| BackendError::new(context, e))?;
        found.as_ref().map(record_from_document).transpose()
    }

    async fn save(
        &self,
        key: &StorageKey,
        record: &Record,
        expected_version: Option<u64>,
        now: u64,
    ) -> Result<SaveOutcome, BackendError> {
        let context = "saving a session";
        let sessions = self.sessions(context)?;
        let replacement = document(key, record)?;
        let written = match expected_version {
            // Replaces an expired document or inserts; a live one makes the insert break the
            // `_id` index, which is the conflict.
            None => {
                let expired = doc! { "_id": key.as_str(), "expires_at": { "$lte": date(now) } };
                match sessions
                    .replace_one(expired, replacement)
                    .upsert(true)
                    .await
                {
                    Ok(_) => true,
                    Err(error) if is_duplicate_key(&error) => false,
                    Err(error) => return Err(BackendError::new(context, error)),
                }
            }
            Some(expected) => {
                let mut current = live(key, now);
                current.insert("version", version_to_db(expected)?);
                let result = sessions
                    .replace_one(current, replacement)
                    .await
                    .map_err(|e| BackendError::new(context, e))?;
                result.matched_count == 1
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
        let before = self
            .sessions(context)?
            .find_one_and_update(
                live(key, now),
                doc! { "$set": { "expires_at": date(expires_at) } },
            )
            .projection(doc! { "version": 1 })
            .await
            .map_err(|e| BackendError::new(context, e))?;
        before.map(|d| version_of(&d, context)).transpose()
    }

    async fn delete(&self, key: &StorageKey) -> Result<(), BackendError> {
        let context = "deleting a session";
        self.sessions(context)?
            .delete_one(doc! { "_id": key.as_str() })
            .await
            .map_err(|e| BackendError::new(context, e))?;
        Ok(())
    }

    /// Deletes what the TTL monitor (which runs once a minute on a real server) has not yet.
    async fn delete_expired(&self, now: u64) -> Result<u64, BackendError> {
        let context = "deleting expired sessions";
        let result = self
            .sessions(context)?
            .delete_many(doc! { "expires_at": { "$lte": date(now) } })
            .await
            .map_err(|e| BackendError::new(context, e))?;
        Ok(result.deleted_count)
    }

    async fn count(&self, now: u64) -> Result<u64, BackendError> {
        let context = "counting sessions";
        self.sessions(context)?
            .count_documents(doc! { "expires_at": { "$gt": date(now) } })
            .await
            .map_err(|e| BackendError::new(context, e))
    }

    async fn delete_all(&self) -> Result<(), BackendError> {
        let context = "deleting all sessions";
        self.sessions(context)?
            .delete_many(doc! {})
            .await
            .map_err(|e| BackendError::new(context, e))?;
        Ok(())
    }

    async fn list_keys(&self, now: u64) -> Result<Vec<StorageKey>, BackendError> {
        let context = "listing session keys";
        let found = self
            .sessions(context)?
            .find(doc! { "expires_at": { "$gt": date(now) } })
            .projection(doc! { "_id": 1 })
            .await;
        all_documents(found, context)
            .await?
            .iter()
            .map(|document| match document.get("_id") {
                Some(Bson::String(id)) => stored_key(id),
                other => Err(malformed(context, "_id", other)),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_and_garbage_is_an_error() {
        let key = StorageKey::for_id(crate::SessionId::generate());
        let record = Record {
            data: "{}".to_owned(),
            version: 3,
            expires_at: 1_700_000_000_123,
            index: Some("42".to_owned()),
        };
        let stored = document(&key, &record).unwrap();
        assert_eq!(record_from_document(&stored).unwrap(), record);

        for (field, value) in [
            ("data", Bson::Int32(1)),
            ("version", Bson::String("3".into())),
            ("version", Bson::Int64(-1)),
            ("version", Bson::Int64(i64::MAX)),
            ("expires_at", Bson::Int64(1)),
            ("index_value", Bson::Int32(42)),
        ] {
            let mut garbage = stored.clone();
            garbage.insert(field, value);
            assert!(record_from_document(&garbage).is_err(), "{field}");
        }
        let mut missing = stored;
        missing.remove("data");
        assert!(record_from_document(&missing).is_err());
    }
}
