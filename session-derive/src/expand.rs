//! Code generation from a validated IR. Every path is absolute (`::core::…`, the runtime crate
//! path), so the output compiles under `#![no_implicit_prelude]` and next to any user names.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::{Field, Input};

pub(crate) fn expand(input: &Input<'_>) -> TokenStream {
    let ident = input.ident;
    let vis = input.vis;
    let krate = input
        .attrs
        .krate
        .as_ref()
        .map_or_else(|| quote!(::typed_session), |path| quote!(#path));
    let handle = input
        .attrs
        .handle
        .clone()
        .unwrap_or_else(|| format_ident!("{}Session", ident));
    let name = snake_case(&ident.to_string());
    let initial_fields = input.fields.iter().map(initial_value);
    let accessors = input
        .fields
        .iter()
        .enumerate()
        .map(|(index, field)| field_accessors(field, index, vis));
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
    let persisted_mask = input
        .fields
        .iter()
        .enumerate()
        .filter(|(_, field)| field.is_persisted())
        .fold(0_u64, |mask, (index, _)| mask | (1 << index));
    let encode_fields = input
        .fields
        .iter()
        .filter(|f| f.is_persisted())
        .map(|field| {
            let (ident, ty) = (field.ident, field.ty);
            let key = syn::LitStr::new(&field.stored_key(), ty.span());
            // Spanned at the type, so a missing `Serialize` points at the field.
            let write = if field.attrs.encrypt.is_some() {
                quote_spanned!(ty.span()=> write_sealed)
            } else {
                quote_spanned!(ty.span()=> write)
            };
            quote_spanned!(ty.span()=> __typed_session_fields.#write::<#ty>(#key, &self.#ident)?;)
        });
    let decode_fields = input.fields.iter().map(|field| {
        let ident = field.ident;
        if field.is_persisted() {
            let ty = field.ty;
            let key = syn::LitStr::new(&field.stored_key(), ty.span());
            let aliases = &field.attrs.aliases;
            let default = default_fn(field);
            let read = if field.attrs.encrypt.is_some() {
                quote_spanned!(ty.span()=> read_sealed)
            } else {
                quote_spanned!(ty.span()=> read)
            };
            quote_spanned!(ty.span()=> #ident: __typed_session_fields.#read::<#ty>(#key, &[#(#aliases),*], #default)?)
        } else {
            let init = initial_expr(field);
            quote!(#ident: #init)
        }
    });
    let merge_fields = input
        .fields
        .iter()
        .enumerate()
        .filter(|(_, field)| field.is_persisted())
        .map(|(index, field)| {
            let ident = field.ident;
            let bit = 1_u64 << index;
            quote! {
                if keep & #bit == 0 {
                    self.#ident = stored.#ident;
                }
            }
        });
    let encrypted = input
        .fields
        .iter()
        .filter(|field| field.attrs.encrypt.is_some())
        .map(|field| syn::ext::IdentExt::unraw(field.ident).to_string());
    let schema = input
        .attrs
        .version
        .as_ref()
        .map_or_else(|| quote!(0), |version| quote!(#version));
    let migrate_body = match &input.attrs.migrate {
        Some(path) => quote_spanned! {path.span()=>
            #krate::__private::run_migration(#path, __typed_session_fields, __typed_session_from)
        },
        None => quote! {
            let _ = (__typed_session_fields, __typed_session_from);
            ::core::result::Result::Ok(())
        },
    };
    let renewing: Vec<_> = input
        .fields
        .iter()
        .filter(|field| field.attrs.renew_on_change.is_some())
        .collect();
    let whole_update = if renewing.is_empty() {
        quote!(self.raw.write_all(update))
    } else {
        let before = renewing.iter().map(|field| {
            let ident = field.ident;
            quote!(::core::clone::Clone::clone(&data.#ident))
        });
        let compare = renewing.iter().enumerate().map(|(index, field)| {
            let ident = field.ident;
            let index = syn::Index::from(index);
            quote!(|| ::core::cmp::PartialEq::ne(&data.#ident, &before.#index))
        });
        quote! {
            let (changed, result) = self.raw.write_all(|data| {
                let before = (#(#before,)*);
                let result = update(data);
                (false #(#compare)*, result)
            });
            self.raw.renew_if(changed);
            result
        }
    };
    let handle_doc = format!(
        "Typed accessors of a `{ident}` session: what `TypedSession<{ident}>` dereferences to.\n\n\
         Generated by `#[derive(SessionData)]`: for each field `foo` there are `foo()`, \
         `set_foo(value)` and `update_foo(|foo| ...)`, plus `take_foo()` for `Option` fields."
    );
    let read_doc = format!(
        "Runs `read` on the whole `{ident}`, atomically with respect to other requests of this session."
    );
    let update_doc = format!(
        "Runs `update` on the whole `{ident}`, atomically with respect to other requests of this \
         session, and marks every field changed. For one field, prefer its `update_` accessor, \
         which marks only that field."
    );

    quote! {
        #[doc = #handle_doc]
        #vis struct #handle {
            raw: #krate::__private::RawSession<#ident>,
        }

        #[automatically_derived]
        impl ::core::clone::Clone for #handle {
            fn clone(&self) -> Self {
                Self { raw: ::core::clone::Clone::clone(&self.raw) }
            }
        }

        #[automatically_derived]
        impl #krate::__private::SessionHandle<#ident> for #handle {
            fn from_raw(raw: #krate::__private::RawSession<#ident>) -> Self {
                Self { raw }
            }

            fn raw(&self) -> &#krate::__private::RawSession<#ident> {
                &self.raw
            }
        }

        #[automatically_derived]
        impl #krate::SessionData for #ident {
            type Handle = #handle;

            const NAME: &'static str = #name;

            const PERSISTED: u64 = #persisted_mask;

            const SCHEMA: u32 = #schema;

            const ENCRYPTED: &'static [&'static str] = &[#(#encrypted),*];

            fn migrate(
                __typed_session_fields: &mut #krate::__private::serde_json::Map<
                    ::std::string::String,
                    #krate::__private::serde_json::Value,
                >,
                __typed_session_from: u32,
            ) -> ::core::result::Result<(), #krate::__private::DecodeError> {
                #migrate_body
            }

            fn initial() -> Self {
                Self { #(#initial_fields,)* }
            }

            fn encode(
                &self,
                __typed_session_fields: &mut #krate::__private::FieldWriter,
            ) -> ::core::result::Result<(), #krate::__private::EncodeError> {
                #(#encode_fields)*
                ::core::result::Result::Ok(())
            }

            fn decode(
                __typed_session_fields: &#krate::__private::FieldReader,
            ) -> ::core::result::Result<Self, #krate::__private::DecodeError> {
                ::core::result::Result::Ok(Self { #(#decode_fields,)* })
            }

            #[allow(unused_variables)]
            fn merge_stored(&mut self, stored: Self, keep: u64) {
                #(#merge_fields)*
            }
        }

        #[automatically_derived]
        impl #handle {
            #(#accessors)*

            #[doc = #read_doc]
            #[inline]
            #vis fn read<__R>(&self, read: impl ::core::ops::FnOnce(&#ident) -> __R) -> __R {
                self.raw.read(read)
            }

            #[doc = #update_doc]
            #[inline]
            #vis fn update<__R>(&self, update: impl ::core::ops::FnOnce(&mut #ident) -> __R) -> __R {
                #whole_update
            }
        }

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

fn initial_value(field: &Field<'_>) -> TokenStream {
    let ident = field.ident;
    let init = initial_expr(field);
    quote!(#ident: #init)
}

/// A new session's value of `field`.
fn initial_expr(field: &Field<'_>) -> TokenStream {
    let default = default_fn(field);
    quote_spanned!(default.span()=> #default())
}

/// The function giving a new session's value of `field`: its `default` path, or `Default`'s.
fn default_fn(field: &Field<'_>) -> TokenStream {
    let ty = field.ty;
    match &field.attrs.default {
        Some(path) => quote_spanned!(path.span()=> #path),
        None => quote_spanned!(ty.span()=> <#ty as ::core::default::Default>::default),
    }
}

fn field_accessors(field: &Field<'_>, index: usize, vis: &syn::Visibility) -> TokenStream {
    let ident = field.ident;
    let ty = field.ty;
    let names = field.accessors();
    let (get, set, update) = (&names.get, &names.set, &names.update);
    let bit = u32::try_from(index).unwrap_or(u32::MAX);
    let shown = syn::ext::IdentExt::unraw(ident).to_string();
    let get_doc = format!("Returns a clone of `{shown}`.");
    let set_doc = format!("Sets `{shown}`; stored when the response is sent.");
    let update_doc = format!(
        "Changes `{shown}` in place and returns what `update` returns, atomically with respect \
         to other requests of this session."
    );
    // Spanned at the type, so a missing `Clone` points at the field rather than the derive.
    let clone = quote_spanned!(ty.span()=> ::core::clone::Clone::clone(&data.#ident));
    let renew_on_take = field
        .attrs
        .renew_on_change
        .as_ref()
        .map(|_| quote!(self.raw.renew_if(taken.is_some());));
    let getter = if field.attrs.flash.is_some() {
        let doc = format!(
            "Returns `{shown}` and clears it (a flash value is read once); the session is written \
             only if there was something to read."
        );
        quote! {
            #[doc = #doc]
            #[must_use]
            #[inline]
            #vis fn #get(&self) -> #ty {
                let taken = self.raw.take(#bit, |data| data.#ident.take());
                #renew_on_take
                taken
            }
        }
    } else {
        quote! {
            #[doc = #get_doc]
            #[must_use]
            #[inline]
            #vis fn #get(&self) -> #ty {
                self.raw.read(|data| #clone)
            }
        }
    };
    let take = names.take.as_ref().map(|take| {
        let take_doc = format!(
            "Takes `{shown}` out, leaving `None`; a session is written only if there was something to take."
        );
        quote! {
            #[doc = #take_doc]
            #[inline]
            #vis fn #take(&self) -> #ty {
                let taken = self.raw.take(#bit, |data| data.#ident.take());
                #renew_on_take
                taken
            }
        }
    });
    let (setter, updater) = if field.attrs.renew_on_change.is_some() {
        let ne = quote_spanned!(ty.span()=> ::core::cmp::PartialEq::ne);
        (
            quote! {
                #[doc = #set_doc]
                #[doc = ""]
                #[doc = "A change renews the session id when the response is sent (`renew_on_change`)."]
                #[inline]
                #vis fn #set(&self, value: #ty) {
                    let changed = self.raw.write(#bit, |data| {
                        let changed = #ne(&data.#ident, &value);
                        data.#ident = value;
                        changed
                    });
                    self.raw.renew_if(changed);
                }
            },
            quote! {
                #[doc = #update_doc]
                #[doc = ""]
                #[doc = "A change renews the session id when the response is sent (`renew_on_change`)."]
                #[inline]
                #vis fn #update<__R>(&self, update: impl ::core::ops::FnOnce(&mut #ty) -> __R) -> __R {
                    let (changed, result) = self.raw.write(#bit, |data| {
                        let before = #clone;
                        let result = update(&mut data.#ident);
                        (#ne(&data.#ident, &before), result)
                    });
                    self.raw.renew_if(changed);
                    result
                }
            },
        )
    } else {
        (
            quote! {
                #[doc = #set_doc]
                #[inline]
                #vis fn #set(&self, value: #ty) {
                    self.raw.write(#bit, |data| data.#ident = value);
                }
            },
            quote! {
                #[doc = #update_doc]
                #[inline]
                #vis fn #update<__R>(&self, update: impl ::core::ops::FnOnce(&mut #ty) -> __R) -> __R {
                    self.raw.write(#bit, |data| update(&mut data.#ident))
                }
            },
        )
    };
    quote! {
        #getter

        #setter

        #updater

        #take
    }
}

/// `CartData` → `cart_data`, `HTTPState` → `http_state`.
fn snake_case(name: &str) -> String {
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
