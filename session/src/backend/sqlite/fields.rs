//! Large fields stored apart on SQLite (with `with_partial_writes`).
//!
//! SQLite rewrites a whole row on any update, so a one-field change of a session holding a
//! large field would copy that field too. Here each field of 2 KiB or more lives in a row of
//! `<table>_fields` of its own, and the session's row keeps the rest of the record with a
//! placeholder (the byte `0x01`, which no JSON text holds raw) where each of them was, plus
//! `fields_apart`, a bit per position telling which fields those are. A save that changes
//! only small fields updates the session's row alone, one statement as before; one that
//! changes a large field writes its row too, in the same transaction.
//!
//! Fields of every size stored apart, as PostgreSQL does, measured slower here: a second
//! table's write per save cost more than the copy it saved.

use crate::backend::FieldSave;
use crate::backend::sql::{Dialect, PartsSchema, TableName};

/// Fields at least this long (in their JSON member form) are stored apart: shorter ones cost
/// less to rewrite with the row than a write of a row of their own.
const LARGE_FIELD: usize = 2048;

/// What stands in the session's row for a field stored apart.
const PLACEHOLDER: char = '\u{1}';

/// The column that marks a row with fields stored apart: a bit per position of those fields.
/// `NULL`: `data` holds the whole record.
const FIELDS_APART_COLUMN: &str = "fields_apart INTEGER";

/// The fields table of a sessions table, and the saves that know about it, built once per
/// backend.
#[derive(Debug)]
pub(crate) struct FieldsTable {
    /// Its schema, and the record as reads see it.
    pub(crate) parts: PartsSchema,
    /// Creates the row, or replaces an expired one. Binds: id, data, version, expires_at,
    /// index_value, fields_apart, now.
    pub(crate) insert: String,
    /// Compare-and-set replace. Binds: data, version, expires_at, index_value, fields_apart,
    /// id, expected version, now, and twice the `fields_apart` a partial save expects stored
    /// (NULL for a save that writes every field).
    pub(crate) update: String,
    /// Writes one field. Binds: id, position, member.
    pub(crate) write: String,
}

impl FieldsTable {
    /// The fields table of sessions table `table`.
    pub(crate) fn new(table: &TableName) -> Self {
        let quote = |name: &str| Dialect::Sqlite.quote(name);
        let t = quote(table.as_str());
        let fields = quote(&table.derived_name("_fields"));
        let trim = quote(&table.derived_name("_trimfields"));
        let drop = quote(&table.derived_name("_dropfields"));
        let name = table.as_str();
        // The position of the next field stored apart, after `parts.position`.
        let next = format!(
            "(SELECT min(g.position) FROM {fields} g \
              WHERE g.id = s.id AND g.position > parts.position)"
        );
        let parts = PartsSchema {
            // The row's data with its placeholders replaced, in order, by its field rows in
            // position order; '' when they are not all there (a malformed record, rather than
            // a session missing some of its fields).
            data: format!(
                "CASE WHEN s.fields_apart IS NULL THEN s.data ELSE coalesce((\
                   WITH RECURSIVE parts(n, position, rest, done) AS (\
                     SELECT 0, -1, s.data, '' \
                     UNION ALL \
                     SELECT n + 1, {next}, substr(rest, instr(rest, char(1)) + 1), \
                            done || substr(rest, 1, instr(rest, char(1)) - 1) || \
                            (SELECT member FROM {fields} f WHERE f.id = s.id \
                             AND f.position = {next}) \
                     FROM parts WHERE instr(rest, char(1)) > 0) \
                   SELECT CASE WHEN n = (SELECT count(*) FROM {fields} f WHERE f.id = s.id) \
                     THEN done || rest ELSE '' END \
                   FROM parts ORDER BY n DESC LIMIT 1), '') END"
            ),
            has_column: format!(
                "SELECT COUNT(*) FROM pragma_table_info('{name}') WHERE name = 'fields_apart'"
            ),
            column: FIELDS_APART_COLUMN,
            add_column: format!("ALTER TABLE {t} ADD COLUMN {FIELDS_APART_COLUMN}"),
            create: vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {fields} (\
                     id TEXT NOT NULL, \
                     position INTEGER NOT NULL, \
                     member TEXT NOT NULL, \
                     PRIMARY KEY (id, position))"
                ),
                // A save that moves fields back into the row (or changes which are apart)
                // drops the rows it no longer uses; a session's rows go with it.
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {trim} AFTER UPDATE OF fields_apart ON {t} \
                     WHEN OLD.fields_apart IS NOT NULL \
                     AND NEW.fields_apart IS NOT OLD.fields_apart BEGIN \
                     DELETE FROM {fields} WHERE id = NEW.id AND (NEW.fields_apart IS NULL \
                     OR (NEW.fields_apart >> position) & 1 = 0); END"
                ),
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {drop} AFTER DELETE ON {t} BEGIN \
                     DELETE FROM {fields} WHERE id = OLD.id; END"
                ),
            ],
        };
        Self {
            parts,
            // The upsert's WHERE turns "a live row exists" into zero rows changed.
            insert: format!(
                "INSERT INTO {t} (id, data, version, expires_at, index_value, fields_apart) \
                 VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                 version = excluded.version, expires_at = excluded.expires_at, \
                 index_value = excluded.index_value, fields_apart = excluded.fields_apart \
                 WHERE {t}.expires_at <= ?"
            ),
            update: format!(
                "UPDATE {t} SET data = ?, version = ?, expires_at = ?, index_value = ?, \
                 fields_apart = ? \
                 WHERE id = ? AND version = ? AND expires_at > ? \
                 AND (? IS NULL OR fields_apart = ?)"
            ),
            write: format!(
                "INSERT INTO {fields} (id, position, member) VALUES (?, ?, ?) \
                 ON CONFLICT (id, position) DO UPDATE SET member = excluded.member"
            ),
        }
    }
}

