//! A new session's value of each field: its `default` function, or `Default`'s.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::Field;

/// A new session's value of `field`.
fn initial_expr(field: &Field<'_>) -> TokenStream {
    let default = default_fn(field);
    quote_spanned!(default.span()=> #default())
}

/// `field: value` for a new session.
pub(crate) fn initial_value(field: &Field<'_>) -> TokenStream {
    let ident = field.ident;
    let init = initial_expr(field);
    quote!(#ident: #init)
}

/// The function giving a new session's value of `field`: its `default` path, or `Default`'s.
pub(crate) fn default_fn(field: &Field<'_>) -> TokenStream {
    let ty = field.ty;
    match &field.attrs.default {
        Some(path) => quote_spanned!(path.span()=> #path),
        None => quote_spanned!(ty.span()=> <#ty as ::core::default::Default>::default),
    }
}
