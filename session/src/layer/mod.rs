//! The tower layer: finds the request's session before the handler, stores it after; its
//! service, and the service's response future.

mod future;

pub use future::ResponseFuture;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::BoxError;
use axum_core::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::binding::ClientBinding;
use crate::data::SessionData;
use crate::session::{RawSession, Session};
use crate::store::{ClosePlan, Opening, Pending, SessionStore, StoreError, StoreInner};

/// Adds sessions of type `T` to the routes it wraps, for [`TypedSession<T>`](crate::TypedSession)
/// to extract.
///
/// Works with `Router::layer` and `Router::route_layer`. Several layers for different data
/// types can wrap one router; each has its own cookie.
///
/// ```
/// use axum::{Router, routing::get};
/// use typed_session::{SessionData, SessionLayer, SessionStore, TypedSession};
///
/// #[derive(SessionData)]
/// struct Visit {
///     count: u64,
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), typed_session::BuildError> {
/// let store = SessionStore::<Visit>::builder().build().await?;
/// let app: Router = Router::new()
///     .route("/", get(|s: TypedSession<Visit>| async move { s.update_count(|c| { *c += 1; *c }).to_string() }))
///     .layer(SessionLayer::new(store));
/// # Ok(())
/// # }
/// ```
///
#[doc = include_str!("../../docs/request.md")]
pub struct SessionLayer<T: SessionData> {
    store: SessionStore<T>,
}

impl<T: SessionData> SessionLayer<T> {
    /// A layer serving the sessions of `store`.
    #[must_use]
    pub fn new(store: SessionStore<T>) -> Self {
        Self { store }
    }
}

impl<T: SessionData> Clone for SessionLayer<T> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
        }
    }
}

impl<T: SessionData> fmt::Debug for SessionLayer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("store", &self.store)
            .finish()
    }
}

impl<S, T: SessionData> Layer<S> for SessionLayer<T> {
    type Service = SessionService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            store: self.store.clone(),
        }
    }
}

/// The service of a [`SessionLayer`].
pub struct SessionService<S, T: SessionData> {
    inner: S,
    store: SessionStore<T>,
}

impl<S: Clone, T: SessionData> Clone for SessionService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            store: self.store.clone(),
        }
    }
}

impl<S: fmt::Debug, T: SessionData> fmt::Debug for SessionService<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("store", &self.store)
            .finish()
    }
}

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
    T: SessionData,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, T, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let store = &self.store.inner;
        // The common case needs no I/O: a session in memory (or a new one). Then the service that
        // was polled ready is called right here, with no clone of it and no boxed future.
        match store.open_now(request.headers(), request.extensions()) {
            Opening::Ready(session, binding) => {
                request
                    .extensions_mut()
                    .insert(RawSession::new(session.clone(), Arc::clone(store) as _));
                let response = self.inner.call(request);
                ResponseFuture::running(response, session, binding, Arc::clone(store))
            }
            Opening::Pending(pending) => self.call_after_io(request, pending),
        }
    }
}

impl<S, T: SessionData> SessionService<S, T> {
    /// The rest of [`call`](Service::call): a load or touch of the backend comes first. Out of
    /// line (`#[cold]` meaning "not a memory hit", not "rare"), so that the common path builds
    /// its future in place.
    #[cold]
    #[inline(never)]
    fn call_after_io<ReqBody, ResBody>(
        &mut self,
        mut request: Request<ReqBody>,
        pending: Pending<T>,
    ) -> ResponseFuture<S::Future, T, S::Error>
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        ReqBody: Send + 'static,
        ResBody: http_body::Body<Data = Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        // The clone takes the polled one's place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let store = Arc::clone(&self.store.inner);
        ResponseFuture::boxed(Box::pin(async move {
            let (session, binding) = match store.open(pending, request.headers()).await {
                Ok(opened) => opened,
                Err(error) => return Ok(error_response(&store, &error)),
            };
            request
                .extensions_mut()
                .insert(RawSession::new(session.clone(), Arc::clone(&store) as _));
            let mut response = inner.call(request).await?.map(Body::new);
            Ok(
                match store.close_now(&session, &binding, response.headers_mut()) {
                    Ok(()) => response,
                    Err(plan) => finish(&store, &session, &binding, plan, response).await,
                },
            )
        }))
    }
}

/// Closes the session by a `plan` that needs I/O, and answers: the response, or an error
/// response when the store failed.
pub(crate) async fn finish<T: SessionData>(
    store: &StoreInner<T>,
    session: &Session<T>,
    binding: &ClientBinding,
    plan: ClosePlan,
    mut response: Response<Body>,
) -> Response<Body> {
    match store
        .close(session, binding, plan, response.headers_mut())
        .await
    {
        Ok(()) => response,
        Err(error) => error_response(store, &error),
    }
}

/// The answer when the store fails: logged in full, answered briefly, with a removal cookie
/// when the session is over. It never falls back to an empty session, which could later
/// overwrite the real one.
fn error_response<T>(store: &StoreInner<T>, error: &StoreError) -> Response<Body> {
    store.observer().error(error.kind());
    if error.ends_session() {
        tracing::warn!(%error, "typed-session: a request's session ended under it");
    } else {
        tracing::error!(%error, "typed-session: session store failed");
    }
    let mut response = Response::new(Body::from(error.public_message()));
    *response.status_mut() = error.status();
    if error.ends_session() {
        store.remove_id(response.headers_mut());
    }
    response
}
