//! Every misuse of the derive, as a spanned error, all reported together.

use std::collections::HashMap;

use syn::GenericParam;
use syn::ext::IdentExt;

use crate::ast::{Field, Input};
use crate::errors::Errors;

/// A dirty bit per field in one `u64`.
const MAX_FIELDS: usize = 64;

/// Methods that a field accessor of the same name would be shadowed by: `TypedSession`'s own
/// (present and planned), the whole-struct accessors, and prelude trait methods that method
/// resolution finds on `TypedSession` before dereferencing to the accessors.
const RESERVED: &[(&str, &str)] = &[
    ("id", "the session id"),
    ("is_new", "whether the session is new"),
    ("expires_at", "the session's expiry"),
    ("destroy", "ending the session"),
    ("renew", "renewing the session id"),
    ("handle", "the session's handle"),
    ("save_now", "the early save"),
    ("verify", "the backend check"),
    ("csrf_token", "the CSRF token of a `csrf` field"),
    ("verify_csrf", "the CSRF check of a `csrf` field"),
    ("set_store", "the storage consent flag"),
    ("has_store_consent", "the storage consent flag"),
    ("set_long_term", "the \"remember me\" lifetime"),
    ("is_long_term", "the \"remember me\" lifetime"),
    ("read", "the whole-struct read"),
    ("update", "the whole-struct update"),
    ("clone", "`Clone::clone`"),
    ("clone_from", "`Clone::clone_from`"),
    ("clone_into", "`ToOwned::clone_into`"),
    ("to_owned", "`ToOwned::to_owned`"),
    ("into", "`Into::into`"),
    ("try_into", "`TryInto::try_into`"),
    ("deref", "`Deref::deref`"),
    ("fmt", "`Debug::fmt`"),
];

pub(crate) fn check(input: &Input<'_>, errors: &mut Errors) {
    check_versioning(input, errors);
    check_generics(input, errors);
    check_field_count(input, errors);
    check_attribute_combinations(input, errors);
    check_accessor_names(input, errors);
    check_stored_keys(input, errors);
}

fn check_generics(input: &Input<'_>, errors: &mut Errors) {
    for param in &input.generics.params {
        let what = match param {
            GenericParam::Lifetime(_) => {
                "a session outlives every request, so it cannot borrow: use owned types such as `String`"
            }
            GenericParam::Type(_) | GenericParam::Const(_) => {
                "generic session structs are not supported: declare a concrete struct per data type"
            }
        };
        errors.spanned(param, what);
    }
    if let Some(where_clause) = &input.generics.where_clause {
        errors.spanned(
            where_clause,
            "a session struct takes no where clause: it cannot be generic",
        );
    }
}

fn check_versioning(input: &Input<'_>, errors: &mut Errors) {
    if let (Some(migrate), None) = (&input.attrs.migrate, &input.attrs.version) {
        errors.spanned(
            migrate,
            "`migrate` needs the current schema version: add `version = N` (records of older versions are migrated)",
        );
    }
}

fn check_field_count(input: &Input<'_>, errors: &mut Errors) {
    if let Some(field) = input.fields.get(MAX_FIELDS) {
        errors.spanned(
            field.ident,
            format!(
                "a SessionData struct has at most {MAX_FIELDS} fields (one dirty bit each); group related fields into a struct-typed field"
            ),
        );
    }
}

/// Reports every field after the first that carries the attribute `marker` finds.
fn at_most_one<T: quote::ToTokens>(
    input: &Input<'_>,
    marker: impl for<'f> Fn(&'f Field<'_>) -> Option<&'f T>,
    message: &str,
    errors: &mut Errors,
) {
    for extra in input.fields.iter().filter_map(marker).skip(1) {
        errors.spanned(extra, message);
    }
}

