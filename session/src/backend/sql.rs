//! What the SQL backends share: identifier quoting, the statements every dialect spells alike,
//! and reading rows back.

#[cfg(feature = "postgres")]
use crate::backend::postgres::fields::FieldsTable as PostgresFields;
#[cfg(feature = "sqlite")]
use crate::backend::sqlite::fields::FieldsTable as SqliteFields;
use crate::backend::{BackendError, Record};

pub(crate) use crate::backend::convert::{
    millis_to_db, stored_key, stored_u64, stored_version, version_to_db,
};
pub(crate) use crate::backend::table_name::TableName;

/// The SQL spelling differences the shared statements care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite: `"quoted"` identifiers, `?` parameters.
    #[cfg(feature = "sqlite")]
    Sqlite,
    /// PostgreSQL: `"quoted"` identifiers, `$n` parameters.
    #[cfg(feature = "postgres")]
    Postgres,
    /// MySQL and MariaDB: `` `quoted` `` identifiers, `?` parameters.
    #[cfg(feature = "mysql")]
    MySql,
}

impl Dialect {
    /// `ident` quoted. Identifiers reaching here are validated [`TableName`]s (or derived from
    /// one), which contain no quote character, so no escaping is needed.
    pub(crate) fn quote(self, ident: &str) -> String {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite => format!("\"{ident}\""),
            #[cfg(feature = "postgres")]
            Self::Postgres => format!("\"{ident}\""),
            #[cfg(feature = "mysql")]
            Self::MySql => format!("`{ident}`"),
        }
    }

    /// The `n`th (1-based) query parameter. Every statement binds its parameters in the order
    /// they appear, so positional `?` and numbered `$n` bind alike.
    #[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
    pub(crate) fn param(self, n: usize) -> String {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite => "?".to_owned(),
            #[cfg(feature = "postgres")]
            Self::Postgres => format!("${n}"),
            #[cfg(feature = "mysql")]
            Self::MySql => "?".to_owned(),
        }
    }

    /// The error of a query that reads a stored row back. SQLite keeps any value in any column
    /// (a declared type is only a preference), so one row can hold text or a blob where a number
    /// belongs, or a blob where text does: a value that does not decode is that row's damage, a
    /// malformed record. PostgreSQL and MySQL enforce their column types, so there it means the
    /// table is not the one `create_schema` makes, which fails every row alike: a failure, not a
    /// fresh session on every request.
    pub(crate) fn read_error(self, context: &'static str, error: sqlx::Error) -> BackendError {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite if matches!(error, sqlx::Error::ColumnDecode { .. }) => {
                BackendError::malformed(context, error)
            }
            _ => BackendError::new(context, error),
        }
    }
}

/// The statements every dialect spells alike, built once per backend.
#[derive(Debug)]
pub(crate) struct CommonStatements {
    /// The dialect they are spelled in.
    pub(crate) dialect: Dialect,
    /// Binds: id, now. Returns: data (joined back, for a row stored field by field), version,
    /// expires_at, index_value.
    pub(crate) load: String,
    /// Compare-and-set replace. Binds: data, version, expires_at, index_value, id, expected
    /// version, now. (SQLite and PostgreSQL replace with statements of their own, which know
    /// about fields stored apart.)
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) update: String,
    /// Binds: index_value, now. Returns: id, data (as `load` reads it), version, expires_at,
    /// index_value.
    pub(crate) find_by_index: String,
    /// Binds nothing. Returns: 1 if the table has the `index_value` column, else 0.
    pub(crate) has_index_column: String,
    /// Adds the `index_value` column to a table made before it existed (MySQL: with its
    /// index, which SQLite and PostgreSQL create in `UpsertStatements::create_value_index`).
    pub(crate) add_index_column: String,
    /// Binds: id.
    pub(crate) delete: String,
    /// Binds: now.
    pub(crate) delete_expired: String,
    /// Binds: now. Returns: the count.
    pub(crate) count: String,
    /// Binds nothing.
    pub(crate) delete_all: String,
    /// Binds: now. Returns: id.
    pub(crate) list_keys: String,
}

