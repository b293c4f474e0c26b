//! Every built-in persistent backend, and one written by a user, against the conformance suite;
//! plus the checks of their table names and key prefixes.
//!
//! Each test works in a table, database file, collection or key prefix of its own (its backend's
//! fixture in `common::storage`), and removes it after, even when the suite fails.

use std::panic::resume_unwind;
use std::time::Duration;

use mongodb::bson::{DateTime, doc};
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::mysql::MySqlPool;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use typed_session::SessionId;
use typed_session::backend::conformance::check;
use typed_session::backend::{
    BackendError, MongoBackend, MySqlBackend, PostgresBackend, Record, RedisBackend, SaveOutcome,
    SessionBackend, SqliteBackend, StorageKey, SurrealBackend,
};

use crate::common::services::{surrealdb_url, unique_name};
use crate::common::shared_map::SharedMap;
use crate::common::storage::{Fixture, Mongo, MySql, Postgres, Redis, Sqlite, Surreal};

/// Runs the suite in a task of its own, so the caller can clean up before a failure propagates.
async fn run_suite<B: SessionBackend + Clone>(backend: &B) -> Result<(), tokio::task::JoinError> {
    let backend = backend.clone();
    tokio::spawn(async move { check(&backend).await }).await
}

/// Re-raises the suite's panic, if any, once the cleanup is done.
fn finish(outcome: Result<(), tokio::task::JoinError>) {
    if let Err(error) = outcome {
        match error.try_into_panic() {
            Ok(panic) => resume_unwind(panic),
            Err(error) => panic!("the conformance suite did not finish: {error}"),
        }
    }
}

#[tokio::test]
async fn a_user_written_backend_conforms() {
    check(&SharedMap::default()).await;
}

#[tokio::test]
async fn sqlite_conforms() {
    let Some(fixture) = Sqlite::new().await else {
        return;
    };
    let backend = fixture.backend();

    let outcome = run_suite(&backend).await;
    if outcome.is_ok() {
        let indexes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = ?1 AND sql LIKE '%expires_at%'",
        )
        .bind(&fixture.table)
        .fetch_one(backend.pool())
        .await
        .unwrap();
        assert_eq!(indexes, 1, "the expiry index exists");
    }
    fixture.cleanup().await;
    finish(outcome);
}

#[tokio::test]
async fn postgres_conforms() {
    let Some(fixture) = Postgres::connected().await else {
        return;
    };
    let backend = fixture.backend();

    let outcome = run_suite(&backend).await;
    if outcome.is_ok() {
        let indexes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_indexes \
             WHERE tablename = $1 AND indexdef LIKE '%(expires_at)%'",
        )
        .bind(&fixture.table)
        .fetch_one(backend.pool())
        .await
        .unwrap();
        assert_eq!(indexes, 1, "the expiry index exists");
    }
    fixture.cleanup().await;
    finish(outcome);
}

#[tokio::test]
async fn mariadb_conforms() {
    let Some(fixture) = MySql::connected().await else {
        return;
    };
    let backend = fixture.backend();

    let outcome = run_suite(&backend).await;
    if outcome.is_ok() {
        let indexes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'expires_at'",
        )
        .bind(&fixture.table)
        .fetch_one(backend.pool())
        .await
        .unwrap();
        assert_eq!(indexes, 1, "the expiry index exists");
    }
    fixture.cleanup().await;
    finish(outcome);
}

#[tokio::test]
async fn redis_conforms_and_keeps_to_its_prefix() {
    let Some(fixture) = Redis::new().await else {
        return;
    };
    let backend = fixture.backend();
    let prefix = fixture.prefix();
    // A neighbour that shares all but the prefix's last character: delete_all must spare it.
    let neighbour = format!("{}_neighbour", prefix.trim_end_matches(':'));
    let mut conn = backend.manager().clone();
    let () = conn.set_ex(&neighbour, "keep", 60).await.unwrap();

    let outcome = run_suite(&backend).await;
    let survived: Option<String> = conn.get(&neighbour).await.unwrap();
    let () = conn.del(&neighbour).await.unwrap();
    fixture.cleanup().await;
    finish(outcome);
    assert_eq!(
        survived.as_deref(),
        Some("keep"),
        "delete_all kept to its prefix"
    );
}

