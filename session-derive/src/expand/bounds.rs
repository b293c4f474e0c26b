//! Checks that every field type has the bounds its attributes need, spanned at the type so the
//! error points at the field rather than at the derive.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::Context;
use crate::ast::Input;

/// A never-called function naming each field type with its bounds: `Clone + Send + Sync +
/// 'static` for all, serde for persisted ones, `PartialEq` for `renew_on_change` ones.
pub(crate) fn check_field_types(cx: &Context<'_>, input: &Input<'_>) -> TokenStream {
    let krate = &cx.krate;
    let type_checks = input.fields.iter().map(|field| {
        let ty = field.ty;
        let persisted = field.is_persisted().then(|| {
            quote_spanned! {ty.span()=> __typed_session_persisted_bounds::<#ty>(); }
        });
        let renewing = field.attrs.renew_on_change.as_ref().map(|_| {
            quote_spanned! {ty.span()=> __typed_session_renew_bounds::<#ty>(); }
        });
        quote_spanned! {ty.span()=>
            __typed_session_field_bounds::<#ty>();
            #persisted
            #renewing
        }
    });
    quote! {
        const _: () = {
            fn __typed_session_field_bounds<
                T: ::core::clone::Clone + ::core::marker::Send + ::core::marker::Sync + 'static,
            >() {}
            fn __typed_session_persisted_bounds<
                T: #krate::__private::serde::Serialize + #krate::__private::serde::de::DeserializeOwned,
            >() {}
            fn __typed_session_renew_bounds<T: ::core::cmp::PartialEq>() {}
            fn __typed_session_check_fields() {
                #(#type_checks)*
            }
        };
    }
}