fn check_attribute_combinations(input: &Input<'_>, errors: &mut Errors) {
    at_most_one(
        input,
        |field| field.attrs.index.as_ref(),
        "only one field can be `index`: sessions are listed by one value (a user id)",
        errors,
    );
    at_most_one(
        input,
        |field| field.attrs.csrf.as_ref(),
        "only one field can be `csrf`: a session has one CSRF secret",
        errors,
    );
    for field in &input.fields {
        check_csrf_field(field, errors);
        if let Some(flash) = &field.attrs.flash
            && !field.is_option
        {
            errors.spanned(
                flash,
                "a `flash` field must be an `Option<_>`: reading it returns the value and leaves `None`",
            );
        }
        if let (Some(_), Some(encrypt)) = (&field.attrs.memory_only, &field.attrs.encrypt) {
            errors.spanned(
                encrypt,
                "`encrypt` has no effect on a `memory_only` field, which is never stored: remove one of them",
            );
        }
        if let Some(index) = &field.attrs.index {
            let clash = [
                (
                    &field.attrs.memory_only,
                    "a `memory_only` field, which is never stored, so no other server could find it",
                ),
                (
                    &field.attrs.encrypt,
                    "an `encrypt` field: the index stores the value in plain so that it can be looked up",
                ),
                (
                    &field.attrs.flash,
                    "a `flash` field, whose value is gone once read",
                ),
            ];
            if let Some((_, what)) = clash.iter().find(|(attr, _)| attr.is_some()) {
                errors.spanned(index, format!("`index` cannot go on {what}"));
            }
        }
        if field.attrs.memory_only.is_some() {
            if let Some(rename) = &field.attrs.rename {
                errors.spanned(
                    rename,
                    "`rename` has no effect on a `memory_only` field, which is never stored: remove one of them",
                );
            }
            for alias in &field.attrs.aliases {
                errors.spanned(
                    alias,
                    "`alias` has no effect on a `memory_only` field, which is never stored: remove it",
                );
            }
        }
    }
}

/// A `csrf` field is stored (every server checks tokens), encrypted by the store whenever it has
/// a key, and managed by the runtime: it takes no attribute that would change that.
fn check_csrf_field(field: &crate::ast::Field<'_>, errors: &mut Errors) {
    let Some(csrf) = &field.attrs.csrf else {
        return;
    };
    let clash = [
        (
            &field.attrs.memory_only,
            "a `memory_only` field: the secret must be stored so that every server can check a token",
        ),
        (
            &field.attrs.encrypt,
            "an `encrypt` field: a `csrf` field is encrypted whenever the store has a key; remove `encrypt`",
        ),
        (&field.attrs.flash, "a `flash` field"),
        (&field.attrs.index, "an `index` field"),
        (
            &field.attrs.renew_on_change,
            "a `renew_on_change` field: the secret changes at every renewal",
        ),
    ];
    if let Some((_, what)) = clash.iter().find(|(attr, _)| attr.is_some()) {
        errors.spanned(csrf, format!("`csrf` cannot go on {what}"));
    }
    if let Some(default) = &field.attrs.default {
        errors.spanned(
            default,
            "a `csrf` field takes no `default`: its secret is made when the first token is",
        );
    }
}

fn check_accessor_names(input: &Input<'_>, errors: &mut Errors) {
    let mut owners: HashMap<String, &syn::Ident> = HashMap::new();
    for field in &input.fields {
        let field_name = field.ident.unraw();
        for name in field.accessors().iter() {
            let text = name.unraw().to_string();
            if let Some((_, what)) = RESERVED.iter().find(|(reserved, _)| *reserved == text) {
                errors.spanned(
                    field.ident,
                    format!(
                        "field `{field_name}` would generate the accessor `{text}()`, which would be shadowed by {what} on `TypedSession`; \
                         rename the field and keep its stored key with `#[session(rename = \"{field_name}\")]`"
                    ),
                );
            } else if let Some(owner) = owners.get(&text) {
                errors.spanned(
                    field.ident,
                    format!(
                        "field `{field_name}` would generate the accessor `{text}()`, which field `{}` generates too; rename one of the fields",
                        owner.unraw()
                    ),
                );
            } else {
                owners.insert(text, field.ident);
            }
        }
    }
}