/// The conformance suite on a fixture storing fields apart (`with_partial_writes`).
macro_rules! fields_apart_conforms {
    ($($name:ident: $fixture:ident,)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some(fixture) = $fixture::by_field().await else {
                    return;
                };
                let outcome = run_suite(&fixture.backend()).await;
                fixture.cleanup().await;
                finish(outcome);
            }
        )*
    };
}

fields_apart_conforms!(
    redis_storing_fields_apart_conforms: Redis,
    sqlite_storing_fields_apart_conforms: Sqlite,
    postgres_storing_fields_apart_conforms: Postgres,
);

#[tokio::test]
async fn redis_reports_malformed_records_as_errors() {
    let Some(fixture) = Redis::new().await else {
        return;
    };
    let backend = fixture.backend();
    let prefix = fixture.prefix();
    let mut conn = backend.manager().clone();
    let now = 0;

    let bad_version = StorageKey::for_id(SessionId::generate());
    let name = format!("{prefix}{bad_version}");
    let () = conn
        .hset_multiple(&name, &[("d", "{}"), ("v", "01")])
        .await
        .unwrap();
    let _: bool = conn.expire(&name, 60).await.unwrap();
    assert!(malformed(backend.load(&bad_version, now).await));

    // Neither is ever written over: a save against one is a conflict.
    let record = Record {
        data: "{}".to_owned(),
        version: 2,
        expires_at: u64::MAX,
        index: None,
    };
    let no_version = StorageKey::for_id(SessionId::generate());
    let () = conn
        .hset_multiple(format!("{prefix}{no_version}"), &[("d", "{}")])
        .await
        .unwrap();
    let not_a_hash = StorageKey::for_id(SessionId::generate());
    let () = conn
        .set_ex(format!("{prefix}{not_a_hash}"), "text", 60)
        .await
        .unwrap();
    for key in [&no_version, &not_a_hash] {
        assert!(malformed(backend.load(key, now).await));
        assert!(malformed(backend.touch(key, u64::MAX, now).await));
        for expected in [None, Some(1)] {
            let saved = backend.save(key, &record, expected, now).await.unwrap();
            assert_eq!(saved, SaveOutcome::Conflict);
        }
    }
    let text: String = conn.get(format!("{prefix}{not_a_hash}")).await.unwrap();
    assert_eq!(text, "text");

    let stray = format!("{prefix}not-a-storage-key");
    let () = conn.set_ex(&stray, "text", 60).await.unwrap();
    assert!(backend.list_keys(now).await.is_err());

    backend.delete_all().await.unwrap();
    let left: Option<String> = conn.get(&stray).await.unwrap();
    assert_eq!(left, None, "delete_all removes every key under the prefix");
}

#[tokio::test]
async fn mongodb_conforms_and_indexes_the_expiry() {
    let Some(fixture) = Mongo::new().await else {
        return;
    };
    let backend = fixture.backend();
    let collection = fixture.collection().clone();

    let outcome = run_suite(&backend).await;
    if outcome.is_ok() {
        // By its keys and options, not its name: nx-27017 names indexes its own way.
        let mut cursor = collection.list_indexes().await.unwrap();
        let mut ttl = false;
        while cursor.advance().await.unwrap() {
            let index = cursor.deserialize_current().unwrap();
            ttl |= index.keys == doc! { "expires_at": 1 }
                && index.options.and_then(|o| o.expire_after) == Some(Duration::ZERO);
        }
        assert!(ttl, "the TTL index on expires_at exists");
    }
    fixture.cleanup().await;
    finish(outcome);
}

