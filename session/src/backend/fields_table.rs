//! Sessions stored field by field in SQL (SQLite and PostgreSQL, with `with_partial_writes`):
//! the row keeps the record's head in `data` and the number of fields in `field_count`, and
//! `<table>_fields` keeps one row per field, so that a save writes only the fields that
//! changed.
//!
//! Loads join the parts back into the record exactly as it was saved (see [`joined_data`]), so
//! every reader handles both forms whatever its own setting. Triggers keep the field rows in
//! step with their session: deleting a session deletes its fields, and a save that stores it
//! whole again (`field_count` NULL), or with fewer fields, deletes the rows left over.

use crate::backend::FieldSave;
use crate::backend::sql::{Dialect, TableName};

/// The column that marks a row stored field by field: how many fields it has. `NULL`: `data`
/// holds the whole record.
pub(crate) const FIELD_COUNT_COLUMN: &str = "field_count INTEGER";

/// The statements that make and keep the fields table, built once per backend.
#[derive(Debug)]
pub(crate) struct FieldsTable {
    /// The fields table, quoted.
    pub(crate) table: String,
    /// Creates the fields table and the triggers that keep it in step (after the sessions
    /// table and its `field_count` column).
    pub(crate) create: Vec<String>,
    /// Binds nothing. Returns: 1 if the sessions table has the `field_count` column, else 0.
    pub(crate) has_count_column: String,
    /// Adds the `field_count` column to a sessions table made before it existed.
    pub(crate) add_count_column: String,
    /// Writes one field. Binds: id, position, member.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) write: String,
}

impl FieldsTable {
    /// The fields table of sessions table `table`, in `dialect`.
    pub(crate) fn new(dialect: Dialect, table: &TableName) -> Self {
        let t = dialect.quote(table.as_str());
        let fields = dialect.quote(&table.derived_name("_fields"));
        let name = table.as_str();
        let p = |n| dialect.param(n);
        let create_table = format!(
            "CREATE TABLE IF NOT EXISTS {fields} (\
             id TEXT NOT NULL, \
             position INTEGER NOT NULL, \
             member TEXT NOT NULL, \
             PRIMARY KEY (id, position))"
        );
        // Field rows past the new count (all of them, for a row stored whole again) go when a
        // save changes the count; a session's rows go with it.
        let leftover = "OLD.field_count IS NOT NULL AND \
                        (NEW.field_count IS NULL OR NEW.field_count < OLD.field_count)";
        let create = match dialect {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => {
                let trim = dialect.quote(&table.derived_name("_trimfields"));
                let drop = dialect.quote(&table.derived_name("_dropfields"));
                vec![
                    create_table,
                    format!(
                        "CREATE TRIGGER IF NOT EXISTS {trim} AFTER UPDATE OF field_count ON {t} \
                         WHEN {leftover} BEGIN \
                         DELETE FROM {fields} WHERE id = NEW.id \
                         AND position >= coalesce(NEW.field_count, 0); END"
                    ),
                    format!(
                        "CREATE TRIGGER IF NOT EXISTS {drop} AFTER DELETE ON {t} BEGIN \
                         DELETE FROM {fields} WHERE id = OLD.id; END"
                    ),
                ]
            }
            #[cfg(feature = "postgres")]
            Dialect::Postgres => {
                let trim = dialect.quote(&table.derived_name("_trimfields"));
                let drop = dialect.quote(&table.derived_name("_dropfields"));
                vec![
                    create_table,
                    format!(
                        "CREATE OR REPLACE FUNCTION {trim}() RETURNS trigger LANGUAGE plpgsql \
                         AS $$ BEGIN DELETE FROM {fields} WHERE id = NEW.id \
                         AND position >= coalesce(NEW.field_count, 0); RETURN NULL; END $$"
                    ),
                    format!(
                        "CREATE OR REPLACE TRIGGER {trim} AFTER UPDATE OF field_count ON {t} \
                         FOR EACH ROW WHEN ({leftover}) EXECUTE FUNCTION {trim}()"
                    ),
                    // Once per statement, with the deleted rows as a table: a purge of many
                    // sessions is one delete of their fields.
                    format!(
                        "CREATE OR REPLACE FUNCTION {drop}() RETURNS trigger LANGUAGE plpgsql \
                         AS $$ BEGIN DELETE FROM {fields} f USING gone WHERE f.id = gone.id; \
                         RETURN NULL; END $$"
                    ),
                    format!(
                        "CREATE OR REPLACE TRIGGER {drop} AFTER DELETE ON {t} \
                         REFERENCING OLD TABLE AS gone FOR EACH STATEMENT \
                         EXECUTE FUNCTION {drop}()"
                    ),
                ]
            }
            #[allow(unreachable_patterns)]
            _ => unreachable!("only SQLite and PostgreSQL store fields apart"),
        };
        let has_count_column = match dialect {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => format!(
                "SELECT COUNT(*) FROM pragma_table_info('{name}') WHERE name = 'field_count'"
            ),
            #[allow(unreachable_patterns)]
            _ => format!(
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = \
                 current_schema() AND table_name = '{name}' AND column_name = 'field_count'"
            ),
        };
        Self {
            write: format!(
                "INSERT INTO {fields} (id, position, member) VALUES ({}, {}, {}) \
                 ON CONFLICT (id, position) DO UPDATE SET member = excluded.member",
                p(1),
                p(2),
                p(3)
            ),
            create,
            has_count_column,
            add_count_column: format!("ALTER TABLE {t} ADD COLUMN {FIELD_COUNT_COLUMN}"),
            table: fields,
        }
    }
}

