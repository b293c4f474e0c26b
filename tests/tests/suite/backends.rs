//! Every persistent backend through the end-to-end suite (`e2e/`): the user-written one here,
//! and the built-in ones against the local servers.

#![allow(unreachable_pub)]

/// A SQL backend's malformed-record tests (`e2e::a_malformed_record_gives_a_fresh_session`), one
/// per damage. `$update` is the dialect's `UPDATE`: the table name, then the damage's `SET`
/// list; the id is its one bound parameter. Every dialect gets a negative version (no save writes
/// one) and a version at its maximum (no save can follow it); each further `name: set,
/// version_damaged` adds one.
#[macro_export]
macro_rules! sql_malformed_record_tests {
    (@test $update:literal, $name:ident: $set:literal, $version_damaged:literal) => {
        #[tokio::test]
        async fn $name() {
            let Some(fixture) = make().await else { return };
            let update = format!($update, fixture.table, $set);
            let damage = async |key: typed_session::backend::StorageKey| {
                let affected = sqlx::query(&update)
                    .bind(key.as_str())
                    .execute(&fixture.pool)
                    .await
                    .unwrap()
                    .rows_affected();
                assert_eq!(affected, 1);
            };
            $crate::e2e::a_malformed_record_gives_a_fresh_session(&fixture, damage, $version_damaged)
                .await;
            $crate::e2e::Cleanup::cleanup(fixture).await;
        }
    };
    ($update:literal $(, $name:ident: $set:literal, $version_damaged:literal)* $(,)?) => {
        $crate::sql_malformed_record_tests!(@test $update,
            a_negative_version_gives_a_fresh_session: "version = -1", true);
        $crate::sql_malformed_record_tests!(@test $update,
            a_version_at_its_maximum_gives_a_fresh_session: "version = 9223372036854775807", true);
        $($crate::sql_malformed_record_tests!(@test $update, $name: $set, $version_damaged);)*
    };
}

/// A backend a user might write: a shared in-process map. Its own module in a real app; here
/// it proves the store works with any `SessionBackend`.
#[allow(unreachable_pub)]
mod user_backend {
    use crate::common::shared_map::SharedMap;

    impl crate::e2e::Fixture for SharedMap {
        type Backend = SharedMap;

        async fn backend(&self) -> SharedMap {
            self.clone()
        }

        async fn dump(&self) -> String {
            format!(
                "{:?}",
                self.map()
                    .iter()
                    .map(|(k, r)| (k.as_str().to_owned(), r.clone()))
                    .collect::<Vec<_>>()
            )
        }

        async fn stored(&self, key: &typed_session::backend::StorageKey) -> String {
            format!("{:?}", self.map().get(key).map(|r| (&r.data, r.version)))
        }
    }

    impl crate::e2e::Cleanup for SharedMap {
        async fn cleanup(self) {}
    }

    crate::e2e_suite!(async || Some(SharedMap::default()));

    /// A save that never wins gives up with a 503 after at least 16 attempts and 3 seconds,
    /// having written nothing over the rival's record; once the rival stops, saves go through.
    /// Run on this backend only: the patience is three seconds of wall-clock time.
    #[tokio::test]
    async fn a_save_that_never_wins_gives_up_after_its_patience_and_writes_nothing() {
        use std::time::{Duration, Instant};

        use crate::common::{Browser, StatusCode};
        use crate::e2e::{app, config, store, wrapper::Instrumented};

        let map = SharedMap::default();
        let backend = Instrumented::new(map.clone());
        let rival = backend.rival();
        let mut browser = Browser::new(&app(&store(backend, config()).await));
        assert_eq!(browser.get("/").await.body, "1");
        let stored = || map.map().values().next().expect("one record").clone();
        let before = stored();

        rival.wins(u64::MAX);
        let started = Instant::now();
        let reply = browser.get("/").await;
        let waited = started.elapsed();
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        assert!(reply.body.contains("retry"), "{}", reply.body);
        assert!(waited >= Duration::from_secs(3), "gave up after {waited:?}");
        assert!(rival.won() >= 16, "{} attempts", rival.won());
        let after = stored();
        assert_eq!(after.data, before.data, "the lost request wrote nothing");
        assert_eq!(after.version, before.version + rival.won());

        rival.wins(0);
        let reply = browser.get("/").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_ne!(stored().data, before.data, "saved once the rival stopped");
    }

