//! The `#[session(index)]` field: its value as `SessionData::index` gives it to the store,
//! and `impl Indexed`, which opens the listing methods of `SessionStore`.

use proc_macro2::TokenStream;
use quote::quote;

use super::Context;
use crate::ast::{Input, option_inner};

/// The `INDEXED` and `index` items of `impl SessionData`; nothing without an indexed field.
pub(crate) fn data_items(cx: &Context<'_>, input: &Input<'_>) -> TokenStream {
    let krate = &cx.krate;
    let Some(field) = input.indexed_field() else {
        return TokenStream::new();
    };
    let ident = field.ident;
    quote! {
        const INDEXED: bool = true;

        fn index(&self) -> ::core::option::Option<::std::string::String> {
            #krate::__private::index_value(&self.#ident)
        }
    }
}

/// `impl Indexed`, whose `Index` is the field's type, or `X` for an `Option<X>` field.
pub(crate) fn impl_indexed(cx: &Context<'_>, input: &Input<'_>) -> TokenStream {
    let Context { ident, krate, .. } = cx;
    let Some(field) = input.indexed_field() else {
        return TokenStream::new();
    };
    let index = option_inner(field.ty).unwrap_or(field.ty);
    quote! {
        #[automatically_derived]
        impl #krate::Indexed for #ident {
            type Index = #index;
        }
    }
}