impl CommonStatements {
    /// The statements on `table` in `dialect`, reading a row's record as `data` (an expression
    /// on the table as `s`; see `postgres::fields::joined_data`).
    pub(crate) fn new(dialect: Dialect, table: &TableName, data: &str) -> Self {
        let t = dialect.quote(table.as_str());
        let p = |n| dialect.param(n);
        let name = table.as_str();
        let has_index_column = match dialect {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => {
                format!(
                    "SELECT COUNT(*) FROM pragma_table_info('{name}') WHERE name = 'index_value'"
                )
            }
            #[cfg(feature = "postgres")]
            Dialect::Postgres => format!(
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = \
                 current_schema() AND table_name = '{name}' AND column_name = 'index_value'"
            ),
            #[cfg(feature = "mysql")]
            Dialect::MySql => format!(
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = \
                 DATABASE() AND table_name = '{name}' AND column_name = 'index_value'"
            ),
        };
        let add_index_column = match dialect {
            #[cfg(feature = "mysql")]
            Dialect::MySql => format!(
                "ALTER TABLE {t} ADD COLUMN {INDEX_COLUMN} CHARACTER SET utf8mb4, \
                 ADD INDEX index_value_index (index_value)"
            ),
            #[allow(unreachable_patterns)]
            _ => format!("ALTER TABLE {t} ADD COLUMN {INDEX_COLUMN}"),
        };
        Self {
            dialect,
            load: format!(
                "SELECT {data}, version, expires_at, index_value FROM {t} s \
                 WHERE id = {} AND expires_at > {}",
                p(1),
                p(2)
            ),
            update: format!(
                "UPDATE {t} SET data = {}, version = {}, expires_at = {}, index_value = {} \
                 WHERE id = {} AND version = {} AND expires_at > {}",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6),
                p(7)
            ),
            find_by_index: format!(
                "SELECT id, {data}, version, expires_at, index_value FROM {t} s \
                 WHERE index_value = {} AND expires_at > {}",
                p(1),
                p(2)
            ),
            has_index_column,
            add_index_column,
            delete: format!("DELETE FROM {t} WHERE id = {}", p(1)),
            delete_expired: format!("DELETE FROM {t} WHERE expires_at <= {}", p(1)),
            count: format!("SELECT COUNT(*) FROM {t} WHERE expires_at > {}", p(1)),
            delete_all: format!("DELETE FROM {t}"),
            list_keys: format!("SELECT id FROM {t} WHERE expires_at > {}", p(1)),
        }
    }
}

/// The `index_value` column as `CREATE TABLE` and `ALTER TABLE` spell it: the
/// `#[session(index)]` value, at most [`MAX_INDEX_LEN`](crate::backend::MAX_INDEX_LEN) bytes.
pub(crate) const INDEX_COLUMN: &str = "index_value VARCHAR(255)";

/// A row as `load` reads it: data, version, expires_at, index_value.
pub(crate) type RecordRow = (String, i64, i64, Option<String>);

/// A record read back from its `data`, `version`, `expires_at` and `index_value` columns; a
/// negative number, or a version no save can follow, is a malformed row.
pub(crate) fn record_from_row(
    (data, version, expires_at, index): RecordRow,
) -> Result<Record, BackendError> {
    Ok(Record {
        data,
        version: stored_version(version)?,
        expires_at: stored_u64(expires_at, "expires_at")?,
        index,
    })
}

/// A count from `COUNT(*)`.
pub(crate) fn stored_count(value: i64) -> Result<u64, BackendError> {
    stored_u64(value, "COUNT(*)")
}

/// How a backend stores a session in parts (`postgres::fields`, `sqlite::fields`): what reads
/// take for the record, the column that marks such a row, and the schema around it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Debug)]
pub(crate) struct PartsSchema {
    /// The record as reads see it: an expression on the sessions table as `s`.
    pub(crate) data: String,
    /// The marking column, as `CREATE TABLE` and `ALTER TABLE` spell it.
    pub(crate) column: &'static str,
    /// Binds nothing. Returns: 1 if the sessions table has the column, else 0.
    pub(crate) has_column: String,
    /// Adds the column to a sessions table made before it existed.
    pub(crate) add_column: String,
    /// The fields table and the triggers that keep it in step, run after the sessions table.
    pub(crate) create: Vec<String>,
}

