//! Every misuse of the derive, as a spanned error, all reported together.

use std::collections::HashMap;

use syn::GenericParam;
use syn::ext::IdentExt;

use crate::ast::Input;
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
    ("set_store", "the storage consent flag"),
    ("set_long_term", "the \"remember me\" lifetime"),
    ("is_long_term", "the \"remember me\" lifetime"),
    ("is_stored", "the storage consent flag"),
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

fn check_attribute_combinations(input: &Input<'_>, errors: &mut Errors) {
    let indexed: Vec<_> = input
        .fields
        .iter()
        .filter_map(|field| field.attrs.index.as_ref())
        .collect();
    for extra in indexed.iter().skip(1) {
        errors.spanned(
            extra,
            "only one field can be `index`: sessions are listed by one value (a user id)",
        );
    }
    let csrf: Vec<_> = input
        .fields
        .iter()
        .filter_map(|field| field.attrs.csrf.as_ref())
        .collect();
    for extra in csrf.iter().skip(1) {
        errors.spanned(
            extra,
            "only one field can be `csrf`: a session has one CSRF secret",
        );
    }
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
