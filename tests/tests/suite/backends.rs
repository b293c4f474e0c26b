//! Every persistent backend through the end-to-end suite (`e2e/`), each on its fixture from
//! `common::storage`: the user-written one, and the built-in ones against the local servers;
//! plus each backend's own malformed-record and unreachable-server cases.

/// A SQL backend's malformed-record tests (`e2e::a_malformed_record_gives_a_fresh_session`), one
/// per damage, on the fixture `$fixture`. `$update` is the dialect's `UPDATE`: the table name, then the damage's `SET`
/// list; the id is its one bound parameter. Every dialect gets a negative version (no save writes
/// one) and a version at its maximum (no save can follow it); each further `name: set,
/// version_damaged` adds one.
#[macro_export]
macro_rules! sql_malformed_record_tests {
    (@test $fixture:ty, $update:literal, $name:ident: $set:literal, $version_damaged:literal) => {
        #[tokio::test]
        async fn $name() {
            let Some(fixture) = <$fixture>::new().await else { return };
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
            $crate::common::storage::Fixture::cleanup(fixture).await;
        }
    };
    ($fixture:ty, $update:literal $(, $name:ident: $set:literal, $version_damaged:literal)* $(,)?) => {
        $crate::sql_malformed_record_tests!(@test $fixture, $update,
            a_negative_version_gives_a_fresh_session: "version = -1", true);
        $crate::sql_malformed_record_tests!(@test $fixture, $update,
            a_version_at_its_maximum_gives_a_fresh_session: "version = 9223372036854775807", true);
        $($crate::sql_malformed_record_tests!(@test $fixture, $update, $name: $set, $version_damaged);)*
    };
}

/// A backend a user might write: a shared in-process map. Its own module in a real app; here
/// it proves the store works with any `SessionBackend`.
mod user_backend {
    use crate::common::shared_map::SharedMap;

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
    use crate::common::storage::Sqlite;

    crate::e2e_suite!(Sqlite::new);

    // SQLite keeps whatever value it is given (a column's type is only a preference), so a row
    // can hold any type in any column.
    crate::sql_malformed_record_tests!(
        Sqlite,
        "UPDATE \"{}\" SET {} WHERE id = ?",
        a_text_version_gives_a_fresh_session: "version = 'one'", true,
        a_blob_version_gives_a_fresh_session: "version = x'01'", true,
        blob_data_gives_a_fresh_session: "data = CAST(data AS BLOB)", false,
        a_text_expiry_gives_a_fresh_session: "expires_at = 'later'", false,
    );
}

mod postgres {
    use sqlx::postgres::PgPoolOptions;
    use typed_session::backend::PostgresBackend;

    use crate::common::storage::Postgres;

    crate::e2e_suite!(Postgres::new);

    crate::sql_malformed_record_tests!(Postgres, "UPDATE \"{}\" SET {} WHERE id = $1");

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
    use sqlx::mysql::MySqlPoolOptions;
    use typed_session::backend::MySqlBackend;

    use crate::common::storage::MySql;

    crate::e2e_suite!(MySql::new);

    crate::sql_malformed_record_tests!(MySql, "UPDATE `{}` SET {} WHERE id = ?");

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

/// Redis storing each session field apart (`with_partial_writes`): the whole end-to-end suite.
mod redis_by_field {
    use crate::common::storage::{Fixture, Redis};

    crate::e2e_suite!(Redis::by_field);

