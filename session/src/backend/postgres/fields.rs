//! Sessions stored field by field in PostgreSQL (with `with_partial_writes`): the row keeps the
//! record's head in `data` and the number of fields in `field_count`, and `<table>_fields`
//! keeps one row per field, so that a save writes only the fields that changed.
//!
//! Loads join the parts back into the record exactly as it was saved (see [`joined_data`]), so
//! every reader handles both forms whatever its own setting. Triggers keep the field rows in
//! step with their session: deleting a session deletes its fields, and a save that stores it
//! whole again (`field_count` NULL), or with fewer fields, deletes the rows left over.

use crate::backend::FieldSave;
use crate::backend::sql::{Dialect, PartsSchema, TableName};

/// The column that marks a row stored field by field: how many fields it has. `NULL`: `data`
/// holds the whole record.
const FIELD_COUNT_COLUMN: &str = "field_count INTEGER";

/// The fields table of a sessions table, built once per backend.
#[derive(Debug)]
pub(crate) struct FieldsTable {
    /// Its schema, and the record as reads see it.
    pub(crate) parts: PartsSchema,
    /// The fields table, quoted (for the save statement).
    pub(crate) table: String,
}

impl FieldsTable {
    /// The fields table of sessions table `table`.
    pub(crate) fn new(table: &TableName) -> Self {
        let quote = |name: &str| Dialect::Postgres.quote(name);
        let t = quote(table.as_str());
        let fields = quote(&table.derived_name("_fields"));
        let trim = quote(&table.derived_name("_trimfields"));
        let drop = quote(&table.derived_name("_dropfields"));
        let wipe = quote(&table.derived_name("_wipefields"));
        let name = table.as_str();
        // Field rows past the new count (all of them, for a row stored whole again) go when a
        // save changes the count; a session's rows go with it.
        let leftover = "OLD.field_count IS NOT NULL AND \
                        (NEW.field_count IS NULL OR NEW.field_count < OLD.field_count)";
        let create = vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {fields} (\
                 id TEXT NOT NULL, \
                 position INTEGER NOT NULL, \
                 member TEXT NOT NULL, \
                 PRIMARY KEY (id, position))"
            ),
            format!(
                "CREATE OR REPLACE FUNCTION {trim}() RETURNS trigger LANGUAGE plpgsql \
                 AS $$ BEGIN DELETE FROM {fields} WHERE id = NEW.id \
                 AND position >= coalesce(NEW.field_count, 0); RETURN NULL; END $$"
            ),
            format!(
                "CREATE OR REPLACE TRIGGER {trim} AFTER UPDATE OF field_count ON {t} \
                 FOR EACH ROW WHEN ({leftover}) EXECUTE FUNCTION {trim}()"
            ),
            // Once per statement, with the deleted rows as a table: a purge of many sessions
            // is one delete of their fields.
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
            // A TRUNCATE fires no delete trigger.
            format!(
                "CREATE OR REPLACE FUNCTION {wipe}() RETURNS trigger LANGUAGE plpgsql \
                 AS $$ BEGIN TRUNCATE {fields}; RETURN NULL; END $$"
            ),
            format!(
                "CREATE OR REPLACE TRIGGER {wipe} AFTER TRUNCATE ON {t} \
                 FOR EACH STATEMENT EXECUTE FUNCTION {wipe}()"
            ),
        ];
        Self {
            parts: PartsSchema {
                data: joined_data(&fields),
                column: FIELD_COUNT_COLUMN,
                has_column: format!(
                    "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = \
                     current_schema() AND table_name = '{name}' AND column_name = 'field_count'"
                ),
                add_column: format!("ALTER TABLE {t} ADD COLUMN {FIELD_COUNT_COLUMN}"),
                create,
            },
            table: fields,
        }
    }
}

/// The record's data as reads see it, for a query on the sessions table as `s`: `data` for a
/// row stored whole, else its head joined with its field rows in order. A row whose field rows
/// are not all there reads as `''`, a malformed record, rather than as a session missing some
/// of its fields.
fn joined_data(fields: &str) -> String {
    format!(
        "CASE WHEN s.field_count IS NULL THEN s.data ELSE (\
           SELECT CASE WHEN count(*) = s.field_count \
             THEN s.data || '\"fields\":{{' || \
                  coalesce(string_agg(f.member, ',' ORDER BY f.position), '') || '}}}}' \
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
