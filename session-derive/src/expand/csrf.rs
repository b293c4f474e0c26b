//! The `#[session(csrf)]` field: the `SessionData` items that rotate its secret at renewal,
//! and `impl CsrfProtected`, which opens `csrf_token` and `verify_csrf` on `TypedSession`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::Context;
use crate::ast::Input;

/// The `CSRF` and `rotate_csrf` items of `impl SessionData`; nothing without a csrf field.
pub(crate) fn data_items(cx: &Context<'_>, input: &Input<'_>) -> TokenStream {
    let krate = &cx.krate;
    let Some((index, field)) = input.csrf_field() else {
        return TokenStream::new();
    };
    let ident = field.ident;
    let bit = 1_u64 << index;
    // Spanned at the type, so a field that is not a `CsrfSecret` is reported there.
    let rotate = quote_spanned!(field.ty.span()=> #krate::__private::rotate_csrf(&mut self.#ident));
    quote! {
        const CSRF: u64 = #bit;

        fn rotate_csrf(&mut self) -> bool {
            #rotate
        }
    }
}

/// `impl CsrfProtected`, handing the runtime the field.
pub(crate) fn impl_csrf_protected(cx: &Context<'_>, input: &Input<'_>) -> TokenStream {
    let Context { ident, krate, .. } = cx;
    let Some((_, field)) = input.csrf_field() else {
        return TokenStream::new();
    };
    let (name, span) = (field.ident, field.ty.span());
    // Spanned at the type, like `rotate_csrf`: a field of another type is reported there.
    let get = quote_spanned!(span=> &self.#name);
    let get_mut = quote_spanned!(span=> &mut self.#name);
    quote! {
        #[automatically_derived]
        impl #krate::CsrfProtected for #ident {
            fn csrf_secret(&self) -> &#krate::CsrfSecret {
                #get
            }

            fn csrf_secret_mut(&mut self) -> &mut #krate::CsrfSecret {
                #get_mut
            }
        }
    }
}