    /// Another server (a newer release, or one with a key this one lacks) stores a newer copy
    /// this server cannot read. The save that finds it fails with a 503 instead of writing
    /// this server's stale copy over it, and the next request starts a fresh session; the
    /// other server's record is kept as it was.
    #[tokio::test]
    async fn a_newer_record_this_server_cannot_read_is_never_saved_over() {
        use crate::common::{Browser, StatusCode};
        use crate::e2e::{app, config, store};

        let map = SharedMap::default();
        let mut browser = Browser::new(&app(&store(map.clone(), config()).await));
        assert_eq!(browser.get("/").await.body, "1");
        let unreadable = {
            let mut records = map.map();
            let record = records.values_mut().next().expect("one record");
            record.data = record.data.replace("\"format\":1", "\"format\":2");
            assert!(record.data.contains("\"format\":2"), "{}", record.data);
            record.version += 1;
            record.clone()
        };

        let reply = browser.get("/").await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            reply.body
        );
        let kept = map.map().values().next().cloned().expect("one record");
        assert_eq!(kept.data, unreadable.data, "not saved over");
        assert_eq!(kept.version, unreadable.version);

        let old_cookie = browser.jar["visit"].clone();
        let reply = browser.get("/").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "1", "a fresh session");
        assert_ne!(browser.jar["visit"], old_cookie);
        let records = map.map();
        assert_eq!(
            records.len(),
            2,
            "the unreadable record is kept beside the new one"
        );
        assert!(
            records
                .values()
                .any(|record| record.data == unreadable.data)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_to_a_session_dropped_meanwhile_is_not_acknowledged() {
        let map = SharedMap::default();
        crate::e2e::a_write_to_a_session_dropped_meanwhile_is_not_acknowledged(&map, async |key| {
            let mut records = map.map();
            let record = records.get_mut(&key).expect("stored");
            record.data = record.data.replace("\"format\":1", "\"format\":2");
            record.version += 1;
        })
        .await;
    }

    /// A stored creation time ahead of the clock (damage, or a far-off skew) counts from the
    /// load, so the absolute timeout still ends the session.
    #[tokio::test]
    async fn a_creation_time_in_the_future_does_not_escape_the_absolute_timeout() {
        use std::time::Duration;

        use crate::common::Browser;
        use crate::e2e::{app, config, store};

        let config = config().with_absolute_timeout(Duration::from_millis(600));
        let map = SharedMap::default();
        let mut first = Browser::new(&app(&store(map.clone(), config.clone()).await));
        assert_eq!(first.get("/").await.body, "1");
        for record in map.map().values_mut() {
            let mut data: serde_json::Value = serde_json::from_str(&record.data).unwrap();
            data["created"] = u64::MAX.into();
            record.data = data.to_string();
        }
        let mut restarted = first.on(&app(&store(map.clone(), config).await));
        assert_eq!(restarted.get("/").await.body, "2", "loaded");
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            restarted.get("/").await.body,
            "1",
            "expired: a fresh session"
        );
    }

    /// A record at version 0 (no save writes one: the first is 1) is not adopted: cached at 0
    /// it would pass for never stored, so saves would try to create it forever and another
    /// server's log-out would go unnoticed.
    #[tokio::test]
    async fn a_record_at_version_zero_gives_a_fresh_session() {
        use crate::common::{Browser, StatusCode};
        use crate::e2e::{app, config, store};

        let map = SharedMap::default();
        let mut first = Browser::new(&app(&store(map.clone(), config()).await));
        assert_eq!(first.get("/").await.body, "1");
        for record in map.map().values_mut() {
            record.version = 0;
        }
        let mut restarted = first.on(&app(&store(map.clone(), config()).await));
        let reply = restarted.get("/").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "1", "a fresh session");
        assert_ne!(restarted.jar["visit"], first.jar["visit"]);
    }
}

mod sqlite {
    use std::path::PathBuf;

    use sqlx::sqlite::SqlitePool;
    use typed_session::backend::{SqliteBackend, StorageKey};

    use crate::common::services::unique_name;

    pub struct Sqlite {
        pool: SqlitePool,
        table: String,
        path: PathBuf,
    }

