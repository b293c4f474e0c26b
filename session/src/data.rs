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
/// marks every field changed). Supported: structs with named fields whose field types are
/// `Clone + Send + Sync + 'static` and, unless `memory_only`, `Serialize + DeserializeOwned`.
/// Enums, unions, tuple and unit structs, and generic or borrowing structs are rejected with a
/// message saying so.
///
/// # Field attributes
///
/// | attribute | meaning |
/// |---|---|
/// | `#[session(memory_only)]` | never persisted: lives in the server's memory with the session |
/// | `#[session(flash)]` | read once: the getter returns the value and clears it (`Option<_>` fields only) |
/// | `#[session(default = "path")]` | a new session's value comes from this function (otherwise `Default`) |
/// | `#[session(rename = "key")]` | the key the field is stored under |
/// | `#[session(alias = "old")]` | an older key still read (repeatable); the field is saved under its current key |
///
/// # Struct attributes
///
/// | attribute | meaning |
/// |---|---|
/// | `#[session(version = N)]` | the schema version stored with each record (from 1) |
/// | `#[session(migrate = "path")]` | with `version`: `fn(&mut serde_json::Map<String, Value>, from: u32) -> Result<(), E: Display>`, run once on a record of an older version before it is decoded; the record is saved in the new version on its next write, and a failing migration gives a fresh session |
/// | `#[session(handle = "Name")]` | the name of the generated accessor type |
/// | `#[session(crate = "path")]` | where `typed_session` is, for crates that re-export it |
///
/// Without `migrate`, records of any version are read by the same rule: stored keys the struct
/// does not have are ignored, fields missing from the record take their default.
///
/// A field whose accessor would be shadowed by a method of `TypedSession` (`id`, `read`,
/// `update`, `destroy`, `renew`, `clone`, …) is a compile error; keep such a stored key with
/// `rename`. All attribute errors of a struct are reported in one build.
///
/// ```
/// use typed_session::serde_json::{Map, Value};
/// use typed_session::{SessionData, TypedSession};
///
/// fn light() -> String {
///     "light".to_owned()
/// }
///
/// /// Version 1 stored `dark: bool`; version 2 stores a theme name.
/// fn upgrade(fields: &mut Map<String, Value>, from: u32) -> Result<(), String> {
///     if from < 2 {
///         let dark = fields.remove("dark").and_then(|v| v.as_bool()).unwrap_or(false);
///         fields.insert("theme".into(), Value::from(if dark { "dark" } else { "light" }));
///     }
///     Ok(())
/// }
///
/// #[derive(SessionData)]
/// #[session(version = 2, migrate = "upgrade")]
/// struct Visit {
///     count: u64,
///     #[session(default = "light")]
///     theme: String,
///     #[session(memory_only)]
///     csrf: Option<String>,
///     #[session(flash)]
///     notice: Option<String>,
///     #[session(rename = "uid", alias = "user")]
///     user_id: Option<u64>,
/// }
///
/// async fn handler(session: TypedSession<Visit>) -> String {
///     let count = session.update_count(|c| {
///         *c += 1;
///         *c
///     });
///     let notice = session.notice().unwrap_or_default(); // shown once
///     format!("{count} {} {notice}", session.theme())
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
}

/// Glue between the generated handle type and the runtime. Not part of the public API.
#[doc(hidden)]
pub trait SessionHandle<T: SessionData>: Clone + Send + Sync + 'static {
    /// Wraps the request's session.
    fn from_raw(raw: RawSession<T>) -> Self;
    /// The request's session.
    fn raw(&self) -> &RawSession<T>;
}
