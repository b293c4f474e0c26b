//! The traits that `#[derive(SessionData)]` implements.

use crate::record::{DecodeError, EncodeError, FieldReader, FieldWriter};
use crate::session::RawSession;

/// A struct whose values are sessions. Implement it with `#[derive(SessionData)]`.
///
/// The derive generates a handle type (by default `{Struct}Session`) holding typed accessors;
/// [`TypedSession<T>`](crate::TypedSession) dereferences to it. For every field `foo: T`:
///
/// - `foo() -> T`: a clone of the field (for a `flash` field: the value, taken out);
/// - `set_foo(value)`: replaces it and marks the field changed;
/// - `update_foo(|foo: &mut T| -> R) -> R`: changes it in place, atomically with respect to
///   other requests of the session, and marks the field changed;
/// - `take_foo() -> T`, for `Option<_>` fields: takes the value, leaving `None` (marks the field
///   changed only if there was something to take);
///
/// and for the whole struct `read(|&Struct| -> R)` and `update(|&mut Struct| -> R)` (the latter
/// marks every field changed). Reads mark nothing; a setter marks only its own field.
///
#[doc = include_str!("../docs/attributes.md")]
pub trait SessionData: Sized + Send + Sync + 'static {
    /// The generated accessor type that `TypedSession<Self>` dereferences to.
    type Handle: GeneratedHandle<Self>;

    /// The snake_case name of the type; the default cookie name.
    const NAME: &'static str;

    /// One bit per persisted field (by declaration order); `memory_only` fields have none.
    #[doc(hidden)]
    const PERSISTED: u64;

    /// The names of the `#[session(encrypt)]` fields: a store without a key refuses to build.
    #[doc(hidden)]
    const ENCRYPTED: &'static [&'static str];

    /// The schema version stored with each record (`#[session(version = N)]`; 0 without it).
    #[doc(hidden)]
    const SCHEMA: u32;

    /// Upgrades the fields of a record written under schema `from` (< `SCHEMA`) in place:
    /// the `#[session(migrate = "…")]` function, or nothing.
    #[doc(hidden)]
    fn migrate(
        fields: &mut serde_json::Map<String, serde_json::Value>,
        from: u32,
    ) -> Result<(), DecodeError>;

    /// The value of a new session: each field's `#[session(default = "…")]` function, or its
    /// `Default`.
    fn initial() -> Self;

    /// Writes every persisted field.
    #[doc(hidden)]
    fn encode(&self, fields: &mut FieldWriter<'_>) -> Result<(), EncodeError>;

    /// Reads a value back: persisted fields from `fields` (or their default when absent),
    /// `memory_only` fields from their default.
    #[doc(hidden)]
    fn decode(fields: &FieldReader<'_>) -> Result<Self, DecodeError>;

    /// Takes the value of every persisted field outside `keep` from `stored`: how a value that
    /// lost a compare-and-set race absorbs the winner's writes while keeping its own.
    #[doc(hidden)]
    fn merge_stored(&mut self, stored: Self, keep: u64);

    /// The dirty bit of the `#[session(csrf)]` field; 0 without one.
    #[doc(hidden)]
    const CSRF: u64 = 0;

    /// Replaces the `#[session(csrf)]` field's secret, if it has one, when the session id is
    /// renewed; whether it did.
    #[doc(hidden)]
    fn rotate_csrf(&mut self) -> bool {
        false
    }

    /// Whether a field is `#[session(index)]`: the store then keeps a map from its stored keys
    /// to ids for [`SessionStore::destroy`](crate::SessionStore::destroy).
    #[doc(hidden)]
    const INDEXED: bool = false;

    /// The `#[session(index)]` field's value as stored with the record
    /// ([`index_value`](crate::__private::index_value)); `None` without such a field.
    #[doc(hidden)]
    fn index(&self) -> Option<String> {
        None
    }
}

/// A session type with an `#[session(index)]` field, whose sessions can be listed and ended by
/// that field's value: [`SessionStore::sessions_of`](crate::SessionStore::sessions_of) and
/// [`SessionStore::destroy_sessions_of`](crate::SessionStore::destroy_sessions_of).
/// `#[derive(SessionData)]` implements it.
///
/// ```
/// use typed_session::{Indexed, SessionData};
///
/// #[derive(SessionData)]
/// struct Login {
///     #[session(index)]
///     user_id: Option<u64>,
/// }
///
/// // An `Option<u64>` field is looked up by `u64`; a session whose field is `None` is in no
/// // list.
/// fn lookup_type<T: Indexed<Index = u64>>() {}
/// lookup_type::<Login>();
/// ```
pub trait Indexed: SessionData {
    /// The type sessions are looked up by: the indexed field's type, or `X` for a field of
    /// type `Option<X>`.
    type Index: serde::Serialize + ?Sized;
}

/// Glue between the generated handle type and the runtime. Not part of the public API.
#[doc(hidden)]
pub trait GeneratedHandle<T: SessionData>: Clone + Send + Sync + 'static {
    /// Wraps the request's session.
    fn from_raw(raw: RawSession<T>) -> Self;
    /// The request's session.
    fn raw(&self) -> &RawSession<T>;
}
