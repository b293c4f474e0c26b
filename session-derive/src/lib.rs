//! `#[derive(SessionData)]` for typed-session. Use it through the `typed-session` crate, which
//! re-exports it and documents every attribute.
//!
//! The crate is split the classic way: `ast` parses the input into a small IR (with
//! `attr` reading `#[session(...)]`), `valid` rejects every misuse with a spanned error,
//! and `expand` generates code from an IR known to be valid.
#![forbid(unsafe_code)]

mod ast;
mod attr;
mod errors;
mod expand;
mod symbol;
mod valid;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `typed_session::SessionData` and generates the accessor type that
/// `TypedSession<T>` dereferences to. Every attribute (`memory_only`, `flash`, `default`,
/// `rename`, `alias`, `version`, `migrate`, `handle`, `crate`) is documented, with an example,
/// on the `typed_session::SessionData` trait.
#[proc_macro_derive(SessionData, attributes(session))]
pub fn derive_session_data(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn derive(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let mut errors = errors::Errors::default();
    // Attribute errors and validation errors are collected together: one build shows them all.
    let input = ast::Input::from_syn(input, &mut errors)?;
    valid::check(&input, &mut errors);
    errors.finish()?;
    Ok(expand::expand(&input))
}
