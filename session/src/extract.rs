//! `TypedSession<T>`, the extractor handlers take.

use std::fmt;
use std::ops::Deref;
use std::time::SystemTime;

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::data::{GeneratedHandle, SessionData};
use crate::error::SessionError;
use crate::id::SessionId;
use crate::info::SessionHandle;
use crate::session::RawSession;

/// The session of the current request, typed by its data `T`.
///
/// It dereferences to the accessor type that `#[derive(SessionData)]` generates, so the field
/// accessors are called on it directly; the session-level operations are its own methods.
/// Extracting it needs a [`SessionLayer<T>`](crate::SessionLayer) around the route; without one
/// the request is answered `500` with a [`MissingSessionLayer`] message naming the type.
///
/// Clones (and repeated extractions in one request) share one session.
///
/// ```
/// use typed_session::{SessionData, TypedSession};
///
/// #[derive(SessionData)]
/// struct Visit {
///     count: u64,
///     user: Option<String>,
/// }
///
/// async fn handler(session: TypedSession<Visit>) -> String {
///     let count = session.update_count(|count| {
///         *count += 1;
///         *count
///     });
///     format!("visit {count} by {:?}", session.user())
/// }
///
/// async fn logout(session: TypedSession<Visit>) {
///     session.destroy();
/// }
/// ```
pub struct TypedSession<T: SessionData> {
    handle: T::Handle,
}

impl<T: SessionData> TypedSession<T> {
    #[cfg(feature = "testing")]
    pub(crate) fn from_handle(handle: T::Handle) -> Self {
        Self { handle }
    }

    pub(crate) fn raw(&self) -> &RawSession<T> {
        self.handle.raw()
    }

    /// The session id. For a new session it is the id the session gets if this request writes
    /// to it; after [`renew`](Self::renew) it is still the old id until the response is sent.
    #[must_use]
    pub fn id(&self) -> SessionId {
        self.raw().id()
    }

    /// Names this session in [`SessionStore::sessions_of`](crate::SessionStore::sessions_of)
    /// lists without revealing its id: compare it with each listed session's handle to mark
    /// "this device". It changes when the id is renewed; a renewal asked for in this request
    /// shows in the next.
    #[must_use]
    pub fn handle(&self) -> SessionHandle {
        self.raw().handle()
    }

    /// Stores the session's writes now instead of when the response is sent: for a handler that
    /// keeps running after its response (a server-sent event stream, a WebSocket), whose later
    /// writes the layer's save does not carry. A save as the layer's: compare-and-set, merged
    /// with other servers' writes, and never acknowledged if it went nowhere.
    ///
    /// A new session is created (and its cookie sent) with the response: call this after the
    /// response has started.
    ///
    /// ```
    /// use typed_session::{SessionData, SessionError, TypedSession};
    ///
    /// #[derive(SessionData)]
    /// struct Feed {
    ///     seen: u64,
    /// }
    ///
    /// // Inside a stream that outlives its response: each event is recorded as it goes.
    /// async fn record_event(session: &TypedSession<Feed>) -> Result<(), SessionError> {
    ///     session.update_seen(|seen| *seen += 1);
    ///     session.save_now().await
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// As the layer would answer: storage failed (503, [`SessionError::status`]), or the
    /// session ended meanwhile (409, [`SessionError::is_ended`]); the writes were then not
    /// kept.
    pub async fn save_now(&self) -> Result<(), SessionError> {
        self.raw().save_now().await
    }

    /// Whether the session is still live, asked of the backend now rather than trusted from this
    /// server's cache: for a long-lived stream that should stop when its user logs out
    /// elsewhere. `false` once it was destroyed (here, by another server, or with
    /// [`SessionStore::destroy`](crate::SessionStore::destroy)), renewed away, or expired. Costs
    /// a backend round trip (a touch, which also extends the stored expiry).
    ///
    /// ```
    /// use std::time::Duration;
    /// use typed_session::{SessionData, TypedSession};
    ///
    /// #[derive(SessionData)]
    /// struct Login {
    ///     user_id: Option<u64>,
    /// }
    ///
    /// async fn stream_while_signed_in(session: TypedSession<Login>) {
    ///     while matches!(session.verify().await, Ok(true)) {
    ///         // ... send the next event ...
    ///         tokio::time::sleep(Duration::from_secs(5)).await;
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    ///
    /// When the backend cannot be asked.
    pub async fn verify(&self) -> Result<bool, SessionError> {
        self.raw().verify().await
    }