#[tokio::test]
async fn mongodb_reports_malformed_records_as_errors() {
    let Some(fixture) = Mongo::new().await else {
        return;
    };
    let backend = fixture.backend();
    backend.create_schema().await.unwrap();
    let collection = fixture.collection().clone();
    let now = 1_800_000_000_000;
    let later = DateTime::from_millis(1_800_000_060_000);

    let data_not_text = StorageKey::for_id(SessionId::generate());
    collection
        .insert_one(doc! { "_id": data_not_text.as_str(), "data": 5, "version": 1_i64, "expires_at": later })
        .await
        .unwrap();
    let loaded = backend.load(&data_not_text, now).await;
    assert!(loaded.is_err(), "{loaded:?}");

    let expiry_not_a_date = StorageKey::for_id(SessionId::generate());
    collection
        .insert_one(doc! { "_id": expiry_not_a_date.as_str(), "data": "{}", "version": 1_i64, "expires_at": "tomorrow" })
        .await
        .unwrap();
    // Never read as a live session: MongoDB's filter skips a string expiry, and a server that
    // compares it as text gets the backend's type check.
    assert!(!matches!(
        backend.load(&expiry_not_a_date, now).await,
        Ok(Some(_))
    ));

    let negative_version = StorageKey::for_id(SessionId::generate());
    collection
        .insert_one(doc! { "_id": negative_version.as_str(), "data": "{}", "version": -1_i64, "expires_at": later })
        .await
        .unwrap();
    assert!(backend.load(&negative_version, now).await.is_err());
    assert!(
        backend
            .touch(&negative_version, now + 120_000, now)
            .await
            .is_err()
    );

    collection
        .insert_one(doc! { "_id": "not-a-storage-key", "data": "{}", "version": 1_i64, "expires_at": later })
        .await
        .unwrap();
    assert!(backend.list_keys(now).await.is_err());

    backend.delete_all().await.unwrap();
    assert_eq!(collection.count_documents(doc! {}).await.unwrap(), 0);
    fixture.cleanup().await;
}

/// No server needed: the missing database is noticed before any I/O.
#[tokio::test]
async fn mongodb_without_a_database_fails_the_build() {
    let backend = MongoBackend::connect("mongodb://127.0.0.1:27017")
        .await
        .unwrap();
    assert!(backend.collection().is_none());
    let error = typed_session::SessionStore::<Nothing>::builder()
        .backend(backend.clone())
        .build()
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("names no database"), "{error}");
    assert!(error.contains("with_database"), "{error}");
    let key = StorageKey::for_id(SessionId::generate());
    assert!(backend.load(&key, 0).await.is_err(), "no silent no-op");

    let chosen = backend.with_database("app").unwrap();
    assert_eq!(
        chosen.collection().map(|c| c.namespace().to_string()),
        Some("app.typed_sessions".to_owned())
    );
}

#[tokio::test]
async fn mongodb_rejects_bad_names() {
    let backend = MongoBackend::connect("mongodb://127.0.0.1:27017/app")
        .await
        .unwrap();
    for name in [
        "",
        "a b",
        "a$b",
        "system.users",
        ".hidden",
        &"a".repeat(121),
    ] {
        assert_rejected(backend.clone().with_collection(name), name);
    }
    for name in ["", "a.b", "a/b", "a b", "a$", &"a".repeat(64)] {
        assert_rejected(backend.clone().with_database(name), name);
    }
    let chosen = backend
        .with_database("other")
        .unwrap()
        .with_collection("web.sessions")
        .unwrap();
    assert_eq!(
        chosen.collection().map(|c| c.namespace().to_string()),
        Some("other.web.sessions".to_owned())
    );
}

#[tokio::test]
async fn surrealdb_conforms_and_stores_expiry_as_a_datetime() {
    let Some(fixture) = Surreal::new().await else {
        return;
    };
    let backend = fixture.backend();

    let outcome = run_suite(&backend).await;
    if outcome.is_ok() {
        let key = StorageKey::for_id(SessionId::generate());
        let record = typed_session::backend::Record {
            data: "{}".to_owned(),
            version: 1,
            expires_at: 1_800_000_000_000,
            index: None,
        };
        backend.save(&key, &record, None, 0).await.unwrap();
        let table = backend.table_name();
        let mut kinds = backend
            .client()
            .query(format!(
                "SELECT VALUE type::is_datetime(expires_at) FROM `{table}`;
                 CREATE `{table}`:planted CONTENT {{ data: '{{}}', version: 1, expires_at: '2030-01-01' }};"
            ))
            .await
            .unwrap();
        let datetimes: Vec<bool> = kinds.take(0).unwrap();
        assert_eq!(datetimes, [true], "the expiry is stored as a datetime");
        assert!(
            kinds.take::<Vec<surrealdb::types::Value>>(1).is_err(),
            "the schema refuses a string expiry"
        );
    }
    fixture.cleanup().await;
    finish(outcome);
}

