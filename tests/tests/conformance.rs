//! Every built-in persistent backend, and one written by a user, against the conformance suite;
//! plus the checks of their table names and key prefixes.
//!
//! Each test works in a table, database file or key prefix of its own, and removes it after,
//! even when the suite fails.

mod common;

use std::panic::resume_unwind;

use common::services::{mysql_url, postgres_url, redis_url, unique_name};
use common::shared_map::SharedMap;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::mysql::MySqlPool;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use typed_session::SessionId;
use typed_session::backend::conformance::check;
use typed_session::backend::{
    BackendError, MySqlBackend, PostgresBackend, RedisBackend, SessionBackend, SqliteBackend,
    StorageKey,
};

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
    let path = std::env::temp_dir().join(format!("{}.db", unique_name("typed_session_test_")));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let table = unique_name("sessions_");
    let backend = SqliteBackend::connect(&url)
        .await
        .unwrap()
        .with_table_name(&table)
        .unwrap();

    let outcome = run_suite(&backend).await;
    if outcome.is_ok() {
        let indexes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = ?1 AND sql LIKE '%expires_at%'",
        )
        .bind(&table)
        .fetch_one(backend.pool())
        .await
        .unwrap();
        assert_eq!(indexes, 1, "the expiry index exists");
    }
    backend.pool().close().await;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
    finish(outcome);
}

#[tokio::test]
async fn postgres_conforms() {
    let Some(url) = postgres_url() else { return };
    let table = unique_name("sessions_");
    let backend = PostgresBackend::connect(&url)
        .await
        .unwrap()
        .with_table_name(&table)
        .unwrap();

    let outcome = run_suite(&backend).await;
    if outcome.is_ok() {
        let indexes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_indexes \
             WHERE tablename = $1 AND indexdef LIKE '%(expires_at)%'",
        )
        .bind(&table)
        .fetch_one(backend.pool())
        .await
        .unwrap();
        assert_eq!(indexes, 1, "the expiry index exists");
    }
    sqlx::query(&format!("DROP TABLE IF EXISTS \"{table}\""))
        .execute(backend.pool())
        .await
        .unwrap();
    finish(outcome);
}

#[tokio::test]
async fn mariadb_conforms() {
    let Some(url) = mysql_url() else { return };
    let table = unique_name("sessions_");
    let backend = MySqlBackend::connect(&url)
        .await
        .unwrap()
        .with_table_name(&table)
        .unwrap();

    let outcome = run_suite(&backend).await;
    if outcome.is_ok() {
        let indexes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.statistics \
             WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'expires_at'",
        )
        .bind(&table)
        .fetch_one(backend.pool())
        .await
        .unwrap();
        assert_eq!(indexes, 1, "the expiry index exists");
    }
    sqlx::query(&format!("DROP TABLE IF EXISTS `{table}`"))
        .execute(backend.pool())
        .await
        .unwrap();
    finish(outcome);
}

#[tokio::test]
async fn redis_conforms_and_keeps_to_its_prefix() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("{}:", unique_name("typed_session_test_"));
    let backend = RedisBackend::connect(&url)
        .await
        .unwrap()
        .with_prefix(&prefix)
        .unwrap();
    // A neighbour that shares all but the prefix's last character: delete_all must spare it.
    let neighbour = format!("{}_neighbour", prefix.trim_end_matches(':'));
    let mut conn = backend.manager().clone();
    let () = conn.set_ex(&neighbour, "keep", 60).await.unwrap();

    let outcome = run_suite(&backend).await;
    let survived: Option<String> = conn.get(&neighbour).await.unwrap();
    let () = conn.del(&neighbour).await.unwrap();
    backend.delete_all().await.unwrap();
    finish(outcome);
    assert_eq!(
        survived.as_deref(),
        Some("keep"),
        "delete_all kept to its prefix"
    );
}

#[tokio::test]
async fn redis_reports_malformed_records_as_errors() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("{}:", unique_name("typed_session_test_"));
    let backend = RedisBackend::connect(&url)
        .await
        .unwrap()
        .with_prefix(&prefix)
        .unwrap();
    let mut conn = backend.manager().clone();
    let now = 0;

    let bad_version = StorageKey::for_id(SessionId::generate());
    let name = format!("{prefix}{bad_version}");
    let () = conn
        .hset_multiple(&name, &[("d", "{}"), ("v", "01")])
        .await
        .unwrap();
    let _: bool = conn.expire(&name, 60).await.unwrap();
    assert!(backend.load(&bad_version, now).await.is_err());

    let not_a_hash = StorageKey::for_id(SessionId::generate());
    let () = conn
        .set_ex(format!("{prefix}{not_a_hash}"), "text", 60)
        .await
        .unwrap();
    assert!(backend.load(&not_a_hash, now).await.is_err());
    assert!(backend.touch(&not_a_hash, u64::MAX, now).await.is_err());

    let stray = format!("{prefix}not-a-storage-key");
    let () = conn.set_ex(&stray, "text", 60).await.unwrap();
    assert!(backend.list_keys(now).await.is_err());

    backend.delete_all().await.unwrap();
    let left: Option<String> = conn.get(&stray).await.unwrap();
    assert_eq!(left, None, "delete_all removes every key under the prefix");
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
