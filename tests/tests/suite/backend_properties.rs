//! Properties of each backend's reading of stored records, which damage, another program or
//! another version may have changed: arbitrary values of any type the storage holds are written
//! straight into a real session's record through the database driver, and then
//!
//! - the backend's `load` and `touch` answer a record exactly as stored (every part of its
//!   type), nothing (no live record), or an error that
//!   [`is_malformed`](typed_session::backend::BackendError::is_malformed), never a panic or
//!   another error while the server is reachable;
//! - a server that must load the record, and one that has it cached and touches it, answer
//!   200, never a 5xx; one that cannot read it gives a fresh session under a new id.
//!
//! SQLite runs in memory; PostgreSQL, MariaDB and Redis are the local servers (skipped with a
//! notice when down, failing under `TYPED_SESSION_REQUIRE_SERVICES=1`), with fewer cases since
//! each costs round trips. Case counts follow `PROPTEST_CASES`; see CONTRIBUTING.md.

#![allow(unreachable_pub)]

use std::fmt::Debug;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::Duration;

use axum::Router;
use proptest::prelude::*;
use typed_session::backend::{BackendError, Record, SessionBackend, StorageKey};
use typed_session::{SessionId, SessionStore};

use crate::common::properties::{check, config, runtime};
use crate::common::{Browser, StatusCode, get_with_cookie};
use crate::e2e::{Visit, app, now_millis, show_store_logs, store};

/// A record as it lies in storage after the damage, read back through the driver: each part
/// only when it has the type the backend stores it as.
#[derive(Debug, Default)]
struct AtRest {
    /// There is something under the session's key.
    present: bool,
    /// Its data, when text.
    data: Option<String>,
    /// Its version, when a number a version can be (not negative).
    version: Option<u64>,
    /// Its expiry in unix ms, when a (signed 64-bit) number.
    expires_at: Option<i64>,
}

impl AtRest {
    /// Whether a read at `now` must see a record: there is one and its expiry lies after
    /// `now`; `None` when the expiry is not a number.
    fn live(&self, now: u64) -> Option<bool> {
        let now = i64::try_from(now).unwrap();
        self.expires_at
            .map(|expires_at| self.present && expires_at > now)
    }

    /// The record the backend must answer when it answers one: every part of its type.
    fn record(&self) -> Option<Record> {
        Some(Record {
            data: self.data.clone()?,
            version: self.version?,
            expires_at: u64::try_from(self.expires_at?).ok()?,
            index: None,
        })
    }
}

/// `load`'s answer for what is at rest: the record as stored, `None` when there is no live
/// one, or a malformed-record error.
fn check_load(
    loaded: &Result<Option<Record>, BackendError>,
    at_rest: &AtRest,
    now: u64,
) -> Result<(), TestCaseError> {
    match loaded {
        Err(error) => prop_assert!(error.is_malformed(), "load failed: {error}"),
        Ok(None) => prop_assert_ne!(at_rest.live(now), Some(true), "a live record went unseen"),
        Ok(Some(record)) => {
            prop_assert_eq!(at_rest.live(now), Some(true), "loaded: {:?}", record);
            prop_assert_eq!(Some(record.clone()), at_rest.record(), "not what is stored");
        }
    }
    Ok(())
}

/// `touch`'s answer: the stored version, `None` when there is no live record, or a
/// malformed-record error. An expiry of the wrong type may count as live: the touch replaces
/// it rather than reads it.
fn check_touch(
    touched: &Result<Option<u64>, BackendError>,
    at_rest: &AtRest,
    now: u64,
) -> Result<(), TestCaseError> {
    match touched {
        Err(error) => prop_assert!(error.is_malformed(), "touch failed: {error}"),
        Ok(None) => prop_assert_ne!(at_rest.live(now), Some(true), "a live record went unseen"),
        Ok(Some(version)) => {
            prop_assert!(at_rest.present, "touched version {version} of nothing");
            prop_assert_ne!(
                at_rest.live(now),
                Some(false),
                "touched version {}",
                version
            );
            prop_assert_eq!(Some(*version), at_rest.version, "not the stored version");
        }
    }
    Ok(())
}

/// A backend's storage, with the driver access that damages a record behind its back.
trait Storage {
    type Backend: SessionBackend;
    /// What is written into a record: the parts to replace, and with what.
    type Damage: Debug + Clone;