    async fn make() -> Option<Sqlite> {
        let path = std::env::temp_dir().join(format!("{}.db", unique_name("typed_session_e2e_")));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let backend = SqliteBackend::connect(&url).await.unwrap();
        Some(Sqlite {
            pool: backend.pool().clone(),
            table: unique_name("sessions_"),
            path,
        })
    }

    impl crate::e2e::Fixture for Sqlite {
        type Backend = SqliteBackend;

        async fn backend(&self) -> SqliteBackend {
            SqliteBackend::from_pool(self.pool.clone())
                .with_table_name(&self.table)
                .unwrap()
        }

        async fn dump(&self) -> String {
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT id || ' ' || data FROM \"{}\"", self.table))
                    .fetch_all(&self.pool)
                    .await
                    .unwrap();
            rows.join("\n")
        }

        async fn stored(&self, key: &StorageKey) -> String {
            // `quote` shows each value's type: 'text', X'0102', 7.
            let row: Option<String> = sqlx::query_scalar(&format!(
                "SELECT quote(data) || ' ' || quote(version) FROM \"{}\" WHERE id = ?",
                self.table
            ))
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await
            .unwrap();
            format!("{row:?}")
        }
    }

    impl crate::e2e::Cleanup for Sqlite {
        async fn cleanup(self) {
            self.pool.close().await;
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut file = self.path.clone().into_os_string();
                file.push(suffix);
                let _ = std::fs::remove_file(file);
            }
        }
    }

    crate::e2e_suite!(make);

    // SQLite keeps whatever value it is given (a column's type is only a preference), so a row
    // can hold any type in any column.
    crate::sql_malformed_record_tests!(
        "UPDATE \"{}\" SET {} WHERE id = ?",
        a_text_version_gives_a_fresh_session: "version = 'one'", true,
        a_blob_version_gives_a_fresh_session: "version = x'01'", true,
        blob_data_gives_a_fresh_session: "data = CAST(data AS BLOB)", false,
        a_text_expiry_gives_a_fresh_session: "expires_at = 'later'", false,
    );
}

mod postgres {
    use sqlx::postgres::{PgPool, PgPoolOptions};
    use typed_session::backend::{PostgresBackend, StorageKey};

    use crate::common::services::{postgres_url, unique_name};

    pub struct Postgres {
        pool: PgPool,
        table: String,
    }

    async fn make() -> Option<Postgres> {
        let url = postgres_url()?;
        // A small pool per test: the suite runs its tests in parallel.
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        Some(Postgres {
            pool,
            table: unique_name("sessions_"),
        })
    }

    impl crate::e2e::Fixture for Postgres {
        type Backend = PostgresBackend;

        async fn backend(&self) -> PostgresBackend {
            PostgresBackend::from_pool(self.pool.clone())
                .with_table_name(&self.table)
                .unwrap()
        }

        async fn dump(&self) -> String {
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT id || ' ' || data FROM \"{}\"", self.table))
                    .fetch_all(&self.pool)
                    .await
                    .unwrap();
            rows.join("\n")
        }

        async fn stored(&self, key: &StorageKey) -> String {
            let row: Option<String> = sqlx::query_scalar(&format!(
                "SELECT data || ' ' || version FROM \"{}\" WHERE id = $1",
                self.table
            ))
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await
            .unwrap();
            format!("{row:?}")
        }
    }

    impl crate::e2e::Cleanup for Postgres {
        async fn cleanup(self) {
            sqlx::query(&format!("DROP TABLE IF EXISTS \"{}\"", self.table))
                .execute(&self.pool)
                .await
                .unwrap();
            self.pool.close().await;
        }
    }

    crate::e2e_suite!(make);

    crate::sql_malformed_record_tests!("UPDATE \"{}\" SET {} WHERE id = $1");

    /// A server that is down when the store starts: `build()` says so instead of limping on.
    #[tokio::test]
    async fn a_closed_port_fails_the_build_with_a_clear_error() {
        let pool = PgPoolOptions::new()
            .acquire_timeout(std::time::Duration::from_secs(2))
            .connect_lazy("postgres://postgres@127.0.0.1:1/test")
            .unwrap();
        let error = typed_session::SessionStore::<crate::e2e::Visit>::builder()
            .backend(PostgresBackend::from_pool(pool))
            .build()
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("session backend"), "{message}");
    }

    #[tokio::test]
    async fn a_closed_port_at_request_time_gives_503_and_no_session() {
        crate::e2e::closed_port_gives_503(PostgresBackend::from_pool(
            PgPoolOptions::new()
                .acquire_timeout(std::time::Duration::from_secs(2))
                .connect_lazy("postgres://postgres@127.0.0.1:1/test")
                .unwrap(),
        ))
        .await;
    }
}

