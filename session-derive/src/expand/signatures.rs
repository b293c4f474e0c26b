//! The signatures of the handle's methods. The real accessors and the fallback's stubs both
//! use them, so a handler that compiles against one compiles against the other.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::{Ident, Visibility};

use super::Context;
use crate::ast::{Accessors, Field};

/// One method's signature, up to its body.
pub(crate) struct Signature {
    /// The method's name.
    pub(crate) name: Ident,
    tokens: TokenStream,
}

impl ToTokens for Signature {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.tokens.to_tokens(tokens);
    }
}

/// The signatures of one field's accessors.
pub(crate) type FieldSignatures = Accessors<Signature>;

/// The signatures of `field`'s accessors.
pub(crate) fn of_field(field: &Field<'_>, vis: &Visibility) -> FieldSignatures {
    let ty = field.ty;
    let names = field.accessors();
    Accessors {
        get: signature(names.get, |get| quote!(#vis fn #get(&self) -> #ty)),
        set: signature(names.set, |set| quote!(#vis fn #set(&self, value: #ty))),
        update: signature(
            names.update,
            |update| quote!(#vis fn #update<__R>(&self, update: impl ::core::ops::FnOnce(&mut #ty) -> __R) -> __R),
        ),
        take: names
            .take
            .map(|take| signature(take, |take| quote!(#vis fn #take(&self) -> #ty))),
    }
}

/// The whole-struct `read` and `update`, in that order.
pub(crate) fn whole_struct(cx: &Context<'_>) -> [Signature; 2] {
    let Context { ident, vis, .. } = cx;
    [
        signature(
            Ident::new("read", Span::call_site()),
            |read| quote!(#vis fn #read<__R>(&self, read: impl ::core::ops::FnOnce(&#ident) -> __R) -> __R),
        ),
        signature(
            Ident::new("update", Span::call_site()),
            |update| quote!(#vis fn #update<__R>(&self, update: impl ::core::ops::FnOnce(&mut #ident) -> __R) -> __R),
        ),
    ]
}

/// The signature `tokens` gives for the method `name`.
fn signature(name: Ident, tokens: impl FnOnce(&Ident) -> TokenStream) -> Signature {
    Signature {
        tokens: tokens(&name),
        name,
    }
}