    /// Whether the session did not exist before this request. A new session is stored (and
    /// its cookie set) only if the request writes to it.
    #[must_use]
    pub fn is_new(&self) -> bool {
        self.raw().is_new()
    }

    /// When the session ends if no further request comes: the earlier of the idle and the
    /// absolute timeout.
    #[must_use]
    pub fn expires_at(&self) -> SystemTime {
        self.raw().expires_at()
    }

    /// Whether this is a "remember me" session (see [`set_long_term`](Self::set_long_term)).
    #[must_use]
    pub fn is_long_term(&self) -> bool {
        self.raw().is_long_term()
    }

    /// Makes this a "remember me" session, or an ordinary one again. A long-term session ends
    /// [`long_term_timeout`](crate::SessionConfig::with_long_term_timeout) after its last request
    /// (no absolute timeout), and its cookie gets a matching `Max-Age`, so it survives a browser
    /// restart. An ordinary session has a browser-session cookie and the idle and absolute
    /// timeouts. Typically set at log-in, together with [`renew`](Self::renew).
    pub fn set_long_term(&self, long_term: bool) {
        self.raw().set_long_term(long_term);
    }

    /// Whether the session may be stored: always under
    /// [`SessionMode::Persistent`](crate::SessionMode::Persistent); under
    /// [`SessionMode::OptIn`](crate::SessionMode::OptIn) once [`set_store(true)`](Self::set_store)
    /// was called.
    #[must_use]
    pub fn is_stored(&self) -> bool {
        self.raw().has_consent()
    }

    /// Records the visitor's storage consent (the "store" flag of
    /// [`SessionMode::OptIn`](crate::SessionMode::OptIn)): with `true` the session is written to
    /// the backend from this response on; with `false` its stored copy is deleted and it lives in
    /// memory only. The flag travels with the id, signed when the store has a key.
    pub fn set_store(&self, store: bool) {
        self.raw().set_consent(store);
    }

    /// Ends the session when the response is sent: its data is removed and the client's cookie
    /// is deleted. Writes made in the same request are discarded; later requests with the old
    /// cookie get a new, empty session.
    pub fn destroy(&self) {
        self.raw().destroy();
    }

    /// Gives the session a new id when the response is sent, keeping its data; the old id stops
    /// working. Call it when privileges change (log-in), so an id planted before cannot follow.
    pub fn renew(&self) {
        self.raw().renew();
    }
}

impl<T: SessionData> Deref for TypedSession<T> {
    type Target = T::Handle;

    fn deref(&self) -> &T::Handle {
        &self.handle
    }
}

impl<T: SessionData> Clone for TypedSession<T> {
    fn clone(&self) -> Self {
        Self {
            handle: self.handle.clone(),
        }
    }
}

impl<T: SessionData> fmt::Debug for TypedSession<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedSession")
            .field("data", &std::any::type_name::<T>())
            .field("id", &self.id())
            .field("is_new", &self.is_new())
            .finish_non_exhaustive()
    }
}

impl<T: SessionData, S: Send + Sync> FromRequestParts<S> for TypedSession<T> {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<RawSession<T>>() {
            Some(raw) => Ok(Self {
                handle: T::Handle::from_raw(raw.clone()),
            }),
            None => Err(MissingSessionLayer {
                data: std::any::type_name::<T>(),
            }),
        }
    }
}

/// The rejection of [`TypedSession<T>`] when no `SessionLayer<T>` wraps the route: a server
/// misconfiguration, answered `500 Internal Server Error` and logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSessionLayer {
    data: &'static str,
}

impl MissingSessionLayer {
    /// The full name of the session data type whose layer is missing.
    #[must_use]
    pub fn data_type(&self) -> &'static str {
        self.data
    }
}

impl fmt::Display for MissingSessionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no SessionLayer<{0}> handles this route: add `.layer(SessionLayer::new(store))` with a \
             SessionStore<{0}> to the router (a `route_layer` covers only the routes added before it)",
            self.data
        )
    }
}

impl std::error::Error for MissingSessionLayer {}

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        tracing::error!("typed-session: {self}");
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}