mod mysql {
    use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
    use typed_session::backend::{MySqlBackend, StorageKey};

    use crate::common::services::{mysql_url, unique_name};

    pub struct MySql {
        pool: MySqlPool,
        table: String,
    }

    async fn make() -> Option<MySql> {
        let url = mysql_url()?;
        let pool = MySqlPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        Some(MySql {
            pool,
            table: unique_name("sessions_"),
        })
    }

    impl crate::e2e::Fixture for MySql {
        type Backend = MySqlBackend;

        async fn backend(&self) -> MySqlBackend {
            MySqlBackend::from_pool(self.pool.clone())
                .with_table_name(&self.table)
                .unwrap()
        }

        async fn dump(&self) -> String {
            let rows: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT CONCAT(id, ' ', data) FROM `{}`",
                self.table
            ))
            .fetch_all(&self.pool)
            .await
            .unwrap();
            rows.join("\n")
        }

        async fn stored(&self, key: &StorageKey) -> String {
            let row: Option<String> = sqlx::query_scalar(&format!(
                "SELECT CONCAT(data, ' ', version) FROM `{}` WHERE id = ?",
                self.table
            ))
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await
            .unwrap();
            format!("{row:?}")
        }
    }

    impl crate::e2e::Cleanup for MySql {
        async fn cleanup(self) {
            sqlx::query(&format!("DROP TABLE IF EXISTS `{}`", self.table))
                .execute(&self.pool)
                .await
                .unwrap();
            self.pool.close().await;
        }
    }

    crate::e2e_suite!(make);

    crate::sql_malformed_record_tests!("UPDATE `{}` SET {} WHERE id = ?");

    #[tokio::test]
    async fn a_closed_port_at_request_time_gives_503_and_no_session() {
        crate::e2e::closed_port_gives_503(MySqlBackend::from_pool(
            MySqlPoolOptions::new()
                .acquire_timeout(std::time::Duration::from_secs(2))
                .connect_lazy("mysql://root@127.0.0.1:1/test")
                .unwrap(),
        ))
        .await;
    }
}

mod redis {
    use redis::AsyncCommands;
    use redis::aio::ConnectionManager;
    use typed_session::backend::{RedisBackend, SessionBackend, StorageKey};

    use crate::common::services::{redis_url, unique_name};

    pub struct Redis {
        manager: ConnectionManager,
        prefix: String,
    }

    async fn make() -> Option<Redis> {
        let url = redis_url()?;
        let backend = RedisBackend::connect(&url).await.unwrap();
        Some(Redis {
            manager: backend.manager().clone(),
            prefix: format!("{}:", unique_name("typed_session_e2e_")),
        })
    }

    impl crate::e2e::Fixture for Redis {
        type Backend = RedisBackend;

        async fn backend(&self) -> RedisBackend {
            RedisBackend::from_manager(self.manager.clone())
                .with_prefix(&self.prefix)
                .unwrap()
        }

        async fn dump(&self) -> String {
            let mut conn = self.manager.clone();
            let keys: Vec<String> = conn.keys(format!("{}*", self.prefix)).await.unwrap();
            let mut dump = String::new();
            for key in keys {
                let fields: Vec<(String, String)> = conn.hgetall(&key).await.unwrap();
                dump.push_str(&format!("{key} {fields:?}\n"));
            }
            dump
        }

        async fn stored(&self, key: &StorageKey) -> String {
            // DUMP serialises a value of any type (without its expiry).
            let dumped: Option<Vec<u8>> = redis::cmd("DUMP")
                .arg(self.key_name(key))
                .query_async(&mut self.manager.clone())
                .await
                .unwrap();
            format!("{dumped:?}")
        }
    }

    impl crate::e2e::Cleanup for Redis {
        async fn cleanup(self) {
            self.backend_for_cleanup().delete_all().await.unwrap();
        }
    }

    impl Redis {
        fn key_name(&self, key: &StorageKey) -> String {
            format!("{}{}", self.prefix, key.as_str())
        }

