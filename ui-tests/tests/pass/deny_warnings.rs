#![deny(warnings, missing_docs, clippy::pedantic)]
//! The generated code adds no warnings to a strict crate.

use typed_session::SessionData;

/// A documented session struct.
#[derive(SessionData)]
pub struct Visit {
    /// Visits so far.
    pub count: u64,
    /// A message shown once.
    pub notice: Option<String>,
}

fn main() {}
