//! The SQL backends: SQLite (a database file of the test's own, opened as
//! `SqliteBackend::connect` opens one), PostgreSQL and MariaDB (a table of the test's own on the
//! local server). One macro writes the three; they differ only in their statements.

use std::path::PathBuf;

use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::SqlitePool;
use typed_session::backend::{MySqlBackend, PostgresBackend, SqliteBackend, StorageKey};

use super::Fixture;
use crate::common::services::{mysql_url, postgres_url, unique_name};

/// A SQL fixture: its pool, its table, and the database file to remove with it (SQLite's).
/// `$quote` is the dialect's quoted table name (the name in place of `{}`), `$p1` and `$p2` its
/// first and second bind parameters, `$stored` the data and version as one text (for
/// [`Fixture::stored`]); with `$options` and `$url`, the constructors for a server.
macro_rules! sql_fixture {
    ($fixture:ident, $backend:ty, $pool:ty, $quote:literal, $p1:literal, $p2:literal,
     stored: $stored:literal) => {
        #[derive(Clone)]
        pub struct $fixture {
            pub pool: $pool,
            pub table: String,
            file: Option<PathBuf>,
        }

        impl $fixture {
            /// `table` in the dialect's quotes.
            fn quoted(&self) -> String {
                format!($quote, self.table)
            }
        }

        impl Fixture for $fixture {
            type Backend = $backend;

            fn backend(&self) -> $backend {
                <$backend>::from_pool(self.pool.clone())
                    .with_table_name(&self.table)
                    .unwrap()
            }

            async fn records(&self) -> Vec<(String, String)> {
                sqlx::query_as(&format!("SELECT id, data FROM {}", self.quoted()))
                    .fetch_all(&self.pool)
                    .await
                    .unwrap()
            }

            async fn stored(&self, key: &StorageKey) -> String {
                let row: Option<String> = sqlx::query_scalar(&format!(
                    concat!("SELECT ", $stored, " FROM {} WHERE id = ", $p1),
                    self.quoted()
                ))
                .bind(key.as_str())
                .fetch_optional(&self.pool)
                .await
                .unwrap();
                format!("{row:?}")
            }

            async fn set_data(&self, key: &StorageKey, data: &str) -> u64 {
                sqlx::query(&format!(
                    concat!("UPDATE {} SET data = ", $p1, " WHERE id = ", $p2),
                    self.quoted()
                ))
                .bind(data)
                .bind(key.as_str())
                .execute(&self.pool)
                .await
                .unwrap()
                .rows_affected()
            }

            async fn cleanup(self) {
                if let Some(path) = &self.file {
                    self.pool.close().await;
                    for suffix in ["", "-wal", "-shm", "-journal"] {
                        let mut file = path.clone().into_os_string();
                        file.push(suffix);
                        let _ = std::fs::remove_file(file);
                    }
                    return;
                }
                sqlx::query(&format!("DROP TABLE IF EXISTS {}", self.quoted()))
                    .execute(&self.pool)
                    .await
                    .unwrap();
                self.pool.close().await;
            }
        }
    };
    ($fixture:ident, $backend:ty, $pool:ty, $options:ty, $url:path, $quote:literal, $p1:literal,
     $p2:literal, stored: $stored:literal) => {
        sql_fixture!($fixture, $backend, $pool, $quote, $p1, $p2, stored: $stored);

        impl $fixture {
            /// On a small pool: the suites run their tests in parallel.
            pub async fn new() -> Option<Self> {
                let url = $url()?;
                let pool = <$options>::new()
                    .max_connections(4)
                    .connect(&url)
                    .await
                    .unwrap();
                Some(Self::on(pool))
            }

            /// On the pool the backend's `connect` makes, as an application gets it.
            pub async fn connected() -> Option<Self> {
                let url = $url()?;
                let backend = <$backend>::connect(&url).await.unwrap();
                Some(Self::on(backend.pool().clone()))
            }

            fn on(pool: $pool) -> Self {
                Self {
                    pool,
                    table: unique_name("sessions_"),
                    file: None,
                }
            }
        }
    };
}

// `quote` shows each value's type: 'text', X'0102', 7.
sql_fixture!(Sqlite, SqliteBackend, SqlitePool, "\"{}\"", "?", "?",
    stored: "quote(data) || ' ' || quote(version)");

sql_fixture!(Postgres, PostgresBackend, PgPool, PgPoolOptions, postgres_url, "\"{}\"", "$1",
    "$2", stored: "data || ' ' || version");

sql_fixture!(MySql, MySqlBackend, MySqlPool, MySqlPoolOptions, mysql_url, "`{}`", "?", "?",
    stored: "CONCAT(data, ' ', version)");

impl Sqlite {
    pub async fn new() -> Option<Self> {
        let path = std::env::temp_dir().join(format!("{}.db", unique_name("typed_session_test_")));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let backend = SqliteBackend::connect(&url).await.unwrap();
        Some(Self {
            pool: backend.pool().clone(),
            table: unique_name("sessions_"),
            file: Some(path),
        })
    }
}