/// The statements of the backends with an upsert (SQLite and PostgreSQL), formatted once per
/// table; they differ only in quoting and placeholders.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Debug)]
pub(crate) struct UpsertStatements {
    pub(crate) common: CommonStatements,
    pub(crate) create_table: String,
    pub(crate) create_index: String,
    /// The index on `index_value`, created after the column is made sure of.
    pub(crate) create_value_index: String,
    /// Binds nothing. Returns: 1 if the sessions table has the column that marks a session
    /// stored in parts (added after `index_value`), else 0.
    pub(crate) has_parts_column: String,
    /// Adds that column to a sessions table made before it existed.
    pub(crate) add_parts_column: String,
    /// SQLite: creates the row, or replaces an expired one (see `sqlite::fields`). Empty for
    /// PostgreSQL, which saves in [`save_batch`](Self::save_batch).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) insert: String,
    /// SQLite: the compare-and-set replace. Empty for PostgreSQL, likewise.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) update: String,
    /// SQLite: writes one field stored apart. Empty for PostgreSQL, likewise.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) write_field: String,
    /// Binds: expires_at, id, now. Returns: version.
    pub(crate) touch: String,
    /// Run by `create_schema` after the table: the fields table and its triggers (sessions
    /// stored in parts) and, on PostgreSQL, the function and trigger that announce deletes on
    /// [`channel`](Self::channel) (SQLite has no second server to tell).
    pub(crate) after_table: Vec<String>,
    /// The `LISTEN` channel of the table's announcements.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) channel: std::sync::Arc<str>,
    /// PostgreSQL: many compare-and-set saves in one statement (`postgres::batch`). Empty for
    /// SQLite, which saves one at a time.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) save_batch: std::sync::Arc<str>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl UpsertStatements {
    pub(crate) fn new(dialect: Dialect, table: &TableName) -> Self {
        let t = dialect.quote(table.as_str());
        let index = dialect.quote(&table.index_name());
        let p = |n| dialect.param(n);
        // Rows may be stored in parts: reads put them back together.
        let (parts, save_batch, [insert, update, write_field]) = match dialect {
            #[cfg(feature = "postgres")]
            Dialect::Postgres => {
                let PostgresFields {
                    mut parts,
                    table: fields,
                } = PostgresFields::new(table);
                parts.create.extend(announce_statements(table));
                let save_batch = crate::backend::postgres::batch::statement(&t, &fields);
                (parts, save_batch, Default::default())
            }
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => {
                let SqliteFields {
                    parts,
                    insert,
                    update,
                    write,
                } = SqliteFields::new(table);
                (parts, String::new(), [insert, update, write])
            }
            #[allow(unreachable_patterns)]
            _ => unreachable!("only SQLite and PostgreSQL have upsert statements"),
        };
        Self {
            common: CommonStatements::new(dialect, table, &parts.data),
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id TEXT PRIMARY KEY NOT NULL, \
                 data TEXT NOT NULL, \
                 version BIGINT NOT NULL, \
                 expires_at BIGINT NOT NULL, \
                 {INDEX_COLUMN}, \
                 {})",
                parts.column
            ),
            create_index: format!("CREATE INDEX IF NOT EXISTS {index} ON {t} (expires_at)"),
            create_value_index: format!(
                "CREATE INDEX IF NOT EXISTS {} ON {t} (index_value)",
                dialect.quote(&table.derived_name("_index_value"))
            ),
            has_parts_column: parts.has_column,
            add_parts_column: parts.add_column,
            insert,
            update,
            write_field,
            touch: format!(
                "UPDATE {t} SET expires_at = {} WHERE id = {} AND expires_at > {} RETURNING version",
                p(1),
                p(2),
                p(3)
            ),
            after_table: parts.create,
            channel: table.derived_name("_changes").into(),
            save_batch: save_batch.into(),
        }
    }
}

/// PostgreSQL's announcements of deletes: a row trigger that `pg_notify`s
/// `<storage key> - <origin>` on the table's channel. `NOTIFY` is transactional, so an
/// announcement goes out with its delete's commit, never before and never for a delete rolled
/// back. The origin is the writing connection's `typed_session.origin` setting (set by
/// `PostgresBackend::connect`), so each instance can leave its own announcements out. Saves are
/// announced by `PostgresBackend` after they commit, in batches (a `NOTIFY` in every save's
/// transaction serialised the commits); tables made by an earlier version had the trigger
/// announce saves too, and `create_schema` replaces it.
#[cfg(feature = "postgres")]
fn announce_statements(table: &TableName) -> Vec<String> {
    let t = Dialect::Postgres.quote(table.as_str());
    let function = Dialect::Postgres.quote(&table.derived_name("_announce"));
    let channel = table.derived_name("_changes");
    let origin = "coalesce(current_setting('typed_session.origin', true), '')";
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN \
             PERFORM pg_notify('{channel}', OLD.id || ' - ' || {origin}); RETURN OLD; \
             END $$"
        ),
        format!(
            "CREATE OR REPLACE TRIGGER {function} AFTER DELETE \
             ON {t} FOR EACH ROW EXECUTE FUNCTION {function}()"
        ),
    ]
}