/// The record's data as reads see it, for a query on the sessions table as `s`: `data` for a
/// row stored whole, else its head joined with its field rows in order. A row whose field rows
/// are not all there reads as `''`, a malformed record, rather than as a session missing some
/// of its fields.
pub(crate) fn joined_data(dialect: Dialect, fields: &str) -> String {
    let joined = match dialect {
        #[cfg(feature = "postgres")]
        Dialect::Postgres => "string_agg(f.member, ',' ORDER BY f.position)",
        // `ORDER BY` inside an aggregate: SQLite 3.44 and later (the bundled one is newer).
        #[allow(unreachable_patterns)]
        _ => "group_concat(f.member, ',' ORDER BY f.position)",
    };
    format!(
        "CASE WHEN s.field_count IS NULL THEN s.data ELSE (\
           SELECT CASE WHEN count(*) = s.field_count \
             THEN s.data || '\"fields\":{{' || coalesce({joined}, '') || '}}}}' \
             ELSE '' END \
           FROM {fields} f WHERE f.id = s.id) END"
    )
}

/// A save as the fields table takes it.
#[derive(Debug)]
pub(crate) struct ApartSave<'a> {
    /// The row's `data`: the record's head.
    pub(crate) head: &'a str,
    /// The row's `field_count`.
    pub(crate) field_count: i32,
    /// Whether only changed fields are written: the stored row must then be the one this save
    /// replaces, stored field by field with as many fields.
    pub(crate) partial: bool,
    /// The fields to write, with their positions.
    pub(crate) members: Vec<(i32, &'a str)>,
}

impl<'a> ApartSave<'a> {
    /// `fields` cut for the fields table, `partial` when the backend may write only the
    /// changed fields; `None` for a record not worth storing apart (see
    /// [`FieldSave::worth_storing_apart`]), which is saved whole.
    pub(crate) fn new(fields: &FieldSave<'a>, partial: bool) -> Option<Self> {
        if !fields.worth_storing_apart() {
            return None;
        }
        let field_count = i32::try_from(fields.members().len()).ok()?;
        let partial = partial && fields.is_partial();
        let members = (0..)
            .zip(fields.members())
            .filter(|(_, member)| member.changed || !partial)
            .map(|(position, member)| (position, member.json))
            .collect();
        Some(Self {
            head: fields.head(),
            field_count,
            partial,
            members,
        })
    }
}

/// `with_partial_writes`, as SQLite's and PostgreSQL's backends spell it alike.
macro_rules! partial_writes_method {
    ($backend:ident) => {
        /// Stores each session field by field, so that a save writes only the fields that
        /// changed (off by default).
        ///
        /// The row keeps the record's head in `data` and the number of fields in
        /// `field_count`; the table `<table>_fields` (made by
        /// [`create_schema`](SessionBackend::create_schema), with the triggers that keep it in
        /// step) keeps one row per field. A save that replaces the record this server last
        /// wrote (records of 512 bytes or more) writes only the changed fields, under the same
        /// compare-and-set on the version; any other save writes every field. A record sealed
        /// whole (`with_encrypt_all`) is stored whole.
        ///
        /// Every reader joins the parts back into the record exactly as it was saved, whatever
        /// its own setting, so servers with and without it share sessions, and it can be
        /// turned on or off in a rolling deploy; it needs a version that reads both forms on
        /// every server first.
        ///
        /// ```no_run
        /// # async fn run() -> Result<(), typed_session::backend::BackendError> {
        #[doc = concat!("let backend = typed_session::backend::", stringify!($backend))]
        ///     ::connect(URL)
        ///     .await?
        ///     .with_partial_writes(true);
        /// # Ok(())
        /// # }
        /// # const URL: &str = "";
        /// ```
        #[must_use]
        pub fn with_partial_writes(self, enabled: bool) -> Self {
            Self {
                partial_writes: enabled,
                ..self
            }
        }
    };
}

pub(crate) use partial_writes_method;
