//! A test kit for handlers that use sessions (feature `testing`): seed a typed session, send its
//! cookie with any client, read the session back, and see what a response did to it.
//!
//! ```
//! use axum::body::Body;
//! use axum::http::Request;
//! use axum::{Router, routing::get};
//! use tower::ServiceExt;
//! use typed_session::testing::{SessionOutcome, SessionTester};
//! use typed_session::{SessionData, SessionLayer, SessionStore, TypedSession};
//!
//! #[derive(SessionData)]
//! struct Login {
//!     user: Option<String>,
//!     visits: u64,
//! }
//!
//! async fn home(session: TypedSession<Login>) -> String {
//!     session.update_visits(|visits| *visits += 1);
//!     format!("hello {}", session.user().unwrap_or_default())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = SessionStore::<Login>::builder().build().await?;
//! let app = Router::new().route("/", get(home)).layer(SessionLayer::new(store.clone()));
//! let tester = SessionTester::new(&store);
//!
//! // "alice is signed in", without going through the log-in form.
//! let alice = tester.seed_with(|session| session.set_user(Some("alice".into()))).await?;
//! let (name, value) = alice.request_header();
//! let request = Request::get("/").header(name, value).body(Body::empty())?;
//! let response = app.oneshot(request).await?;
//!
//! assert_eq!(tester.outcome(Some(&alice), response.headers()), SessionOutcome::Unchanged);
//! assert_eq!(tester.read(&alice, |login| login.visits).await?, Some(1));
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::{Ready, poll_fn, ready};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum_core::body::Body;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::backend::BackendError;
use crate::config::Transport;
use crate::data::{GeneratedHandle, SessionData};
use crate::extract::TypedSession;
use crate::id::SessionId;
use crate::layer::SessionLayer;
use crate::session::RawSession;
use crate::store::SessionStore;

/// Seeds sessions into a store and inspects them, for tests of the handlers behind its layer.
/// Works with the store's real configuration: cookies are signed and bound like the layer's
/// when the store has a key, and records go to its backend.
pub struct SessionTester<T: SessionData> {
    store: SessionStore<T>,
}

/// How a test client presents a session: a cookie, or the id header of
/// [`Transport::Header`]. Send it with [`request_header`](Self::request_header).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCookie {
    name: String,
    value: String,
    in_header: bool,
}

/// What a response did to the session a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionOutcome {
    /// Nothing the client must store: the session (if any) goes on under the same value.
    Unchanged,
    /// A new session was created; send this from now on.
    Created(SessionCookie),
    /// The session got a new id (`renew`, a `renew_on_change` field): the old value is dead.
    Renewed(SessionCookie),
    /// The same session under a value sent again: a "remember me" cookie's sliding `Max-Age`,
    /// a changed consent or lifetime, or a value re-signed with the current key.
    Resent(SessionCookie),
    /// The session was destroyed and the client told to forget it.
    Destroyed,
}

impl SessionOutcome {
    /// The value the client holds after the response, when the response gave one.
    #[must_use]
    pub fn cookie(&self) -> Option<&SessionCookie> {
        match self {
            Self::Created(cookie) | Self::Renewed(cookie) | Self::Resent(cookie) => Some(cookie),
            Self::Unchanged | Self::Destroyed => None,
        }
    }
}

/// Why seeding a session failed: the store answered an error, as the layer would to a request.
#[derive(Debug, thiserror::Error)]
#[error("seeding a session failed ({status}): {reason}")]
pub struct SeedError {
    status: StatusCode,
    reason: &'static str,
}

