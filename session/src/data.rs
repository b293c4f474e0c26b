//! The traits that `#[derive(SessionData)]` implements.

use crate::record::{DecodeError, EncodeError, FieldReader, FieldWriter};
use crate::session::RawSession;

/// A struct whose values are sessions. Implement it with `#[derive(SessionData)]`.
///
/// The derive also generates a handle type (by default `{Struct}Session`) holding the typed
/// accessors; [`TypedSession<T>`](crate::TypedSession) dereferences to it, so handlers call
/// `session.count()`, `session.set_count(3)`, `session.update_count(|c| …)` directly.
///
/// Implementing this trait by hand is not supported: its hidden items may change in any release.
///
/// ```
/// use typed_session::SessionData;
///
/// #[derive(SessionData)]
/// struct Visit {
///     count: u64,
/// }
///
/// assert_eq!(<Visit as SessionData>::NAME, "visit");
/// ```
pub trait SessionData: Sized + Send + Sync + 'static {
    /// The generated accessor type that `TypedSession<Self>` dereferences to.
    type Handle: SessionHandle<Self>;

    /// The snake_case name of the type; the default cookie name.
    const NAME: &'static str;

    /// One bit per persisted field (by declaration order); `memory_only` fields have none.
    #[doc(hidden)]
    const PERSISTED: u64;

    /// The value of a new session: each field's `#[session(default = "…")]` function, or its
    /// `Default`.
    fn initial() -> Self;

    /// Writes every persisted field.
    #[doc(hidden)]
    fn encode(&self, fields: &mut FieldWriter) -> Result<(), EncodeError>;

    /// Reads a value back: persisted fields from `fields` (or their default when absent),
    /// `memory_only` fields from their default.
    #[doc(hidden)]
    fn decode(fields: &FieldReader) -> Result<Self, DecodeError>;

    /// Takes the value of every persisted field outside `keep` from `stored`: how a value that
    /// lost a compare-and-set race absorbs the winner's writes while keeping its own.
    #[doc(hidden)]
    fn merge_stored(&mut self, stored: Self, keep: u64);
}

/// Glue between the generated handle type and the runtime. Not part of the public API.
#[doc(hidden)]
pub trait SessionHandle<T: SessionData>: Clone + Send + Sync + 'static {
    /// Wraps the request's session.
    fn from_raw(raw: RawSession<T>) -> Self;
    /// The request's session.
    fn raw(&self) -> &RawSession<T>;
}