        fn backend_for_cleanup(&self) -> RedisBackend {
            RedisBackend::from_manager(self.manager.clone())
                .with_prefix(&self.prefix)
                .unwrap()
        }
    }

    crate::e2e_suite!(make);

    /// The malformed-record scenario, `damage` done to the session's key (given its name).
    async fn malformed(damage: impl AsyncFn(&mut ConnectionManager, &str), version_damaged: bool) {
        let Some(fixture) = make().await else { return };
        let damage = async |key: StorageKey| {
            damage(&mut fixture.manager.clone(), &fixture.key_name(&key)).await;
        };
        crate::e2e::a_malformed_record_gives_a_fresh_session(&fixture, damage, version_damaged)
            .await;
        crate::e2e::Cleanup::cleanup(fixture).await;
    }

    /// Sets one field of the session's hash.
    async fn set_field(field: &str, value: impl AsRef<[u8]>) {
        malformed(
            async |conn, name| {
                let _: () = conn.hset(name, field, value.as_ref()).await.unwrap();
            },
            field == "v",
        )
        .await;
    }

    /// Puts a value of another type at the session's key (`command key value`), `expiring` or
    /// not.
    async fn replace_with(command: &str, value: &str, expiring: bool) {
        malformed(
            async |conn, name| {
                let mut pipe = redis::pipe();
                pipe.atomic().del(name).cmd(command).arg(name).arg(value);
                if expiring {
                    pipe.pexpire(name, 600_000);
                }
                let () = pipe.query_async(conn).await.unwrap();
            },
            true,
        )
        .await;
    }

    #[tokio::test]
    async fn a_version_that_is_not_a_number_gives_a_fresh_session() {
        set_field("v", "-1").await;
    }

    #[tokio::test]
    async fn data_that_is_not_utf8_gives_a_fresh_session() {
        set_field("d", [0xff, 0xfe]).await;
    }

    /// The highest version that can be stored (what a signed 64-bit integer holds), and one past
    /// what any version can be.
    #[tokio::test]
    async fn a_version_at_its_maximum_gives_a_fresh_session() {
        set_field("v", i64::MAX.to_string()).await;
        set_field("v", u64::MAX.to_string()).await;
    }

    #[tokio::test]
    async fn a_hash_without_its_version_gives_a_fresh_session() {
        malformed(
            async |conn, name| {
                let removed: u64 = conn.hdel(name, "v").await.unwrap();
                assert_eq!(removed, 1);
            },
            true,
        )
        .await;
    }

    /// A string or a list at the session's key, with an expiry and without one (so it would
    /// never go away by itself).
    #[tokio::test]
    async fn a_key_of_another_type_gives_a_fresh_session() {
        for expiring in [true, false] {
            replace_with("SET", "text", expiring).await;
            replace_with("RPUSH", "item", expiring).await;
        }
    }
}

mod mongodb {
    use mongodb::Client;
    use mongodb::bson::{Bson, Document, doc};
    use typed_session::backend::{MongoBackend, StorageKey};

    use crate::common::services::{mongodb_url, unique_name};

    pub struct Mongo {
        client: Client,
        collection: String,
    }

    async fn make() -> Option<Mongo> {
        let url = mongodb_url()?;
        Some(Mongo {
            client: Client::with_uri_str(&url).await.unwrap(),
            collection: unique_name("sessions_"),
        })
    }

    impl Mongo {
        fn collection_backend(&self) -> MongoBackend {
            MongoBackend::from_client(self.client.clone())
                .with_collection(&self.collection)
                .unwrap()
        }
    }

    impl crate::e2e::Fixture for Mongo {
        type Backend = MongoBackend;

        async fn backend(&self) -> MongoBackend {
            self.collection_backend()
        }

        async fn dump(&self) -> String {
            let backend = self.collection_backend();
            let mut cursor = backend
                .collection()
                .unwrap()
                .find(Document::new())
                .await
                .unwrap();
            let mut dump = String::new();
            while cursor.advance().await.unwrap() {
                let document: Document = cursor.deserialize_current().unwrap();
                dump.push_str(&format!("{document}\n"));
            }
            dump
        }

        async fn stored(&self, key: &StorageKey) -> String {
            let found = self
                .collection_backend()
                .collection()
                .unwrap()
                .find_one(doc! { "_id": key.as_str() })
                .projection(doc! { "data": 1, "version": 1 })
                .await
                .unwrap();
            format!("{found:?}")
        }
    }