/// Every stored key and alias reads one field only.
fn check_stored_keys(input: &Input<'_>, errors: &mut Errors) {
    let mut owners: HashMap<String, &syn::Ident> = HashMap::new();
    for field in input.fields.iter().filter(|field| field.is_persisted()) {
        let key = field.stored_key();
        if let Some(owner) = owners.get(&key) {
            let message = format!(
                "field `{}` is stored under the key \"{key}\", which field `{}` already reads: give one of them another `#[session(rename = \"...\")]`",
                field.ident.unraw(),
                owner.unraw()
            );
            match &field.attrs.rename {
                Some(rename) => errors.spanned(rename, message),
                None => errors.spanned(field.ident, message),
            }
        } else {
            owners.insert(key, field.ident);
        }
        for alias in &field.attrs.aliases {
            let name = alias.value();
            match owners.get(&name) {
                Some(owner) if *owner == field.ident => errors.spanned(
                    alias,
                    format!("the alias \"{name}\" repeats a key field `{}` already reads: remove it", owner.unraw()),
                ),
                Some(owner) => errors.spanned(
                    alias,
                    format!(
                        "the alias \"{name}\" is a key that field `{}` reads: a stored key can belong to one field only",
                        owner.unraw()
                    ),
                ),
                None => {
                    owners.insert(name, field.ident);
                }
            }
        }
    }
}

/// [`RESERVED`] against what it must cover: every method of `TypedSession` (a field accessor of
/// that name would be shadowed without a word), and the names the attribute page gives as
/// examples of it.
#[cfg(test)]
mod reserved {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::RESERVED;

    fn read(relative: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        std::fs::read_to_string(&path).unwrap_or_else(|error| {
            panic!(
                "{relative} cannot be read ({}: {error}); if it moved, update session-derive/src/valid.rs",
                path.display()
            )
        })
    }

    fn reserved() -> BTreeSet<&'static str> {
        RESERVED.iter().map(|(name, _)| *name).collect()
    }

    /// The public methods of the first `impl_line` block in `source`: session-level
    /// operations.
    fn session_methods(source: &str, impl_line: &str) -> BTreeSet<String> {
        source
            .lines()
            .skip_while(|line| !line.starts_with(impl_line))
            .take_while(|line| *line != "}")
            .filter_map(|line| {
                let line = line.trim_start();
                line.strip_prefix("pub fn ")
                    .or_else(|| line.strip_prefix("pub async fn "))
            })
            .map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_session_level_method_is_reserved() {
        let mut methods = session_methods(
            &read("../session/src/extract.rs"),
            "impl<T: SessionData> TypedSession<T>",
        );
        methods.extend(session_methods(
            &read("../session/src/csrf.rs"),
            "impl<T: CsrfProtected> TypedSession<T>",
        ));
        assert!(
            methods.contains("destroy") && methods.contains("id") && methods.contains("csrf_token"),
            "found only {methods:?} in session/src/extract.rs and csrf.rs: is the parser stale?"
        );
        let reserved = reserved();
        let missing: Vec<_> = methods
            .iter()
            .filter(|name| !reserved.contains(name.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "TypedSession's methods {missing:?} are not in RESERVED (session-derive/src/valid.rs): \
             a field of that name would generate an accessor they shadow"
        );
    }

    #[test]
    fn the_attribute_page_names_reserved_methods_only() {
        let page = read("../session/docs/attributes.md");
        let sentence = page
            .split("\n\n")
            .find(|paragraph| paragraph.contains("would be shadowed by a session-level method"))
            .expect("session/docs/attributes.md no longer explains shadowed accessors");
        let named: Vec<&str> = sentence
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|code| code.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .collect();
        assert!(
            named.len() > 5,
            "found only {named:?}: is the parser stale?"
        );
        let reserved = reserved();
        let unknown: Vec<_> = named
            .iter()
            .filter(|name| !reserved.contains(*name))
            .collect();
        assert!(
            unknown.is_empty(),
            "session/docs/attributes.md gives {unknown:?} as shadowing methods, but RESERVED \
             (session-derive/src/valid.rs) does not have them"
        );
    }
}