/// The methods every SQL backend shares word for word (their queries differ only in the
/// statements prepared at construction): written once here, expanded in each backend's
/// `SessionBackend` impl.
macro_rules! shared_sql_methods {
    () => {
        async fn load(&self, key: &StorageKey, now: u64) -> Result<Option<Record>, BackendError> {
            let context = "loading a session";
            let row = sqlx::query_as::<_, RecordRow>(&self.statements.common.load)
                .bind(key.as_str())
                .bind(millis_to_db(now))
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.statements.common.dialect.read_error(context, e))?;
            row.map(record_from_row).transpose()
        }

        async fn delete(&self, key: &StorageKey) -> Result<(), BackendError> {
            sqlx::query(&self.statements.common.delete)
                .bind(key.as_str())
                .execute(&self.pool)
                .await
                .map_err(|e| BackendError::new("deleting a session", e))?;
            Ok(())
        }

        async fn delete_expired(&self, now: u64) -> Result<u64, BackendError> {
            let done = sqlx::query(&self.statements.common.delete_expired)
                .bind(millis_to_db(now))
                .execute(&self.pool)
                .await
                .map_err(|e| BackendError::new("deleting expired sessions", e))?;
            Ok(done.rows_affected())
        }

        async fn count(&self, now: u64) -> Result<u64, BackendError> {
            let count = sqlx::query_scalar::<_, i64>(&self.statements.common.count)
                .bind(millis_to_db(now))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| BackendError::new("counting sessions", e))?;
            stored_count(count)
        }

        async fn delete_all(&self) -> Result<(), BackendError> {
            sqlx::query(&self.statements.common.delete_all)
                .execute(&self.pool)
                .await
                .map_err(|e| BackendError::new("deleting all sessions", e))?;
            Ok(())
        }

        async fn find_by_index(
            &self,
            index: &str,
            now: u64,
        ) -> Result<Vec<(StorageKey, Record)>, BackendError> {
            let context = "finding sessions by index";
            let rows = sqlx::query_as::<_, (String, String, i64, i64, Option<String>)>(
                &self.statements.common.find_by_index,
            )
            .bind(index)
            .bind(millis_to_db(now))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| BackendError::new(context, e))?;
            // A damaged row is left out, as the trait's default does.
            Ok(rows
                .into_iter()
                .filter_map(|(id, data, version, expires_at, index)| {
                    let key = stored_key(&id).ok()?;
                    let record = record_from_row((data, version, expires_at, index)).ok()?;
                    Some((key, record))
                })
                .collect())
        }

        async fn list_keys(&self, now: u64) -> Result<Vec<StorageKey>, BackendError> {
            let ids = sqlx::query_scalar::<_, String>(&self.statements.common.list_keys)
                .bind(millis_to_db(now))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| BackendError::new("listing session keys", e))?;
            ids.iter().map(|id| stored_key(id)).collect()
        }
    };
}