    impl crate::e2e::Cleanup for Mongo {
        async fn cleanup(self) {
            self.collection_backend()
                .collection()
                .unwrap()
                .drop()
                .await
                .unwrap();
        }
    }

    crate::e2e_suite!(make);

    /// The malformed-record scenario, `field` of the session's document set to `value`.
    async fn set_field(field: &str, value: Bson) {
        let Some(fixture) = make().await else { return };
        let damage = async |key: StorageKey| {
            let result = fixture
                .collection_backend()
                .collection()
                .unwrap()
                .update_one(
                    doc! { "_id": key.as_str() },
                    doc! { "$set": { field: value.clone() } },
                )
                .await
                .unwrap();
            assert_eq!(result.modified_count, 1);
        };
        crate::e2e::a_malformed_record_gives_a_fresh_session(&fixture, damage, field == "version")
            .await;
        crate::e2e::Cleanup::cleanup(fixture).await;
    }

    #[tokio::test]
    async fn a_version_of_the_wrong_type_gives_a_fresh_session() {
        set_field("version", Bson::String("x".into())).await;
    }

    #[tokio::test]
    async fn data_that_is_not_a_string_gives_a_fresh_session() {
        set_field("data", Bson::Int64(7)).await;
    }

    #[tokio::test]
    async fn a_version_at_its_maximum_gives_a_fresh_session() {
        set_field("version", Bson::Int64(i64::MAX)).await;
    }

    #[tokio::test]
    async fn a_closed_port_at_request_time_gives_503_and_no_session() {
        let url = "mongodb://127.0.0.1:1/test?serverSelectionTimeoutMS=500";
        crate::e2e::closed_port_gives_503(MongoBackend::connect(url).await.unwrap()).await;
    }
}

mod surrealdb {
    use surrealdb::types::RecordId;
    use typed_session::backend::{SessionBackend, StorageKey, SurrealBackend};

    use crate::common::services::surrealdb_backend;

    /// One engine per test (a fresh memory engine, or a table of its own on a real server).
    pub struct Surreal {
        backend: SurrealBackend,
    }

    async fn make() -> Option<Surreal> {
        let backend = surrealdb_backend("sessions_").await?;
        Some(Surreal { backend })
    }

    impl crate::e2e::Fixture for Surreal {
        type Backend = SurrealBackend;

        async fn backend(&self) -> SurrealBackend {
            self.backend.clone()
        }

        async fn dump(&self) -> String {
            let mut response = self
                .backend
                .client()
                .query(format!("SELECT * FROM `{}`", self.backend.table_name()))
                .await
                .unwrap();
            let rows: Vec<surrealdb::types::Value> = response.take(0).unwrap();
            rows.iter().map(|row| format!("{row:?}\n")).collect()
        }

        async fn stored(&self, key: &StorageKey) -> String {
            let mut response = self
                .backend
                .client()
                .query("SELECT data, version FROM $rid")
                .bind(("rid", self.record_id(key)))
                .await
                .unwrap();
            let rows: Vec<surrealdb::types::Value> = response.take(0).unwrap();
            format!("{rows:?}")
        }
    }

    impl Surreal {
        fn record_id(&self, key: &StorageKey) -> RecordId {
            RecordId::new(self.backend.table_name(), key.as_str())
        }
    }

    impl crate::e2e::Cleanup for Surreal {
        async fn cleanup(self) {
            self.backend.delete_all().await.unwrap();
        }
    }

    crate::e2e_suite!(make);

    #[tokio::test]
    async fn a_version_at_its_maximum_gives_a_fresh_session() {
        let Some(fixture) = make().await else { return };
        let damage = async |key: StorageKey| {
            let mut response = fixture
                .backend
                .client()
                .query("UPDATE $rid SET version = $version RETURN VALUE version")
                .bind(("rid", fixture.record_id(&key)))
                .bind(("version", i64::MAX))
                .await
                .unwrap();
            let versions: Vec<i64> = response.take(0).unwrap();
            assert_eq!(versions, [i64::MAX]);
        };
        crate::e2e::a_malformed_record_gives_a_fresh_session(&fixture, damage, true).await;
        crate::e2e::Cleanup::cleanup(fixture).await;
    }
}