    fn backend(&self) -> Self::Backend;

    /// Writes `damage` into the record under `key`; instants relative to `now`.
    async fn damage(&self, key: &StorageKey, damage: &Self::Damage, now: u64);

    /// What now lies under `key`.
    async fn at_rest(&self, key: &StorageKey) -> AtRest;

    /// Removes everything the test stored.
    async fn cleanup(&self);
}

/// Two servers on one storage: `cached` serves each case's new session, and so holds it in
/// memory (and touches it on every request, its touch interval being 1 ms); `cold` has never
/// seen it and must load it.
struct Servers {
    cached: Router,
    cold: Router,
}

impl Servers {
    async fn new<S: Storage>(storage: &S) -> Self {
        let config = crate::e2e::config().with_touch_interval(Duration::from_millis(1));
        let server =
            async || -> SessionStore<Visit> { store(storage.backend(), config.clone()).await };
        Self {
            cached: app(&server().await),
            cold: app(&server().await),
        }
    }
}

/// One case: a new session, damaged before each of four reads of it (the backend's `load`
/// and `touch`, a server that loads it, and the server that has it cached).
async fn damaged_record_is_read_safely<S: Storage>(
    storage: &S,
    servers: &Servers,
    damage: &S::Damage,
) -> Result<(), TestCaseError> {
    let mut browser = Browser::new(&servers.cached);
    let created = browser.get("/").await;
    prop_assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let id: SessionId = browser.jar["visit"].parse().unwrap();
    let cookie = format!("visit={id}");
    let key = StorageKey::for_id(id);
    let backend = storage.backend();

    let now = now_millis();
    storage.damage(&key, damage, now).await;
    let at_rest = storage.at_rest(&key).await;
    let loaded = backend.load(&key, now).await;
    check_load(&loaded, &at_rest, now)?;

    storage.damage(&key, damage, now).await;
    let touched = backend.touch(&key, now + 3_600_000, now).await;
    check_touch(&touched, &at_rest, now)?;

    storage.damage(&key, damage, now).await;
    let reply = get_with_cookie(&servers.cold, "/", &cookie).await;
    prop_assert_eq!(
        reply.status,
        StatusCode::OK,
        "loading server: {}",
        reply.body
    );
    if !matches!(loaded, Ok(Some(_))) {
        prop_assert_eq!(&reply.body, "1", "unreadable, so a fresh session");
        let issued = reply.cookie("visit").map(str::to_owned);
        prop_assert!(
            issued.is_some_and(|value| value != id.to_string()),
            "under a new id"
        );
    }

    storage.damage(&key, damage, now).await;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let reply = get_with_cookie(&servers.cached, "/", &cookie).await;
    prop_assert_eq!(
        reply.status,
        StatusCode::OK,
        "caching server: {}",
        reply.body
    );
    Ok(())
}

/// Runs the property for `storage` (when it is there) with `damage`, and removes what it
/// stored whether or not the property held.
fn check_storage<S: Storage>(
    cases: u32,
    storage: impl AsyncFnOnce() -> Option<S>,
    damage: impl Strategy<Value = S::Damage>,
) {
    show_store_logs();
    let runtime = runtime();
    let Some(storage) = runtime.block_on(storage()) else {
        return;
    };
    let servers = runtime.block_on(Servers::new(&storage));
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        check(config(cases), damage, |damage| {
            runtime.block_on(damaged_record_is_read_safely(&storage, &servers, &damage))
        });
    }));
    runtime.block_on(storage.cleanup());
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// An instant, resolved against the clock when written: well ahead (a live record), well
/// past, or any number at all.
#[derive(Debug, Clone, Copy)]
enum Instant {
    AheadBy(u32),
    PastBy(u32),
    Raw(i64),
}

impl Instant {
    fn at(self, now: u64) -> i64 {
        let now = i64::try_from(now).unwrap();
        match self {
            Self::AheadBy(ms) => now + 60_000 + i64::from(ms),
            Self::PastBy(ms) => now - 60_000 - i64::from(ms),
            Self::Raw(at) => at,
        }
    }
}

fn instant() -> impl Strategy<Value = Instant> {
    prop_oneof![
        3 => any::<u32>().prop_map(Instant::AheadBy),
        1 => any::<u32>().prop_map(Instant::PastBy),
        1 => prop_oneof![Just(i64::MAX), Just(i64::MIN), Just(0), Just(-1), any::<i64>()]
            .prop_map(Instant::Raw),
    ]
}

