//! Typed sessions for axum: a session is your struct.
//!
//! ```
//! use axum::{Router, routing::get};
//! use typed_session::{SessionConfig, SessionData, SessionLayer, SessionStore, TypedSession};
//!
//! #[derive(SessionData)]
//! struct Visit {
//!     count: u64,
//!     #[session(flash)]
//!     notice: Option<String>,
//! }
//!
//! async fn greet(session: TypedSession<Visit>) -> String {
//!     // Atomic read-modify-write: parallel requests of one session never lose an increment.
//!     session.update_count(|count| { *count += 1; *count }).to_string()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), typed_session::BuildError> {
//! let store = SessionStore::<Visit>::builder()
//!     .config(SessionConfig::default().with_secure(false))
//!     .build()
//!     .await?;
//! let app: Router = Router::new().route("/", get(greet)).layer(SessionLayer::new(store));
//! # Ok(())
//! # }
//! ```
//!
//! # Reference
//!
//! - [Attributes](trait@SessionData): every `#[session(...)]` attribute of the derive, and the
//!   accessors it generates.
//! - [Configuration](SessionConfig): every setting with its default, the store builder, and
//!   what the timeouts promise.
//! - [Storage](backend): the backends and their features, schemas, several servers, and a
//!   backend of your own.
//! - [Security](Key): signing, key rotation, encryption, binding, renewal, consent, and what
//!   running without a key gives up.
//! - [How a request goes](SessionLayer): what the layer does before and after the handler, and
//!   its error answers.
//!
//! These pages are `session/docs/*.md` in the repository. The README covers installation, the
//! cargo features, and the spans and metrics (feature `metrics`) the store emits.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod backend;
mod binding;
mod clock;
mod config;
mod crypto;
mod csrf;
mod data;
mod entry;
mod error;
mod extract;
mod id;
mod index;
mod info;
mod layer;
mod lifetime;
mod observe;
mod record;
mod session;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod transport;

#[cfg(feature = "key-store")]
pub use config::KeyStoreConfig;
pub use config::{ClientIp, SameSite, SessionConfig, SessionMode, Transport};
pub use crypto::{Key, KeyError};
pub use csrf::{CSRF_HEADER, CsrfError, CsrfProtected, CsrfSecret};
pub use data::{Indexed, SessionData};
pub use error::{ConfigError, SessionError};
pub use extract::{MissingSessionLayer, TypedSession};
pub use id::{ParseSessionIdError, SessionId};
pub use info::{ParseSessionHandleError, SessionHandle, SessionInfo};
pub use layer::{ResponseFuture, SessionLayer, SessionService};
pub use store::{BuildError, SessionStore, SessionStoreBuilder};

/// The JSON types a `#[session(migrate = "…")]` function works on.
pub use serde_json;

/// `#[derive(SessionData)]`: see [`SessionData`](trait@SessionData) for every attribute.
#[cfg(feature = "derive")]
pub use typed_session_derive::SessionData;

/// Items the derive's generated code refers to. Not public API: they may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::csrf::rotate as rotate_csrf;
    pub use crate::data::GeneratedHandle;
    pub use crate::index::index_value;
    pub use crate::record::{DecodeError, EncodeError, FieldReader, FieldWriter, run_migration};
    pub use crate::session::RawSession;
    pub use serde;
    pub use serde_json;
}

/// The README's Rust blocks, compiled and run as doc tests so the quickstart cannot rot.
#[cfg(all(doctest, feature = "sqlite"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