/// The constructors every SQL backend shares, for its pool type and its statements'
/// constructor.
macro_rules! shared_sql_constructors {
    ($pool:ty, $statements:expr $(, $field:ident: $value:expr)*) => {
        /// Uses an existing pool and the table `typed_sessions`.
        #[must_use]
        pub fn from_pool(pool: $pool) -> Self {
            Self {
                pool,
                statements: Arc::new($statements(&TableName::default_table())),
                $($field: $value,)*
            }
        }

        /// Uses table `name` instead; it must match `[A-Za-z_][A-Za-z0-9_]{0,62}`.
        pub fn with_table_name(self, name: &str) -> Result<Self, BackendError> {
            let table = TableName::new(name)?;
            Ok(Self {
                statements: Arc::new($statements(&table)),
                ..self
            })
        }

        /// The pool, for your own queries or to close it.
        #[must_use]
        pub fn pool(&self) -> &$pool {
            &self.pool
        }

        /// Adds the `index_value` column (and its index) to a table created before it existed.
        async fn add_index_column(&self) -> Result<(), BackendError> {
            let common = &self.statements.common;
            self.add_column(&common.has_index_column, &common.add_index_column)
                .await
        }

        /// Adds a column to a table created before it existed: `has_column` counts it, `add`
        /// adds it. Two servers starting at once may both try: the loser's error is no error
        /// when the column is there after all.
        async fn add_column(&self, has_column: &str, add: &str) -> Result<(), BackendError> {
            let context = "adding a column to the sessions table (where the application may \
                           not run DDL, add it in a migration, as the backend's schema shows, \
                           and build with create_schema(false))";
            let has_column = || async {
                sqlx::query_scalar::<_, i64>(has_column)
                    .fetch_one(&self.pool)
                    .await
                    .map(|count| count > 0)
                    .map_err(|e| BackendError::new(context, e))
            };
            if has_column().await? {
                return Ok(());
            }
            match sqlx::query(add).execute(&self.pool).await {
                Ok(_) => Ok(()),
                Err(_) if has_column().await? => Ok(()),
                Err(error) => Err(BackendError::new(context, error)),
            }
        }
    };
}

/// The `SessionBackend` impl of the backends with an upsert (`INSERT … ON CONFLICT … WHERE
/// expired`) and `UPDATE … RETURNING`: SQLite and PostgreSQL.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! upsert_sql_backend {
    ($backend:ty $(, { $($extra:item)* })?) => {
        impl SessionBackend for $backend {
            $($($extra)*)?

            async fn create_schema(&self) -> Result<(), BackendError> {
                let context = "creating the sessions table";
                sqlx::query(&self.statements.create_table)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| BackendError::new(context, e))?;
                self.add_index_column().await?;
                let statements = &self.statements;
                self.add_column(&statements.has_parts_column, &statements.add_parts_column)
                    .await?;
                let rest = [
                    &self.statements.create_index,
                    &self.statements.create_value_index,
                ]
                .into_iter()
                .chain(&self.statements.after_table);
                for statement in rest {
                    sqlx::query(statement)
                        .execute(&self.pool)
                        .await
                        .map_err(|e| BackendError::new(context, e))?;
                }
                Ok(())
            }

            async fn save(
                &self,
                key: &StorageKey,
                record: &Record,
                expected_version: Option<u64>,
                now: u64,
            ) -> Result<SaveOutcome, BackendError> {
                self.save_record(key, record, expected_version, now).await
            }

            /// With `with_partial_writes`: the session in parts (see the backend's
            /// `ApartSave`), only the changed ones when the stored row is the one this save
            /// replaces, stored in the same parts (else every part). Without it,
            /// [`save`](SessionBackend::save).
            async fn save_fields(
                &self,
                key: &StorageKey,
                fields: &FieldSave<'_>,
                expected_version: Option<u64>,
                now: u64,
            ) -> Result<SaveOutcome, BackendError> {
                let apart = self
                    .partial_writes
                    .then(|| ApartSave::new(fields, expected_version.is_some()))
                    .flatten();
                let Some(apart) = apart else {
                    return self
                        .save_record(key, fields.record(), expected_version, now)
                        .await;
                };
                let record = fields.record();
                let mut written = self
                    .save_apart(key, record, &apart, expected_version, now)
                    .await?;
                // Not the stored form a partial save builds on (other parts, or stored whole
                // meanwhile by a server without the setting): every part, under the same
                // compare-and-set.
                if !written
                    && apart.partial
                    && let Some(every) = ApartSave::new(fields, false)
                {
                    written = self
                        .save_apart(key, record, &every, expected_version, now)
                        .await?;
                }
                Ok(SaveOutcome::written(written))
            }

            async fn touch(
                &self,
                key: &StorageKey,
                expires_at: u64,
                now: u64,
            ) -> Result<Option<u64>, BackendError> {
                let context = "touching a session";
                let version = sqlx::query_scalar::<_, i64>(&self.statements.touch)
                    .bind(millis_to_db(expires_at))
                    .bind(key.as_str())
                    .bind(millis_to_db(now))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.statements.common.dialect.read_error(context, e))?;
                version.map(stored_version).transpose()
            }

            shared_sql_methods!();
        }
    };
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use upsert_sql_backend;
pub(crate) use {shared_sql_constructors, shared_sql_methods};
