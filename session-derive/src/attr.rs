//! Reading `#[session(...)]` attributes.

use syn::meta::ParseNestedMeta;
use syn::{Attribute, Ident, LitStr, Path, Token};

use crate::errors::Errors;

/// Attributes on the struct.
#[derive(Default)]
pub(crate) struct ContainerAttrs {
    /// `crate = "path"`: where `typed_session` is, for users who re-export it.
    pub(crate) krate: Option<Path>,
    /// `handle = "Name"`: the generated accessor type's name.
    pub(crate) handle: Option<Ident>,
    /// `version = N`: the schema version stored with every record.
    pub(crate) version: Option<syn::LitInt>,
    /// `migrate = "path"`: upgrades records of older versions before they are decoded.
    pub(crate) migrate: Option<Path>,
}

/// Attributes on a field.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    /// `memory_only`: never persisted.
    pub(crate) memory_only: Option<Ident>,
    /// `flash`: read once; the getter takes the value.
    pub(crate) flash: Option<Ident>,
    /// `encrypt`: AES-256-GCM at rest.
    pub(crate) encrypt: Option<Ident>,
    /// `renew_on_change`: a change renews the session id.
    pub(crate) renew_on_change: Option<Ident>,
    /// `default = "path"`: a function giving the initial value.
    pub(crate) default: Option<Path>,
    /// `rename = "key"`: the stored key.
    pub(crate) rename: Option<LitStr>,
    /// `alias = "old"`, repeatable: older stored keys still read.
    pub(crate) aliases: Vec<LitStr>,
}

const CONTAINER_KEYS: &str =
    "`version = N`, `migrate = \"path\"`, `crate = \"path\"` or `handle = \"Name\"`";
const FIELD_KEYS: &str =
    "`memory_only`, `flash`, `default = \"path\"`, `rename = \"key\"` or `alias = \"old_key\"`";

pub(crate) fn container(attrs: &[Attribute], errors: &mut Errors) -> ContainerAttrs {
    let mut out = ContainerAttrs::default();
    for_each_session_meta(attrs, errors, |meta| {
        if meta.path.is_ident("crate") {
            let path = parse_string(
                &meta,
                "the path of the re-exported crate, such as `crate = \"my_framework::sessions\"`",
            )?;
            set_once(&meta, &mut out.krate, path)
        } else if meta.path.is_ident("handle") {
            let ident = parse_string(&meta, "a type name, such as `handle = \"VisitAccessors\"`")?;
            set_once(&meta, &mut out.handle, ident)
        } else if meta.path.is_ident("version") {
            let version = version_value(&meta)?;
            set_once(&meta, &mut out.version, version)
        } else if meta.path.is_ident("migrate") {
            let path = parse_string(
                &meta,
                "the path of a migration function, such as `migrate = \"migrate_visit\"`",
            )?;
            set_once(&meta, &mut out.migrate, path)
        } else {
            Err(unknown(&meta, "on a struct", CONTAINER_KEYS))
        }
    });
    out
}

pub(crate) fn field(attrs: &[Attribute], errors: &mut Errors) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for_each_session_meta(attrs, errors, |meta| {
        if meta.path.is_ident("memory_only") {
            flag(&meta)?;
            set_once(
                &meta,
                &mut out.memory_only,
                meta.path.require_ident()?.clone(),
            )
        } else if meta.path.is_ident("flash") {
            flag(&meta)?;
            set_once(&meta, &mut out.flash, meta.path.require_ident()?.clone())
        } else if meta.path.is_ident("encrypt") {
            flag(&meta)?;
            set_once(&meta, &mut out.encrypt, meta.path.require_ident()?.clone())
        } else if meta.path.is_ident("renew_on_change") {
            flag(&meta)?;
            set_once(
                &meta,
                &mut out.renew_on_change,
                meta.path.require_ident()?.clone(),
            )
        } else if meta.path.is_ident("default") {
            let path = parse_string(
                &meta,
                "the path of a function returning the field's type, such as `default = \"default_theme\"`",
            )?;
            set_once(&meta, &mut out.default, path)
        } else if meta.path.is_ident("rename") {
            let key = string_value(&meta)?;
            if key.value().is_empty() {
                return Err(syn::Error::new(
                    key.span(),
                    "the stored key cannot be empty",
                ));
            }
            set_once(&meta, &mut out.rename, key)
        } else if meta.path.is_ident("alias") {
            let key = string_value(&meta)?;
            if key.value().is_empty() {
                return Err(syn::Error::new(key.span(), "an alias cannot be empty"));
            }
            out.aliases.push(key);
            Ok(())
        } else {
            Err(unknown(&meta, "on a field", FIELD_KEYS))
        }
    });
    out
}

/// Runs `parse` on every item of every `#[session(...)]`, recording errors and carrying on
/// with the next attribute.
fn for_each_session_meta(
    attrs: &[Attribute],
    errors: &mut Errors,
    mut parse: impl FnMut(ParseNestedMeta<'_>) -> syn::Result<()>,
) {
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("session")) {
        if let Err(error) = attr.parse_nested_meta(&mut parse) {
            errors.push(error);
        }
    }
}

fn string_value(meta: &ParseNestedMeta<'_>) -> syn::Result<LitStr> {
    let name = meta.path.require_ident()?;
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(format!("expected `{name} = \"...\"`")));
    }
    meta.value()?.parse::<LitStr>().map_err(|error| {
        syn::Error::new(
            error.span(),
            format!("expected a string literal: `{name} = \"...\"`"),
        )
    })
}

/// A string value parsed as `V`, with `expected` as the message when it does not parse.
fn parse_string<V: syn::parse::Parse>(
    meta: &ParseNestedMeta<'_>,
    expected: &str,
) -> syn::Result<V> {
    let literal = string_value(meta)?;
    literal
        .parse::<V>()
        .map_err(|_| syn::Error::new(literal.span(), format!("expected {expected}")))
}

/// `version = N` with `N` a positive `u32`.
fn version_value(meta: &ParseNestedMeta<'_>) -> syn::Result<syn::LitInt> {
    const EXPECTED: &str = "expected a schema version from 1 up, such as `version = 2`";
    if !meta.input.peek(Token![=]) {
        return Err(meta.error(EXPECTED));
    }
    let literal: syn::LitInt = meta
        .value()?
        .parse()
        .map_err(|error| syn::Error::new(error.span(), EXPECTED))?;
    match literal.base10_parse::<u32>() {
        Ok(version) if version >= 1 => Ok(literal),
        _ => Err(syn::Error::new(literal.span(), EXPECTED)),
    }
}

fn flag(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.is_empty() || meta.input.peek(Token![,]) {
        Ok(())
    } else {
        let name = meta.path.require_ident()?;
        Err(meta.error(format!(
            "`{name}` takes no value: write `#[session({name})]`"
        )))
    }
}

fn set_once<V>(meta: &ParseNestedMeta<'_>, slot: &mut Option<V>, value: V) -> syn::Result<()> {
    if slot.is_some() {
        let name = meta.path.require_ident()?;
        return Err(meta.error(format!("duplicate `{name}` attribute")));
    }
    *slot = Some(value);
    Ok(())
}

fn unknown(meta: &ParseNestedMeta<'_>, place: &str, expected: &str) -> syn::Error {
    let name = quote::ToTokens::to_token_stream(&meta.path).to_string();
    meta.error(format!(
        "unknown session attribute `{name}` {place}; expected {expected}"
    ))
}
