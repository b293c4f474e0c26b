//! A yardstick, not a session library: the least a cookie session layer over a memory map can
//! do per request, written plainly so its cost can be set beside the real contenders'. It reads
//! its cookie, looks the id up (or draws a random one), reads the clock once for expiry, puts
//! the session in a request extension, and after the handler stores a new written session and
//! hands out its `Set-Cookie`. No signing, lifetimes, binding, backend, renewal or consent.

use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::routing::get;
use dashmap::DashMap;
use tower::{Layer, Service};

const COOKIE_NAME: &str = "floor";
const ATTRIBUTES: &str = "; HttpOnly; SameSite=Lax; Path=/";

#[derive(Default)]
struct Entry {
    count: Mutex<u64>,
    last_access: AtomicU64,
    written: AtomicBool,
}

/// Ids are random, so their low bits serve as the hash (no SipHash per lookup).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u128(&mut self, id: u128) {
        self.0 = id as u64;
    }
}

type Map = Arc<DashMap<u128, Arc<Entry>, BuildHasherDefault<IdHasher>>>;

#[derive(Clone)]
struct FloorSession(Arc<Entry>);

impl<S: Send + Sync> FromRequestParts<S> for FloorSession {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, StatusCode> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

#[derive(Clone)]
struct FloorLayer(Map);

impl<S> Layer<S> for FloorLayer {
    type Service = FloorService<S>;

    fn layer(&self, inner: S) -> FloorService<S> {
        FloorService {
            inner,
            map: Arc::clone(&self.0),
        }
    }
}

#[derive(Clone)]
struct FloorService<S> {
    inner: S,
    map: Map,
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

fn cookie_id<B>(request: &Request<B>) -> Option<u128> {
    let cookies = request.headers().get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE_NAME)
            .then(|| u128::from_str_radix(value, 16).ok())
            .flatten()
    })
}

impl<S, B> Service<Request<B>> for FloorService<S>
where
    S: Service<Request<B>, Response = Response<axum::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = FloorFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let now = now_millis();
        let found = cookie_id(&request).and_then(|id| Some((id, Arc::clone(&*self.map.get(&id)?))));
        let (id, entry, new) = match found {
            Some((id, entry)) => (id, entry, false),
            None => (uuid::Uuid::new_v4().as_u128(), Arc::default(), true),
        };
        entry.last_access.store(now, Ordering::Relaxed);
        request
            .extensions_mut()
            .insert(FloorSession(Arc::clone(&entry)));
        FloorFuture {
            inner: self.inner.call(request),
            closing: new.then(|| (id, entry, Arc::clone(&self.map))),
        }
    }
}

pin_project_lite::pin_project! {
    struct FloorFuture<F> {
        #[pin]
        inner: F,
        closing: Option<(u128, Arc<Entry>, Map)>,
    }
}

impl<F, E> Future for FloorFuture<F>
where
    F: Future<Output = Result<Response<axum::body::Body>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        if let Some((id, entry, map)) = this.closing.take()
            && entry.written.load(Ordering::Relaxed)
        {
            map.insert(id, entry);
            let mut line = Vec::with_capacity(COOKIE_NAME.len() + 33 + ATTRIBUTES.len());
            line.extend_from_slice(COOKIE_NAME.as_bytes());
            line.push(b'=');
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            line.extend(
                (0..32)
                    .rev()
                    .map(|nibble| DIGITS[(id >> (nibble * 4)) as usize & 15]),
            );
            line.extend_from_slice(ATTRIBUTES.as_bytes());
            if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(line)) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        Poll::Ready(Ok(response))
    }
}

async fn count(FloorSession(entry): FloorSession) -> String {
    let count = {
        let mut count = entry
            .count
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *count += 1;
        *count
    };
    entry.written.store(true, Ordering::Relaxed);
    // On the `u64` itself, as every other contender does: `to_string` is specialised for it.
    count.to_string()
}

async fn read(FloorSession(entry): FloorSession) -> String {
    let count = *entry
        .count
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    count.to_string()
}

pub fn router() -> Router {
    Router::new()
        .route("/count", get(count))
        .route("/read", get(read))
        .layer(FloorLayer(Map::default()))
}