impl SeedError {
    /// The status the store answered (503 when the backend failed).
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl<T: SessionData> SessionTester<T> {
    /// A tester of `store`'s sessions: pass the store the router under test was built with.
    #[must_use]
    pub fn new(store: &SessionStore<T>) -> Self {
        Self {
            store: store.clone(),
        }
    }

    /// Stores a new session holding `value`, as a request that wrote every field would, and
    /// returns how a client presents it.
    ///
    /// # Errors
    ///
    /// When the store cannot save it (a backend that is down).
    pub async fn seed(&self, value: T) -> Result<SessionCookie, SeedError> {
        self.seed_with(move |session| session.raw().write_all(move |data| *data = value))
            .await
    }

    /// Runs `prepare` on a new session, as a handler would (set fields, `set_long_term`,
    /// `csrf_token`, …), stores it like the layer does at the end of a request, and returns how
    /// a client presents it.
    ///
    /// # Errors
    ///
    /// When the store cannot save it, or `prepare` wrote nothing (no session is created then,
    /// as in a real request).
    pub async fn seed_with(
        &self,
        prepare: impl FnOnce(&TypedSession<T>) + Send + 'static,
    ) -> Result<SessionCookie, SeedError> {
        let response = self.run(Request::new(()), prepare).await;
        let status = response.status();
        if !status.is_success() {
            return Err(SeedError {
                status,
                reason: "the store failed; its log line says why",
            });
        }
        match self.outcome(None, response.headers()) {
            SessionOutcome::Created(cookie) => Ok(cookie),
            _ => Err(SeedError {
                status,
                reason: "the preparation wrote nothing, so no session was created: set a field in it",
            }),
        }
    }

    /// Runs `read` on the session `cookie` presents, as it is stored now (see
    /// [`SessionStore::read_session`]); `None` when it is not live (destroyed, renewed away,
    /// expired, never created).
    ///
    /// # Errors
    ///
    /// When the backend fails.
    pub async fn read<R>(
        &self,
        cookie: &SessionCookie,
        read: impl FnOnce(&T) -> R,
    ) -> Result<Option<R>, BackendError> {
        match cookie.id() {
            Some(id) => self.store.read_session(id, read).await,
            None => Ok(None),
        }
    }

    /// What a response did to the session of `before` (the value the request presented, or
    /// `None` for a request without one), read from the response's headers: works with the
    /// `Response` of `tower::ServiceExt::oneshot`, and with any client's headers.
    #[must_use]
    pub fn outcome(&self, before: Option<&SessionCookie>, headers: &HeaderMap) -> SessionOutcome {
        let config = self.store.config();
        let cookie_name = self.store.cookie_name();
        let header_name: &str = &config.header_name;
        let uses_cookie = !matches!(config.transport, Transport::Header);
        let uses_header = !matches!(config.transport, Transport::Cookie);
        let given = uses_cookie
            .then(|| set_cookie(headers, cookie_name))
            .flatten()
            .or_else(|| {
                uses_header
                    .then(|| {
                        let value = headers.get(header_name)?.to_str().ok()?;
                        Some(Given::from_header(header_name, value))
                    })
                    .flatten()
            });
        match given {
            None => SessionOutcome::Unchanged,
            Some(Given::Removed) => SessionOutcome::Destroyed,
            Some(Given::Value(cookie)) => match before.and_then(SessionCookie::id) {
                None => SessionOutcome::Created(cookie),
                Some(id) if cookie.id() == Some(id) => SessionOutcome::Resent(cookie),
                Some(_) => SessionOutcome::Renewed(cookie),
            },
        }
    }

    /// Sends one request through the store's layer to a service that runs `prepare`.
    async fn run(
        &self,
        request: Request<()>,
        prepare: impl FnOnce(&TypedSession<T>) + Send + 'static,
    ) -> Response<Body> {
        let prepare: Prepare<T> = Arc::new(Mutex::new(Some(Box::new(prepare))));
        let mut service = SessionLayer::new(self.store.clone()).layer(Prepared { prepare });
        match poll_fn(|cx| service.poll_ready(cx)).await {
            Ok(()) => {}
            Err(never) => match never {},
        }
        match service.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// A value given in a response.
enum Given {
    Value(SessionCookie),
    /// A removal cookie, or an empty id header.
    Removed,
}

impl Given {
    fn from_header(name: &str, value: &str) -> Self {
        if value.is_empty() {
            Self::Removed
        } else {
            Self::Value(SessionCookie {
                name: name.to_owned(),
                value: value.to_owned(),
                in_header: true,
            })
        }
    }
}

/// The last `Set-Cookie` for `name`.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<Given> {
    let lines: Vec<_> = headers.get_all(SET_COOKIE).iter().collect();
    lines
        .into_iter()
        .filter_map(|line| line.to_str().ok())
        .filter_map(|line| {
            let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
            let value = pair.trim().strip_prefix(name)?.strip_prefix('=')?;
            let removed = attributes
                .split(';')
                .any(|attribute| attribute.trim().eq_ignore_ascii_case("Max-Age=0"));
            Some(if removed || value.is_empty() {
                Given::Removed
            } else {
                Given::Value(SessionCookie {
                    name: name.to_owned(),
                    value: value.to_owned(),
                    in_header: false,
                })
            })
        })
        .next_back()
}

impl SessionCookie {
    /// The header a request presents it in: `Cookie: name=value`, or the id header.
    ///
    /// # Panics
    ///
    /// Never for a value the store handed out (they are visible ASCII).
    #[must_use]
    pub fn request_header(&self) -> (HeaderName, HeaderValue) {
        let (name, value) = if self.in_header {
            (
                HeaderName::try_from(self.name.as_str()).ok(),
                HeaderValue::try_from(self.value.as_str()).ok(),
            )
        } else {
            (
                Some(COOKIE),
                HeaderValue::try_from(format!("{}={}", self.name, self.value)).ok(),
            )
        };
        match name.zip(value) {
            Some(header) => header,
            None => unreachable!("the store hands out header-safe values"),
        }
    }

    /// The cookie's (or header's) name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value as the store handed it out (the id, with its signature when the store has a
    /// key): for a client that sets cookies itself.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The session id inside the value.
    #[must_use]
    pub fn id(&self) -> Option<SessionId> {
        SessionId::parse(self.value.get(..SessionId::TEXT_LEN)?)
    }
}

impl fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tests print these in assertion failures; the value is a test session's, so shown.
        f.debug_struct("SessionCookie")
            .field("name", &self.name)
            .field("value", &self.value)
            .finish()
    }
}

type Prepare<T> = Arc<Mutex<Option<Box<dyn FnOnce(&TypedSession<T>) + Send>>>>;

/// The innermost service of a seeding request: runs the preparation on the request's session.
struct Prepared<T: SessionData> {
    prepare: Prepare<T>,
}

impl<T: SessionData> Clone for Prepared<T> {
    fn clone(&self) -> Self {
        Self {
            prepare: Arc::clone(&self.prepare),
        }
    }
}

impl<T: SessionData> Service<Request<()>> for Prepared<T> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<()>) -> Self::Future {
        let prepare = self
            .prepare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let (Some(raw), Some(prepare)) = (request.extensions().get::<RawSession<T>>(), prepare) {
            let session = TypedSession::from_handle(T::Handle::from_raw(raw.clone()));
            prepare(&session);
        }
        ready(Ok(Response::new(Body::empty())))
    }
}