/// A stored version: the edges (0, which no save writes; `i64::MAX`, past which no save can
/// count; negatives) and any number.
fn version() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(2),
        Just(-1),
        Just(i64::MAX),
        Just(i64::MIN),
        any::<i64>()
    ]
}

/// Stored data: a record envelope (well-formed or not quite), or any text.
fn data() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|count| format!(
            r#"{{"format":1,"schema":0,"created":0,"long_term":false,"fields":{{"count":{count}}}}}"#
        )),
        prop::sample::select(
            &[
                "",
                "{}",
                "null",
                "[]",
                r#"{"format":1}"#,
                r#"{"format":1,"fields":{"count":"many"}}"#,
                r#"{"format":2,"fields":{}}"#,
                r#"{"format":1,"schema":-1,"fields":{}}"#,
                r#"{"format":1,"sealed":"AAAA"}"#,
                r#"{"format":1,"fields":{"count":1}"#,
            ][..]
        )
        .prop_map(str::to_owned),
        any::<String>(),
    ]
}

// ---------------------------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------------------------

mod sqlite {
    use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
    use typed_session::backend::SqliteBackend;

    use super::*;

    /// A value of any of SQLite's storage classes (its columns hold any, whatever their
    /// declared type), and text that is not UTF-8. No NULL: the backend's columns refuse it.
    #[derive(Debug, Clone)]
    pub enum Value {
        Integer(i64),
        Instant(Instant),
        Real(f64),
        Text(String),
        Blob(Vec<u8>),
        NotUtf8(Vec<u8>),
    }

    fn value(typed: impl Strategy<Value = Value>) -> impl Strategy<Value = Option<Value>> {
        let real = prop::num::f64::ANY.prop_filter("SQLite stores NaN as NULL", |r| !r.is_nan());
        // 0xff is in no UTF-8 sequence.
        let not_utf8 = prop::collection::vec(any::<u8>(), 0..16).prop_map(|mut bytes| {
            bytes.push(0xff);
            bytes
        });
        prop_oneof![
            4 => Just(None),
            4 => typed.prop_map(Some),
            1 => any::<i64>().prop_map(|v| Some(Value::Integer(v))),
            1 => real.prop_map(|v| Some(Value::Real(v))),
            1 => prop_oneof![any::<String>(), "-?[0-9]{1,20}(\\.[0-9])?"]
                .prop_map(|v| Some(Value::Text(v))),
            1 => prop::collection::vec(any::<u8>(), 0..16).prop_map(|v| Some(Value::Blob(v))),
            1 => not_utf8.prop_map(|v| Some(Value::NotUtf8(v))),
        ]
    }

    /// The columns to replace (`None`: left as saved).
    #[derive(Debug, Clone)]
    pub struct Damage {
        data: Option<Value>,
        version: Option<Value>,
        expires_at: Option<Value>,
    }

    fn damage() -> impl Strategy<Value = Damage> {
        (
            value(data().prop_map(Value::Text)),
            value(version().prop_map(Value::Integer)),
            value(instant().prop_map(Value::Instant)),
        )
            .prop_map(|(data, version, expires_at)| Damage {
                data,
                version,
                expires_at,
            })
    }

    /// A row as `at_rest` reads it: whether the data is text, its bytes, and the version and
    /// expiry when they are integers.
    type Columns = (bool, Vec<u8>, Option<i64>, Option<i64>);

    pub struct Sqlite {
        pool: SqlitePool,
        table: String,
    }

    impl Storage for Sqlite {
        type Backend = SqliteBackend;
        type Damage = Damage;

        fn backend(&self) -> SqliteBackend {
            SqliteBackend::from_pool(self.pool.clone())
                .with_table_name(&self.table)
                .unwrap()
        }

