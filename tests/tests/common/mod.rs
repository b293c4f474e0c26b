//! What the test binaries share: a tiny browser for driving a `Router` in-process (it keeps the
//! cookies that responses set and sends them back, as a real client would), and in submodules
//! the database servers (`services`), one fixture per backend (`storage`), a user-written
//! backend (`shared_map`), servers of the tests' own (`processes`) and the property-test runner
//! (`properties`).
#![allow(dead_code, unreachable_pub, unused_imports)]

pub mod processes;
pub mod properties;
pub mod services;
pub mod shared_map;
pub mod storage;

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub use axum::http::{HeaderValue, Method, Request, StatusCode, header};

/// One response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
    pub set_cookies: Vec<String>,
}

impl Reply {
    /// The value given to cookie `name` by this response, if any.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
            .map(|rest| rest.split(';').next().unwrap_or_default())
    }

    /// The whole `Set-Cookie` line for cookie `name`.
    pub fn cookie_line(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .map(String::as_str)
            .find(|line| line.starts_with(&format!("{name}=")))
    }
}

/// A client with a cookie jar.
#[derive(Clone)]
pub struct Browser {
    app: Router,
    pub jar: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(app: &Router) -> Self {
        Self {
            app: app.clone(),
            jar: BTreeMap::new(),
        }
    }

    /// The same client (a copy of its cookies) talking to another server.
    pub fn on(&self, app: &Router) -> Self {
        Self {
            app: app.clone(),
            jar: self.jar.clone(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send(Method::GET, path).await
    }

    pub async fn send(&mut self, method: Method, path: &str) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if !self.jar.is_empty() {
            let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.header(header::COOKIE, cookies.join("; "));
        }
        let reply = send(&self.app, request.body(Body::empty()).unwrap()).await;
        for line in &reply.set_cookies {
            let pair = line.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if line.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
        reply
    }
}

/// `app` with one more GET route, `path`, served by `handler` behind `store`'s layer: a test's
/// own handler (a slow one, one that waits for a signal) beside the shared routes.
pub fn with_route<T, H, X>(
    app: Router,
    store: &typed_session::SessionStore<T>,
    path: &str,
    handler: H,
) -> Router
where
    T: typed_session::SessionData,
    H: axum::handler::Handler<X, ()>,
    X: 'static,
{
    app.merge(
        Router::new()
            .route(path, axum::routing::get(handler))
            .layer(typed_session::SessionLayer::new(store.clone())),
    )
}

/// Sends one request and reads the whole response.
pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let set_cookies = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        body: String::from_utf8(body.to_vec()).unwrap(),
        set_cookies,
    }
}

/// A GET with exactly the given `Cookie` header.
pub async fn get_with_cookie(app: &Router, path: &str, cookie: &str) -> Reply {
    let request = Request::get(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    send(app, request).await
}