    #[tokio::test]
    async fn servers_with_and_without_partial_writes_share_sessions() {
        let Some(fixture) = Redis::by_field().await else {
            return;
        };
        let whole = fixture.backend().with_partial_writes(false);
        crate::e2e::servers_with_and_without_partial_writes_share_sessions(&fixture, whole).await;
        fixture.cleanup().await;
    }
}

/// A SQL backend storing session fields apart (`with_partial_writes`: each field on PostgreSQL,
/// each large one on SQLite), on `$fixture` with bind parameter `$p1`: the whole end-to-end
/// suite, and what the fields table holds.
macro_rules! sql_by_field_tests {
    ($fixture:ident, $p1:literal) => {
        use crate::common::storage::{Fixture, $fixture};
        use crate::common::{Browser, get_with_cookie};
        use crate::e2e::{app, config, store};

        /// A note long enough to be stored apart on every backend (SQLite: 2 KiB or more).
        const LARGE: usize = 3000;

        /// A visitor of `server` whose session holds a note of [`LARGE`] `n`s and a count of 1.
        async fn with_a_large_note(server: &axum::Router) -> Browser {
            let mut browser = Browser::new(server);
            browser
                .get(&format!("/note?text={}", "n".repeat(LARGE)))
                .await;
            assert_eq!(browser.get("/").await.body, "1");
            browser
        }

        crate::e2e_suite!($fixture::by_field);

        #[tokio::test]
        async fn servers_with_and_without_partial_writes_share_sessions() {
            let Some(fixture) = $fixture::by_field().await else {
                return;
            };
            let whole = fixture.backend().with_partial_writes(false);
            crate::e2e::servers_with_and_without_partial_writes_share_sessions(&fixture, whole)
                .await;
            fixture.cleanup().await;
        }

        /// A one-field save writes that field's row alone: a value planted in another field's
        /// row survives it. Rows of a renewed or destroyed session go with it.
        #[tokio::test]
        async fn a_one_field_save_writes_that_field_alone() {
            let Some(fixture) = $fixture::by_field().await else {
                return;
            };
            let fields = fixture.quoted_fields();
            let server = app(&store(fixture.backend(), config()).await);
            let mut browser = with_a_large_note(&server).await;
            assert_eq!(browser.get("/").await.body, "2");
            let planted = sqlx::query(&format!(
                "UPDATE {fields} SET member = replace(member, 'nnnn', 'mmmm') \
                 WHERE member LIKE '\"note\":%'"
            ))
            .execute(&fixture.pool)
            .await
            .unwrap();
            assert_eq!(planted.rows_affected(), 1, "the note has a row of its own");

            assert_eq!(browser.get("/").await.body, "3");
            let fresh = app(&store(fixture.backend(), config()).await);
            let seen = get_with_cookie(&fresh, "/peek", &crate::e2e::cookie_of(&browser)).await;
            let planted_note = "m".repeat(LARGE);
            assert_eq!(
                seen.body,
                format!("3 Some({planted_note:?}) None long_term=false"),
                "the count was written, the note's row left alone"
            );

            let per_session = fixture.field_rows().await;
            assert!(per_session >= 1, "{per_session} field rows");
            browser.get("/renew").await;
            assert_eq!(
                fixture.field_rows().await,
                per_session,
                "the old id's rows went with it"
            );
            browser.get("/destroy").await;
            assert_eq!(
                fixture.field_rows().await,
                0,
                "the session's rows went with it"
            );
            fixture.cleanup().await;
        }

        /// A save that stores a session whole again (a server without the setting), or a purge
        /// of it, leaves no rows behind in the fields table; a row whose fields are not all
        /// there reads as damaged.
        #[tokio::test]
        async fn field_rows_go_with_whole_saves_and_purges() {
            use typed_session::backend::{SessionBackend, StorageKey};

            let Some(fixture) = $fixture::by_field().await else {
                return;
            };
            let fields = fixture.quoted_fields();
            let touching = || config().with_touch_interval(std::time::Duration::from_millis(1));
            let by_field = app(&store(fixture.backend(), touching()).await);
            let whole = fixture.backend().with_partial_writes(false);
            let whole = app(&store(whole, touching()).await);
            let mut browser = with_a_large_note(&by_field).await;
            let per_session = fixture.field_rows().await;
            assert!(per_session >= 1, "{per_session} field rows");

            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let cookie = crate::e2e::cookie_of(&browser);
            assert_eq!(get_with_cookie(&whole, "/", &cookie).await.body, "2");
            assert_eq!(fixture.field_rows().await, 0, "stored whole: no rows left");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            assert_eq!(browser.get("/").await.body, "3");
            assert_eq!(
                fixture.field_rows().await,
                per_session,
                "stored field by field again"
            );

            let records = fixture.records().await;
            let key = StorageKey::parse(&records[0].0).unwrap();
            let backend = fixture.backend();
            let now = crate::e2e::now_millis();
            let missing = sqlx::query(&format!(
                "DELETE FROM {fields} WHERE id = {} AND member LIKE '\"note\":%'",
                $p1
            ))
            .bind(key.as_str())
            .execute(&fixture.pool)
            .await
            .unwrap();
            assert_eq!(missing.rows_affected(), 1);
            let damaged = backend.load(&key, now).await.unwrap().unwrap();
            assert_eq!(damaged.data, "", "not a session missing its note");
            let fresh = app(&store(fixture.backend(), config()).await);
            let seen = get_with_cookie(&fresh, "/peek", &cookie).await.body;
            assert_eq!(seen, "0 None None long_term=false", "a fresh session");

            let far_future = now + 1_000 * 3_600 * 24 * 365;
            assert_eq!(backend.delete_expired(far_future).await.unwrap(), 1);
            assert_eq!(fixture.field_rows().await, 0, "purged with its session");
            fixture.cleanup().await;
        }
    };
}

mod sqlite_by_field {
    sql_by_field_tests!(Sqlite, "?");
}

mod postgres_by_field {
    sql_by_field_tests!(Postgres, "$1");