        async fn damage(&self, key: &StorageKey, damage: &Damage, now: u64) {
            let columns = [
                ("data", &damage.data),
                ("version", &damage.version),
                ("expires_at", &damage.expires_at),
            ];
            let set: Vec<String> = columns
                .iter()
                .filter_map(|(column, value)| match value.as_ref()? {
                    Value::NotUtf8(_) => Some(format!("{column} = CAST(? AS TEXT)")),
                    _ => Some(format!("{column} = ?")),
                })
                .collect();
            if set.is_empty() {
                return;
            }
            let statement = format!(
                "UPDATE \"{}\" SET {} WHERE id = ?",
                self.table,
                set.join(", ")
            );
            let mut query = sqlx::query(&statement);
            for value in columns.iter().filter_map(|(_, value)| value.as_ref()) {
                query = match value.clone() {
                    Value::Integer(v) => query.bind(v),
                    Value::Instant(at) => query.bind(at.at(now)),
                    Value::Real(v) => query.bind(v),
                    Value::Text(v) => query.bind(v),
                    Value::Blob(v) | Value::NotUtf8(v) => query.bind(v),
                };
            }
            let done = query.bind(key.as_str()).execute(&self.pool).await.unwrap();
            assert_eq!(done.rows_affected(), 1, "{statement}");
        }

        async fn at_rest(&self, key: &StorageKey) -> AtRest {
            let statement = format!(
                "SELECT typeof(data) = 'text', CAST(data AS BLOB), \
                 CASE WHEN typeof(version) = 'integer' THEN version END, \
                 CASE WHEN typeof(expires_at) = 'integer' THEN expires_at END \
                 FROM \"{}\" WHERE id = ?",
                self.table
            );
            let row: Option<Columns> = sqlx::query_as(&statement)
                .bind(key.as_str())
                .fetch_optional(&self.pool)
                .await
                .unwrap();
            let Some((text, data, version, expires_at)) = row else {
                return AtRest::default();
            };
            AtRest {
                present: true,
                data: text.then(|| String::from_utf8(data).ok()).flatten(),
                version: version.and_then(|v| u64::try_from(v).ok()),
                expires_at,
            }
        }

        async fn cleanup(&self) {
            self.pool.close().await;
        }
    }

    /// One in-memory database: a pool of one connection, never closed (its database goes
    /// with it), so that every handle sees the same one.
    async fn sqlite() -> Option<Sqlite> {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let storage = Sqlite {
            pool,
            table: "sessions".to_owned(),
        };
        storage.backend().create_schema().await.unwrap();
        Some(storage)
    }