/// A save as SQLite stores it: the row's data, with placeholders for the large fields, and
/// the large fields to write.
#[derive(Debug)]
pub(crate) struct ApartSave<'a> {
    /// The row's `data`.
    pub(crate) data: String,
    /// The row's `fields_apart`: a bit per position of a field stored apart.
    pub(crate) fields_apart: i64,
    /// Whether only the changed large fields are written: the stored row must then have the
    /// same fields apart (and be the one this save replaces, as the compare-and-set checks).
    pub(crate) partial: bool,
    /// The large fields to write, with their positions.
    pub(crate) members: Vec<(i64, &'a str)>,
}

impl<'a> ApartSave<'a> {
    /// `fields` cut for SQLite, `partial` when the backend may write only the changed fields;
    /// `None` for a record with no field large enough to store apart, which is saved whole.
    pub(crate) fn new(fields: &FieldSave<'a>, partial: bool) -> Option<Self> {
        if !fields.worth_storing_apart() {
            return None;
        }
        let partial = partial && fields.is_partial();
        let mut apart: u64 = 0;
        let mut data = String::with_capacity(fields.head().len() + 64);
        let mut members = Vec::new();
        data.push_str(fields.head());
        data.push_str("\"fields\":{");
        for (position, member) in (0u32..).zip(fields.members()) {
            if position > 0 {
                data.push(',');
            }
            if member.json.len() >= LARGE_FIELD {
                apart |= 1u64 << position;
                data.push(PLACEHOLDER);
                if member.changed || !partial {
                    members.push((i64::from(position), member.json));
                }
            } else {
                data.push_str(member.json);
            }
        }
        data.push_str("}}");
        // No field to store apart; or a placeholder the data holds already (no JSON text
        // does), which a read would take for one.
        let placeholders = apart.count_ones() as usize;
        if apart == 0 || data.matches(PLACEHOLDER).count() != placeholders {
            return None;
        }
        Some(Self {
            data,
            // The bits as SQLite's 64-bit integer holds them (position 63 is the sign bit).
            fields_apart: apart.cast_signed(),
            partial,
            members,
        })
    }
}