#[tokio::test]
async fn surrealdb_keeps_to_its_namespace_database_and_table() {
    let Some(url) = surrealdb_url() else { return };
    let client = surrealdb::engine::any::connect(&url).await.unwrap();
    client.use_ns("app").use_db("main").await.unwrap();
    let backend = SurrealBackend::from_client(&client, "typed_session", "test")
        .await
        .unwrap()
        .with_table_name(&unique_name("sessions_"))
        .unwrap();
    backend.create_schema().await.unwrap();
    let key = StorageKey::for_id(SessionId::generate());
    let record = typed_session::backend::Record {
        data: "{}".to_owned(),
        version: 1,
        expires_at: u64::MAX,
        index: None,
    };
    backend.save(&key, &record, None, 0).await.unwrap();

    // The application's handle still works in its own namespace and database.
    let mut here = client
        .query("RETURN [session::ns(), session::db()]")
        .await
        .unwrap();
    let place: Vec<String> = here.take(0).unwrap();
    assert_eq!(place, ["app", "main"]);
    let mut there = backend
        .client()
        .query("RETURN [session::ns(), session::db()]")
        .await
        .unwrap();
    let place: Vec<String> = there.take(0).unwrap();
    assert_eq!(place, ["typed_session", "test"]);

    assert_eq!(backend.count(0).await.unwrap(), 1);
    Surreal::of(backend.clone()).cleanup().await;

    for (namespace, database) in [("", "db"), ("ns", "")] {
        assert!(
            SurrealBackend::from_client(&client, namespace, database)
                .await
                .is_err()
        );
    }
    let default = SurrealBackend::from_client(&client, "ns", "db")
        .await
        .unwrap();
    assert_eq!(default.table_name(), "typed_sessions");
    for name in BAD_TABLE_NAMES {
        assert_rejected(default.clone().with_table_name(name), name);
    }
}

/// A session type for the build-only tests.
#[derive(typed_session::SessionData, Default)]
struct Nothing {
    seen: bool,
}

/// Whether `result` reports a malformed record (rather than succeeding, or failing otherwise).
fn malformed<T>(result: Result<T, BackendError>) -> bool {
    result.is_err_and(|error| error.is_malformed())
}

fn assert_rejected(result: Result<impl Sized, BackendError>, name: &str) {
    match result {
        Ok(_) => panic!("{name:?} was accepted"),
        Err(error) => assert!(
            error
                .to_string()
                .contains(name.escape_debug().to_string().as_str()),
            "the error names the rejected value: {error}"
        ),
    }
}

const BAD_TABLE_NAMES: [&str; 2] = ["bad name; drop table x", ""];

#[tokio::test]
async fn sqlite_rejects_bad_table_names() {
    let backend = SqliteBackend::from_pool(SqlitePool::connect_lazy("sqlite::memory:").unwrap());
    for name in BAD_TABLE_NAMES {
        assert_rejected(backend.clone().with_table_name(name), name);
    }
    assert!(backend.with_table_name("Good_name_1").is_ok());
}

#[tokio::test]
async fn postgres_rejects_bad_table_names() {
    // A lazy pool never connects, so this needs no server.
    let pool = PgPool::connect_lazy("postgres://postgres@127.0.0.1:5432/test").unwrap();
    let backend = PostgresBackend::from_pool(pool);
    for name in BAD_TABLE_NAMES {
        assert_rejected(backend.clone().with_table_name(name), name);
    }
    assert!(backend.with_table_name("Good_name_1").is_ok());
}

#[tokio::test]
async fn mysql_rejects_bad_table_names() {
    let pool = MySqlPool::connect_lazy("mysql://root@127.0.0.1:3306/test").unwrap();
    let backend = MySqlBackend::from_pool(pool);
    for name in BAD_TABLE_NAMES {
        assert_rejected(backend.clone().with_table_name(name), name);
    }
    assert!(backend.with_table_name("Good_name_1").is_ok());
}

