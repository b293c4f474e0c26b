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
/// [`Fixture::stored`]), `$data` the record as loads read it from the table as `s` (for
/// [`Fixture::records`]), `$configure` applies `by_field` to a backend; with `$options` and
/// `$url`, the constructors for a server.
macro_rules! sql_fixture {
    ($fixture:ident, $backend:ty, $pool:ty, $quote:literal, $p1:literal, $p2:literal,
     stored: $stored:literal, data: $data:expr, configure: $configure:expr,
     whole: $whole:literal) => {
        #[derive(Clone)]
        pub struct $fixture {
            pub pool: $pool,
            pub table: String,
            file: Option<PathBuf>,
            /// Sessions stored field by field (`with_partial_writes`).
            pub by_field: bool,
        }

        impl $fixture {
            /// `table` in the dialect's quotes.
            fn quoted(&self) -> String {
                format!($quote, self.table)
            }

            /// The table of fields stored apart (its name is the table's with `_fields`: the
            /// tests' names are short).
            pub fn quoted_fields(&self) -> String {
                format!($quote, format!("{}_fields", self.table))
            }

            /// How many rows the table of fields stored apart holds.
            pub async fn field_rows(&self) -> i64 {
                let sql = format!("SELECT COUNT(*) FROM {}", self.quoted_fields());
                sqlx::query_scalar(&sql)
                    .fetch_one(&self.pool)
                    .await
                    .unwrap()
            }

            /// The same fixture storing sessions field by field (`with_partial_writes`).
            pub async fn by_field() -> Option<Self> {
                Some(Self {
                    by_field: true,
                    ..Self::new().await?
                })
            }
        }

        impl Fixture for $fixture {
            type Backend = $backend;

            fn backend(&self) -> $backend {
                let backend = <$backend>::from_pool(self.pool.clone())
                    .with_table_name(&self.table)
                    .unwrap();
                $configure(backend, self.by_field)
            }

            async fn records(&self) -> Vec<(String, String)> {
                let data = $data.replace("{fields}", &self.quoted_fields());
                sqlx::query_as(&format!("SELECT id, {data} FROM {} s", self.quoted()))
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

            /// Stored whole (the table's triggers drop the fields stored apart).
            async fn set_data(&self, key: &StorageKey, data: &str) -> u64 {
                let whole = if self.by_field { $whole } else { "" };
                sqlx::query(&format!(
                    concat!("UPDATE {} SET data = ", $p1, "{} WHERE id = ", $p2),
                    self.quoted(),
                    whole
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
                for table in [self.quoted(), self.quoted_fields()] {
                    sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
                        .execute(&self.pool)
                        .await
                        .unwrap();
                }
                self.pool.close().await;
            }
        }
    };
    ($fixture:ident, $backend:ty, $pool:ty, $options:ty, $url:path, $quote:literal, $p1:literal,
     $p2:literal, stored: $stored:literal, data: $data:expr, configure: $configure:expr,
     whole: $whole:literal) => {
        sql_fixture!($fixture, $backend, $pool, $quote, $p1, $p2, stored: $stored, data: $data,
            configure: $configure, whole: $whole);

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
                    by_field: false,
                }
            }
        }
    };
}

// `quote` shows each value's type: 'text', X'0102', 7. A record with large fields stored apart
// shows the byte 0x01 in each one's place.
sql_fixture!(Sqlite, SqliteBackend, SqlitePool, "\"{}\"", "?", "?",
    stored: "quote(data) || ' ' || quote(version)", data: "data",
    configure: SqliteBackend::with_partial_writes, whole: ", fields_apart = NULL");

// A session's record, stored whole or field by field (in `{fields}`), as PostgreSQL's backend
// writes them: written out here, not taken from the backend, so that the tests check its
// reading too.
sql_fixture!(Postgres, PostgresBackend, PgPool, PgPoolOptions, postgres_url, "\"{}\"", "$1",
    "$2", stored: "data || ' ' || version",
    data: "CASE WHEN s.field_count IS NULL THEN s.data ELSE (SELECT s.data || '\"fields\":{' || \
           string_agg(f.member, ',' ORDER BY f.position) || '}}' FROM {fields} f \
           WHERE f.id = s.id) END",
    configure: PostgresBackend::with_partial_writes, whole: ", field_count = NULL");

sql_fixture!(MySql, MySqlBackend, MySqlPool, MySqlPoolOptions, mysql_url, "`{}`", "?", "?",
    stored: "CONCAT(data, ' ', version)", data: "data",
    configure: |backend, _| backend, whole: "");

impl Sqlite {
    pub async fn new() -> Option<Self> {
        let path = std::env::temp_dir().join(format!("{}.db", unique_name("typed_session_test_")));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let backend = SqliteBackend::connect(&url).await.unwrap();
        Some(Self {
            pool: backend.pool().clone(),
            table: unique_name("sessions_"),
            file: Some(path),
            by_field: false,
        })
    }
}