    /// A `TRUNCATE` of the sessions table, which fires no delete trigger, empties the fields
    /// table too.
    #[tokio::test]
    async fn a_truncate_takes_the_field_rows_too() {
        let Some(fixture) = Postgres::by_field().await else {
            return;
        };
        with_a_large_note(&app(&store(fixture.backend(), config()).await)).await;
        assert!(fixture.field_rows().await > 0);
        let truncate = format!("TRUNCATE \"{}\"", fixture.table);
        sqlx::query(&truncate).execute(&fixture.pool).await.unwrap();
        assert_eq!(fixture.field_rows().await, 0);
        fixture.cleanup().await;
    }
}

mod redis {
    use redis::AsyncCommands;
    use redis::aio::ConnectionManager;
    use typed_session::backend::StorageKey;

    use crate::common::storage::{Fixture, Redis};

    crate::e2e_suite!(Redis::new);

    /// The malformed-record scenario, `damage` done to the session's key (given its name).
    async fn malformed(damage: impl AsyncFn(&mut ConnectionManager, &str), version_damaged: bool) {
        let Some(fixture) = Redis::new().await else {
            return;
        };
        let damage = async |key: StorageKey| {
            damage(&mut fixture.connection(), &fixture.key_name(&key)).await;
        };
        crate::e2e::a_malformed_record_gives_a_fresh_session(&fixture, damage, version_damaged)
            .await;
        fixture.cleanup().await;
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
    use mongodb::bson::{Bson, doc};
    use typed_session::backend::{MongoBackend, StorageKey};

    use crate::common::storage::{Fixture, Mongo};

    crate::e2e_suite!(Mongo::new);

    /// The malformed-record scenario, `field` of the session's document set to `value`.
    async fn set_field(field: &str, value: Bson) {
        let Some(fixture) = Mongo::new().await else {
            return;
        };
        let damage = async |key: StorageKey| {
            let result = fixture
                .collection()
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
        fixture.cleanup().await;
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
    use typed_session::backend::StorageKey;

    use crate::common::storage::{Fixture, Surreal};

    crate::e2e_suite!(Surreal::new);

    #[tokio::test]
    async fn a_version_at_its_maximum_gives_a_fresh_session() {
        let Some(fixture) = Surreal::new().await else {
            return;
        };
        let damage = async |key: StorageKey| {
            let mut response = fixture
                .backend()
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
        fixture.cleanup().await;
    }
}
