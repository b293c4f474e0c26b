//! The stored form of the persisted fields: what `encode`, `decode` and `merge_stored` do per
//! field. `memory_only` fields are never written and decode to their initial value.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::defaults::{default_fn, initial_value};
use crate::ast::{Field, Input};

/// The persisted fields with their dirty-bit index.
fn persisted<'i, 'a>(input: &'i Input<'a>) -> impl Iterator<Item = (usize, &'i Field<'a>)> {
    input
        .fields
        .iter()
        .enumerate()
        .filter(|(_, field)| field.is_persisted())
}

/// One bit per persisted field.
pub(crate) fn persisted_mask(input: &Input<'_>) -> u64 {
    persisted(input).fold(0_u64, |mask, (index, _)| mask | (1 << index))
}

/// The names of the encrypted fields.
pub(crate) fn encrypted(input: &Input<'_>) -> Vec<String> {
    input
        .fields
        .iter()
        .filter(|field| field.attrs.encrypt.is_some())
        .map(|field| syn::ext::IdentExt::unraw(field.ident).to_string())
        .collect()
}

/// The stored key of `field`, as a literal spanned at its type.
fn key(field: &Field<'_>) -> syn::LitStr {
    syn::LitStr::new(&field.stored_key(), field.ty.span())
}

/// The `FieldWriter`/`FieldReader` method that stores or reads `field`: `verb` (`write` or
/// `read`) for a plain field, `{verb}_sealed` for an encrypted one, `{verb}_secret` for the
/// CSRF secret. Spanned at the field's type, so a missing `Serialize` or `Deserialize` points
/// at the field.
fn accessor(field: &Field<'_>, verb: &str) -> syn::Ident {
    let name = if field.attrs.encrypt.is_some() {
        format!("{verb}_sealed")
    } else if field.attrs.csrf.is_some() {
        format!("{verb}_secret")
    } else {
        verb.to_owned()
    };
    syn::Ident::new(&name, field.ty.span())
}

/// The statements of `encode`: one write per persisted field.
pub(crate) fn encode_fields(input: &Input<'_>) -> Vec<TokenStream> {
    persisted(input)
        .map(|(_, field)| {
            let (ident, ty, key) = (field.ident, field.ty, key(field));
            let write = accessor(field, "write");
            quote_spanned!(ty.span()=> __typed_session_fields.#write::<#ty>(#key, &self.#ident)?;)
        })
        .collect()
}

/// The field initialisers of `decode`: persisted fields read from the record (under their key
/// or an alias, else their default), the others at their initial value.
pub(crate) fn decode_fields(input: &Input<'_>) -> Vec<TokenStream> {
    input
        .fields
        .iter()
        .map(|field| {
            if !field.is_persisted() {
                return initial_value(field);
            }
            let (ident, ty, key) = (field.ident, field.ty, key(field));
            let aliases = &field.attrs.aliases;
            let default = default_fn(field);
            let read = accessor(field, "read");
            quote_spanned!(ty.span()=> #ident: __typed_session_fields.#read::<#ty>(#key, &[#(#aliases),*], #default)?)
        })
        .collect()
}

/// The statements of `merge_stored`: every persisted field outside `keep` taken from `stored`.
pub(crate) fn merge_fields(input: &Input<'_>) -> Vec<TokenStream> {
    persisted(input)
        .map(|(index, field)| {
            let ident = field.ident;
            let bit = 1_u64 << index;
            quote! {
                if keep & #bit == 0 {
                    self.#ident = stored.#ident;
                }
            }
        })
        .collect()
}
