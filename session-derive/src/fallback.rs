//! What the derive emits next to its errors. Without it, every use of the struct would add
//! errors of its own (`Visit: SessionData` is not satisfied, no method `count` on
//! `TypedSession<Visit>`), burying the one that matters. With it, a struct with one bad
//! attribute gives exactly one error.
//!
//! The fallback is the handle type, an `impl SessionData` whose items are never run, and a stub
//! for every accessor the real expansion would generate: enough for handlers to type-check.

use std::collections::HashSet;

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;
use syn::ext::IdentExt;

use crate::ast::{Field, Input};
use crate::attr::ContainerAttrs;
use crate::expand::{self, Context, Items};

/// The fallback for `input`; `parsed` is its IR when the shape was one the derive accepts.
pub(crate) fn expand(input: &DeriveInput, parsed: Option<&Input<'_>>) -> TokenStream {
    // A generic struct cannot implement `SessionData` (it is `'static` and owns its types), and
    // an impl for it would only add errors.
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return TokenStream::new();
    }
    let no_attrs = ContainerAttrs::default();
    let (attrs, fields) = parsed.map_or((&no_attrs, &[][..]), |parsed| {
        (&parsed.attrs, parsed.fields.as_slice())
    });
    let cx = Context::new(&input.ident, &input.vis, attrs);
    let handle = expand::declare_handle(&cx);
    let data = expand::impl_session_data(&cx, &stub_items());
    let accessors = stub_accessors(&cx, fields);
    quote! {
        #handle
        #data
        #accessors
    }
}

/// Items that are never run: no store is ever built for a type whose derive failed.
fn stub_items() -> Items {
    let unreachable = quote!(::core::unreachable!());
    Items {
        persisted: quote!(0),
        schema: quote!(0),
        encrypted: TokenStream::new(),
        migrate: unreachable.clone(),
        initial: unreachable.clone(),
        encode: unreachable.clone(),
        decode: unreachable.clone(),
        merge: unreachable,
        index: TokenStream::new(),
        csrf: TokenStream::new(),
    }
}

/// Every accessor the real expansion would generate, once per name: where two fields claim
/// one name, the error is already reported and a second definition would add another.
fn stub_accessors(cx: &Context<'_>, fields: &[Field<'_>]) -> TokenStream {
    let handle = &cx.handle;
    let mut seen = HashSet::new();
    let stubs = expand::whole_struct_signatures(cx)
        .into_iter()
        .chain(
            fields
                .iter()
                .flat_map(|field| expand::field_signatures(field, cx.vis)),
        )
        .filter(|signature| seen.insert(signature.name.unraw().to_string()))
        .map(|signature| quote!(#signature { ::core::unreachable!() }));
    quote! {
        #[automatically_derived]
        #[allow(unused_variables)]
        impl #handle {
            #(#stubs)*
        }
    }
}
