//! Code generation from a validated IR. Every path is absolute (`::core::…`, the runtime crate
//! path), so the output compiles under `#![no_implicit_prelude]` and next to any user names.
//!
//! One file per generated item: `handle` declares the accessor type, `accessors` its methods
//! (with `signatures` for what they look like from outside), `data` the `SessionData` impl
//! (with `record` for the stored form and `defaults` for a new session's values), `index` the
//! `Indexed` impl of an `#[session(index)]` field, `csrf` the `CsrfProtected` impl of a
//! `#[session(csrf)]` field, and `bounds` the checks on the field types.
//! Each depends only on this module's [`Context`] and on the files named with it. The fallback
//! reuses `handle`, `data` and `signatures`.

mod accessors;
mod bounds;
mod csrf;
mod data;
mod defaults;
mod handle;
mod index;
mod record;
mod signatures;

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Ident, Visibility};

use crate::ast::Input;
use crate::attr::ContainerAttrs;

pub(crate) use data::{Items, impl_session_data};
pub(crate) use handle::declare as declare_handle;
pub(crate) use signatures::{
    of_field as field_signatures, whole_struct as whole_struct_signatures,
};

/// What every generated item needs to know about the struct.
pub(crate) struct Context<'a> {
    /// The struct.
    pub(crate) ident: &'a Ident,
    /// The struct's visibility, which the handle type and its methods share.
    pub(crate) vis: &'a Visibility,
    /// The path of the runtime crate.
    pub(crate) krate: TokenStream,
    /// The accessor type's name.
    pub(crate) handle: Ident,
}

impl<'a> Context<'a> {
    pub(crate) fn new(ident: &'a Ident, vis: &'a Visibility, attrs: &ContainerAttrs) -> Self {
        Self {
            ident,
            vis,
            krate: attrs
                .krate
                .as_ref()
                .map_or_else(|| quote!(::typed_session), |path| quote!(#path)),
            handle: attrs
                .handle
                .clone()
                .unwrap_or_else(|| format_ident!("{}Session", ident)),
        }
    }
}

pub(crate) fn expand(input: &Input<'_>) -> TokenStream {
    let cx = Context::new(input.ident, input.vis, &input.attrs);
    let handle = declare_handle(&cx);
    let data = impl_session_data(&cx, &Items::of(&cx, input));
    let accessors = accessors::impl_accessors(&cx, input);
    let bounds = bounds::check_field_types(&cx, input);
    let indexed = index::impl_indexed(&cx, input);
    let csrf = csrf::impl_csrf_protected(&cx, input);
    quote! {
        #handle
        #data
        #accessors
        #bounds
        #indexed
        #csrf
    }
}
