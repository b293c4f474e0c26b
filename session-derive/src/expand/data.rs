//! `impl SessionData for Struct`: the constants the runtime reads, the migration hook, and the
//! record methods built from `record` and `defaults`. The fallback reuses the impl with stub
//! items.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::Context;
use super::defaults::initial_value;
use super::record;
use crate::ast::Input;

/// The parts of the `SessionData` impl that depend on the fields and attributes. The fallback
/// fills them with stubs.
pub(crate) struct Items {
    /// `PERSISTED`.
    pub(crate) persisted: TokenStream,
    /// `SCHEMA`.
    pub(crate) schema: TokenStream,
    /// The elements of `ENCRYPTED`.
    pub(crate) encrypted: TokenStream,
    /// The body of `migrate`, over `__typed_session_fields` and `__typed_session_from`.
    pub(crate) migrate: TokenStream,
    /// The body of `initial`.
    pub(crate) initial: TokenStream,
    /// The body of `encode`, over `self` and `__typed_session_fields`.
    pub(crate) encode: TokenStream,
    /// The body of `decode`, over `__typed_session_fields`.
    pub(crate) decode: TokenStream,
    /// The body of `merge_stored`, over `self`, `stored` and `keep`.
    pub(crate) merge: TokenStream,
    /// `INDEXED` and `index`, for an `#[session(index)]` field; empty otherwise.
    pub(crate) index: TokenStream,
    /// `CSRF` and `rotate_csrf`, for a `#[session(csrf)]` field; empty otherwise.
    pub(crate) csrf: TokenStream,
}

impl Items {
    /// The real items of a validated `input`.
    pub(crate) fn of(cx: &Context<'_>, input: &Input<'_>) -> Self {
        let krate = &cx.krate;
        let persisted = record::persisted_mask(input);
        let encrypted = record::encrypted(input);
        let initial_fields = input.fields.iter().map(initial_value);
        let encode_fields = record::encode_fields(input);
        let decode_fields = record::decode_fields(input);
        let merge_fields = record::merge_fields(input);
        Self {
            persisted: quote!(#persisted),
            schema: input
                .attrs
                .version
                .as_ref()
                .map_or_else(|| quote!(0), |version| quote!(#version)),
            encrypted: quote!(#(#encrypted),*),
            migrate: match &input.attrs.migrate {
                Some(path) => quote_spanned! {path.span()=>
                    #krate::__private::run_migration(#path, __typed_session_fields, __typed_session_from)
                },
                None => quote! {
                    let _ = (__typed_session_fields, __typed_session_from);
                    ::core::result::Result::Ok(())
                },
            },
            initial: quote!(Self { #(#initial_fields,)* }),
            encode: quote! {
                #(#encode_fields)*
                ::core::result::Result::Ok(())
            },
            decode: quote!(::core::result::Result::Ok(Self { #(#decode_fields,)* })),
            merge: quote!(#(#merge_fields)*),
            index: super::index::data_items(cx, input),
            csrf: super::csrf::data_items(cx, input),
        }
    }
}

/// `impl SessionData for Struct` with `items`.
pub(crate) fn impl_session_data(cx: &Context<'_>, items: &Items) -> TokenStream {
    let Context {
        ident,
        krate,
        handle,
        ..
    } = cx;
    let name = snake_case(&ident.to_string());
    let Items {
        persisted,
        schema,
        encrypted,
        migrate,
        initial,
        encode,
        decode,
        merge,
        index,
        csrf,
    } = items;
    quote! {
        #[automatically_derived]
        impl #krate::SessionData for #ident {
            type Handle = #handle;

            const NAME: &'static str = #name;

            const PERSISTED: u64 = #persisted;

            const SCHEMA: u32 = #schema;

            const ENCRYPTED: &'static [&'static str] = &[#encrypted];

            fn migrate(
                __typed_session_fields: &mut #krate::__private::serde_json::Map<
                    ::std::string::String,
                    #krate::__private::serde_json::Value,
                >,
                __typed_session_from: u32,
            ) -> ::core::result::Result<(), #krate::__private::DecodeError> {
                #migrate
            }

            fn initial() -> Self {
                #initial
            }

            fn encode(
                &self,
                __typed_session_fields: &mut #krate::__private::FieldWriter,
            ) -> ::core::result::Result<(), #krate::__private::EncodeError> {
                #encode
            }

            fn decode(
                __typed_session_fields: &#krate::__private::FieldReader,
            ) -> ::core::result::Result<Self, #krate::__private::DecodeError> {
                #decode
            }

            #[allow(unused_variables)]
            fn merge_stored(&mut self, stored: Self, keep: u64) {
                #merge
            }

            #index

            #csrf
        }
    }
}

/// `CartData` → `cart_data`, `HTTPState` → `http_state`.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.trim_start_matches("r#").chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                || (prev.is_some_and(char::is_uppercase) && next.is_some_and(|n| n.is_lowercase()));
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake_cases_type_names() {
        assert_eq!(snake_case("Visit"), "visit");
        assert_eq!(snake_case("CartData"), "cart_data");
        assert_eq!(snake_case("HTTPState"), "http_state");
        assert_eq!(snake_case("Login2Fa"), "login2_fa");
        assert_eq!(snake_case("already_snake"), "already_snake");
    }
}
