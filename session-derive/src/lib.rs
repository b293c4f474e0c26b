//! `#[derive(SessionData)]` for typed-session. Use it through the `typed-session` crate, which
//! re-exports it and documents every attribute.
//!
//! The crate is split the classic way: [`ast`] parses the input into a small IR (with
//! [`attr`] reading `#[session(...)]`), [`valid`] rejects every misuse with a spanned error,
//! and [`expand`] generates code from an IR known to be valid.
#![forbid(unsafe_code)]

mod ast;
mod attr;
mod errors;
mod expand;
mod valid;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `typed_session::SessionData` and generates the accessor type. See the
/// `typed-session` crate for the attributes.
#[proc_macro_derive(SessionData, attributes(session))]
pub fn derive_session_data(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    ast::Input::from_syn(&input)
        .and_then(|input| {
            valid::check(&input)?;
            Ok(expand::expand(&input))
        })
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
