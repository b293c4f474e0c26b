//! The response future of [`SessionService`](super::SessionService).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum_core::BoxError;
use axum_core::body::Body;
use bytes::Bytes;
use http::Response;
use pin_project_lite::pin_project;

use crate::binding::ClientBinding;
use crate::data::SessionData;
use crate::session::Session;
use crate::store::StoreInner;

type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

pin_project! {
    /// The response future of [`SessionService`](super::SessionService): the inner service's
    /// future, then closing the session. Unboxed on the common path (session in memory, nothing
    /// to write to a backend); boxed only around backend I/O.
    pub struct ResponseFuture<F, T: SessionData, E> {
        #[pin]
        state: State<F, T, E>,
    }
}

pin_project! {
    #[project = StateProjection]
    enum State<F, T: SessionData, E> {
        Running {
            #[pin]
            inner: F,
            session: Session<T>,
            binding: ClientBinding,
            store: Arc<StoreInner<T>>,
        },
        Boxed {
            future: BoxedResponse<E>,
        },
    }
}

impl<F, T: SessionData, E> ResponseFuture<F, T, E> {
    pub(crate) fn running(
        inner: F,
        session: Session<T>,
        binding: ClientBinding,
        store: Arc<StoreInner<T>>,
    ) -> Self {
        Self {
            state: State::Running {
                inner,
                session,
                binding,
                store,
            },
        }
    }

    pub(crate) fn boxed(future: BoxedResponse<E>) -> Self {
        Self {
            state: State::Boxed { future },
        }
    }
}

impl<F, T, E, ResBody> Future for ResponseFuture<F, T, E>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    T: SessionData,
    E: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProjection::Running {
                    inner,
                    session,
                    binding,
                    store,
                } => {
                    let mut response = ready!(inner.poll(cx))?.map(Body::new);
                    let plan = match store.close_now(session, binding, response.headers_mut()) {
                        Ok(()) => return Poll::Ready(Ok(response)),
                        Err(plan) => plan,
                    };
                    let (store, session) = (Arc::clone(store), session.clone());
                    let binding = std::mem::take(binding);
                    let future: BoxedResponse<E> = Box::pin(async move {
                        Ok(super::finish(&store, &session, &binding, plan, response).await)
                    });
                    state.set(State::Boxed { future });
                }
                StateProjection::Boxed { future } => return future.as_mut().poll(cx),
            }
        }
    }
}
