//! The tower layer: finds the request's session before the handler, stores it after.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::BoxError;
use axum_core::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::data::SessionData;
use crate::session::RawSession;
use crate::store::{SessionStore, StoreError};

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

/// The response future of [`SessionService`].
pub type ResponseFuture<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
    T: SessionData,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready is the one to call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let store = Arc::clone(&self.store.inner);
        Box::pin(async move {
            let session = match store.open(request.headers(), request.extensions()).await {
                Ok(session) => Arc::new(session),
                Err(error) => return Ok(error_response(&error)),
            };
            request
                .extensions_mut()
                .insert(RawSession(Arc::clone(&session)));
            let mut response = inner.call(request).await?;
            match store.close(&session, response.headers_mut()).await {
                Ok(()) => Ok(response.map(Body::new)),
                Err(error) => Ok(error_response(&error)),
            }
        })
    }
}

/// The answer when the store fails: logged in full, answered briefly. It never falls back to
/// an empty session, which could later overwrite the real one.
fn error_response(error: &StoreError) -> Response<Body> {
    tracing::error!(%error, "typed-session: session store failed");
    let mut response = Response::new(Body::from(error.public_message()));
    *response.status_mut() = error.status();
    response
}