#[tokio::test]
async fn redis_rejects_glob_characters_in_prefixes() {
    // A lazy manager never connects, so this needs no server.
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let manager =
        ConnectionManager::new_lazy_with_config(client, ConnectionManagerConfig::new()).unwrap();
    let backend = RedisBackend::from_manager(manager);
    assert_eq!(backend.prefix(), "typed_session:");
    for prefix in ["a*", "", "a?", "[a]", "a\\", "a b", "é"] {
        assert_rejected(backend.clone().with_prefix(prefix), prefix);
    }
    assert!(backend.with_prefix("app:sessions:").is_ok());
}

/// A table made by a version before `index_value` (its `CREATE TABLE`, in `old_schema`, with
/// one session in it): `create_schema` adds the column, the old row still loads (no index), and
/// an indexed save is found by its value. Run twice, as by two servers starting.
async fn an_old_table_gains_the_index_column<F: Fixture>(
    fixture: &F,
    old_schema: &str,
    run: impl AsyncFn(&str),
) {
    run(old_schema).await;
    let backend = fixture.backend();
    let now = crate::e2e::now_millis();
    let old = StorageKey::for_id(SessionId::generate());
    let stored = Record {
        data: "{}".to_owned(),
        version: 1,
        expires_at: now + 3_600_000,
        index: None,
    };
    let insert = format!(
        "INSERT INTO {{table}} (id, data, version, expires_at) VALUES ('{}', '{{}}', 1, {})",
        old.as_str(),
        now + 3_600_000
    );
    run(&insert).await;
    for _ in 0..2 {
        backend
            .create_schema()
            .await
            .expect("the table is brought up to date");
    }
    assert_eq!(backend.load(&old, now).await.unwrap(), Some(stored));
    let new = StorageKey::for_id(SessionId::generate());
    let indexed = Record {
        data: "{}".to_owned(),
        version: 1,
        expires_at: now + 3_600_000,
        index: Some("42".to_owned()),
    };
    assert_eq!(
        backend.save(&new, &indexed, None, now).await.unwrap(),
        SaveOutcome::Saved
    );
    let found = backend.find_by_index("42", now).await.unwrap();
    assert_eq!(found, vec![(new, indexed)]);
}

/// [`an_old_table_gains_the_index_column`] on a SQL fixture: `$quote` quotes the table name
/// into the statements' `{table}`, `$schema` is the old `CREATE TABLE`.
macro_rules! old_table_test {
    ($name:ident, $fixture:ty, $quote:literal, $schema:literal) => {
        #[tokio::test]
        async fn $name() {
            let Some(fixture) = <$fixture>::new().await else {
                return;
            };
            let table = format!($quote, fixture.table);
            let run = async |statement: &str| {
                let statement = statement.replace("{table}", &table);
                sqlx::query(&statement)
                    .execute(&fixture.pool)
                    .await
                    .unwrap();
            };
            an_old_table_gains_the_index_column(&fixture, $schema, run).await;
            fixture.cleanup().await;
        }
    };
}

old_table_test!(
    an_old_sqlite_table_gains_the_index_column,
    Sqlite,
    "\"{}\"",
    "CREATE TABLE {table} (id TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL, \
     version BIGINT NOT NULL, expires_at BIGINT NOT NULL)"
);

old_table_test!(
    an_old_postgres_table_gains_the_index_column,
    Postgres,
    "\"{}\"",
    "CREATE TABLE {table} (id TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL, \
     version BIGINT NOT NULL, expires_at BIGINT NOT NULL)"
);

old_table_test!(
    an_old_mariadb_table_gains_the_index_column,
    MySql,
    "`{}`",
    "CREATE TABLE {table} (id CHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY, \
     data MEDIUMTEXT CHARACTER SET utf8mb4 NOT NULL, version BIGINT NOT NULL, \
     expires_at BIGINT NOT NULL, INDEX expires_at_index (expires_at)) ENGINE = InnoDB"
);