    #[test]
    fn damaged_records_are_read_safely() {
        check_storage(256, sqlite, damage());
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL and MariaDB: typed columns, so any text and any numbers
// ---------------------------------------------------------------------------------------------

/// The columns to replace in a table whose columns are typed (`None`: left as saved).
#[derive(Debug, Clone)]
pub struct TypedDamage {
    data: Option<String>,
    version: Option<i64>,
    expires_at: Option<Instant>,
}

/// Any text the column takes (`nul` says whether it takes NUL), any numbers.
fn typed_damage(nul: bool) -> impl Strategy<Value = TypedDamage> {
    let data = data().prop_map(move |data| if nul { data } else { data.replace('\0', "") });
    (
        prop::option::of(data),
        prop::option::of(version()),
        prop::option::of(instant()),
    )
        .prop_map(|(data, version, expires_at)| TypedDamage {
            data,
            version,
            expires_at,
        })
}

/// The [`Storage`] of a sqlx backend over a table with typed columns, in a module of its own:
/// given the backend's fixture (from `common::storage`) and the statements that damage and read
/// back the table (the table name in place of `{}`; the damaging `UPDATE` binds data, version,
/// expiry, each `NULL` to leave it, and id).
macro_rules! typed_sql_storage {
    ($module:ident, $fixture:ty, $update:literal, $select:literal $(,)?) => {
        mod $module {
            use super::*;
            use crate::common::storage::Fixture;

            pub struct Typed {
                fixture: $fixture,
            }

            impl Storage for Typed {
                type Backend = <$fixture as Fixture>::Backend;
                type Damage = TypedDamage;

                fn backend(&self) -> Self::Backend {
                    self.fixture.backend()
                }

                async fn damage(&self, key: &StorageKey, damage: &TypedDamage, now: u64) {
                    let expires_at = damage.expires_at.map(|at| at.at(now));
                    let done = sqlx::query(&format!($update, self.fixture.table))
                        .bind(damage.data.clone())
                        .bind(damage.version)
                        .bind(expires_at)
                        .bind(key.as_str())
                        .execute(&self.fixture.pool)
                        .await
                        .unwrap();
                    assert_eq!(done.rows_affected(), 1);
                }

                async fn at_rest(&self, key: &StorageKey) -> AtRest {
                    let row: Option<(String, i64, i64)> =
                        sqlx::query_as(&format!($select, self.fixture.table))
                            .bind(key.as_str())
                            .fetch_optional(&self.fixture.pool)
                            .await
                            .unwrap();
                    let Some((data, version, expires_at)) = row else {
                        return AtRest::default();
                    };
                    AtRest {
                        present: true,
                        data: Some(data),
                        version: u64::try_from(version).ok(),
                        expires_at: Some(expires_at),
                    }
                }

                async fn cleanup(&self) {
                    self.fixture.clone().cleanup().await;
                }
            }

            pub async fn storage() -> Option<Typed> {
                let storage = Typed {
                    fixture: <$fixture>::new().await?,
                };
                storage.backend().create_schema().await.unwrap();
                Some(storage)
            }
        }
    };
}

typed_sql_storage!(
    postgres,
    crate::common::storage::Postgres,
    "UPDATE \"{}\" SET data = COALESCE($1, data), version = COALESCE($2, version), \
     expires_at = COALESCE($3, expires_at) WHERE id = $4",
    "SELECT data, version, expires_at FROM \"{}\" WHERE id = $1",
);

typed_sql_storage!(
    mysql,
    crate::common::storage::MySql,
    "UPDATE `{}` SET data = COALESCE(?, data), version = COALESCE(?, version), \
     expires_at = COALESCE(?, expires_at) WHERE id = ?",
    "SELECT data, version, expires_at FROM `{}` WHERE id = ?",
);

#[test]
fn postgres_damaged_records_are_read_safely() {
    check_storage(64, postgres::storage, typed_damage(false));
}

#[test]
fn mysql_damaged_records_are_read_safely() {
    check_storage(64, mysql::storage, typed_damage(true));
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

mod redis_hash {
    use redis::AsyncCommands;
    use typed_session::backend::RedisBackend;

    use super::*;
    use crate::common::storage::Fixture;

    /// A hash field: left as saved, removed, or any bytes.
    #[derive(Debug, Clone)]
    pub enum Field {
        Keep,
        Missing,
        Bytes(Vec<u8>),
    }

    /// The key's expiry: left as saved, removed (the key lives for ever), or set ahead.
    #[derive(Debug, Clone, Copy)]
    pub enum Expiry {
        Keep,
        Persist,
        AheadBy(u32),
    }

    /// What the session's key holds instead of its hash: a string, a list, a set or a sorted
    /// set (another program's key, or a prefix shared by mistake).
    #[derive(Debug, Clone)]
    pub enum Other {
        String(Vec<u8>),
        List(Vec<u8>),
        Set(Vec<u8>),
        SortedSet(Vec<u8>),
    }

    #[derive(Debug, Clone)]
    pub enum Damage {
        Hash {
            data: Field,
            version: Field,
            /// Fields the backend does not write.
            extra: Vec<(Vec<u8>, Vec<u8>)>,
            expiry: Expiry,
        },
        WrongType(Other, Expiry),
    }

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..24)
    }

    fn damage() -> impl Strategy<Value = Damage> {
        let field = |typed: BoxedStrategy<Vec<u8>>| {
            prop_oneof![
                3 => Just(Field::Keep),
                1 => Just(Field::Missing),
                3 => typed.prop_map(Field::Bytes),
                1 => bytes().prop_map(Field::Bytes),
            ]
        };
        let data = data().prop_map(String::into_bytes).boxed();
        // Canonical decimals (the edges of u64 and i64 too), and near misses.
        let version = prop_oneof![
            version().prop_map(|v| v.to_string().into_bytes()),
            any::<u64>().prop_map(|v| v.to_string().into_bytes()),
            Just(u64::MAX.to_string().into_bytes()),
            Just(b"18446744073709551616".to_vec()),
            "[+ -]?0?[0-9]{1,3}[ .]?".prop_map(String::into_bytes),
        ]
        .boxed();
        let expiry = prop_oneof![
            3 => Just(Expiry::Keep),
            1 => Just(Expiry::Persist),
            1 => any::<u32>().prop_map(Expiry::AheadBy),
        ];
        let other = prop_oneof![
            bytes().prop_map(Other::String),
            bytes().prop_map(Other::List),
            bytes().prop_map(Other::Set),
            bytes().prop_map(Other::SortedSet),
        ];
        prop_oneof![
            4 => (
                field(data),
                field(version),
                prop::collection::vec((bytes(), bytes()), 0..3),
                expiry.clone(),
            )
                .prop_map(|(data, version, extra, expiry)| Damage::Hash {
                    data,
                    version,
                    extra,
                    expiry,
                }),
            1 => (other, expiry).prop_map(|(other, expiry)| Damage::WrongType(other, expiry)),
        ]
    }

    pub struct Redis {
        fixture: crate::common::storage::Redis,
    }

    impl Redis {
        fn name(&self, key: &StorageKey) -> String {
            self.fixture.key_name(key)
        }
    }

    impl Storage for Redis {
        type Backend = RedisBackend;
        type Damage = Damage;

        fn backend(&self) -> RedisBackend {
            self.fixture.backend()
        }

        async fn damage(&self, key: &StorageKey, damage: &Damage, now: u64) {
            let mut conn = self.fixture.connection();
            let name = self.name(key);
            let expiry = match damage {
                Damage::Hash {
                    data,
                    version,
                    extra,
                    expiry,
                } => {
                    for (field, value) in [("d", data), ("v", version)] {
                        match value {
                            Field::Keep => {}
                            Field::Missing => conn.hdel::<_, _, ()>(&name, field).await.unwrap(),
                            Field::Bytes(bytes) => {
                                conn.hset::<_, _, _, ()>(&name, field, bytes).await.unwrap();
                            }
                        }
                    }
                    for (field, value) in extra {
                        if field.as_slice() != b"d" && field.as_slice() != b"v" {
                            conn.hset::<_, _, _, ()>(&name, field, value).await.unwrap();
                        }
                    }
                    expiry
                }
                Damage::WrongType(other, expiry) => {
                    let _: () = conn.del(&name).await.unwrap();
                    let _: () = match other {
                        Other::String(v) => conn.set(&name, v).await.unwrap(),
                        Other::List(v) => conn.rpush(&name, v).await.unwrap(),
                        Other::Set(v) => conn.sadd(&name, v).await.unwrap(),
                        Other::SortedSet(v) => conn.zadd(&name, v, 1).await.unwrap(),
                    };
                    // A new key has no expiry: give it the saved session's.
                    if matches!(expiry, Expiry::Keep) {
                        let at = i64::try_from(now).unwrap() + 3_600_000;
                        let _: () = conn.pexpire_at(&name, at).await.unwrap();
                    }
                    expiry
                }
            };
            match expiry {
                Expiry::Keep => {}
                Expiry::Persist => conn.persist::<_, ()>(&name).await.unwrap(),
                Expiry::AheadBy(ms) => {
                    let at = i64::try_from(now).unwrap() + 60_000 + i64::from(*ms);
                    conn.pexpire_at::<_, ()>(&name, at).await.unwrap();
                }
            }
        }

        async fn at_rest(&self, key: &StorageKey) -> AtRest {
            let mut conn = self.fixture.connection();
            let name = self.name(key);
            let kind: String = redis::cmd("TYPE")
                .arg(&name)
                .query_async(&mut conn)
                .await
                .unwrap();
            let expiry: i64 = redis::cmd("PEXPIRETIME")
                .arg(&name)
                .query_async(&mut conn)
                .await
                .unwrap();
            let mut at_rest = AtRest {
                present: kind != "none",
                // A key without expiry lives for ever, which the backend reads as `i64::MAX`.
                expires_at: Some(if expiry == -1 { i64::MAX } else { expiry }),
                ..AtRest::default()
            };
            if kind == "hash" {
                let (data, version): (Option<Vec<u8>>, Option<Vec<u8>>) = redis::cmd("HMGET")
                    .arg(&name)
                    .arg("d")
                    .arg("v")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                at_rest.data = data.and_then(|data| String::from_utf8(data).ok());
                // A version is written as a canonical decimal: one that prints back as itself.
                at_rest.version = version.and_then(|version| {
                    let text = std::str::from_utf8(&version).ok()?;
                    let number: u64 = text.parse().ok()?;
                    (number.to_string() == text).then_some(number)
                });
            }
            at_rest
        }

        async fn cleanup(&self) {
            self.fixture.clone().cleanup().await;
        }
    }

    async fn redis() -> Option<Redis> {
        Some(Redis {
            fixture: crate::common::storage::Redis::new().await?,
        })
    }

    #[test]
    fn damaged_records_are_read_safely() {
        check_storage(64, redis, damage());
    }
}
