//! The validated table name of the SQL and SurrealDB backends.

use crate::backend::BackendError;

/// The table a backend uses unless told otherwise.
const DEFAULT_TABLE: &str = "typed_sessions";

/// The longest identifier every supported server keeps whole (PostgreSQL truncates past 63
/// bytes, MySQL refuses past 64).
const MAX_IDENTIFIER_LEN: usize = 63;

/// A table name checked to be a plain identifier, so it can be written into a query (SQL or
/// SurrealQL) without escaping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableName(Box<str>);

impl TableName {
    /// Checks `name` against `[A-Za-z_][A-Za-z0-9_]{0,62}`.
    pub(crate) fn new(name: &str) -> Result<Self, BackendError> {
        let mut bytes = name.bytes();
        let valid = bytes
            .next()
            .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && name.len() <= MAX_IDENTIFIER_LEN;
        if valid {
            Ok(Self(name.into()))
        } else {
            Err(BackendError::new(
                "choosing the sessions table",
                format!(
                    "invalid table name {name:?}: it must match [A-Za-z_][A-Za-z0-9_]{{0,62}} \
                     (a letter or underscore, then at most 62 letters, digits or underscores)"
                ),
            ))
        }
    }

    /// The default table, `typed_sessions`.
    pub(crate) fn default_table() -> Self {
        Self(DEFAULT_TABLE.into())
    }

    /// The name as given.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The name of the index on `expires_at`: `<table>_expires_at`. Index names are global to a
    /// schema in PostgreSQL and SQLite, so a long table name is cut and disambiguated with a
    /// hash of the whole name rather than left to the server to truncate (two tables sharing a
    /// long prefix would otherwise share one index name, and the second index would silently
    /// not be created). MySQL scopes index names to their table and needs none of this.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn index_name(&self) -> String {
        self.derived_name("_expires_at")
    }

    /// The name of the object `<table><suffix>` (an index, a trigger, a function, a channel),
    /// cut and disambiguated as [`index_name`](Self::index_name) explains. `suffix` is short (at
    /// most 11 bytes).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn derived_name(&self, suffix: &str) -> String {
        use sha2::{Digest, Sha256};

        if self.0.len() + suffix.len() <= MAX_IDENTIFIER_LEN {
            return format!("{}{suffix}", self.0);
        }
        let digest = Sha256::digest(self.0.as_bytes());
        let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        let head: String = self.0.chars().take(42).collect();
        format!("{head}_{hash}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers() {
        for good in ["typed_sessions", "_t", "T1", &"a".repeat(63)] {
            assert!(TableName::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1abc",
            "bad name; drop table x",
            "a-b",
            "\"x\"",
            "é",
            &"a".repeat(64),
        ] {
            let err = TableName::new(bad).unwrap_err();
            assert!(err.to_string().contains("[A-Za-z_]"), "{err}");
        }
    }

    #[test]
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    fn index_names_fit_and_stay_distinct() {
        assert_eq!(
            TableName::default_table().index_name(),
            "typed_sessions_expires_at"
        );
        let long_a = TableName::new(&format!("{}a", "x".repeat(62))).unwrap();
        let long_b = TableName::new(&format!("{}b", "x".repeat(62))).unwrap();
        assert!(long_a.index_name().len() <= MAX_IDENTIFIER_LEN);
        assert_ne!(long_a.index_name(), long_b.index_name());
    }
}
