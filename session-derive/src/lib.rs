//! `#[derive(SessionData)]` for typed-session. Use it through the `typed-session` crate, which
//! re-exports it and documents every attribute.
//!
//! The crate is split the classic way: `ast` parses the input into a small IR (with
//! `attr` reading `#[session(...)]`, whose names are all in `symbol`), `valid` rejects every
//! misuse with a spanned error, and `expand` generates code from an IR known to be valid.
//! When the input has errors, `fallback` emits a minimal impl next to them, so code using the
//! struct adds no errors of its own.
#![forbid(unsafe_code)]

mod ast;
mod attr;
mod errors;
mod expand;
mod fallback;
mod symbol;
mod valid;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `typed_session::SessionData` and generates the accessor type that
/// `TypedSession<T>` dereferences to. The `#[session(...)]` attributes it reads are documented
/// with the `typed_session::SessionData` trait, not repeated here.
#[proc_macro_derive(SessionData, attributes(session))]
pub fn derive_session_data(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive(&input).into()
}

fn derive(input: &DeriveInput) -> proc_macro2::TokenStream {
    let mut errors = errors::Errors::default();
    // Attribute errors and validation errors are collected together: one build shows them all.
    let parsed = match ast::Input::from_syn(input, &mut errors) {
        Ok(parsed) => parsed,
        Err(error) => return with_fallback(&error, input, None),
    };
    valid::check(&parsed, &mut errors);
    match errors.finish() {
        Ok(()) => expand::expand(&parsed),
        Err(error) => with_fallback(&error, input, Some(&parsed)),
    }
}

/// The errors, and next to them the fallback, so code using the struct adds no errors.
fn with_fallback(
    error: &syn::Error,
    input: &DeriveInput,
    parsed: Option<&ast::Input<'_>>,
) -> proc_macro2::TokenStream {
    let mut tokens = error.to_compile_error();
    tokens.extend(fallback::expand(input, parsed));
    tokens
}
