//! Reading `#[session(...)]` attributes.

use syn::meta::ParseNestedMeta;
use syn::{Attribute, Ident, LitStr, Path, Token};

use crate::errors::Errors;
use crate::symbol::{
    self, ALIAS, CONTAINER_KEYS, CRATE, CSRF, DEFAULT, ENCRYPT, FIELD_KEYS, FLASH, HANDLE, INDEX,
    Key, MEMORY_ONLY, MIGRATE, RENAME, RENEW_ON_CHANGE, SESSION, Symbol, VERSION,
};

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
    /// `index`: the value sessions are listed by.
    pub(crate) index: Option<Ident>,
    /// `csrf`: the session's CSRF secret.
    pub(crate) csrf: Option<Ident>,
    /// `default = "path"`: a function giving the initial value.
    pub(crate) default: Option<Path>,
    /// `rename = "key"`: the stored key.
    pub(crate) rename: Option<LitStr>,
    /// `alias = "old"`, repeatable: older stored keys still read.
    pub(crate) aliases: Vec<LitStr>,
}

impl FieldAttrs {
    /// The slot of the flag (an attribute without a value) `name`, if it is one: the one table
    /// every field flag is parsed through.
    fn flag_slot(&mut self, name: Symbol) -> Option<&mut Option<Ident>> {
        [
            (MEMORY_ONLY, &mut self.memory_only),
            (FLASH, &mut self.flash),
            (ENCRYPT, &mut self.encrypt),
            (RENEW_ON_CHANGE, &mut self.renew_on_change),
            (INDEX, &mut self.index),
            (CSRF, &mut self.csrf),
        ]
        .into_iter()
        .find(|(flag, _)| *flag == name)
        .map(|(_, slot)| slot)
    }
}

pub(crate) fn container(attrs: &[Attribute], errors: &mut Errors) -> ContainerAttrs {
    let mut out = ContainerAttrs::default();
    for_each_session_meta(attrs, errors, |meta| {
        match known_key(&meta, "on a struct", CONTAINER_KEYS)? {
            CRATE => set_parsed(
                &meta,
                &mut out.krate,
                "the path of the re-exported crate, such as `crate = \"my_framework::sessions\"`",
            ),
            HANDLE => set_parsed(
                &meta,
                &mut out.handle,
                "a type name, such as `handle = \"VisitAccessors\"`",
            ),
            VERSION => {
                let version = version_value(&meta)?;
                set_once(&meta, &mut out.version, version)
            }
            MIGRATE => set_parsed(
                &meta,
                &mut out.migrate,
                "the path of a migration function, such as `migrate = \"migrate_visit\"`",
            ),
            other => Err(unhandled(&meta, other)),
        }
    });
    out
}

pub(crate) fn field(attrs: &[Attribute], errors: &mut Errors) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for_each_session_meta(attrs, errors, |meta| {
        let name = known_key(&meta, "on a field", FIELD_KEYS)?;
        if let Some(slot) = out.flag_slot(name) {
            flag(&meta)?;
            return set_once(&meta, slot, meta.path.require_ident()?.clone());
        }
        match name {
            DEFAULT => set_parsed(
                &meta,
                &mut out.default,
                "the path of a function returning the field's type, such as `default = \"default_theme\"`",
            ),
            RENAME => {
                let key = non_empty_string(&meta, "the stored key cannot be empty")?;
                set_once(&meta, &mut out.rename, key)
            }
            ALIAS => {
                let key = non_empty_string(&meta, "an alias cannot be empty")?;
                out.aliases.push(key);
                Ok(())
            }
            other => Err(unhandled(&meta, other)),
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
    for attr in attrs.iter().filter(|attr| *attr.path() == SESSION) {
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

/// A string value that is not empty, with `empty` as the message when it is.
fn non_empty_string(meta: &ParseNestedMeta<'_>, empty: &str) -> syn::Result<LitStr> {
    let literal = string_value(meta)?;
    if literal.value().is_empty() {
        return Err(syn::Error::new(literal.span(), empty));
    }
    Ok(literal)
}

/// A string value parsed as `V` into `slot`, which must be empty, with `expected` as the
/// message when it does not parse.
fn set_parsed<V: syn::parse::Parse>(
    meta: &ParseNestedMeta<'_>,
    slot: &mut Option<V>,
    expected: &str,
) -> syn::Result<()> {
    let literal = string_value(meta)?;
    let value = literal
        .parse::<V>()
        .map_err(|_| syn::Error::new(literal.span(), format!("expected {expected}")))?;
    set_once(meta, slot, value)
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

/// The key of `keys` that `meta` names, or the error listing what `keys` accepts.
fn known_key(meta: &ParseNestedMeta<'_>, place: &str, keys: &[Key]) -> syn::Result<Symbol> {
    keys.iter()
        .map(|key| key.name)
        .find(|name| meta.path == *name)
        .ok_or_else(|| {
            let name = quote::ToTokens::to_token_stream(&meta.path).to_string();
            meta.error(format!(
                "unknown session attribute `{name}` {place}; expected {}",
                symbol::expected(keys)
            ))
        })
}

/// A key listed in `symbol` that its parser has no branch for: a bug in the derive, which the
/// tests below catch before a user could.
fn unhandled(meta: &ParseNestedMeta<'_>, name: Symbol) -> syn::Error {
    meta.error(format!(
        "typed-session-derive bug: the attribute `{name}` is listed but not parsed"
    ))
}

#[cfg(test)]
mod tests {
    use syn::Attribute;
    use syn::parse::Parser;

    use super::{container, field};
    use crate::errors::Errors;
    use crate::symbol::{CONTAINER_KEYS, FIELD_KEYS, Form, Key};

    /// `#[session(name)]` or `#[session(name = value)]` with a value its parser accepts.
    fn attribute(key: &Key) -> Attribute {
        let name = key.name;
        let text = match key.form {
            Form::Flag => format!("#[session({name})]"),
            Form::Value("N") => format!("#[session({name} = 1)]"),
            Form::Value(_) => format!("#[session({name} = \"value\")]"),
        };
        let mut attrs = Parser::parse_str(Attribute::parse_outer, &text)
            .unwrap_or_else(|error| panic!("{text}: {error}"));
        attrs.remove(0)
    }

    fn assert_parses(keys: &[Key], parse: impl Fn(&[Attribute], &mut Errors)) {
        for key in keys {
            let mut errors = Errors::default();
            parse(&[attribute(key)], &mut errors);
            if let Err(error) = errors.finish() {
                panic!("`{}` is listed but does not parse: {error}", key.name);
            }
        }
    }

    /// Every listed key has a parser, and a flag is parsed as one.
    #[test]
    fn every_listed_key_parses() {
        assert_parses(CONTAINER_KEYS, |attrs, errors| {
            container(attrs, errors);
        });
        assert_parses(FIELD_KEYS, |attrs, errors| {
            field(attrs, errors);
        });
    }
}
