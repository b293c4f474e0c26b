//! The tower layer: finds the request's session before the handler, stores it after.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::clock::now_millis;
use crate::data::SessionData;
use crate::id::SessionId;
use crate::session::{RawSession, RequestSession};
use crate::store::{SessionStore, StoreInner};

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
pub type ResponseFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send + 'static>>;

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    T: SessionData,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let store = Arc::clone(&self.store.inner);
        let session = Arc::new(store.open(request.headers()));
        request
            .extensions_mut()
            .insert(RawSession(Arc::clone(&session)));
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            store.close(&session, response.headers_mut());
            Ok(response)
        })
    }
}

impl<T: SessionData> StoreInner<T> {
    /// The session named by the request's cookie if it is live, else a new one.
    ///
    /// Only an id this store issued and still holds is adopted; anything else (malformed,
    /// expired, destroyed, invented by the client) gets a fresh id, which stops session fixation
    /// through a chosen id.
    fn open(&self, headers: &HeaderMap) -> RequestSession<T> {
        let now = now_millis();
        let live = self.cookie.values(headers).find_map(|value| {
            let id = SessionId::parse(value)?;
            Some((id, self.memory.get_live(id, self.lifetimes, now)?))
        });
        match live {
            Some((id, entry)) => RequestSession::existing(id, entry, self.lifetimes),
            None => RequestSession::fresh(T::initial(), now, self.lifetimes),
        }
    }

    /// Applies what the request did: destroy, renew, or the first write of a new session.
    /// Writes to an existing session already happened on the shared live value.
    fn close(&self, session: &RequestSession<T>, headers: &mut HeaderMap) {
        if session.destroy_requested() {
            if !session.is_new {
                self.memory.remove(session.id, &session.entry);
                self.cookie.remove(headers);
            }
        } else if session.is_new {
            if session.dirty() != 0 {
                let id = self
                    .memory
                    .insert_new(session.id, Arc::clone(&session.entry));
                self.cookie.set(headers, id);
            }
        } else if session.renew_requested()
            && let Some(id) = self.memory.renew(session.id, &session.entry)
        {
            self.cookie.set(headers, id);
        }
    }
}
