//! The methods of the handle type: per-field `foo`, `set_foo`, `update_foo` and `take_foo`,
//! and the whole-struct `read` and `update`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::Visibility;
use syn::spanned::Spanned;

use super::Context;
use super::signatures;
use crate::ast::{Accessors, Field, Input};

/// `impl Handle { ... }` with every accessor.
pub(crate) fn impl_accessors(cx: &Context<'_>, input: &Input<'_>) -> TokenStream {
    let Context {
        ident, vis, handle, ..
    } = cx;
    let [read, update] = signatures::whole_struct(cx);
    let accessors = input
        .fields
        .iter()
        .enumerate()
        .map(|(index, field)| field_accessors(field, index, vis));
    let whole_update = whole_update(input);
    let read_doc = format!(
        "Runs `read` on the whole `{ident}`, atomically with respect to other requests of this session."
    );
    let update_doc = format!(
        "Runs `update` on the whole `{ident}`, atomically with respect to other requests of this \
         session, and marks every field changed. For one field, prefer its `update_` accessor, \
         which marks only that field."
    );
    quote! {
        #[automatically_derived]
        impl #handle {
            #(#accessors)*

            #[doc = #read_doc]
            #[inline]
            #read {
                self.raw.read(read)
            }

            #[doc = #update_doc]
            #[inline]
            #update {
                #whole_update
            }
        }
    }
}

/// The body of the whole-struct `update`: a plain write, or one that renews the session id
/// when a `renew_on_change` field changed.
fn whole_update(input: &Input<'_>) -> TokenStream {
    let renewing: Vec<_> = input
        .fields
        .iter()
        .filter(|field| field.attrs.renew_on_change.is_some())
        .collect();
    if renewing.is_empty() {
        return quote!(self.raw.write_all(update));
    }
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
}

/// The accessors of the field with dirty bit `index`.
fn field_accessors(field: &Field<'_>, index: usize, vis: &Visibility) -> TokenStream {
    let ident = field.ident;
    let ty = field.ty;
    let Accessors {
        get,
        set,
        update,
        take,
    } = signatures::of_field(field, vis);
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
            #get {
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
            #get {
                self.raw.read(|data| #clone)
            }
        }
    };
    let take = take.map(|take| {
        let take_doc = format!(
            "Takes `{shown}` out, leaving `None`; a session is written only if there was something to take."
        );
        quote! {
            #[doc = #take_doc]
            #[inline]
            #take {
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
                #set {
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
                #update {
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
                #set {
                    self.raw.write(#bit, |data| data.#ident = value);
                }
            },
            quote! {
                #[doc = #update_doc]
                #[inline]
                #update {
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
