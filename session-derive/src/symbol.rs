//! Every attribute name the derive reads, in one table: parsing matches against these
//! constants, and the "expected ..." part of an unknown-attribute error is built from the key
//! lists, so a new attribute cannot be accepted yet missing from the message.

use std::fmt::{self, Display};

use syn::{Ident, Path};

/// An attribute name, compared against the identifiers the user wrote.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Symbol(&'static str);

/// `#[session(...)]`, the one attribute the derive owns.
pub(crate) const SESSION: Symbol = Symbol("session");

/// `crate = "path"`: where `typed_session` is.
pub(crate) const CRATE: Symbol = Symbol("crate");
/// `handle = "Name"`: the generated accessor type's name.
pub(crate) const HANDLE: Symbol = Symbol("handle");
/// `version = N`: the schema version.
pub(crate) const VERSION: Symbol = Symbol("version");
/// `migrate = "path"`: the migration function.
pub(crate) const MIGRATE: Symbol = Symbol("migrate");

/// `memory_only`: never persisted.
pub(crate) const MEMORY_ONLY: Symbol = Symbol("memory_only");
/// `flash`: read once.
pub(crate) const FLASH: Symbol = Symbol("flash");
/// `encrypt`: encrypted at rest.
pub(crate) const ENCRYPT: Symbol = Symbol("encrypt");
/// `renew_on_change`: a change renews the session id.
pub(crate) const RENEW_ON_CHANGE: Symbol = Symbol("renew_on_change");
/// `index`: sessions can be listed and ended by this field's value.
pub(crate) const INDEX: Symbol = Symbol("index");
/// `csrf`: the session's CSRF secret.
pub(crate) const CSRF: Symbol = Symbol("csrf");
/// `default = "path"`: the initial value's function.
pub(crate) const DEFAULT: Symbol = Symbol("default");
/// `rename = "key"`: the stored key.
pub(crate) const RENAME: Symbol = Symbol("rename");
/// `alias = "old_key"`: an older stored key still read.
pub(crate) const ALIAS: Symbol = Symbol("alias");

/// How an attribute is written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Form {
    /// A bare name: `#[session(flash)]`.
    Flag,
    /// A name and a value, shown in messages as `name = {placeholder}`.
    Value(&'static str),
}

/// One accepted attribute key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key {
    pub(crate) name: Symbol,
    pub(crate) form: Form,
}

const fn flag(name: Symbol) -> Key {
    Key {
        name,
        form: Form::Flag,
    }
}

const fn value(name: Symbol, placeholder: &'static str) -> Key {
    Key {
        name,
        form: Form::Value(placeholder),
    }
}

/// The keys accepted on the struct, in the order error messages list them.
pub(crate) const CONTAINER_KEYS: &[Key] = &[
    value(VERSION, "N"),
    value(MIGRATE, "\"path\""),
    value(CRATE, "\"path\""),
    value(HANDLE, "\"Name\""),
];

/// The keys accepted on a field, in the order error messages list them.
pub(crate) const FIELD_KEYS: &[Key] = &[
    flag(MEMORY_ONLY),
    flag(FLASH),
    flag(ENCRYPT),
    flag(RENEW_ON_CHANGE),
    flag(INDEX),
    flag(CSRF),
    value(DEFAULT, "\"path\""),
    value(RENAME, "\"key\""),
    value(ALIAS, "\"old_key\""),
];

/// `keys` as the end of an error message: `` `a`, `b = "path"` or `c` ``.
pub(crate) fn expected(keys: &[Key]) -> String {
    let shown: Vec<String> = keys.iter().map(ToString::to_string).collect();
    match shown.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

impl Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.form {
            Form::Flag => write!(f, "`{}`", self.name),
            Form::Value(placeholder) => write!(f, "`{} = {placeholder}`", self.name),
        }
    }
}

impl PartialEq<Symbol> for Ident {
    fn eq(&self, symbol: &Symbol) -> bool {
        self == symbol.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, symbol: &Symbol) -> bool {
        self.get_ident().is_some_and(|ident| ident == symbol)
    }
}

#[cfg(test)]
mod tests {
    use super::{CONTAINER_KEYS, FIELD_KEYS, expected};

    #[test]
    fn messages_list_every_key() {
        assert_eq!(
            expected(CONTAINER_KEYS),
            "`version = N`, `migrate = \"path\"`, `crate = \"path\"` or `handle = \"Name\"`"
        );
        assert_eq!(
            expected(FIELD_KEYS),
            "`memory_only`, `flash`, `encrypt`, `renew_on_change`, `index`, `csrf`, `default = \"path\"`, \
             `rename = \"key\"` or `alias = \"old_key\"`"
        );
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<String> = CONTAINER_KEYS
            .iter()
            .chain(FIELD_KEYS)
            .map(|key| key.name.to_string())
            .collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "an attribute name is listed twice");
    }
}

/// The attribute reference page and this table list the same attributes.
#[cfg(test)]
mod docs {
    use std::collections::BTreeSet;

    use super::{CONTAINER_KEYS, FIELD_KEYS};

    const PAGE: &str = "session/docs/attributes.md";

    /// The attribute names in the first column of the page's table rows: the first backticked
    /// text of the cell, such as `` `flash` ``, `` `rename = "key"` `` or
    /// `` `#[session(flash)]` ``, up to any ` =`. Cells that do not start with an attribute
    /// (such as `` `foo()` ``) are not attribute rows.
    fn documented(page: &str) -> BTreeSet<String> {
        page.lines()
            .filter_map(|line| line.trim().strip_prefix('|'))
            .filter_map(|row| row.split('|').next()?.trim().strip_prefix('`'))
            .filter_map(|cell| cell.split('`').next())
            .map(|code| {
                code.strip_prefix("#[session(")
                    .map_or(code, |inner| inner.trim_end_matches(")]"))
            })
            .filter_map(|code| code.split('=').next())
            .map(str::trim)
            .filter(|name| {
                name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn attributes_page_lists_every_attribute() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(PAGE);
        let page = std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "{PAGE}, the attribute reference, cannot be read ({}: {error})",
                path.display()
            )
        });
        let documented = documented(&page);
        let known: BTreeSet<String> = CONTAINER_KEYS
            .iter()
            .chain(FIELD_KEYS)
            .map(|key| key.name.to_string())
            .collect();
        let undocumented: Vec<_> = known.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&known).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "{PAGE} and the derive's attribute table (session-derive/src/symbol.rs) drifted:\n\
             accepted by the derive but not in a table row of the page: {undocumented:?}\n\
             in a table row of the page but unknown to the derive: {unknown:?}"
        );
    }

    #[test]
    fn reads_attribute_rows_only() {
        let page = "\
| attribute | meaning |
|---|---|
| `flash` | read once |
| `rename = \"key\"` | the stored key |
| `#[session(version = N)]` | schema |
| `foo()` | an accessor, not an attribute |
| plain | no code |
";
        let names: Vec<_> = documented(page).into_iter().collect();
        assert_eq!(names, ["flash", "rename", "version"]);
    }
}
